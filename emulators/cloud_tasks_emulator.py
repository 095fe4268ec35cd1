"""The Cloud Tasks emulator (PyPI ``gcloud-tasks-emulator``), run by its own interpreter in
``.local/tasks-emulator``, with what it lacks of Cloud Tasks as our functions use it:

- Cloud Tasks' REST API (``--rest-port``), the one the functions call, on the emulator's own
  queues: create a task, create and delete a queue, with Google's JSON error bodies. Like the
  real API it refuses a request without a bearer token (401), a task named outside its queue
  (400) and a queue that does not exist (404). The emulator itself speaks gRPC only.
- A task name that was used already is refused with ALREADY_EXISTS (production keeps names of
  created, run and deleted tasks for an hour or more). Our monitors rely on it: their
  deterministic task names make a second scheduling of the same check a no-op.
- A queue deleted and created again is processed again, and a task or queue that goes away
  while its queue is processed does not stop the processing (the emulator's processor thread
  of a queue died on either and never came back for that name).

Usage (the emulator's own arguments, plus one): python cloud_tasks_emulator.py start -p GRPC_PORT
--rest-port REST_PORT ...
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from gcloud_tasks_emulator import server  # type: ignore[import-not-found]
from gcloud_tasks_emulator.__main__ import main  # type: ignore[import-not-found]
from google.api_core.exceptions import AlreadyExists, GoogleAPICallError, NotFound

# The token the local stack's clients send, as the Firebase emulators accept it.
EMULATOR_TOKEN = "owner"  # noqa: S105 - the emulators' documented admin token, not a secret
_QUEUE = r"projects/[^/]+/locations/[^/]+/queues/[^/]+"
TASKS_PATH = re.compile(rf"^/v2/({_QUEUE})/tasks$")
QUEUES_PATH = re.compile(r"^/v2/(projects/[^/]+/locations/[^/]+)/queues$")
QUEUE_PATH = re.compile(rf"^/v2/({_QUEUE})$")

_create_task = server.QueueState.create_task
_init_state = server.QueueState.__init__
_process_queue = server.Processor._process_queue
_names_lock = threading.Lock()
_state_lock = threading.Lock()


def _create_task_once(self: Any, queue: str, task: Any) -> Any:
    """Create ``task`` unless a task of the same name was ever created in this run."""
    with _names_lock:
        used: set[str] = self.__dict__.setdefault("_used_task_names", set())
        if task.name and task.name in used:
            message = f"Task {task.name} already exists or existed recently"
            raise AlreadyExists(message)  # type: ignore[no-untyped-call]
        created = _create_task(self, queue, task)
        used.add(created.name)
        return created


def _process_queue_until_deleted(self: Any, queue: str) -> None:
    """Process ``queue`` until it is deleted; then forget it, so that a queue created again
    under its name gets a processor of its own."""
    try:
        while self._is_running.is_set():
            try:
                _process_queue(self, queue)  # returns once the queue is gone
                return
            except (KeyError, ValueError, NotFound):
                # The queue or a task went away under the processor: look again.
                server.logger.warning(
                    "[TASKS] %s changed under its processor", queue, exc_info=True
                )
                time.sleep(0.1)
    finally:
        self._known_queues.discard(queue)


class ApiError(Exception):
    """An answer of Google's shape: ``{"error": {"code", "message", "status"}}``."""

    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message


def _parsed(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body or b"{}")
    except ValueError as exc:
        raise ApiError(400, "INVALID_ARGUMENT", f"Invalid JSON payload received: {exc}") from exc
    if not isinstance(payload, dict):
        raise ApiError(400, "INVALID_ARGUMENT", "The request body must be a JSON object")
    return payload


def _message(kind: Any, fields: Any) -> Any:
    try:
        return kind.from_json(json.dumps(fields or {}))
    except Exception as exc:  # protobuf's parser raises its own ParseError
        raise ApiError(400, "INVALID_ARGUMENT", f"Invalid {kind.__name__}: {exc}") from exc


