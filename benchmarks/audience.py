"""Issue #14, "a funeral's audience": viewers open the memorial page within a minute and poll
every 10 s; the CDN (nginx ``proxy_cache``, ``emulators/cdn_cache.py``) must absorb them.

Each simulated viewer arrives at a random moment of the arrival window, then polls what the
memorial page polls: the memorial status view and the status of its stream, every 10 s, for
real (asyncio, httpx, the wall clock), revalidating with ``If-None-Match`` as a browser does.
Firestore documents read are counted at the client library (as ``benchmarks/firestore_costs.py``
does) inside the gateway that serves the functions, so every read the viewers cause is seen;
Cloudflare API calls are the emulator's own count.

``python -m benchmarks.audience`` starts a stack and prints three runs side by side: the same
pollers straight at the gateway (no cache; fewer viewers, shorter), then through the CDN with
50 and with 500 viewers. ``--serve-counting-gateway`` is the gateway process it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from werkzeug.serving import run_simple
from werkzeug.wrappers import Response

from benchmarks.firestore_costs import FirestoreCounter
from benchmarks.seeding import (
    Owner,
    client,
    memorial_document,
    new_stream,
    percentile_ms,
    sign_up_owner,
    write_all,
)
from emulators.cdn_cache import CACHE_STATUS_HEADER
from emulators.free_ports import free_ports
from emulators.hosting_gateway import HostingGateway, load_event_functions, load_rewrites
from emulators.stack import LocalStack, Ports

POLL_S = 10.0
COUNTS_PATH = "/__bench/firestore"
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class Audience:
    """One run: ``viewers`` arriving within ``arrival_s``, polling until ``duration_s``."""

    label: str
    viewers: int
    arrival_s: float
    duration_s: float
    cached: bool


@dataclass
class Outcome:
    audience: Audience
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    cache: Counter[str] = field(default_factory=Counter)
    reads_per_minute: list[float] = field(default_factory=list)
    reads: int = 0
    upstream_requests: int = 0
    cloudflare_calls: int = 0


class CountingGateway:
    """The Hosting gateway (every function in this process) with Firestore reads counted at
    the client library; ``GET /__bench/firestore`` answers the totals so far."""

    def __init__(self, gateway: WsgiApp, counter: FirestoreCounter) -> None:
        self._gateway = gateway
        self._counter = counter
        self._requests = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == COUNTS_PATH:
            totals = {"reads": self._counter.current.reads, "requests": self._requests}
            return Response(json.dumps(totals), mimetype="application/json")(
                environ, start_response
            )
        with self._lock:
            self._requests += 1
        return self._gateway(environ, start_response)


def serve_counting_gateway(port: int) -> None:
    counter = FirestoreCounter()
    gateway = HostingGateway(load_rewrites(), load_event_functions())
    with counter.installed():
        run_simple("127.0.0.1", port, CountingGateway(gateway, counter), threaded=True)


async def viewer(
    http: httpx.AsyncClient, paths: list[str], arrive_at: float, end_at: float, out: Outcome
) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, arrive_at - loop.time()))
    etags: dict[str, str] = {}
    poll_at = loop.time()
    while poll_at < end_at:
        for path in paths:
            headers = {"If-None-Match": etags[path]} if path in etags else {}
            started = time.perf_counter()
            try:
                reply = await http.get(path, headers=headers)
            except httpx.HTTPError:
                out.errors += 1
                continue
            out.latencies.append(time.perf_counter() - started)
            if reply.status_code not in (200, 304):
                out.errors += 1
            if "ETag" in reply.headers:
                etags[path] = reply.headers["ETag"]
            out.cache[reply.headers.get(CACHE_STATUS_HEADER, "-")] += 1
        poll_at += POLL_S
        await asyncio.sleep(max(0.0, poll_at - loop.time()))


async def counts(gateway: httpx.AsyncClient) -> tuple[int, int]:
    totals = (await gateway.get(COUNTS_PATH)).json()
    return int(totals["reads"]), int(totals["requests"])


async def play(audience: Audience, base_url: str, gateway_url: str, paths: list[str]) -> Outcome:
    out = Outcome(audience)
    rng = random.Random(audience.viewers)  # noqa: S311 - arrival times, not secrets
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as http,
        httpx.AsyncClient(base_url=gateway_url, timeout=30) as gateway,
    ):
        loop = asyncio.get_running_loop()
        start = loop.time()
        end = start + audience.duration_s
        reads_before, requests_before = await counts(gateway)
        marks = [reads_before]
        viewers = [
            asyncio.create_task(
                viewer(http, paths, start + rng.uniform(0, audience.arrival_s), end, out)
            )
            for _ in range(audience.viewers)
        ]
        for minute in range(1, int(audience.duration_s // 60) + 1):
            await asyncio.sleep(max(0.0, start + 60 * minute - loop.time()))
            marks.append((await counts(gateway))[0])
        await asyncio.gather(*viewers)
        reads_after, requests_after = await counts(gateway)
    out.reads_per_minute = [float(b - a) for a, b in zip(marks, marks[1:], strict=False)]
    out.reads = reads_after - reads_before
    out.upstream_requests = requests_after - requests_before
    return out


def seed_memorial(stack: LocalStack, owner: Owner, name: str) -> list[str]:
    """A public memorial of its own with three streams; the paths its page polls."""
    memorial = f"audience-{name}-{random.getrandbits(32):08x}"
    write_all(client(), [(f"memorials/{memorial}", memorial_document(owner, name))])
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as api:
        streams = [new_stream(api, owner, memorial) for _ in range(3)]
    return [f"/api/memorials/{memorial}/streams/status", f"/api/streams/{streams[0]}/status"]


def cloudflare_calls(stack: LocalStack) -> int:
    return int(httpx.get(f"{stack.cloudflare_url}/__emulator/stats").json()["requests"])


def measure(stack: LocalStack, audiences: list[Audience]) -> list[Outcome]:
    """Each audience played against its own memorial: through a CDN in front of a counting
    gateway, or straight at that gateway."""
    gateway_port, cdn_port = free_ports(2)
    gateway = stack.start_server(
        "counting_gateway",
        "benchmarks.audience",
        gateway_port,
        "--serve-counting-gateway",
        ready=COUNTS_PATH,
    )
    cdn = stack.start_cdn("audience_cdn", cdn_port, gateway_port)
    owner = sign_up_owner(stack)
    outcomes = []
    for number, audience in enumerate(audiences, start=1):
        paths = seed_memorial(stack, owner, f"run{number}")
        before = cloudflare_calls(stack)
        outcome = asyncio.run(play(audience, cdn if audience.cached else gateway, gateway, paths))
        outcome.cloudflare_calls = cloudflare_calls(stack) - before
        outcomes.append(outcome)
    return outcomes


def print_outcomes(outcomes: list[Outcome], section: str = "") -> None:
    print(f"{section}a funeral's audience: viewers arrive within the first minute, poll the")
    print(f"   memorial status view and the stream status every {POLL_S:g} s (browser-like)")
    head = (
        f"   {'run':28} {'viewers':>7} {'requests':>8} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7}"
        f" {'hits':>5} {'to gateway':>10} {'reads/min':>9} {'reads/req':>9} {'CF calls':>8}"
    )
    print(head)
    for out in outcomes:
        a = out.audience
        served = len(out.latencies)
        hits = sum(n for status, n in out.cache.items() if status in ("HIT", "STALE", "UPDATING"))
        minutes = a.duration_s / 60
        print(
            f"   {a.label:28} {a.viewers:7d} {served:8d} {out.errors:6d}"
            f" {percentile_ms(out.latencies, 0.5):7.1f} {percentile_ms(out.latencies, 0.99):7.1f}"
            f" {hits / max(served, 1):5.0%} {out.upstream_requests:10d}"
            f" {out.reads / minutes:9.0f} {out.reads / max(out.upstream_requests, 1):9.1f}"
            f" {out.cloudflare_calls:8d}"
        )
        each = ", ".join(f"{r:.0f}" for r in out.reads_per_minute)
        print(f"   {'':28} reads in each minute: {each}; cache: {dict(out.cache)}")
    print(
        "   goal: with the CDN, reads/min bounded by the cache window (s-maxage 10 s: at most"
        " 6 misses per URL a minute) and the same for 50 and 500 viewers; 0 Cloudflare calls"
    )


AUDIENCES = [
    Audience("gateway (no cache)", viewers=50, arrival_s=30, duration_s=60, cached=False),
    Audience("CDN", viewers=50, arrival_s=60, duration_s=60, cached=True),
    Audience("CDN", viewers=500, arrival_s=60, duration_s=120, cached=True),
]

QUICK = [replace(a, viewers=a.viewers // 10, arrival_s=5, duration_s=20) for a in AUDIENCES]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int)
    parser.add_argument("--serve-counting-gateway", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny audiences (a smoke test)")
    args = parser.parse_args()
    if args.serve_counting_gateway:
        serve_counting_gateway(args.port)
        return
    audiences = QUICK if args.quick else AUDIENCES
    stack = LocalStack(Ports.free(), Path(tempfile.mkdtemp(prefix="bench-audience-")))
    stack.start()
    os.environ.update(stack.env)
    try:
        print_outcomes(measure(stack, audiences))
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
