"""`make chaos`: many short real broadcasts under a seeded schedule of faults, then the tally.

One local stack (``LocalStack``, on free ports) serves every seed, each seed with a memorial
of its own. A seeded ``random.Random`` decides the broadcasts (a single
push, a reconnect inside the recording window, or Start and Stop with no encoder; Start and
Stop pressed or not), the Cloudflare emulator's fault rates (5xx, 429 with ``Retry-After``,
timeouts longer than the backend's read timeout, dropped, duplicated and reordered webhooks and
notifications) and when the Firestore emulator and the Cloud Tasks emulator are frozen for a
few seconds (SIGSTOP, then always SIGCONT). The faults stay on until everything has settled.

The tally is read from the ground truth, past the faults: the emulator's ready videos per live
input against what the streams in Firestore have attached, streams still ``live``, streams
showing an error (``lastError`` or ``recordingStatus: missing``) although nothing went wrong,
and live inputs no stream points at. Exit status 1 when any goal is missed for any seed.

    python -m emulators.chaos [--seed N ...] [--broadcasts N] [--concurrency N]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from emulators.cloudflare_stream.state import CHAOS_EXEMPT_HEADER
from emulators.stack import ACCOUNT_ID, API_TOKEN, PROJECT_ID, LocalStack, Ports
from emulators.test_card import push_test_card

DEFAULT_SEEDS = (1, 2, 3)
PAUSABLE = ("firestore", "tasks")
BroadcastKind = Literal["single", "reconnect", "no_encoder"]
RETRIED_STATUSES = frozenset({429, 502, 503, 504})
MAX_ATTEMPTS = 8
MAX_RETRY_WAIT_S = 5.0
# Monitors locally: recording checks every 2 s (20 of them), status checks every 3 s, the orphan
# sweep 8 s after a create that got no answer, and again past the 60 s an unattached input of an
# existing stream is given. Settling gives them all that, and stops at SETTLE_CAP_S.
SETTLE_MIN_S = 12.0
SETTLE_ORPHAN_S = 90.0
SETTLE_CAP_S = 240.0
SETTLE_POLL_S = 2.0
SETTLE_STABLE_POLLS = 3
PROCESSING_STATES = frozenset({"live-inprogress", "inprogress", "queued", "downloading"})


# --- the schedule: everything a seed decides --------------------------------------------------


@dataclass(frozen=True)
class FaultRates:
    """The Cloudflare emulator's chaos settings for one seed (see ``ChaosRates`` there)."""

    server_error: float
    rate_limited: float
    timeout: float
    webhook_drop: float
    webhook_duplicate: float
    webhook_reorder: float
    retry_after_s: int = 1
    timeout_ms: int = 7000
    reorder_max_ms: int = 8000

    def to_json(self, seed: int) -> dict[str, Any]:
        return {
            "seed": seed,
            "serverErrorRate": self.server_error,
            "rateLimitRate": self.rate_limited,
            "retryAfter": self.retry_after_s,
            "timeoutRate": self.timeout,
            "timeoutMs": self.timeout_ms,
            "webhookDropRate": self.webhook_drop,
            "webhookDuplicateRate": self.webhook_duplicate,
            "webhookReorderRate": self.webhook_reorder,
            "reorderMaxMs": self.reorder_max_ms,
        }


@dataclass(frozen=True)
class BroadcastPlan:
    """One service: what the encoder does and which buttons are pressed."""

    index: int
    kind: BroadcastKind
    press_start: bool
    press_stop: bool
    push_s: float  # each push (a reconnect is two of them)
    gap_s: float  # between the two pushes of a reconnect: inside the 3 s recording window
    offset_s: float  # when it begins within its batch


@dataclass(frozen=True)
class PausePlan:
    """Freeze ``component`` for ``duration_s``, ``at_s`` after a seed's broadcasts begin."""

    at_s: float
    component: str
    duration_s: float


@dataclass(frozen=True)
class ChaosSchedule:
    seed: int
    rates: FaultRates
    broadcasts: tuple[BroadcastPlan, ...]
    pauses: tuple[PausePlan, ...]


