"""What the instance sizes of ``infra/functions.json`` (``infra/SIZING.md``) ask of the code:
with concurrency above 1, the parts the composition root builds lazily are built once however
many first requests race; and a viewer's instance loads only the clients it uses. (The plan's
sizing flags are checked in ``test_deploy_plan.py``.)"""

from __future__ import annotations

import ast
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from common import bootstrap
from common.bootstrap import build_services
from common.ports import StreamProvider
from common.settings import Settings
from tests.fakes import (
    InMemoryCreateQuota,
    InMemoryIdempotencyStore,
    InMemoryMemorialDirectory,
    InMemoryStreamRepository,
    RecordingTaskQueue,
)
from tests.unit.fresh_interpreter import run_fresh

ROOT = Path(__file__).resolve().parents[2]
RACERS = 16


def test_racing_first_requests_build_each_lazily_built_part_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    builds: Counter[str] = Counter()
    real_cloudflare = bootstrap._cloudflare

    def slow_cloudflare(settings: Settings) -> StreamProvider:
        builds["provider"] += 1
        time.sleep(0.05)  # keeps the window open so that unguarded racers would all build
        return real_cloudflare(settings)

    monkeypatch.setattr(bootstrap, "_cloudflare", slow_cloudflare)
    services = build_services(
        Settings(),
        repo=InMemoryStreamRepository(),
        memorials=InMemoryMemorialDirectory(),
        tasks=RecordingTaskQueue(),
        create_quota=InMemoryCreateQuota(),
        idempotency=InMemoryIdempotencyStore(),
    )
    start = threading.Barrier(RACERS)

    def first_request(_: int) -> tuple[Any, ...]:
        start.wait()
        return (services.broadcasts, services.streams, services.provider, services.monitors)

    with ThreadPoolExecutor(RACERS) as pool:
        seen = list(pool.map(first_request, range(RACERS)))
    assert builds["provider"] == 1
    for part in zip(*seen, strict=True):
        assert len({id(instance) for instance in part}) == 1


def loaded_by(function: str, service: str, modules: set[str]) -> list[str]:
    """Which of ``modules`` a fresh instance has loaded once it holds ``function`` and has
    built ``service`` (its clients are made, no connection yet; the emulator variable spares
    a credentials lookup)."""
    probe = (
        "import sys, functions.main as m\n"
        f"m.{function}\n"
        "from common.bootstrap import build_services\n"
        "from common.settings import Settings\n"
        f"build_services(Settings()).{service}\n"
        f"print(sorted({sorted(modules)!r} & sys.modules.keys()))\n"
    )
    return list(ast.literal_eval(run_fresh(probe)))


CLIENTS = {"httpx", "google.cloud.tasks_v2", "firebase_admin"}


def test_a_public_listing_instance_never_loads_the_cloudflare_tasks_or_auth_clients() -> None:
    assert loaded_by("publicstreams", "listings", CLIENTS) == []


WRITING = {
    "common.services.streams",
    "common.services.broadcasts",
    "common.services.live_inputs",
    "common.services.schedule_windows",
    "common.services.create_guards",
    "common.adapters.firestore.rest_guards",
}


def test_a_listing_instance_loads_nothing_of_what_writes_streams() -> None:
    assert loaded_by("publicstreams", "listings", WRITING) == []
    assert loaded_by("memorialstreamstatus", "listings", WRITING) == []
    # The probe sees what it looks for: the service that creates streams loads them all.
    assert loaded_by("streams", "streams", WRITING) == sorted(WRITING)


def test_a_status_poll_instance_loads_neither_the_broadcast_services_nor_the_task_queue() -> None:
    broadcasting = {"common.services.monitors", "common.services.broadcasts"}
    assert loaded_by("streamstatus", "info", CLIENTS | broadcasting) == []
    # The probe sees what it looks for: the broadcast functions do load them.
    assert loaded_by("startstream", "broadcasts", broadcasting) == sorted(broadcasting)


def test_a_start_instance_schedules_its_monitors_without_grpc_or_the_tasks_client() -> None:
    # Cloud Tasks is called over its REST API: a start's cold start pays for neither.
    clients = {"grpc", "google.cloud.tasks_v2", "google.api_core.grpc_helpers"}
    assert loaded_by("startstream", "tasks", clients) == []
    assert loaded_by("runmonitorcheck", "tasks", {"grpc", "google.cloud.tasks_v2"}) == []
    # The probe sees what it looks for: the task queue's adapter is what it built.
    assert loaded_by("startstream", "tasks", {"common.adapters.cloud_tasks"}) == [
        "common.adapters.cloud_tasks"
    ]


def test_only_the_event_functions_load_the_event_models() -> None:
    events = {"common.models.events", "common.models.event_api"}
    assert loaded_by("publicstreams", "listings", events) == []
    assert loaded_by("streamstatus", "info", events) == []
    # The probe sees what it looks for: the events function does load them.
    assert loaded_by("memorialevents", "memorial_events", events) == sorted(events)


MODEL_BASES = re.compile(r"^class \w+\((?:[\w.]*Model|Value|_\w+|BaseSettings)\b", re.MULTILINE)


def test_modules_that_define_models_evaluate_their_annotations_as_they_go() -> None:
    defining = [
        path
        for path in sorted((ROOT / "common").rglob("*.py"))
        if MODEL_BASES.search(path.read_text()) and "pydantic" in path.read_text()
    ]
    assert ROOT / "common" / "models" / "domain.py" in defining  # the scan finds them
    postponed = [
        str(path.relative_to(ROOT))
        for path in defining
        if "from __future__ import annotations" in path.read_text()
    ]
    assert postponed == [], "see common/models/base.py"
