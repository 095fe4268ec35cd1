"""Starts the whole local system: Firestore and Auth emulators, the Cloudflare Stream emulator
and the hosting gateway serving every function (twice: as Firebase Hosting, which forwards only
the ``__session`` cookie, and as an edge proxy forwarding every cookie), and in front of the
first a caching proxy standing in for Hosting's CDN (``emulators/cdn_cache.py``). Used by
``make run`` and by the test suite.

Only processes started here are ever stopped, each by the PID (process group) it was given.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulators import firestore_events
from emulators.cdn_cache import cdn_config, prepare_cdn_dir
from emulators.cloudflare_stream.media import nginx_config, prepare_media_dir
from emulators.free_ports import USUAL_PORTS
from emulators.free_ports import Ports as Ports  # noqa: PLC0414 - re-exported for the stack's users

ROOT = Path(__file__).resolve().parent.parent
PROJECT_ID = "demo-memorial-streams"
FIRESTORE_BIN = Path(
    "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator"
)
FIREBASE_CLI = ROOT / "emulators" / "node_modules" / ".bin" / "firebase"
ACCOUNT_ID = "local-account"
API_TOKEN = "local-dev-token"  # noqa: S105 - the emulator's fixed local token
TASK_TOKEN = "local-task-token"  # noqa: S105 - local only
NOTIFICATION_SECRET = "local-notification-secret"  # noqa: S105 - local only
# Short enough that a test can outwait it; the emulator answers in milliseconds.
CLOUDFLARE_READ_TIMEOUT_S = 6
TASKS_EMULATOR = ROOT / ".local" / "tasks-emulator" / "bin" / "gcloud-tasks-emulator"
TASKS_PYTHON = TASKS_EMULATOR.with_name("python")


@dataclass
class LocalStack:
    """The running stack; ``env`` is what a backend process needs to use it."""

    ports: Ports
    workdir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    webhook_secret: str | None = None
    signing_key: tuple[str, str] | None = None  # a Stream signing key's id and base64 pem
    # Settings of the backend beyond the stack's own (the tests' faster schedule windows).
    settings_env: dict[str, str] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    @property
    def edge_gateway_url(self) -> str:
        """The functions behind an edge proxy that forwards every cookie (``gateway_url`` is
        Firebase Hosting, which forwards only ``__session``)."""
        return f"http://127.0.0.1:{self.ports.edge_gateway}"

    @property
    def cdn_url(self) -> str:
        """The API gateway behind a caching proxy, as Hosting's CDN stands before the functions
        in production: what ``Cache-Control`` lets it keep is served from the cache."""
        return f"http://127.0.0.1:{self.ports.cdn}"

    @property
    def cloudflare_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.cloudflare}"

    @property
    def env(self) -> dict[str, str]:
        return {
            "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{self.ports.firestore}",
            "FIREBASE_AUTH_EMULATOR_HOST": f"127.0.0.1:{self.ports.auth}",
            "GOOGLE_CLOUD_PROJECT": PROJECT_ID,
            "LS_ENVIRONMENT": "local",
            "LS_GCP_PROJECT": PROJECT_ID,
            "LS_CLOUDFLARE_API_BASE": f"{self.cloudflare_url}/client/v4",
            "LS_CLOUDFLARE_DELIVERY_BASE": self.cloudflare_url,
            "LS_CLOUDFLARE_ACCOUNT_ID": ACCOUNT_ID,
            "LS_CLOUDFLARE_API_TOKEN": API_TOKEN,
            # Locally a broadcast becomes a recording a few seconds after it ends.
            "LS_RECORDING_TIMEOUT_SECONDS": "3",
            "LS_CLOUDFLARE_READ_TIMEOUT_S": str(CLOUDFLARE_READ_TIMEOUT_S),
            "LS_ORPHAN_SWEEP_DELAY_S": "8",
            "LS_CLOUD_TASKS_EMULATOR_HOST": f"127.0.0.1:{self.ports.tasks_rest}",
            "LS_TASKS_TARGET_BASE_URL": self.gateway_url,
            "LS_TASK_AUTH_TOKEN": TASK_TOKEN,
            "LS_RECORDING_MONITOR_INTERVAL_S": "2",
            "LS_STATUS_MONITOR_INTERVAL_S": "3",
            # A started stream whose encoder never comes is ended after 15 s, not 90 s.
            "LS_STATUS_MONITOR_GRACE_CHECKS": "5",
            "LS_CLOUDFLARE_NOTIFICATION_SECRET": NOTIFICATION_SECRET,
            # Role changes reach signed-in users within 2 s locally (30 s in production).
            "LS_AUTH_USER_CACHE_TTL_S": "2",
            # The suite's shared users create hundreds of streams a run; the limit itself is
            # tested with users of its own (tests/integration/test_create_guards.py).
            "LS_CREATE_RATE_LIMIT": "1000",
            "LS_CREATE_RATE_LIMIT_ADMIN": "1000",
            **(
                {"LS_CLOUDFLARE_WEBHOOK_SECRET": self.webhook_secret} if self.webhook_secret else {}
            ),
            **(
                {
                    "LS_CLOUDFLARE_SIGNING_KEY_ID": self.signing_key[0],
                    "LS_CLOUDFLARE_SIGNING_KEY_PEM": self.signing_key[1],
                }
                if self.signing_key
                else {}
            ),
            **self.settings_env,
        }

    @property
    def rtmp_url(self) -> str:
        return f"rtmp://127.0.0.1:{self.ports.rtmp}/live/"

    @property
    def media_dir(self) -> Path:
        return self.workdir / "media"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_firestore()
            self._start_auth()
            self._start_python(
                "cloudflare",
                "emulators.cloudflare_stream",
                self.ports.cloudflare,
                "--rtmp-port",
                str(self.ports.rtmp),
                "--media-dir",
                str(self.media_dir),
            )
            _wait_http(f"{self.cloudflare_url}/__emulator/stats", self._alive("cloudflare"))
            self._start_media_server()
            self._start_tasks()
            self._subscribe_webhooks()
            self._start_python(
                "gateway",
                "emulators.hosting_gateway",
                self.ports.gateway,
                # As deployed: no function shares a process (or its state) with another.
                "--process-per-function",
            )
            self._start_python(
                "edge_gateway",
                "emulators.hosting_gateway",
                self.ports.edge_gateway,
                "--forward-all-cookies",
            )
            _wait_http(f"{self.gateway_url}/api/streams/public", self._alive("gateway"), 240)
            _wait_http(f"{self.edge_gateway_url}/api/streams/public", self._alive("edge_gateway"))
            self.start_cdn("cdn", self.ports.cdn, self.ports.gateway)
            _wait_http(f"{self.cdn_url}/api/streams/public", self._alive("cdn"))
            self._start_events()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop_component(name)

    def stop_component(self, name: str) -> None:
        """Stop one component we started, with every process of its group (the Firestore
        emulator's JVM is a child of its launcher and outlives it by a moment)."""
        process = self.processes.pop(name)
        _end_process_group(process)

    def start_component(self, name: str) -> None:
        """Start a component stopped by ``stop_component`` again, on the same port."""
        starters = {
            "firestore": self._start_firestore,
            "events": self._start_events,
        }
        starters[name]()

    def pause_component(self, name: str) -> None:
        """Freeze one component we started (SIGSTOP to its process group): it keeps its state
        and its connections, but answers nothing until ``resume_component``."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.processes[name].pid, signal.SIGSTOP)

    def resume_component(self, name: str) -> None:
        """Let a component frozen by ``pause_component`` run again (SIGCONT)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.processes[name].pid, signal.SIGCONT)

    @contextlib.contextmanager
    def paused(self, name: str) -> Iterator[None]:
        """``name`` frozen for the ``with`` block, and always resumed after it."""
        try:
            self.pause_component(name)
            yield
        finally:
            self.resume_component(name)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.workdir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )

    def _alive(self, name: str) -> subprocess.Popen[bytes]:
        return self.processes[name]

    def _start_firestore(self) -> None:
        binary = (
            str(FIRESTORE_BIN)
            if FIRESTORE_BIN.exists()
            else shutil.which("cloud_firestore_emulator")
        )
        if binary is None:
            raise RuntimeError("Firestore emulator missing: run `make install`")
        self._spawn(
            "firestore",
            [
                binary,
                "--host=127.0.0.1",
                f"--port={self.ports.firestore}",
                f"--project_id={PROJECT_ID}",
                # Client SDK reads (the site's own pages) go through the real rules engine.
                f"--rules={ROOT / 'firestore.rules'}",
            ],
        )
        _wait_http(f"http://127.0.0.1:{self.ports.firestore}/", self._alive("firestore"))

    def _start_auth(self) -> None:
        config = self.workdir / "firebase.auth.json"
        config.write_text(
            json.dumps(
                {
                    "emulators": {
                        "singleProjectMode": True,
                        "auth": {"host": "127.0.0.1", "port": self.ports.auth},
                        "hub": {"host": "127.0.0.1", "port": self.ports.auth_hub},
                        "logging": {"host": "127.0.0.1", "port": self.ports.auth_logging},
                        "ui": {"enabled": False},
                    }
                }
            )
        )
        self._spawn(
            "auth",
            [
                str(FIREBASE_CLI),
                "emulators:start",
                "--only",
                "auth",
                "--project",
                PROJECT_ID,
                "--config",
                str(config),
            ],
            {"FIREBASE_CLI_EXPERIMENTS": "", "NO_UPDATE_NOTIFIER": "1", "CI": "true"},
        )
        _wait_http(f"http://127.0.0.1:{self.ports.auth}/", self._alive("auth"))

    def _start_python(self, name: str, module: str, port: int, *args: str) -> None:
        self._spawn(name, [sys.executable, "-m", module, "--port", str(port), *args], self.env)

    def _start_events(self) -> None:
        self._spawn(
            "events",
            [
                sys.executable,
                "-m",
                "emulators.firestore_events",
                "--project",
                PROJECT_ID,
                "--target",
                f"{self.gateway_url}/__events/onstreamwritten",
            ],
            self.env,
        )
        ready = firestore_events.READY_MESSAGE
        _wait_log(self.workdir / "events.log", ready, self._alive("events"))

    def _start_tasks(self) -> None:
        if not TASKS_EMULATOR.exists():
            raise RuntimeError("Cloud Tasks emulator missing: run `make install`")
        self._spawn(
            "tasks",
            [
                str(TASKS_PYTHON),
                str(ROOT / "emulators" / "cloud_tasks_emulator.py"),
                "start",
                "-p",
                str(self.ports.tasks),
                "--rest-port",
                str(self.ports.tasks_rest),
                "-q",
                "-r",
                "10",
                "-d",
                f"projects/{PROJECT_ID}/locations/us-central1/queues/recording-monitor",
            ],
        )
        _wait_tcp(self.ports.tasks, self._alive("tasks"))
        _wait_tcp(self.ports.tasks_rest, self._alive("tasks"))

    def _subscribe_webhooks(self) -> None:
        """Point both Cloudflare webhook systems at the gateway, as `infra/` does in production:
        the Stream webhook, then a Notifications webhook destination and the
        ``stream_live_notifications`` policy that routes live-input events to it (without the
        policy Cloudflare sends none). Idempotent: a second call re-points what exists."""
        api = f"{self.cloudflare_url}/client/v4/accounts/{ACCOUNT_ID}"
        headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
        subscription = _post_json(
            f"{api}/stream/webhook",
            {"notificationUrl": f"{self.gateway_url}/api/webhooks/cloudflare/recording"},
            headers,
            method="PUT",
        )
        self.webhook_secret = str(subscription["result"]["secret"])
        # The key private streams' playback tokens are signed with, made once as
        # `python -m infra.signing_key` makes it in production.
        key = _post_json(f"{api}/stream/keys", {}, headers)["result"]
        self.signing_key = (str(key["id"]), str(key["pem"]))

        def existing(collection: str, name: str) -> str | None:
            request = urllib.request.Request(  # noqa: S310 - loopback only
                f"{api}/alerting/v3/{collection}", headers=headers
            )
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                rows = json.loads(response.read())["result"]
            return next((str(r["id"]) for r in rows if r.get("name") == name), None)

        destination: dict[str, object] = {
            "name": "live-input",
            "url": f"{self.gateway_url}/api/webhooks/cloudflare/live-input",
            "secret": NOTIFICATION_SECRET,
        }
        destination_id = existing("destinations/webhooks", "live-input")
        if destination_id is None:
            created = _post_json(f"{api}/alerting/v3/destinations/webhooks", destination, headers)
            destination_id = str(created["result"]["id"])
        else:
            _post_json(
                f"{api}/alerting/v3/destinations/webhooks/{destination_id}",
                destination,
                headers,
                method="PUT",
            )
        policy: dict[str, object] = {
            "name": "live-input-events",
            "description": "Live input connected/disconnected/errored to the backend",
            "alert_type": "stream_live_notifications",
            "enabled": True,
            "mechanisms": {"webhooks": [{"id": destination_id}]},
            "filters": {
                "event_type": [
                    "live_input.connected",
                    "live_input.disconnected",
                    "live_input.errored",
                ]
            },
        }
        policy_id = existing("policies", "live-input-events")
        if policy_id is None:
            _post_json(f"{api}/alerting/v3/policies", policy, headers)
        else:
            _post_json(f"{api}/alerting/v3/policies/{policy_id}", policy, headers, method="PUT")

    def _start_media_server(self) -> None:
        prepare_media_dir(self.media_dir)
        config = self.media_dir / "nginx.conf"
        config.write_text(
            nginx_config(self.media_dir, self.ports.rtmp, f"{self.cloudflare_url}/__media")
        )
        self._spawn("media", nginx_command(self.media_dir, config))
        _wait_tcp(self.ports.rtmp, self._alive("media"))

    def start_cdn(self, name: str, port: int, upstream_port: int) -> str:
        """Start a caching proxy (``emulators/cdn_cache.py``) on ``port`` in front of the server
        on ``upstream_port``, as a component called ``name`` (stopped with the stack); its URL.
        The stack starts one in front of the API gateway; benchmarks add their own."""
        workdir = self.workdir / name
        config = prepare_cdn_dir(workdir)
        config.write_text(cdn_config(workdir, port, f"127.0.0.1:{upstream_port}"))
        self._spawn(name, nginx_command(workdir, config))
        _wait_tcp(port, self._alive(name))
        return f"http://127.0.0.1:{port}"

    def start_server(self, name: str, module: str, port: int, *args: str, ready: str) -> str:
        """Start ``python -m module --port port *args`` with the stack's environment as a
        component called ``name`` (stopped with the stack); its URL once path ``ready``
        answers (below 400)."""
        self._start_python(name, module, port, *args)
        url = f"http://127.0.0.1:{port}"
        _wait_http(f"{url}{ready}", self._alive(name), 240)
        return url


