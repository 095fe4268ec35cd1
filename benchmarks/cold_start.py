"""Cold start per function: a fresh functions-framework process until its first response,
beside the floor of the same run: a fresh functions-framework process that imports the same
client libraries (Firestore always; Firebase Auth, httpx for Cloudflare, Cloud Tasks where the
function's first request reaches them) and makes the same kind of Firestore read (a query or
one document), then answers.

Beside it, a second baseline: the same floor that also imports pydantic and pydantic-settings,
the libraries the house style gives every boundary and the settings (pydantic alone costs about
a quarter of the floor, so no function that validates with it can come within 1.2x of the bare
floor); the gap between that one and ours is what our own code costs.

All are served by the same functions-framework command against the same emulators and timed
the same way: from the spawn until the first answer to the request, from a virtual
environment holding what a deployed function has (``deployed_runtime``), not the development
one. Ours are served as deployed, from the source `make build` assembles, with its bytecode
(the floors' one small file is compiled as it loads). Each figure is the median of ``RUNS``
alternating tries.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from emulators.cloudflare_stream.media import sign_stream_webhook
from emulators.free_ports import free_ports

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5
# What a deployed function has installed: the deployed lock, and beside it the SDKs the floors
# import that the functions no longer deploy (at the development environment's versions).
RUNTIME = ROOT / ".local" / "bench-runtime"
FLOOR_ONLY_PACKAGES = ("firebase-admin", "google-cloud-tasks")

# What a client library costs to load, as the floor imports it.
CLIENT_IMPORTS = {
    "auth": "import firebase_admin, firebase_admin.auth",
    "cloudflare": "import httpx",
    "tasks": "from google.cloud import tasks_v2",
    "events": "from google.events.cloud.firestore_v1 import DocumentEventData",
}

# What the house style adds to every function: pydantic models and pydantic-settings.
VALIDATION_IMPORTS = "from pydantic import BaseModel\nimport pydantic_settings"

FLOOR_SOURCE = """
import functions_framework
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
{imports}

_db = None


@functions_framework.http
def floor(request):
    global _db
    if _db is None:
        _db = firestore.Client(project={project!r})
    if {read!r} == "query":
        docs = _db.collection("streams").where(filter=FieldFilter("isPublic", "==", True))
        found = len(list(docs.limit(50).stream()))
    else:
        found = int(_db.collection("streams").document({stream_id!r}).get().exists)
    if {read!r} == "write":
        _db.collection("cold_start_floor").document("probe").set({{"found": found}})
    return {{"found": found}}
"""


# The floor of a function that reads over Firestore's REST API (the viewer functions, see
# common/adapters/firestore/rest.py): functions-framework and the same read by http.client.
REST_FLOOR_SOURCE = """
import http.client
import json
import os

import functions_framework

DOCUMENTS = "/v1/projects/{project}/databases/(default)/documents"


@functions_framework.http
def floor(request):
    connection = http.client.HTTPConnection(os.environ["FIRESTORE_EMULATOR_HOST"])
    headers = {{"Authorization": "Bearer owner", "Content-Type": "application/json"}}
    if {read!r} == "query":
        where = {{"fieldFilter": {{"field": {{"fieldPath": "isPublic"}}, "op": "EQUAL",
                                  "value": {{"booleanValue": True}}}}}}
        body = {{"structuredQuery": {{"from": [{{"collectionId": "streams"}}],
                                     "where": where, "limit": 50}}}}
        connection.request("POST", DOCUMENTS + ":runQuery", json.dumps(body), headers)
        answer = json.loads(connection.getresponse().read())
        found = len([item for item in answer if "document" in item])
    else:
        connection.request("GET", DOCUMENTS + "/streams/{stream_id}", headers=headers)
        found = int(connection.getresponse().status == 200)
    return {{"found": found}}