def build_schedule(
    seed: int, broadcasts: int = 8, concurrency: int = 3, pauses: int = 4
) -> ChaosSchedule:
    """The same seed always gives the same schedule."""
    rng = random.Random(seed)  # noqa: S311 - a test schedule, not a secret
    rates = FaultRates(
        server_error=round(rng.uniform(0.03, 0.08), 3),
        rate_limited=round(rng.uniform(0.03, 0.08), 3),
        timeout=round(rng.uniform(0.01, 0.04), 3),
        webhook_drop=round(rng.uniform(0.1, 0.3), 3),
        webhook_duplicate=round(rng.uniform(0.1, 0.3), 3),
        webhook_reorder=round(rng.uniform(0.1, 0.3), 3),
    )
    # Every kind at least once (given enough broadcasts), the rest drawn.
    every: list[BroadcastKind] = ["reconnect", "single", "no_encoder"]
    kinds = every[:broadcasts] + rng.choices(every, [4, 4, 1], k=max(0, broadcasts - 3))
    rng.shuffle(kinds)
    plans = tuple(_broadcast(rng, index, kind) for index, kind in enumerate(kinds))
    # Spread the pauses over the time the broadcasts take (about 14 s per batch).
    span = max(10.0, math.ceil(broadcasts / max(concurrency, 1)) * 14.0)
    freezes = sorted(
        (
            PausePlan(
                at_s=round(rng.uniform(1.0, span), 1),
                component=rng.choice(PAUSABLE),
                duration_s=round(rng.uniform(1.5, 4.0), 1),
            )
            for _ in range(pauses)
        ),
        key=lambda p: p.at_s,
    )
    return ChaosSchedule(seed, rates, plans, tuple(freezes))


def _broadcast(rng: random.Random, index: int, kind: BroadcastKind) -> BroadcastPlan:
    press_start = kind == "no_encoder" or rng.random() < 0.75
    return BroadcastPlan(
        index=index,
        kind=kind,
        press_start=press_start,
        press_stop=press_start and rng.random() < 0.6,
        push_s=round(rng.uniform(3.0, 4.5), 1),
        gap_s=round(rng.uniform(0.5, 1.5), 1),
        offset_s=round(rng.uniform(0.0, 2.0), 1),
    )


# --- playing the schedule -----------------------------------------------------------------


@dataclass
class Outcome:
    """What happened to one planned broadcast, as its client saw it."""

    plan: BroadcastPlan
    stream_id: str | None = None
    refused: list[str] = field(default_factory=list)  # calls that failed after every retry
    encoder_failures: int = 0


class Backend:
    """The backend as a patient client uses it: retries 429/502/503/504 and timeouts."""

    def __init__(self, stack: LocalStack, token: str) -> None:
        self.http = httpx.Client(
            base_url=stack.gateway_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(60.0, connect=5.0),
        )

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        response: httpx.Response | None = None
        for attempt in range(MAX_ATTEMPTS):
            try:
                response = self.http.request(method, path, json=body)
            except httpx.TransportError:
                time.sleep(min(MAX_RETRY_WAIT_S, 0.5 * 2**attempt))
                continue
            if response.status_code not in RETRIED_STATUSES:
                return response
            retry_after = float(response.headers.get("Retry-After", 0.5 * 2**attempt))
            time.sleep(min(MAX_RETRY_WAIT_S, retry_after))
        if response is None:
            raise httpx.ConnectError(f"{method} {path}: no answer after {MAX_ATTEMPTS} tries")
        return response


def play(backend: Backend, stack: LocalStack, memorial: str, plan: BroadcastPlan) -> Outcome:
    """One service from the schedule, with real RTMP pushes."""
    outcome = Outcome(plan)
    time.sleep(plan.offset_s)
    created = _ok(
        backend, outcome, "POST", f"/api/memorials/{memorial}/streams", {"title": _title(plan)}
    )
    if created is None:
        return outcome
    outcome.stream_id = str(created["id"])
    key = str(created.get("streamKey") or "")
    if plan.press_start:
        started = _ok(backend, outcome, "POST", f"/api/streams/{outcome.stream_id}/start")
        key = str((started or {}).get("streamKey") or key)
    if plan.kind != "no_encoder":
        _push(stack, key, plan.push_s, outcome)
        if plan.kind == "reconnect":
            time.sleep(plan.gap_s)
            _push(stack, key, plan.push_s, outcome)
    if plan.press_stop:
        time.sleep(0.5)
        _ok(backend, outcome, "POST", f"/api/streams/{outcome.stream_id}/stop")
    return outcome


def _title(plan: BroadcastPlan) -> str:
    buttons = ("start " if plan.press_start else "") + ("stop" if plan.press_stop else "")
    return f"chaos #{plan.index} {plan.kind} {buttons}".strip()