def nginx_command(prefix: Path, config: Path) -> list[str]:
    """nginx in the foreground with its prefix, error log and config in our own directories."""
    return [
        "nginx",
        "-p",
        str(prefix),
        "-e",
        str(prefix / "nginx-error.log"),
        "-c",
        str(config),
        "-g",
        "daemon off;",
    ]


def _post_json(
    url: str, body: dict[str, object], headers: dict[str, str], method: str = "POST"
) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - loopback only
        url, data=json.dumps(body).encode(), headers=headers, method=method
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        result: dict[str, Any] = json.loads(response.read())
    return result


def _wait_tcp(port: int, process: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


def _end_process_group(process: subprocess.Popen[bytes], grace_s: float = 10) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        process.poll()  # reap the leader so the group can empty
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _wait_log(
    path: Path, text: str, process: subprocess.Popen[bytes], timeout_s: float = 60
) -> None:
    """Wait until ``process`` has written ``text`` to its log (it is ready)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise RuntimeError(f"{path.stem} exited with {process.returncode}; see {path}")
        time.sleep(0.2)
    raise RuntimeError(f"{path.stem} not ready after {timeout_s} s; see {path}")


def _wait_http(url: str, process: subprocess.Popen[bytes], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode} before {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                if response.status < 500:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout_s} s")


def main() -> None:
    stack = LocalStack(USUAL_PORTS, ROOT / ".local" / "stack")
    stack.start()
    sys.stdout.write(
        f"""
Local stack is up (logs in {stack.workdir}):
  API gateway (Hosting paths)  {stack.gateway_url}/api/streams  (as Hosting: __session cookie only)
  Same API via an edge proxy   {stack.edge_gateway_url}/api/streams  (forwards every cookie)
  API gateway behind the CDN   {stack.cdn_url}/api/streams  (nginx cache, as Hosting's CDN)
  Cloudflare Stream emulator   {stack.cloudflare_url}/client/v4
  RTMP ingest (OBS / ffmpeg)   {stack.rtmp_url}<streamKey>
  Cloud Tasks emulator         http://127.0.0.1:{stack.ports.tasks_rest}/v2  (REST)
  Firestore emulator           127.0.0.1:{stack.ports.firestore}
  Firebase Auth emulator       127.0.0.1:{stack.ports.auth}
Ctrl-C stops everything.
"""
    )
    sys.stdout.flush()
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Explicit handlers: a background job inherits SIGINT as ignored.
        signal.signal(signum, lambda *_: stopping.set())
    try:
        while not stopping.wait(1):
            pass
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
