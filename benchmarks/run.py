"""`make bench`: measurements printed side by side, each with its baseline, in one run.

1. Public listing through the gateway vs the same Firestore query made directly.
2. Cold start per function (a fresh process to its first response) vs the floor: a fresh
   process with the same clients and the same Firestore read (``benchmarks/cold_start.py``).
3. Cloudflare API calls for one stream lifecycle and per live stream per minute of monitoring.
4. Time from the end of a broadcast to the recording on the public listing: webhook vs dropped.
5. Firestore documents read and written per operation, and the trigger runs they cause.
6. A funeral's audience polling the memorial page: through the CDN (50 and 500 viewers) beside
   the same pollers straight at the gateway (``benchmarks/audience.py``).
7. The viewer routes with 100 streams vs 10,000 (``benchmarks/scale.py``).
8. Documents read per page of the public listing over 5,000 streams, by offset vs by cursor
   (``benchmarks/pagination.py``).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from benchmarks import audience, scale
from benchmarks.cold_start import print_cold_starts, seed_for_cold_starts
from benchmarks.firestore_costs import measure_operations, print_operations
from benchmarks.pagination import print_cursor_pagination
from emulators.stack import LocalStack, Ports
from emulators.test_card import push_test_card

ROOT = Path(__file__).resolve().parent.parent
BUDGET_PER_5_MIN = 1200
PRODUCTION_STATUS_INTERVAL_S = 60


def timed(call: Callable[[], object], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def pct(samples: list[float], q: float) -> float:
    return sorted(samples)[min(len(samples) - 1, int(q * len(samples)))] * 1000


def listing(api: httpx.Client) -> None:
    from google.cloud import firestore

    from common.adapters.firestore.streams import FirestoreStreamRepository
    from common.ports import StreamQuery

    repo = FirestoreStreamRepository(firestore.Client(project="demo-memorial-streams"), "streams")
    query = StreamQuery(is_public=True, is_visible=True, order="display", limit=50)
    direct = timed(lambda: repo.find(query), 200)
    gateway = timed(lambda: api.get("/api/streams/public?limit=50").raise_for_status(), 200)
    cached = timed(
        lambda: api.get(
            "/api/streams/public?limit=50",
            headers={"If-None-Match": api.get("/api/streams/public?limit=50").headers["ETag"]},
        ),
        50,
    )
    print("1. public listing (200 requests, 20 public streams)")
    for name, samples in (("bare Firestore query", direct), ("through the gateway", gateway)):
        print(
            f"   {name:<24} p50 {pct(samples, 0.5):7.2f} ms  p99 {pct(samples, 0.99):7.2f} ms"
            f"  {len(samples) / sum(samples):7.1f} req/s"
        )
    print(
        f"   gateway / bare p50 ratio {pct(gateway, 0.5) / pct(direct, 0.5):.2f}x;"
        f" conditional GET + 304 pair p50 {pct(cached, 0.5):.2f} ms"
    )


def api_calls(stack: LocalStack) -> int:
    return int(httpx.get(f"{stack.cloudflare_url}/__emulator/stats").json()["requests"])


def push(stack: LocalStack, key: str, seconds: int) -> None:
    if push_test_card(stack.rtmp_url, key, seconds).wait(timeout=120) != 0:
        raise RuntimeError("the test-card encoder failed")


def until(check: Callable[[], bool], timeout_s: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if check():
            return time.monotonic() - start
        time.sleep(0.2)
    raise TimeoutError


def on_public_listing(api: httpx.Client, stream_id: str) -> bool:
    streams = api.get("/api/streams/public?limit=100").json()["streams"]
    return any(s["id"] == stream_id and s["recordingReady"] for s in streams)


def lifecycle(
    stack: LocalStack, api: httpx.Client, auth: dict[str, str], drop: bool
) -> tuple[int, float]:
    httpx.post(
        f"{stack.cloudflare_url}/__emulator/faults", json={"dropWebhooks": 100 if drop else 0}
    )
    before = api_calls(stack)
    stream = api.post("/api/streams", json={"title": "bench"}, headers=auth).json()
    api.post(f"/api/streams/{stream['id']}/start", headers=auth)
    push(stack, stream["streamKey"], 3)
    api.post(f"/api/streams/{stream['id']}/stop", headers=auth)
    seconds = until(lambda: on_public_listing(api, stream["id"]), 120)
    return api_calls(stack) - before, seconds


def monitoring_rate(stack: LocalStack, api: httpx.Client, auth: dict[str, str]) -> float:
    stream = api.post("/api/streams", json={"title": "live"}, headers=auth).json()
    api.post(f"/api/streams/{stream['id']}/start", headers=auth)
    # A real encoder stays on air through the measurement, as on a live service.
    encoder = push_test_card(stack.rtmp_url, stream["streamKey"], 45)
    time.sleep(5)
    before, start = api_calls(stack), time.monotonic()
    time.sleep(30)
    per_minute = (api_calls(stack) - before) / (time.monotonic() - start) * 60
    encoder.wait(timeout=120)
    api.post(f"/api/streams/{stream['id']}/stop", headers=auth)
    return per_minute


def main() -> None:
    stack = LocalStack(Ports.free(), Path(tempfile.mkdtemp(prefix="bench-")))
    stack.start()
    os.environ.update(stack.env)
    try:
        token = httpx.post(
            f"http://127.0.0.1:{stack.ports.auth}/identitytoolkit.googleapis.com/v1/"
            "accounts:signUp?key=bench",
            json={
                "email": "bench@example.com",
                "password": "bench-pass",
                "returnSecureToken": True,
            },
        ).json()["idToken"]
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=stack.gateway_url, timeout=30) as api:
            for n in range(20):
                api.post("/api/streams", json={"title": f"s{n}", "displayOrder": n}, headers=auth)
            listing(api)
            ids, tokens = seed_for_cold_starts(stack.env, stack.gateway_url)
            print_cold_starts(stack.env, ids, tokens)
            calls_hook, seconds_hook = lifecycle(stack, api, auth, drop=False)
            calls_drop, seconds_drop = lifecycle(stack, api, auth, drop=True)
            local_rate = monitoring_rate(stack, api, auth)
        interval = float(stack.env["LS_STATUS_MONITOR_INTERVAL_S"])
        production_rate = local_rate * interval / PRODUCTION_STATUS_INTERVAL_S
        print("3. Cloudflare API calls")
        print(
            f"   one lifecycle (create, live, stop, ready): {calls_hook} with webhooks,"
            f" {calls_drop} with webhooks dropped (monitor polling)"
        )
        print(
            f"   per live stream per minute: {local_rate:.1f} at the local {interval:g} s"
            f" interval, {production_rate:.1f} at the production {PRODUCTION_STATUS_INTERVAL_S}"
            f" s interval -> {BUDGET_PER_5_MIN / 5 / max(production_rate, 0.01):.0f} live"
            " streams fit the 1,200 calls / 5 min budget"
        )
        print("4. end of broadcast -> recording on the public listing")
        print(
            f"   with the webhook {seconds_hook:6.1f} s; webhook dropped (monitor) "
            f"{seconds_drop:6.1f} s ({seconds_drop / seconds_hook:.2f}x)"
        )
        print_operations(measure_operations())
        audience.print_outcomes(audience.measure(stack, audience.AUDIENCES), "6. ")
        scale.run(stack, "7. ")
        print("8. ", end="")
        print_cursor_pagination()
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