"""


@dataclass(frozen=True)
class FirstRequest:
    """A function's first request, and what it loads to answer it."""

    function: str
    method: str
    path: str  # {stream} and {memorial} are filled in
    clients: tuple[str, ...] = ()  # beside Firestore: "auth", "cloudflare", "tasks"
    # The Firestore call the floor makes: a "query", one "document" read, or a document read
    # then a "write" (the functions that change a stream: read, then write from that read).
    read: str = "document"
    signed_in: bool = False
    caller: str = "owner"  # who signs in: the memorial's "owner" or the funeral "director"
    body: str | None = None
    content_type: str = "application/json"
    webhook: bool = False
    task: bool = False
    cloud_event: bool = False  # a Firestore change as Eventarc delivers it (protobuf)
    label: str = ""  # where one function has several first requests (a GET, a PUT)
    # A request through the gateway before each of our runs that puts the stream where the
    # run expects it (a stream is started before each stop, so each stop really ends a
    # broadcast); a 409 means it is there already.
    prepare: tuple[str, str] | None = None

    @property
    def name(self) -> str:
        return self.label or self.function

    @property
    def reads_over_rest(self) -> bool:
        """Whether the request only reads, and over the REST API (a viewer function's)."""
        return self.method == "GET" and self.function in REST_READERS


REST_READERS = frozenset(
    {
        "publicstreams",
        "streamstatus",
        "memorialstreamstatus",
        "memorialstreams",
        "streamembedinfo",
        "streamrecordings",
    }
)


def _broadcast(function: str, action: str, *, prepared_by: str) -> FirstRequest:
    """A start or a stop of the broadcast, each run after the other action has put the stream
    where it really starts or ends one."""
    return FirstRequest(
        function,
        "POST",
        f"/api/streams/{{stream}}/{action}",
        ("auth", "cloudflare", "tasks"),
        read="write",
        signed_in=True,
        prepare=("POST", f"/api/streams/{{stream}}/{prepared_by}"),
    )


def _signed_in(
    function: str,
    method: str,
    path: str,
    clients: tuple[str, ...] = (),
    *,
    read: str = "document",
    body: str | None = None,
    caller: str = "owner",
) -> FirstRequest:
    """A request of the stream's owner (or of the memorial's funeral director)."""
    return FirstRequest(
        function,
        method,
        path,
        ("auth", *clients),
        read=read,
        signed_in=True,
        body=body,
        caller=caller,
    )