def _ok(
    backend: Backend, outcome: Outcome, method: str, path: str, body: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    try:
        response = backend.call(method, path, body)
    except httpx.HTTPError as exc:
        outcome.refused.append(f"{method} {path}: {exc}")
        return None
    if response.status_code >= 400:
        outcome.refused.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
        return None
    result: dict[str, Any] = response.json()
    return result


def _push(stack: LocalStack, key: str, seconds: float, outcome: Outcome) -> None:
    encoder = push_test_card(stack.rtmp_url, key, seconds)
    try:
        code = encoder.wait(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        encoder.kill()
        encoder.wait()
        code = -1
    if code != 0:
        outcome.encoder_failures += 1


def run_pauses(stack: LocalStack, pauses: tuple[PausePlan, ...], began: float) -> list[str]:
    """Freeze and thaw components on schedule; returns what was done."""
    done: list[str] = []
    for pause in pauses:
        time.sleep(max(0.0, began + pause.at_s - time.monotonic()))
        with stack.paused(pause.component):
            time.sleep(pause.duration_s)
        done.append(f"{pause.component} {pause.duration_s:g}s@{pause.at_s:g}")
    return done


# --- the ground truth and the tally ---------------------------------------------------------


@dataclass
class Tally:
    broadcasts: int = 0
    recordings: int = 0  # ready videos at Cloudflare for the seed's streams
    attached: int = 0  # of those, in their stream's recordings[] as ready
    not_shown: int = 0  # streams with a ready recording attached but no recording on the page
    stuck_live: int = 0
    false_errors: int = 0
    orphaned_inputs: int = 0
    processing: int = 0  # videos or monitors not finished yet
    details: list[str] = field(default_factory=list)

    def key(self) -> tuple[int, ...]:
        return (
            self.recordings,
            self.attached,
            self.not_shown,
            self.stuck_live,
            self.false_errors,
            self.orphaned_inputs,
            self.processing,
        )

    @property
    def goals_met(self) -> bool:
        return (
            self.attached == self.recordings
            and self.not_shown == 0
            and self.stuck_live == 0
            and self.false_errors == 0
            and self.orphaned_inputs == 0
        )


class GroundTruth:
    """Reads the emulator (exempt from chaos) and Firestore directly."""

    def __init__(self, stack: LocalStack) -> None:
        from google.cloud import firestore  # noqa: PLC0415 - needs the emulator's env first

        self.db = firestore.Client(project=PROJECT_ID)
        self.cloudflare = httpx.Client(
            base_url=f"{stack.cloudflare_url}/client/v4/accounts/{ACCOUNT_ID}/stream",
            headers={"Authorization": f"Bearer {API_TOKEN}", CHAOS_EXEMPT_HEADER: "1"},
            timeout=30,
        )

    def live_input_uids(self) -> set[str]:
        rows = self.cloudflare.get("/live_inputs").json()["result"]["liveInputs"]
        return {str(r["uid"]) for r in rows}

    def videos(self, input_uid: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.cloudflare.get(
            f"/live_inputs/{input_uid}/videos"
        ).json()["result"]
        return result

    def streams(self, memorial: str) -> dict[str, dict[str, Any]]:
        from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

        query = self.db.collection("streams").where(
            filter=FieldFilter("memorialId", "==", memorial)
        )
        return {doc.id: doc.to_dict() or {} for doc in query.stream()}

    def inputs_in_use(self) -> set[str]:
        uids: set[str] = set()
        for doc in self.db.collection("streams").stream():
            data = doc.to_dict() or {}
            uids.update(str(data[k]) for k in ("cloudflareId", "cloudflareStreamId") if data.get(k))
        return uids

    def tally(self, memorial: str, new_inputs: set[str], broadcasts: int) -> Tally:
        tally = Tally(broadcasts=broadcasts)
        for stream_id, stream in sorted(self.streams(memorial).items()):
            judge_stream(
                tally, stream_id, stream, self.videos(str(stream.get("cloudflareId") or ""))
            )
        orphans = new_inputs & self.live_input_uids() - self.inputs_in_use()
        tally.orphaned_inputs = len(orphans)
        tally.details += [f"orphaned live input {uid}" for uid in sorted(orphans)]
        return tally


def judge_stream(
    tally: Tally, stream_id: str, stream: dict[str, Any], videos: list[dict[str, Any]]
) -> None:
    """Add one stream to the tally, against its live input's videos at Cloudflare."""
    title = f"{stream_id} ({stream.get('title')})"
    ready = {str(v["uid"]) for v in videos if v["status"]["state"] == "ready"}
    failed = any(v["status"]["state"] == "error" for v in videos)
    attached = {
        str(r.get("cloudflareVideoId") or r.get("id"))
        for r in stream.get("recordings") or []
        if r.get("recordingReady")
    }
    tally.recordings += len(ready)
    tally.attached += len(ready & attached)
    tally.details += [f"{title}: recording {uid} not attached" for uid in sorted(ready - attached)]
    if ready & attached and not (stream.get("recordingReady") and stream.get("videoId")):
        tally.not_shown += 1
        tally.details.append(f"{title}: recording attached but the page shows none")
    if stream.get("status") == "live":
        tally.stuck_live += 1
        tally.details.append(f"{title}: still live")
    monitor = stream.get("recordingMonitor") or {}
    # What the page shows as recordingStatus "missing" (common.models.api.recording_status).
    missing = (
        monitor.get("state") == "gave_up"
        and stream.get("wentOnAir")
        and not stream.get("recordingReady")
    )
    shows_error = stream.get("lastError") or missing or stream.get("status") == "error"
    if shows_error and not failed:
        tally.false_errors += 1
        tally.details.append(f"{title}: error shown {stream.get('lastError')} (missing={missing})")
    busy = monitor.get("state") == "running" or any(
        v["status"]["state"] in PROCESSING_STATES for v in videos
    )
    tally.processing += int(busy)


# --- one seed, and the whole run ------------------------------------------------------------


@dataclass
class SeedResult:
    schedule: ChaosSchedule
    tally: Tally
    outcomes: list[Outcome]
    faults: dict[str, int]
    pauses: list[str]
    settle_s: float


@dataclass(frozen=True)
class Harness:
    """What every seed plays against: the stack, its ground truth and the family's client."""

    stack: LocalStack
    truth: GroundTruth
    backend: Backend
    owner_uid: str
    concurrency: int


def run_seed(harness: Harness, schedule: ChaosSchedule) -> SeedResult:
    stack, truth = harness.stack, harness.truth
    memorial = f"chaos-{schedule.seed}-{uuid.uuid4().hex[:6]}"
    truth.db.collection("memorials").document(memorial).set(
        {
            "ownerUid": harness.owner_uid,
            "isPublic": True,
            "lovedOneName": f"Chaos seed {schedule.seed}",
        }
    )
    inputs_before = truth.live_input_uids()
    _faults(stack, {"chaos": schedule.rates.to_json(schedule.seed)})
    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=1) as pauser:
        pauses = pauser.submit(run_pauses, stack, schedule.pauses, began)
        outcomes = _play_all(harness, memorial, schedule)
        done_pauses = pauses.result()
    last_create = time.monotonic()
    tally, settle_s = _settle(
        lambda: truth.tally(memorial, truth.live_input_uids() - inputs_before, len(outcomes)),
        last_create,
    )
    faults = httpx.get(f"{stack.cloudflare_url}/__emulator/chaos").json()["counts"]
    _faults(stack, {})
    return SeedResult(schedule, tally, outcomes, faults, done_pauses, settle_s)


def _play_all(harness: Harness, memorial: str, schedule: ChaosSchedule) -> list[Outcome]:
    """The broadcasts in batches of ``concurrency`` at once."""
    outcomes: list[Outcome] = []
    plans = list(schedule.broadcasts)
    size = harness.concurrency
    with ThreadPoolExecutor(max_workers=size) as pool:
        for start in range(0, len(plans), size):
            outcomes += pool.map(
                lambda p: play(harness.backend, harness.stack, memorial, p),
                plans[start : start + size],
            )
    return outcomes


def _settle(read: Callable[[], Tally], since: float) -> tuple[Tally, float]:
    """Poll the tally until the monitors have finished and nothing changes any more."""
    previous: tuple[int, ...] | None = None
    stable = 0
    while True:
        tally = read()
        waited = time.monotonic() - since
        stable = stable + 1 if tally.key() == previous else 0
        previous = tally.key()
        quiet = tally.processing == 0 and tally.stuck_live == 0 and stable >= SETTLE_STABLE_POLLS
        patience = SETTLE_MIN_S if tally.goals_met else SETTLE_ORPHAN_S
        if (quiet and waited >= patience) or waited >= SETTLE_CAP_S:
            return tally, waited
        time.sleep(SETTLE_POLL_S)


def _faults(stack: LocalStack, body: dict[str, Any]) -> None:
    httpx.post(f"{stack.cloudflare_url}/__emulator/faults", json=body).raise_for_status()


def sign_up(stack: LocalStack) -> tuple[str, str]:
    """A family account in the Auth emulator: (uid, ID token)."""
    response = httpx.post(
        f"http://127.0.0.1:{stack.ports.auth}/identitytoolkit.googleapis.com/v1/"
        "accounts:signUp?key=chaos",
        json={
            "email": f"chaos-{uuid.uuid4().hex[:8]}@example.com",
            "password": "chaos-pass-1",
            "returnSecureToken": True,
        },
    )
    response.raise_for_status()
    body = response.json()
    return str(body["localId"]), str(body["idToken"])


# --- the report -----------------------------------------------------------------------------

COLUMNS = (
    "seed",
    "broadcasts",
    "recordings attached",
    "stuck live",
    "false errors",
    "orphaned inputs",
    "not shown",
    "refused calls",
    "encoder failures",
    "settled after",
)


def report(results: list[SeedResult]) -> str:
    rows = [COLUMNS]
    for r in results:
        t = r.tally
        rows.append(
            (
                str(r.schedule.seed),
                str(t.broadcasts),
                f"{t.attached}/{t.recordings}",
                str(t.stuck_live),
                str(t.false_errors),
                str(t.orphaned_inputs),
                str(t.not_shown),
                str(sum(len(o.refused) for o in r.outcomes)),
                str(sum(o.encoder_failures for o in r.outcomes)),
                f"{r.settle_s:.0f} s",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    for r in results:
        lines.append("")
        lines.append(f"seed {r.schedule.seed}: {_describe(r)}")
        lines += [f"  ! {line}" for line in r.tally.details]
        lines += [f"  ! refused: {line}" for o in r.outcomes for line in o.refused]
    return "\n".join(lines)


def _describe(result: SeedResult) -> str:
    kinds = [o.plan.kind for o in result.outcomes]
    played = ", ".join(f"{kinds.count(k)} {k}" for k in ("single", "reconnect", "no_encoder"))
    faults = ", ".join(f"{k}={v}" for k, v in sorted(result.faults.items()))
    return f"{played}; faults injected: {faults}; paused: {', '.join(result.pauses) or 'none'}"


def _goal_missed(result: SeedResult) -> bool:
    encoders = sum(o.encoder_failures for o in result.outcomes)
    on_air = sum(o.plan.kind != "no_encoder" and o.stream_id is not None for o in result.outcomes)
    # A broadcast that never reached Cloudflare's recordings tested nothing: count it as missed.
    return not result.tally.goals_met or encoders > 0 or result.tally.recordings < on_air


# --- entry point ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.chaos", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--seed", type=int, action="append", help="a seed (repeatable); default 1 2 3"
    )
    parser.add_argument("--broadcasts", type=int, default=8, help="broadcasts per seed")
    parser.add_argument("--concurrency", type=int, default=3, help="broadcasts at once")
    parser.add_argument("--pauses", type=int, default=4, help="Firestore/Tasks freezes per seed")
    return parser.parse_args(argv)


@contextmanager
def running_stack() -> Iterator[LocalStack]:
    stack = LocalStack(Ports.free(), Path(tempfile.mkdtemp(prefix="chaos-")))
    stack.start()
    os.environ.update(stack.env)
    try:
        yield stack
    finally:
        for name in PAUSABLE:  # never leave a frozen process behind
            stack.resume_component(name)
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seeds = args.seed or list(DEFAULT_SEEDS)
    out = sys.stdout
    results: list[SeedResult] = []
    with running_stack() as stack:
        out.write(f"chaos: stack up (logs in {stack.workdir}); seeds {seeds}\n")
        owner_uid, token = sign_up(stack)
        harness = Harness(
            stack, GroundTruth(stack), Backend(stack, token), owner_uid, args.concurrency
        )
        for seed in seeds:
            schedule = build_schedule(seed, args.broadcasts, args.concurrency, args.pauses)
            started = time.monotonic()
            result = run_seed(harness, schedule)
            results.append(result)
            verdict = "missed" if _goal_missed(result) else "ok"
            out.write(f"chaos: seed {seed} {verdict} in {time.monotonic() - started:.0f} s\n")
            out.flush()
    out.write("\n" + report(results) + "\n")
    missed = [r.schedule.seed for r in results if _goal_missed(r)]
    out.write(
        f"\nGoal missed for seed(s) {missed}\n" if missed else "\nEvery goal met for every seed.\n"
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