def _json(kind: Any, message: Any) -> str:
    return str(kind.to_json(message, use_integers_for_enums=False))


class RestApi:
    """Cloud Tasks' REST methods the functions and the tests call, on one ``QueueState``."""

    def __init__(self, state: Any) -> None:
        self._state = state

    def answer(self, method: str, path: str, body: bytes) -> dict[str, Any]:
        # One at a time: each method checks the queues, then changes them.
        with _state_lock:
            return self._answer(method, path, body)

    def _answer(self, method: str, path: str, body: bytes) -> dict[str, Any]:
        from google.cloud.tasks_v2 import Queue, Task  # noqa: PLC0415 - the emulator's interpreter

        if method == "POST" and (match := TASKS_PATH.match(path)):
            queue = match.group(1)
            task = _message(Task, _parsed(body).get("task"))
            if task.name and not task.name.startswith(f"{queue}/tasks/"):
                raise ApiError(400, "INVALID_ARGUMENT", f"Task {task.name} is not in {queue}")
            self._existing(queue)
            return dict(json.loads(_json(Task, self._state.create_task(queue, task))))
        if method == "POST" and (match := QUEUES_PATH.match(path)):
            queue = _message(Queue, _parsed(body))
            if not queue.name.startswith(f"{match.group(1)}/queues/"):
                raise ApiError(400, "INVALID_ARGUMENT", f"Queue {queue.name} is not in the path")
            if queue.name in self._state.queue_names():
                raise ApiError(409, "ALREADY_EXISTS", f"Queue {queue.name} already exists")
            return dict(json.loads(_json(Queue, self._state.create_queue(None, queue))))
        if method == "DELETE" and (match := QUEUE_PATH.match(path)):
            self._existing(match.group(1))
            self._state.delete_queue(match.group(1))
            return {}
        raise ApiError(404, "NOT_FOUND", f"No method {method} {path}")

    def _existing(self, queue: str) -> None:
        if queue not in self._state.queue_names():
            raise ApiError(404, "NOT_FOUND", f"Queue {queue} does not exist")


def serve_rest(api: RestApi, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                if self.headers.get("Authorization") != f"Bearer {EMULATOR_TOKEN}":
                    raise ApiError(
                        401, "UNAUTHENTICATED", "Request had invalid authentication credentials"
                    )
                path = urlsplit(self.path).path  # Google's clients add ?$alt=json...
                status, payload = 200, api.answer(self.command, path, body)
            except ApiError as exc:
                status, payload = exc.code, _error(exc.code, exc.status, exc.message)
            except GoogleAPICallError as exc:
                status = int(exc.code or 500)
                grpc_code = exc.grpc_status_code
                payload = _error(status, grpc_code.name if grpc_code else "UNKNOWN", exc.message)
            except Exception as exc:  # an internal error in Google's shape, not a dropped line
                status, payload = 500, _error(500, "INTERNAL", f"{type(exc).__name__}: {exc}")
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_DELETE = _handle  # noqa: N815 - BaseHTTPRequestHandler's names
        protocol_version = "HTTP/1.1"  # keep-alive, as Google's front ends

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, name="rest-api", daemon=True).start()
    return httpd


def _error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


def _rest_port(argv: list[str]) -> int | None:
    """Take ``--rest-port N`` out of ``argv`` (the emulator's parser does not know it)."""
    if "--rest-port" not in argv:
        return None
    at = argv.index("--rest-port")
    port = int(argv[at + 1])
    del argv[at : at + 2]
    return port


if __name__ == "__main__":
    rest_port = _rest_port(sys.argv)

    def _init_and_serve(self: Any, *args: Any, **kwargs: Any) -> None:
        _init_state(self, *args, **kwargs)
        if rest_port is not None:
            serve_rest(RestApi(self), rest_port)

    server.QueueState.create_task = _create_task_once
    server.Processor._process_queue = _process_queue_until_deleted
    server.QueueState.__init__ = _init_and_serve
    main()