REQUESTS = (
    FirstRequest("publicstreams", "GET", "/api/streams/public?limit=50", read="query"),
    FirstRequest("streamstatus", "GET", "/api/streams/{stream}/status"),
    FirstRequest(
        "memorialstreamstatus", "GET", "/api/memorials/{memorial}/streams/status", read="query"
    ),
    FirstRequest("memorialstreams", "GET", "/api/memorials/{memorial}/streams", read="query"),
    FirstRequest("streamembedinfo", "GET", "/api/streams/{stream}/embed-info"),
    FirstRequest("streamrecordings", "GET", "/api/streams/{stream}/recordings"),
    FirstRequest("stream", "GET", "/api/streams/{stream}", ("auth",), signed_in=True),
    FirstRequest("streams", "GET", "/api/streams", ("auth",), read="query", signed_in=True),
    FirstRequest(
        "streamcredentials", "GET", "/api/streams/{stream}/credentials", ("auth",), signed_in=True
    ),
    FirstRequest(
        "syncstatus",
        "POST",
        "/api/streams/{stream}/sync-status",
        ("auth", "cloudflare"),
        signed_in=True,
    ),
    FirstRequest(
        "getvideoid",
        "GET",
        "/api/streams/{stream}/get-video-id",
        ("auth", "cloudflare"),
        signed_in=True,
    ),
    FirstRequest(
        "stream",
        "PUT",
        "/api/streams/{stream}",
        ("auth",),
        read="write",
        signed_in=True,
        body='{"title": "Cold start, edited"}',
        label="stream (PUT)",
    ),
    FirstRequest(
        "memorialstreams",
        "POST",
        "/api/memorials/{memorial}/streams",
        ("auth", "cloudflare"),
        read="write",
        signed_in=True,
        body='{"title": "Cold start, created"}',
        label="memorialstreams (POST)",
    ),
    _broadcast("startstream", "start", prepared_by="stop"),
    _broadcast("stopstream", "stop", prepared_by="start"),
    FirstRequest(
        "cloudflareliveinputwebhook",
        "POST",
        "/api/webhooks/cloudflare/live-input",
        body="{}",
        webhook=True,
    ),
    FirstRequest(
        "cloudflarerecordingwebhook", "POST", "/api/webhooks/cloudflare/recording", webhook=True
    ),
    FirstRequest(
        "runmonitorcheck",
        "POST",
        "/api/tasks/monitor",
        ("cloudflare", "tasks"),
        body='{"kind": "status", "streamId": "{stream}", "generation": 0, "attempt": 1}',
        task=True,
    ),
    # The rest of the functions, each by its first request a page or the queue most often
    # sends. A request about something the stream does not have (a recording, an output, an
    # invitation, an event) is answered 404 after the same sign-in and reads as a real one.
    FirstRequest("streamplayback", "GET", "/api/streams/{stream}/playback"),
    FirstRequest(
        "streamaccess",
        "POST",
        "/api/streams/{stream}/access",
        body='{"code": "not-an-invitation"}',
    ),
    FirstRequest("memorialevents", "GET", "/api/memorials/{memorial}/events", read="query"),
    FirstRequest("memorialcalendar", "GET", "/api/memorials/{memorial}/calendar.ics", read="query"),
    _signed_in("streamanalytics", "GET", "/api/streams/{stream}/analytics", ("cloudflare",)),
    _signed_in("streamoutputs", "GET", "/api/streams/{stream}/outputs", ("cloudflare",)),
    _signed_in("streaminvitations", "GET", "/api/streams/{stream}/invitations", read="query"),
    _signed_in("eventtemplates", "GET", "/api/templates", read="query", caller="director"),
    _signed_in("downloadrecording", "GET", "/api/streams/{stream}/recordings/none/download"),
    _signed_in(
        "cliprecording",
        "POST",
        "/api/streams/{stream}/recordings/none/clip",
        ("cloudflare",),
        body='{"startTimeSeconds": 0, "endTimeSeconds": 10}',
    ),
    _signed_in("streamrecording", "DELETE", "/api/streams/{stream}/recordings/none"),
    _signed_in("streamoutput", "DELETE", "/api/streams/{stream}/outputs/none", ("cloudflare",)),
    _signed_in("streaminvitation", "DELETE", "/api/streams/{stream}/invitations/none"),
    _signed_in("memorialevent", "DELETE", "/api/memorials/{memorial}/events/none"),
    _signed_in("eventtemplate", "DELETE", "/api/templates/none", caller="director"),
    _signed_in("whipstream", "DELETE", "/api/streams/{stream}/whip/none", ("cloudflare",)),
    _signed_in(
        "extendstream", "POST", "/api/streams/{stream}/extend", ("tasks",), body='{"minutes": 15}'
    ),
    _signed_in("endstream", "POST", "/api/streams/{stream}/end", ("cloudflare", "tasks")),
    _signed_in("syncrecording", "POST", "/api/streams/{stream}/sync-recording", ("cloudflare",)),
    _signed_in("configurecors", "PUT", "/api/streams/{stream}/configure-cors", ("cloudflare",)),
    _signed_in("fixplaybackurl", "POST", "/api/streams/{stream}/fix-playback-url", ("cloudflare",)),
    _signed_in("fixstatus", "POST", "/api/streams/{stream}/fix-status", ("cloudflare",)),
    _signed_in(
        "reorderstreams",
        "PUT",
        "/api/streams/reorder",
        read="write",
        body='{"streamIds": ["{stream}"], "memorialId": "{memorial}"}',
    ),
    _signed_in("migratestreams", "GET", "/api/streams/migrate", read="query"),
    FirstRequest(
        "runwindowedge",
        "POST",
        "/api/tasks/window",
        ("tasks",),
        body='{"streamId": "{stream}", "edge": "soon", "revision": 1}',
        task=True,
    ),
    FirstRequest(
        "runkeepsakecheck",
        "POST",
        "/api/tasks/keepsake",
        ("cloudflare", "tasks"),
        body='{"kind": "download", "streamId": "{stream}", "generation": 0, "attempt": 1,'
        ' "videoId": "none"}',
        task=True,
    ),
    FirstRequest(
        "sweeporphanedinputs",
        "POST",
        "/api/tasks/sweep-live-inputs",
        ("cloudflare",),
        body='{"streamId": "{stream}"}',
        task=True,
    ),
    # A stream's edit, as the trigger receives it: nothing a monitor follows changed.
    FirstRequest("onstreamwritten", "POST", "/", ("events",), cloud_event=True),
)


