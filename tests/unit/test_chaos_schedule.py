"""The chaos run's seeded schedule, the Cloudflare emulator's seeded fault decisions, and the
tally's reading of the ground truth."""

from __future__ import annotations

from collections import Counter
from typing import Any

from emulators.chaos import PAUSABLE, Tally, build_schedule, judge_stream
from emulators.cloudflare_stream.state import Chaos, ChaosRates

DRAWS = 20_000


def test_the_same_seed_gives_the_same_schedule_and_another_seed_another() -> None:
    assert build_schedule(7, broadcasts=8) == build_schedule(7, broadcasts=8)
    assert build_schedule(7, broadcasts=8) != build_schedule(8, broadcasts=8)


def test_a_schedule_plays_every_kind_with_reconnects_inside_the_recording_window() -> None:
    for seed in range(20):
        schedule = build_schedule(seed, broadcasts=8, concurrency=3, pauses=4)
        kinds = Counter(b.kind for b in schedule.broadcasts)
        assert set(kinds) == {"single", "reconnect", "no_encoder"}
        assert sum(kinds.values()) == 8
        assert all(b.gap_s < 3 for b in schedule.broadcasts)  # LS_RECORDING_TIMEOUT_SECONDS
        assert all(b.press_start for b in schedule.broadcasts if b.kind == "no_encoder")
        assert all(b.press_start for b in schedule.broadcasts if b.press_stop)
        assert len(schedule.pauses) == 4
        assert all(p.component in PAUSABLE and p.duration_s <= 4 for p in schedule.pauses)
        assert [p.at_s for p in schedule.pauses] == sorted(p.at_s for p in schedule.pauses)
        rates = schedule.rates
        assert 0 < rates.server_error + rates.rate_limited + rates.timeout < 0.25
        assert rates.timeout_ms / 1000 > 6  # longer than the backend's read timeout locally


def test_api_faults_follow_their_rates_and_the_seed() -> None:
    rates = ChaosRates(seed=3, server_error=0.1, rate_limited=0.05, timeout=0.02)
    chaos = Chaos(rates)
    faults = [chaos.api_fault() for _ in range(DRAWS)]

    kinds = Counter(
        "ok" if f is None else "timeout" if f.status is None else str(f.status) for f in faults
    )
    server_errors = sum(kinds[str(s)] for s in (500, 502, 503, 504))
    assert abs(server_errors / DRAWS - 0.1) < 0.015
    assert abs(kinds["429"] / DRAWS - 0.05) < 0.01
    assert abs(kinds["timeout"] / DRAWS - 0.02) < 0.006
    assert all(f.retry_after_s == 1 for f in faults if f is not None and f.status == 429)
    assert all(f.delay_s == rates.timeout_s for f in faults if f is not None and f.status is None)
    assert chaos.counts["api_5xx"] == server_errors and chaos.counts["api_429"] == kinds["429"]

    again = Chaos(rates)
    assert [again.api_fault() for _ in range(DRAWS)] == faults


def test_webhook_faults_follow_their_rates_and_the_seed() -> None:
    rates = ChaosRates(seed=5, webhook_drop=0.2, webhook_duplicate=0.3, webhook_reorder=0.25)
    chaos = Chaos(rates)
    plans = [chaos.delivery_plan() for _ in range(DRAWS)]

    dropped = sum(p.drop for p in plans)
    kept = DRAWS - dropped
    assert abs(dropped / DRAWS - 0.2) < 0.015
    assert abs(sum(p.duplicate for p in plans) / kept - 0.3) < 0.02
    assert abs(sum(p.reorder for p in plans) / kept - 0.25) < 0.02
    assert not any(p.drop and (p.duplicate or p.reorder) for p in plans)
    again = Chaos(rates)
    assert [again.delivery_plan() for _ in range(DRAWS)] == plans


def test_no_chaos_rates_inject_nothing() -> None:
    chaos = Chaos(ChaosRates(seed=1))
    assert all(chaos.api_fault() is None for _ in range(1000))
    assert not any(
        p.drop or p.duplicate or p.reorder for p in (chaos.delivery_plan() for _ in range(1000))
    )


def test_rates_from_the_control_body() -> None:
    rates = ChaosRates.from_json(
        {"seed": 9, "rateLimitRate": 1, "retryAfter": 4, "timeoutMs": 6500, "reorderMaxMs": 100}
    )
    assert rates == ChaosRates(
        seed=9, rate_limited=1.0, retry_after_s=4, timeout_s=6.5, reorder_max_s=0.1
    )


def video(uid: str, state: str = "ready") -> dict[str, Any]:
    return {"uid": uid, "status": {"state": state}}


def stream(**fields: Any) -> dict[str, Any]:
    return {"title": "t", "status": "completed", "recordings": [], **fields}


def test_the_tally_counts_what_went_wrong_from_the_ground_truth() -> None:
    tally = Tally()
    attached = [{"cloudflareVideoId": "v1", "recordingReady": True}]
    judge_stream(
        tally,
        "fine",
        stream(recordings=attached, recordingReady=True, videoId="v1"),
        [video("v1")],
    )
    judge_stream(tally, "unattached", stream(), [video("v2")])
    judge_stream(tally, "stuck", stream(status="live"), [])
    judge_stream(
        tally,
        "false-missing",
        stream(wentOnAir=True, recordingMonitor={"state": "gave_up"}),
        [video("v3")],
    )
    judge_stream(tally, "hidden", stream(recordings=attached), [video("v1")])
    judge_stream(tally, "processing", stream(), [video("v4", "inprogress")])
    judge_stream(tally, "true-error", stream(lastError={"code": "x"}), [video("v5", "error")])

    assert (tally.recordings, tally.attached) == (4, 2)
    assert (tally.stuck_live, tally.false_errors, tally.not_shown, tally.processing) == (1, 1, 1, 1)
    assert not tally.goals_met
    assert Tally(recordings=2, attached=2).goals_met
