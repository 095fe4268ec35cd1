"""The instance sizes of ``infra/functions.json`` (see ``infra/SIZING.md``) and the code agree:
an instance taking several requests at once has a whole vCPU and as many threads, and the
parts the composition root builds lazily are built once however many first requests race."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
from infra import deploy
from tests.fakes import (
    InMemoryCreateQuota,
    InMemoryIdempotencyStore,
    InMemoryMemorialDirectory,
    InMemoryStreamRepository,
    RecordingTaskQueue,
)

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = json.loads((ROOT / "infra" / "functions.json").read_text())
RACERS = 16


def test_every_function_has_a_size_and_concurrency_above_one_gets_a_whole_vcpu() -> None:
    sizes = MANIFEST["sizes"]
    for fn in MANIFEST["functions"]:
        size = sizes[fn["size"]]
        # Cloud Run refuses concurrency above 1 with less than one vCPU.
        assert size["concurrency"] == 1 or float(size["cpu"]) >= 1, fn["name"]
        assert int(size["memory"].removesuffix("Mi")) >= 512, fn["name"]
    assert set(sizes) == {fn["size"] for fn in MANIFEST["functions"]}


def test_the_deploy_plan_sizes_each_function_and_gives_it_a_thread_per_concurrent_request() -> None:
    cfg = deploy.load_config(
        {
            "PROJECT": "demo-plan",
            "PROJECT_NUMBER": "123456789",
            "REGION": "europe-west1",
            "FIRESTORE_LOCATION": "eur3",
            "CLOUDFLARE_ACCOUNT_ID": "acct",
            "CLOUDFLARE_CUSTOMER_CODE": "code",
            "SOURCE": "/src",
        }
    )
    for fn in MANIFEST["functions"]:
        size = MANIFEST["sizes"][fn["size"]]
        args = deploy.deploy_function(cfg, MANIFEST, fn).command
        assert f"--memory={size['memory']}" in args
        assert f"--cpu={size['cpu']}" in args
        assert f"--concurrency={size['concurrency']}" in args
        (env_flag,) = [a for a in args if a.startswith("--set-env-vars=")]
        assert f"THREADS={size['concurrency']}" in env_flag


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


def test_a_public_listing_instance_never_loads_the_cloudflare_tasks_or_auth_clients() -> None:
    probe = (
        "import sys, functions.main as m\n"
        "m.publicstreams\n"
        "from common.bootstrap import build_services\n"
        "from common.settings import Settings\n"
        "services = build_services(Settings())\n"
        "services.streams, services.info\n"
        "heavy = {'httpx', 'google.cloud.tasks_v2', 'firebase_admin'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    # The clients are made (no connection yet); the emulator variable spares a credentials
    # lookup.
    env = {**os.environ, "FIRESTORE_EMULATOR_HOST": "127.0.0.1:9"}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]", result.stdout