def resident_mib(pid: int) -> float:
    """Resident memory of a process and its children (gunicorn's worker), in MiB."""
    total_kib = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total_kib += next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")
        )
        pending += [int(child) for child in children]
    return total_kib / 1024


def _first_answer(
    argv: list[str], env: dict[str, str], request: httpx.Request
) -> tuple[float, int, float]:
    """Seconds from spawning ``argv`` to the first answer to ``request``, its status, and the
    process's resident memory then (MiB)."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(timeout=30) as client:
            while True:
                try:
                    response = client.send(request)
                    seconds = time.perf_counter() - start
                    return seconds, response.status_code, resident_mib(process.pid)
                except httpx.ConnectError:
                    if process.poll() is not None:
                        raise RuntimeError(f"{argv} exited before answering") from None
                    time.sleep(0.005)
    finally:
        process.terminate()
        process.wait(timeout=30)


@functools.cache
def deployed_runtime(*, with_floor_sdks: bool = False) -> Path:
    """The ``functions-framework`` of a virtual environment holding what a deployed function
    has: ``infra/requirements.lock`` (hash-checked, as Cloud Build installs it), and none of
    the development tools. Those change what loads: httpx imports its command line, and with
    it rich and pygments (about 80 ms), wherever they are installed, and they are not where
    the functions run. The floors' environment adds the SDKs they import (firebase-admin,
    the Cloud Tasks client), which bring packages of their own that would change what ours
    load too (h2, which httpcore imports where it is installed: about 12 ms). Each is built
    on first use and again when the lock changes."""
    lock = ROOT / "infra" / "requirements.lock"
    runtime = RUNTIME / ("floors" if with_floor_sdks else "functions")
    pins = (
        [f"{name}=={importlib.metadata.version(name)}" for name in FLOOR_ONLY_PACKAGES]
        if with_floor_sdks
        else []
    )
    stamp = hashlib.sha256(lock.read_bytes() + " ".join([sys.version, *pins]).encode()).hexdigest()
    marker = runtime / ".installed"
    if not (marker.exists() and marker.read_text() == stamp):
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(runtime)], check=True)
        pip = [str(runtime / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "--require-hashes", "-r", str(lock)], check=True)
        if pins:
            # The floors' SDKs may add packages but never move a locked one.
            constraints = runtime / "constraints.txt"
            constraints.write_text("\n".join(_locked_pins(lock.read_text())) + "\n")
            subprocess.run([*pip, "-c", str(constraints), *pins], check=True)
        marker.write_text(stamp)
    return runtime / "bin" / "functions-framework"


def _locked_pins(lock: str) -> list[str]:
    """The ``name==version`` lines of a pip-compile lock, without their hashes."""
    return [
        line.split()[0]
        for line in lock.splitlines()
        if line and not line[0].isspace() and not line.startswith("#") and "==" in line
    ]


def _serve(target: str, source: Path, port: int, *, floor: bool = False) -> list[str]:
    return [
        str(deployed_runtime(with_floor_sdks=floor)),
        f"--target={target}",
        f"--source={source}",
        "--host=127.0.0.1",
        f"--port={port}",
    ]


def _request(
    spec: FirstRequest,
    port: int,
    ids: dict[str, str],
    tokens: dict[str, str],
    stack_env: dict[str, str],
) -> httpx.Request:
    headers = {"Content-Type": spec.content_type}
    body: str | bytes | None = spec.body and spec.body.replace("{stream}", ids["stream"]).replace(
        "{memorial}", ids["memorial"]
    )
    if spec.signed_in:
        headers["Authorization"] = f"Bearer {tokens[spec.caller]}"
    if spec.task:
        headers["X-Task-Auth"] = stack_env["LS_TASK_AUTH_TOKEN"]
    if spec.webhook and spec.function == "cloudflarerecordingwebhook":
        body = json.dumps(
            {
                "uid": "cold-start-video",
                "liveInput": "unknown-input",
                "readyToStream": True,
                "status": {"state": "ready"},
            }
        )
        headers["Webhook-Signature"] = sign_stream_webhook(
            stack_env["LS_CLOUDFLARE_WEBHOOK_SECRET"], body.encode(), int(time.time())
        )
    if spec.webhook and spec.function == "cloudflareliveinputwebhook":
        headers["cf-webhook-auth"] = stack_env["LS_CLOUDFLARE_NOTIFICATION_SECRET"]
    if spec.cloud_event:
        headers, body = _stream_edited_event(stack_env["LS_GCP_PROJECT"], ids["stream"])
    path = spec.path.format(**ids)
    return httpx.Request(
        spec.method, f"http://127.0.0.1:{port}{path}", headers=headers, content=body
    )


def _stream_edited_event(project: str, stream_id: str) -> tuple[dict[str, str], bytes]:
    """A stream's title edit as Eventarc delivers it: binary CloudEvent, protobuf data."""
    from google.events.cloud.firestore_v1 import DocumentEventData
    from google.protobuf import json_format

    from emulators.firestore_events import EVENT_TYPE, PROTOBUF, encode_value

    name = f"projects/{project}/databases/(default)/documents/streams/{stream_id}"

    def document(title: str) -> dict[str, object]:
        fields = {"title": title, "status": "scheduled", "memorialId": "cold-start"}
        return {"name": name, "fields": encode_value(fields)["mapValue"]["fields"]}

    data = {"oldValue": document("Cold start"), "value": document("Cold start, edited")}
    body = json_format.ParseDict(data, DocumentEventData.pb()()).SerializeToString()
    headers = {
        "ce-id": f"cold-start-{time.time_ns()}",
        "ce-specversion": "1.0",
        "ce-type": EVENT_TYPE,
        "ce-source": f"//firestore.googleapis.com/projects/{project}/databases/(default)",
        "ce-subject": f"documents/streams/{stream_id}",
        "Content-Type": PROTOBUF,
    }
    return headers, bytes(body)


