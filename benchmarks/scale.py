"""Issue #14, "scale": the viewer routes' p50/p99 through the gateway (no cache) with 100
streams over 20 memorials, then with 10,000 over 2,000, side by side (goal: within 1.2x).

Both seeds give every memorial 5 streams, and the public listing's first page 20 streams of 20
memorials, so the two measure the same work over a small and a large collection. Streams are
copies of one the API made (written in batches straight into the emulator, with the Firestore
trigger's bridge stopped: it would otherwise replay 10,000 creations at the gateway while we
measure). Beside each route, the repository's own query against the emulator (no HTTP, no
function): a ratio that moves there too belongs to the emulator's query engine, not ours;
the last row, a memorial with no streams, shows what a query that finds nothing costs.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from google.cloud import firestore

from benchmarks import seeding
from benchmarks.seeding import Owner, memorial_document, percentile_ms, write_all
from common.adapters.firestore.streams import FirestoreStreamRepository
from common.ports import StreamQuery
from common.settings import get_settings
from emulators.stack import LocalStack, Ports

STREAMS_PER_MEMORIAL = 5
SAMPLES = 150
WARMUP = 10
POLLED_MEMORIALS = 20
NO_MATCH = "status, no streams"
ROUTES = ("public listing", "memorial view", "memorial status view", "stream status", NO_MATCH)


@dataclass
class Seed:
    """What one seed wrote: its memorials and streams (the routes draw from these)."""

    memorials: list[str]
    streams: list[str]


def seed(
    db: firestore.Client, template: dict[str, Any], owner: Owner, first: int, count: int
) -> Seed:
    """``count`` streams over ``count / 5`` new memorials, numbered from ``first``. Memorial
    ``k`` of the seed holds streams ``k, k + m, k + 2m, ...`` (``m`` memorials), and display
    order puts the seed's last streams first, so a page of 20 spans 20 memorials."""
    memorials = [f"scale-m{first + k:05d}" for k in range(count // STREAMS_PER_MEMORIAL)]
    streams = [f"scale-s{first + n:05d}" for n in range(count)]
    documents: list[tuple[str, dict[str, Any]]] = [
        (f"memorials/{m}", memorial_document(owner, m)) for m in memorials
    ]
    for n, stream_id in enumerate(streams):
        memorial = memorials[n % len(memorials)]
        fields = {"memorialId": memorial, "title": f"Service {n}", "displayOrder": -(first + n)}
        documents.append((f"streams/{stream_id}", {**template, **fields}))
    write_all(db, documents)
    return Seed(memorials, streams)


def timed(call: Callable[[], object]) -> list[float]:
    """Seconds each of ``SAMPLES`` calls took, after ``WARMUP`` untimed ones."""

    def once() -> float:
        started = time.perf_counter()
        call()
        return time.perf_counter() - started

    return [once() for _ in range(WARMUP + SAMPLES)][WARMUP:]


def ok(reply: httpx.Response) -> None:
    reply.raise_for_status()


def measure(
    api: httpx.Client, repo: FirestoreStreamRepository, seeded: Seed, rng: random.Random
) -> dict[str, tuple[list[float], list[float]]]:
    """Per route: (through the gateway, the repository's query alone) samples in seconds."""

    # The same number of memorials in both: how often the per-instance memorial cache hits
    # depends on how many memorials the requests spread over, not on the collection's size.
    memorials = seeded.memorials[:POLLED_MEMORIALS]
    streams = [
        s for n, s in enumerate(seeded.streams) if n % len(seeded.memorials) < POLLED_MEMORIALS
    ]

    def memorial() -> str:
        return rng.choice(memorials)

    def stream() -> str:
        return rng.choice(streams)

    public = StreamQuery(is_public=True, is_visible=True, order="display", limit=20)
    return {
        "public listing": (
            timed(lambda: ok(api.get("/api/streams/public?limit=20"))),
            timed(lambda: repo.find(public)),
        ),
        "memorial view": (
            timed(lambda: ok(api.get(f"/api/memorials/{memorial()}/streams"))),
            timed(lambda: repo.list_by_memorial(memorial(), visible_only=False)),
        ),
        "memorial status view": (
            timed(lambda: ok(api.get(f"/api/memorials/{memorial()}/streams/status"))),
            timed(lambda: repo.list_by_memorial(memorial(), visible_only=False)),
        ),
        "stream status": (
            timed(lambda: ok(api.get(f"/api/streams/{stream()}/status"))),
            timed(lambda: repo.get(stream())),
        ),
        # Evidence for where time goes: a memorial without streams answers nothing from an
        # index, so its cost should not grow with the collection.
        NO_MATCH: (
            timed(lambda: ok(api.get("/api/memorials/scale-none/streams/status"))),
            timed(lambda: repo.list_by_memorial("scale-none", visible_only=False)),
        ),
    }


def print_ratios(
    small: dict[str, tuple[list[float], list[float]]],
    large: dict[str, tuple[list[float], list[float]]],
    section: str = "",
) -> None:
    print(f"{section}scale: 100 streams / 20 memorials vs 10,000 / 2,000 (gateway, no cache;")
    print(f"   {SAMPLES} sequential requests each; 'query' = the repository's query alone)")
    print(
        f"   {'route':22} {'':7} {'p50 100':>8} {'p50 10k':>8} {'ratio':>6}"
        f" {'p99 100':>8} {'p99 10k':>8} {'ratio':>6}   goal <= 1.20x"
    )
    for route in ROUTES:
        for kind, index in (("gateway", 0), ("query", 1)):
            a, b = small[route][index], large[route][index]
            p50a, p50b = percentile_ms(a, 0.5), percentile_ms(b, 0.5)
            p99a, p99b = percentile_ms(a, 0.99), percentile_ms(b, 0.99)
            print(
                f"   {route if index == 0 else '':22} {kind:7} {p50a:8.1f} {p50b:8.1f}"
                f" {p50b / p50a:5.2f}x {p99a:8.1f} {p99b:8.1f} {p99b / p99a:5.2f}x"
            )


def run(stack: LocalStack, section: str = "") -> None:
    # Seeded streams would each fire the trigger; it reacts to nothing a read needs.
    stack.stop_component("events")
    try:
        _measure_both(stack, section)
    finally:
        stack.start_component("events")


def _measure_both(stack: LocalStack, section: str) -> None:
    db = seeding.client()
    settings = get_settings()
    repo = FirestoreStreamRepository(
        db, settings.streams_collection, settings.legacy_streams_collections
    )
    owner = seeding.sign_up_owner(stack)
    rng = random.Random(14)  # noqa: S311 - which memorial to ask, not a secret
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as api:
        write_all(db, [("memorials/scale-template", memorial_document(owner, "Template"))])
        template_id = seeding.new_stream(api, owner, "scale-template")
        template = db.document(f"streams/{template_id}").get().to_dict() or {}
        db.document(f"streams/{template_id}").delete()
        small = measure(api, repo, seed(db, template, owner, 0, 100), rng)
        started = time.perf_counter()
        # The large seed measures its own memorials and streams, among all 10,000.
        large_seed = seed(db, template, owner, 100, 9_900)
        seconds = time.perf_counter() - started
        large = measure(api, repo, large_seed, rng)
    print_ratios(small, large, section)
    print(f"   seeding 9,900 streams and 1,980 memorials took {seconds:.1f} s (batches of 500)")


def main() -> None:
    stack = LocalStack(Ports.free(), Path(tempfile.mkdtemp(prefix="bench-scale-")))
    stack.start()
    os.environ.update(stack.env)
    try:
        run(stack)
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
