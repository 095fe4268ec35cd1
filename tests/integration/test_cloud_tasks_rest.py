"""The local Cloud Tasks emulator's REST API refuses what Cloud Tasks refuses, and a task created
over it is delivered: the functions schedule every check through it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from common.adapters.cloud_tasks import CloudTasksQueue, queue_path
from common.adapters.google_tokens import EmulatorToken
from common.errors import FailedPreconditionError
from common.ports import ScheduledTask, SystemClock
from common.signatures import TASK_AUTH_HEADER
from emulators.stack import PROJECT_ID, LocalStack
from tests.local_http import serving
from tests.tasks_api import tasks_api

LOCATION = f"projects/{PROJECT_ID}/locations/us-central1"


@pytest.fixture
def queue(stack: LocalStack) -> Iterator[str]:
    api = tasks_api(stack)
    name = f"{LOCATION}/queues/rest-{uuid.uuid4().hex[:8]}"
    assert api("POST", f"/v2/{LOCATION}/queues", {"name": name}) == (
        200,
        {"name": name, "state": "RUNNING"},
    )
    yield name
    assert api("DELETE", f"/v2/{name}", None) == (200, {})


def test_a_request_without_a_bearer_token_is_unauthenticated(stack: LocalStack, queue: str) -> None:
    status, body = tasks_api(stack, token=None)("POST", f"/v2/{queue}/tasks", {"task": {}})
    assert status == 401 and body["error"]["status"] == "UNAUTHENTICATED"
    status, body = tasks_api(stack, token="forged")("POST", f"/v2/{queue}/tasks", {"task": {}})
    assert status == 401


def test_a_missing_queue_is_not_found(stack: LocalStack) -> None:
    missing = f"{LOCATION}/queues/never-created"
    # With the query string Google's REST clients add.
    status, body = tasks_api(stack)("POST", f"/v2/{missing}/tasks?$alt=json", {"task": {}})
    assert status == 404
    assert body["error"]["status"] == "NOT_FOUND" and missing in body["error"]["message"]


def test_a_task_named_outside_its_queue_or_malformed_is_invalid(
    stack: LocalStack, queue: str
) -> None:
    api = tasks_api(stack)
    elsewhere = {"task": {"name": f"{LOCATION}/queues/other/tasks/t1"}}
    status, body = api("POST", f"/v2/{queue}/tasks", elsewhere)
    assert (status, body["error"]["status"]) == (400, "INVALID_ARGUMENT")
    assert f"is not in {queue}" in body["error"]["message"]
    status, body = api("POST", f"/v2/{queue}/tasks", {"task": {"scheduledAt": "soon"}})
    assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT"


def test_a_second_queue_of_the_same_name_already_exists(stack: LocalStack, queue: str) -> None:
    status, body = tasks_api(stack)("POST", f"/v2/{LOCATION}/queues", {"name": queue})
    assert status == 409 and body["error"]["status"] == "ALREADY_EXISTS"


def test_the_adapter_says_which_queue_is_missing(stack: LocalStack) -> None:
    adapter = CloudTasksQueue(
        f"http://127.0.0.1:{stack.ports.tasks_rest}",
        EmulatorToken(),
        queue_path(PROJECT_ID, "us-central1", "never-created"),
        "http://127.0.0.1:9",
        SystemClock(),
    )
    task = ScheduledTask(name="t1", path="/api/tasks/monitor", payload={})
    with pytest.raises(FailedPreconditionError, match="never-created does not exist"):
        adapter.enqueue(task)


def test_a_task_created_over_rest_is_delivered_with_its_headers_and_body(
    stack: LocalStack, queue: str
) -> None:
    delivered: list[tuple[str, dict[str, str], bytes]] = []

    def receive(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        delivered.append((path, headers, body))
        return 200, {}

    with serving(receive) as (target, _):
        adapter = CloudTasksQueue(
            f"http://127.0.0.1:{stack.ports.tasks_rest}",
            EmulatorToken(),
            queue,
            target,
            SystemClock(),
            auth_token="local-task-token",
        )
        task = ScheduledTask(name="t-now", path="/api/tasks/monitor", payload={"streamId": "s1"})
        assert adapter.enqueue(task) is True
        assert adapter.enqueue(task) is False  # the name was used: ALREADY_EXISTS
        deadline = time.monotonic() + 15
        while not delivered and time.monotonic() < deadline:
            time.sleep(0.1)
    ((path, headers, body),) = delivered
    assert path == "/api/tasks/monitor"
    assert headers[TASK_AUTH_HEADER.lower()] == "local-task-token"
    assert headers["x-cloudtasks-taskname"] == "t-now"
    assert body == b'{"streamId": "s1"}'


def test_a_queue_deleted_and_created_again_delivers_its_tasks(stack: LocalStack) -> None:
    api = tasks_api(stack)
    name = f"{LOCATION}/queues/again-{uuid.uuid4().hex[:8]}"
    delivered: list[str] = []

    def receive(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        delivered.append(headers["x-cloudtasks-taskname"])
        return 200, {}

    def deliver(adapter: CloudTasksQueue, task_name: str) -> None:
        task = ScheduledTask(name=task_name, path="/api/tasks/monitor", payload={})
        assert adapter.enqueue(task) is True
        deadline = time.monotonic() + 15
        while task_name not in delivered and time.monotonic() < deadline:
            time.sleep(0.1)

    with serving(receive) as (target, _):
        origin = f"http://127.0.0.1:{stack.ports.tasks_rest}"
        adapter = CloudTasksQueue(origin, EmulatorToken(), name, target, SystemClock())
        assert api("POST", f"/v2/{LOCATION}/queues", {"name": name})[0] == 200
        deliver(adapter, "t-first")  # the emulator processes the queue
        assert api("DELETE", f"/v2/{name}", None) == (200, {})
        time.sleep(0.5)  # its processor sees the queue gone
        assert api("POST", f"/v2/{LOCATION}/queues", {"name": name})[0] == 200
        try:
            deliver(adapter, "t-again")
        finally:
            assert api("DELETE", f"/v2/{name}", None) == (200, {})
    assert delivered == ["t-first", "t-again"]