@dataclass(frozen=True)
class ColdStart:
    """One function's figures: medians of ``RUNS`` (milliseconds), the status it answered
    and the most resident memory seen right after its first answer (MiB)."""

    request: FirstRequest
    ours_ms: float
    floor_ms: float
    validation_floor_ms: float  # the floor with pydantic and pydantic-settings imported
    rest_floor_ms: float | None  # a viewer function's: the same read over REST, no gRPC
    status: int
    resident_mib: float

    @property
    def ratio(self) -> float:
        return self.ours_ms / self.floor_ms

    @property
    def validation_ratio(self) -> float:
        return self.ours_ms / self.validation_floor_ms


def measure_cold_starts(
    stack_env: dict[str, str],
    ids: dict[str, str],
    tokens: dict[str, str],
    requests: tuple[FirstRequest, ...] = REQUESTS,
) -> list[ColdStart]:
    """The figures of each of ``requests``."""
    floors = Path(tempfile.mkdtemp(prefix="cold-floor-"))
    # Served as deployed: from `make build`'s source, which ships its bytecode.
    build = floors / "build"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build-functions"), build], check=True)
    env = {**os.environ, **stack_env, "PYTHONPATH": str(build)}
    results = []
    for spec in requests:
        imports = "\n".join(CLIENT_IMPORTS[client] for client in spec.clients)
        sources = {}
        variants = [("floor", imports), ("validation", f"{imports}\n{VALIDATION_IMPORTS}")]
        if spec.reads_over_rest:
            variants.append(("rest", ""))
        for variant, variant_imports in variants:
            source = floors / spec.name.replace(" ", "_") / variant / "main.py"
            source.parent.mkdir(parents=True)
            template = REST_FLOOR_SOURCE if variant == "rest" else FLOOR_SOURCE
            source.write_text(
                template.format(
                    imports=variant_imports,
                    project=stack_env["LS_GCP_PROJECT"],
                    read=spec.read,
                    stream_id=ids["stream"],
                )
            )
            sources[variant] = source
        ours, memory, statuses = [], [], set()
        baselines: dict[str, list[float]] = {variant: [] for variant in sources}
        for _ in range(RUNS):
            if spec.prepare:
                _prepare(spec.prepare, ids, tokens["owner"])
            (port,) = free_ports(1)
            seconds, status, mib = _first_answer(
                _serve(spec.function, build / "main.py", port),
                env,
                _request(spec, port, ids, tokens, stack_env),
            )
            ours.append(seconds)
            statuses.add(status)
            memory.append(mib)
            for variant, source in sources.items():
                (port,) = free_ports(1)
                seconds, _, _ = _first_answer(
                    _serve("floor", source, port, floor=True),
                    env,
                    httpx.Request("GET", f"http://127.0.0.1:{port}/"),
                )
                baselines[variant].append(seconds)
        results.append(
            ColdStart(
                spec,
                statistics.median(ours) * 1000,
                statistics.median(baselines["floor"]) * 1000,
                statistics.median(baselines["validation"]) * 1000,
                statistics.median(baselines["rest"]) * 1000 if "rest" in baselines else None,
                max(statuses),
                max(memory),
            )
        )
    return results


def _prepare(request: tuple[str, str], ids: dict[str, str], token: str) -> None:
    method, path = request
    answer = httpx.request(
        method,
        ids["gateway"] + path.format(**ids),
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    if answer.status_code != 409:
        answer.raise_for_status()


def print_cold_starts(
    stack_env: dict[str, str],
    ids: dict[str, str],
    tokens: dict[str, str],
    requests: tuple[FirstRequest, ...] = REQUESTS,
) -> None:
    results = measure_cold_starts(stack_env, ids, tokens, requests)
    print(
        f"2. cold start: fresh process -> first response (median of {RUNS}), beside the floor"
        " (functions-framework + the same clients + the same Firestore read), and beside"
        " that floor with pydantic + pydantic-settings imported (+pydantic)"
    )
    for result in results:
        clients = "+".join(
            ("firestore REST" if result.request.reads_over_rest else "firestore",)
            + result.request.clients
        )
        rest = (
            f"  REST floor {result.rest_floor_ms:5.0f} ms"
            f" {result.ours_ms / result.rest_floor_ms:5.2f}x"
            if result.rest_floor_ms
            else ""
        )
        print(
            f"   {result.request.name:<28} {result.ours_ms:7.0f} ms"
            f"  floor {result.floor_ms:7.0f} ms  {result.ratio:5.2f}x"
            f"  +pydantic {result.validation_floor_ms:7.0f} ms  {result.validation_ratio:5.2f}x"
            f"  RSS {result.resident_mib:4.0f} MiB  ({clients}; answered {result.status}){rest}"
        )
    ratios = [result.ratio for result in results]
    validation = [result.validation_ratio for result in results]
    print(
        f"   median ratio {statistics.median(ratios):.2f}x, worst {max(ratios):.2f}x;"
        f" over floor+pydantic: median {statistics.median(validation):.2f}x,"
        f" worst {max(validation):.2f}x"
    )


def seed_for_cold_starts(
    stack_env: dict[str, str], gateway_url: str
) -> tuple[dict[str, str], dict[str, str]]:
    """A public memorial with one stream, and the ID tokens of its owner and its funeral
    director, in the running stack."""
    from emulators.seed import parse_request, seed

    request = parse_request(
        [
            "--firestore-host",
            stack_env["FIRESTORE_EMULATOR_HOST"],
            "--auth-host",
            stack_env["FIREBASE_AUTH_EMULATOR_HOST"],
        ]
    )
    owner, director = seed(request)
    memorial = request.memorial_id
    stream = (
        httpx.post(
            f"{gateway_url}/api/memorials/{memorial}/streams",
            json={"title": "Cold start"},
            headers={"Authorization": f"Bearer {owner.id_token}"},
            timeout=60,
        )
        .raise_for_status()
        .json()
    )
    ids = {"memorial": memorial, "stream": stream["id"], "gateway": gateway_url}
    return ids, {"owner": owner.id_token, "director": director.id_token}


def main(argv: list[str]) -> None:
    """``python -m benchmarks.cold_start [NAME ...]``: every first request, or those named
    (``startstream``, ``"stream (PUT)"``...)."""
    from emulators.stack import LocalStack, Ports

    requests = tuple(spec for spec in REQUESTS if not argv or spec.name in argv)
    if not requests:
        raise SystemExit(
            f"no first request is named {argv}; the names: {[r.name for r in REQUESTS]}"
        )
    stack = LocalStack(Ports.free(), Path(tempfile.mkdtemp(prefix="bench-cold-")))
    stack.start()
    try:
        os.environ.update(stack.env)
        ids, tokens = seed_for_cold_starts(stack.env, stack.gateway_url)
        print_cold_starts(stack.env, ids, tokens, requests)
    finally:
        stack.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
