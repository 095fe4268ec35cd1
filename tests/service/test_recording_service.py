"""Recordings over fakes: convergence, the monitors' chain, provider events and the trigger."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from common.errors import UnavailableError
from common.models.api import StreamCreateRequest
from common.models.domain import MonitorKind, Recording, RecordingEntry, StreamStatus
from common.models.recording_rules import entry_of, merge_recordings, with_recordings
from common.ports import ProviderRejectedError, ProviderUnavailableError
from common.services.monitors import MonitorPolicy, MonitorService
from common.services.provider_events import ProviderEventService
from common.services.repair_tools import RepairTools
from tests import people
from tests.conftest import POLICY, World

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def video(uid: str, state: str, minute: int, live_input: str = "in") -> Recording:
    return Recording(
        video_uid=uid,
        live_input_uid=live_input,
        state=state,
        ready_to_stream=state == "ready",
        duration=60.0 if state == "ready" else None,
        hls_url=f"https://v/{uid}.m3u8",
        created=T0 + timedelta(minutes=minute),
        modified=T0 + timedelta(minutes=minute, seconds=90 if state == "ready" else 5),
    )


EVENTS = [
    video("a", "live-inprogress", 0),
    video("a", "inprogress", 0),
    video("a", "ready", 0),
    video("b", "live-inprogress", 30),
    video("b", "ready", 30),
]


def test_merging_converges_whatever_the_order_and_duplication() -> None:
    finals = set()
    for order in itertools.permutations(EVENTS):
        entries: tuple[RecordingEntry, ...] = ()
        for event in (*order, order[0], order[-1]):
            entries = merge_recordings(entries, [entry_of(event)])
        finals.add(entries)
    assert len(finals) == 1
    (final,) = finals
    assert [(e.video_uid, e.state, e.ready) for e in final] == [
        ("a", "ready", True),
        ("b", "ready", True),
    ]


def test_primary_fields_follow_the_latest_ready_recording(world: World) -> None:
    stream = world.service.create(people.OWNER, StreamCreateRequest(title="t"))
    current = world.repo.streams[stream.id]
    entries = merge_recordings((), [entry_of(v) for v in (EVENTS[2], EVENTS[3])])

    updated = with_recordings(current, entries, T0)

    assert (updated.video_id, updated.recording_ready) == ("a", True)
    later = with_recordings(updated, merge_recordings(entries, [entry_of(EVENTS[4])]), T0)
    assert later.video_id == "b" and later.recording_url == "https://v/b.m3u8"


def start_and_stop(world: World, *, on_air: bool = True) -> str:
    stream = world.service.create(people.OWNER, StreamCreateRequest(title="t"))
    world.broadcasts.start(people.OWNER, stream.id)
    if on_air:
        world.clock.advance(5)
        world.events.apply_live_event(
            stream.cloudflare_id or "", "live_input.connected", world.clock.now(), None
        )
    world.clock.advance(60)
    world.broadcasts.stop(people.OWNER, stream.id)
    return stream.id


def recording_tasks(world: World) -> list[dict[str, object]]:
    return [t.payload for t in world.tasks.tasks if t.payload["kind"] == "recording"]


def status_tasks(world: World) -> list[dict[str, object]]:
    return [t.payload for t in world.tasks.tasks if t.payload["kind"] == "status"]


def test_stop_schedules_the_monitor_which_stops_once_the_recording_is_there(world: World) -> None:
    stream_id = start_and_stop(world)
    first = recording_tasks(world)[0]
    assert first["attempt"] == 0
    uid = world.repo.streams[stream_id].cloudflare_id or ""

    generation = int(str(first["generation"]))
    assert world.monitors.run_check("recording", stream_id, generation, 0) == ("rescheduled")
    world.provider.recordings[uid] = [video("v1", "ready", 1, uid)]
    assert world.monitors.run_check("recording", stream_id, generation, 1) == "done"

    stream = world.repo.streams[stream_id]
    assert stream.recording_ready and stream.video_id == "v1"
    assert [t["attempt"] for t in recording_tasks(world)] == [0, 1]
    assert stream.recording_monitor is not None and stream.recording_monitor.state == "done"


def test_duplicate_and_out_of_date_checks_change_nothing(world: World) -> None:
    stream_id = start_and_stop(world)
    generation = int(str(recording_tasks(world)[0]["generation"]))

    assert world.monitors.run_check("recording", stream_id, generation, 0) == "rescheduled"
    checked = world.repo.streams[stream_id]
    # The check that ran last, delivered again, only queues its successor again: one task.
    assert world.monitors.run_check("recording", stream_id, generation, 0) == "requeued"
    assert world.monitors.run_check("recording", stream_id, generation - 1, 1) == "stale"
    assert world.monitors.run_check("recording", stream_id, generation, 2) == "stale"
    assert world.monitors.run_check("recording", "missing", generation, 1) == "gone"
    assert [t["attempt"] for t in recording_tasks(world)] == [0, 1]
    assert world.repo.streams[stream_id] == checked
    progress = world.repo.monitor_progress(stream_id, "recording")
    assert progress is not None and progress.next_attempt == 1


@pytest.mark.parametrize("kind", ["recording", "status"])
def test_a_check_whose_successor_cannot_be_queued_is_delivered_again_and_queues_it(
    world: World, kind: MonitorKind
) -> None:
    """Cloud Tasks briefly unreachable after a check claimed its attempt: the check fails, so
    the queue delivers it again, and that delivery queues the next check. Were the failure
    only logged, the monitor would stay running with nothing left to run it (a recording
    "processing" forever)."""
    if kind == "recording":
        stream_id = start_and_stop(world)
    else:
        stream_id = world.service.create(people.OWNER, StreamCreateRequest(title="t")).id
        world.broadcasts.start(people.OWNER, stream_id)
    chain = [t for t in world.tasks.tasks if t.payload["kind"] == kind]
    generation = int(str(chain[0].payload["generation"]))

    world.tasks.unavailable_for = 1
    with pytest.raises(UnavailableError):
        world.monitors.run_check(kind, stream_id, generation, 0)
    assert [t.payload["attempt"] for t in world.tasks.tasks if t.payload["kind"] == kind] == [0]

    assert world.monitors.run_check(kind, stream_id, generation, 0) == "requeued"
    assert [t.payload["attempt"] for t in world.tasks.tasks if t.payload["kind"] == kind] == [0, 1]
    # The successor is due and runs (the test policy's grace ends a silent status monitor).
    expected = "rescheduled" if kind == "recording" else "done"
    assert world.monitors.run_check(kind, stream_id, generation, 1) == expected


def test_a_trigger_that_cannot_queue_the_first_check_fails_so_it_is_delivered_again(
    world: World,
) -> None:
    """Stop only logs a queue failure (the family's request succeeds); the trigger its write
    fires is the fallback, so it must fail for Eventarc to deliver it again."""
    stream = world.service.create(people.OWNER, StreamCreateRequest(title="t"))
    world.broadcasts.start(people.OWNER, stream.id)
    live = world.repo.streams[stream.id]
    world.tasks.unavailable_for = 1  # Stop's own queueing of the first check
    world.broadcasts.stop(people.OWNER, stream.id)
    stopped = world.repo.streams[stream.id]
    assert recording_tasks(world) == []

    world.tasks.unavailable_for = 1
    with pytest.raises(UnavailableError):
        world.changes.on_stream_written(live, stopped)
    assert world.changes.on_stream_written(live, stopped) == "recording monitor already running"
    assert [t["attempt"] for t in recording_tasks(world)] == [0]


def test_a_browser_test_before_an_encoder_service_does_not_make_it_unrecorded(
    world: World,
) -> None:
    """A director tries the browser camera (WHIP, not recorded), ends it, then broadcasts the
    service from OBS; the encoder's connected notification is lost, so only the status
    monitor sees it. The service is recorded, and the page must wait for its recording."""
    stream = world.service.create(people.OWNER, StreamCreateRequest(title="t"))
    publication = world.broadcasts.publish_whip(people.OWNER, stream.id, "v=0\r\n")
    session = publication.location.rsplit("/", 1)[-1]
    world.broadcasts.end_whip(people.OWNER, stream.id, session)
    assert world.repo.streams[stream.id].ingest_protocol == "whip"

    world.clock.advance(3600)
    world.broadcasts.start(people.OWNER, stream.id)
    assert world.repo.streams[stream.id].ingest_protocol is None
    uid = world.repo.streams[stream.id].cloudflare_id or ""
    spec, live_input = world.provider.inputs[uid]
    world.provider.inputs[uid] = (spec, live_input.model_copy(update={"connection": "connected"}))
    status = [t.payload for t in world.tasks.tasks if t.payload["kind"] == "status"][-1]
    generation = int(str(status["generation"]))
    assert world.monitors.run_check("status", stream.id, generation, 0) == "rescheduled"
    assert world.repo.streams[stream.id].ingest_protocol == "rtmp"

    world.clock.advance(600)
    stopped = world.broadcasts.stop(people.OWNER, stream.id)
    assert stopped.recordingStatus == "processing"
    assert [t["attempt"] for t in recording_tasks(world)] == [0]
    assert world.listings.get(people.OWNER, stream.id).recording_status == "processing"


def test_monitor_gives_up_loudly_after_its_checks(world: World) -> None:
    stream_id = start_and_stop(world)
    generation = int(str(recording_tasks(world)[0]["generation"]))

    outcomes = [world.monitors.run_check("recording", stream_id, generation, n) for n in range(3)]

    assert outcomes == ["rescheduled", "rescheduled", "gave_up"]
    stream = world.repo.streams[stream_id]
    assert stream.last_error is not None and stream.last_error.code == "RECORDING_NOT_FOUND"
    assert world.listings.get(people.OWNER, stream_id).recording_status == "missing"


def in_the_making(world: World, stream_id: str, state: str) -> str:
    """Cloudflare holds a video of the stream's broadcast in ``state``; its live input uid."""
    uid = world.repo.streams[stream_id].cloudflare_id or ""
    started = world.repo.streams[stream_id].actual_start_time or T0
    world.provider.recordings[uid] = [
        Recording(
            video_uid="service",
            live_input_uid=uid,
            state=state,
            ready_to_stream=False,
            created=started,
            modified=world.clock.now(),
        )
    ]
    return uid


@pytest.mark.parametrize("state", ["live-inprogress", "inprogress", "queued"])
def test_a_recording_cloudflare_is_still_making_is_awaited_past_the_checks_budget(
    world: World, state: str
) -> None:
    # An encoder left running after Stop (Cloudflare records on), the reconnect window, a long
    # service's processing: the video is there, not ready yet. That is not a missing recording.
    stream_id = start_and_stop(world)
    generation = int(str(recording_tasks(world)[0]["generation"]))
    uid = in_the_making(world, stream_id, state)

    outcomes = [world.monitors.run_check("recording", stream_id, generation, n) for n in range(6)]

    assert outcomes == ["rescheduled"] * 6
    assert world.listings.get(people.OWNER, stream_id).recording_status == "processing"
    assert world.repo.streams[stream_id].last_error is None
    world.provider.recordings[uid] = [video("service", "ready", 1, uid)]
    assert world.monitors.run_check("recording", stream_id, generation, 6) == "done"
    assert world.listings.get(people.OWNER, stream_id).recording_status == "ready"


def test_a_failed_or_earlier_video_does_not_hold_the_monitor_past_its_budget(
    world: World,
) -> None:
    stream_id = start_and_stop(world)
    generation = int(str(recording_tasks(world)[0]["generation"]))
    uid = in_the_making(world, stream_id, "error")
    started = world.repo.streams[stream_id].actual_start_time
    assert started is not None
    before = T0 - timedelta(days=1)
    world.provider.recordings[uid].append(
        Recording(
            video_uid="last-week",
            live_input_uid=uid,
            state="inprogress",  # stuck at Cloudflare since an earlier broadcast
            ready_to_stream=False,
            created=before,
            modified=before,
        )
    )

    outcomes = [world.monitors.run_check("recording", stream_id, generation, n) for n in range(3)]

    assert outcomes == ["rescheduled", "rescheduled", "gave_up"]
    assert world.listings.get(people.OWNER, stream_id).recording_status == "missing"


def capped(world: World, *, checks: int, hard_cap: int) -> MonitorService:
    """Monitors of ``world`` whose recording budget is ``checks``, and at most ``hard_cap``."""
    policy = MonitorPolicy(recording_monitor_checks=checks, recording_monitor_max_checks=hard_cap)
    return MonitorService(world.backends, policy=policy)


def test_a_recording_in_the_making_is_awaited_up_to_the_hard_cap_only(world: World) -> None:
    monitors = capped(world, checks=2, hard_cap=4)
    stream_id = start_and_stop(world)
    generation = int(str(recording_tasks(world)[0]["generation"]))
    in_the_making(world, stream_id, "live-inprogress")

    outcomes = [monitors.run_check("recording", stream_id, generation, n) for n in range(4)]

    assert outcomes == ["rescheduled"] * 3 + ["gave_up"]
    stream = world.repo.streams[stream_id]
    assert stream.last_error is not None and stream.last_error.code == "RECORDING_NOT_FOUND"


def test_checks_cloudflare_fails_never_end_the_chain_nor_call_the_recording_missing(
    world: World,
) -> None:
    stream_id = start_and_stop(world)
    generation = int(str(recording_tasks(world)[0]["generation"]))
    uid = world.repo.streams[stream_id].cloudflare_id or ""
    timeout, forbidden = ProviderUnavailableError("timeout"), ProviderRejectedError("Forbidden")
    for failure in (timeout, forbidden, timeout):
        world.provider.fail("list_recordings", failure)

    # The last check of the budget among them: the chain goes on, nothing is called missing.
    outcomes = [world.monitors.run_check("recording", stream_id, generation, n) for n in range(3)]

    assert outcomes == ["unanswered"] * 3
    assert [t["attempt"] for t in recording_tasks(world)] == [0, 1, 2, 3]
    assert world.listings.get(people.OWNER, stream_id).recording_status == "processing"
    world.provider.recordings[uid] = [video("v1", "ready", 1, uid)]
    assert world.monitors.run_check("recording", stream_id, generation, 3) == "done"


def test_unanswered_checks_give_up_at_the_hard_cap(world: World) -> None:
    monitors = capped(world, checks=1, hard_cap=2)
    stream_id = start_and_stop(world)
    generation = int(str(recording_tasks(world)[0]["generation"]))
    for _ in range(2):
        world.provider.fail("list_recordings", ProviderUnavailableError("timeout"))

    outcomes = [monitors.run_check("recording", stream_id, generation, n) for n in range(2)]

    assert outcomes == ["unanswered", "gave_up"]
    assert world.listings.get(people.OWNER, stream_id).recording_status == "missing"


def test_a_status_check_cloudflare_fails_ends_nothing(world: World) -> None:
    stream, uid = world.new_stream()
    world.broadcasts.start(people.OWNER, stream.id)
    world.events.apply_live_event(uid, "live_input.connected", world.clock.now(), None)
    generation = int(str(status_tasks(world)[-1]["generation"]))
    world.provider.fail("get_live_input", ProviderUnavailableError("timeout"))

    outcome = world.monitors.run_check("status", stream.id, generation, 0)

    live = world.repo.streams[stream.id]
    assert outcome == "unanswered"
    assert (live.status, live.on_air) == (StreamStatus.LIVE, True)
    assert [t["attempt"] for t in status_tasks(world)][-1] == 1


def test_status_monitor_waits_for_the_encoder_then_ends_the_broadcast(world: World) -> None:
    stream = world.service.create(people.OWNER, StreamCreateRequest(title="t"))
    world.broadcasts.start(people.OWNER, stream.id)
    status_task = next(t.payload for t in world.tasks.tasks if t.payload["kind"] == "status")
    generation = int(str(status_task["generation"]))
    uid = stream.cloudflare_id or ""
    spec, live_input = world.provider.inputs[uid]

    # Encoder not connected yet: within the grace period the stream stays live.
    assert world.monitors.run_check("status", stream.id, generation, 0) == "rescheduled"
    world.provider.inputs[uid] = (spec, live_input.model_copy(update={"connection": "connected"}))
    assert world.monitors.run_check("status", stream.id, generation, 1) == "rescheduled"
    world.provider.inputs[uid] = (spec, live_input)  # disconnected again
    assert world.monitors.run_check("status", stream.id, generation, 2) == "done"

    ended = world.repo.streams[stream.id]
    assert ended.status == StreamStatus.COMPLETED and ended.end_time is not None
    assert recording_tasks(world), "ending the broadcast starts the recording monitor"


@pytest.mark.parametrize("event", ["live_input.connected", "live_input.disconnected"])
def test_live_events_older_than_the_last_applied_one_are_ignored(world: World, event: str) -> None:
    stream, uid = world.new_stream()
    later, earlier = T0 + timedelta(minutes=5), T0

    world.events.apply_live_event(uid, "live_input.disconnected", later, None)
    world.events.apply_live_event(uid, event, earlier, None)  # type: ignore[arg-type]

    assert world.repo.streams[stream.id].live_event_at == later
    assert world.repo.streams[stream.id].status == StreamStatus.SCHEDULED


def test_a_trigger_event_for_a_stream_deleted_since_is_acknowledged(world: World) -> None:
    view = world.service.create(people.OWNER, StreamCreateRequest(title="t"))
    scheduled = world.repo.streams[view.id]
    live = scheduled.model_copy(update={"status": StreamStatus.LIVE})
    del world.repo.streams[view.id]

    assert world.changes.on_stream_written(scheduled, live) == "stream no longer exists"
    assert world.tasks.tasks == []


def test_a_service_that_never_went_on_air_is_not_lost_footage(world: World) -> None:
    stream_id = start_and_stop(world, on_air=False)
    generation = int(str(recording_tasks(world)[0]["generation"]))

    outcomes = [world.monitors.run_check("recording", stream_id, generation, n) for n in range(3)]

    assert outcomes[-1] == "gave_up"
    stream = world.repo.streams[stream_id]
    assert stream.last_error is None
    seen = world.listings.get(people.OWNER, stream_id)
    assert (seen.recording_status, seen.broadcast_state) == ("none", "ended")
    assert seen.recording_message is not None and "never went on air" in seen.recording_message


def test_a_reconnect_continuing_the_recording_is_not_a_missing_recording(world: World) -> None:
    stream, uid = world.new_stream()
    world.events.apply_live_event(uid, "live_input.connected", T0, None)
    world.clock.current = T0 + timedelta(minutes=30)
    world.broadcasts.stop(people.OWNER, stream.id)
    # The encoder comes back within the recording window: Cloudflare continues the same video,
    # created at the first connect, while the reconnect begins the stream's new broadcast.
    world.events.apply_live_event(uid, "live_input.connected", T0 + timedelta(minutes=31), None)
    assert world.repo.streams[stream.id].actual_start_time == T0 + timedelta(minutes=31)
    world.clock.current = T0 + timedelta(minutes=60)
    world.broadcasts.stop(people.OWNER, stream.id)
    world.provider.recordings[uid] = [
        video("whole-service", "ready", 0, uid).model_copy(update={"duration": 60 * 60.0})
    ]
    generation = int(str(recording_tasks(world)[-1]["generation"]))

    outcome = world.monitors.run_check("recording", stream.id, generation, 0)

    assert outcome == "done"
    seen = world.listings.get(people.OWNER, stream.id)
    assert (seen.recording_status, seen.video_id) == ("ready", "whole-service")
    assert world.repo.streams[stream.id].last_error is None


def test_a_short_drop_reads_reconnecting_and_ends_only_after_the_window(world: World) -> None:
    monitors = MonitorService(
        world.backends,
        policy=MonitorPolicy(status_monitor_interval_s=60, recording_timeout_seconds=300),
    )
    events = ProviderEventService(world.backends, monitors=monitors)
    stream, uid = world.new_stream()
    spec, live_input = world.provider.inputs[uid]
    world.broadcasts.start(people.OWNER, stream.id)
    events.apply_live_event(uid, "live_input.connected", world.clock.now(), None)
    generation = int(str(status_tasks(world)[0]["generation"]))

    world.clock.advance(60)
    events.apply_live_event(uid, "live_input.disconnected", world.clock.now(), None)
    dropped = world.listings.get(people.OWNER, stream.id)
    assert (dropped.status, dropped.broadcast_state) == ("live", "reconnecting")
    world.clock.advance(60)  # inside the window: the first check keeps it live
    assert monitors.run_check("status", stream.id, generation, 0) == "rescheduled"
    assert world.listings.get(people.OWNER, stream.id).broadcast_state == "reconnecting"

    world.clock.advance(300)  # the window has passed and the encoder is still gone
    assert monitors.run_check("status", stream.id, generation, 1) == "done"
    ended = world.repo.streams[stream.id]
    assert ended.status == StreamStatus.COMPLETED
    assert ended.end_time == T0 + timedelta(seconds=60)  # the drop, not the check
    assert recording_tasks(world), "the recording monitor follows the end"
    assert live_input.connection != "connected" and spec.stream_id == stream.id


def test_a_recording_found_later_clears_the_missing_error(world: World) -> None:
    stream_id = start_and_stop(world)
    generation = int(str(recording_tasks(world)[0]["generation"]))
    for attempt in range(3):
        world.monitors.run_check("recording", stream_id, generation, attempt)
    assert world.listings.get(people.OWNER, stream_id).recording_status == "missing"
    uid = world.repo.streams[stream_id].cloudflare_id or ""
    world.provider.recordings[uid] = [video("late", "ready", 1, uid)]

    world.monitors.reconcile(stream_id)

    assert world.listings.get(people.OWNER, stream_id).recording_status == "ready"
    assert world.repo.streams[stream_id].last_error is None


def test_broadcast_state_tells_armed_on_air_and_ended_apart(world: World) -> None:
    stream, uid = world.new_stream()
    assert world.listings.get(people.OWNER, stream.id).broadcast_state == "idle"
    world.broadcasts.start(people.OWNER, stream.id)
    armed = world.listings.get(people.OWNER, stream.id)
    assert (armed.status, armed.broadcast_state) == ("live", "armed")
    world.clock.advance(5)
    world.events.apply_live_event(uid, "live_input.connected", world.clock.now(), None)
    assert world.listings.get(people.OWNER, stream.id).broadcast_state == "on_air"
    world.broadcasts.stop(people.OWNER, stream.id)
    assert world.listings.get(people.OWNER, stream.id).broadcast_state == "ended"


def test_a_connection_reported_after_stop_does_not_reopen_the_stopped_broadcast(
    world: World,
) -> None:
    stream, uid = world.new_stream()
    world.broadcasts.start(people.OWNER, stream.id)
    connected_at = world.clock.now()
    world.clock.advance(30)
    world.broadcasts.stop(people.OWNER, stream.id)

    # Cloudflare's "connected" for the broadcast just stopped arrives only now.
    world.events.apply_live_event(uid, "live_input.connected", connected_at, None)
    stopped = world.repo.streams[stream.id]
    assert stopped.status == StreamStatus.COMPLETED
    assert stopped.went_on_air  # its recording is awaited, not "never went on air"

    # A connection made after the stop is a new broadcast.
    world.clock.advance(60)
    world.events.apply_live_event(uid, "live_input.connected", world.clock.now(), None)
    assert world.repo.streams[stream.id].status == StreamStatus.LIVE


def test_checks_that_change_nothing_a_viewer_sees_leave_the_stream_unwritten(world: World) -> None:
    """The Firestore trigger fires on every write of the stream: a check that only moves its
    own progress writes elsewhere, and only the checks with an effect touch the stream."""
    stream_id = start_and_stop(world)
    generation = int(str(recording_tasks(world)[0]["generation"]))
    stopped = world.repo.streams[stream_id]

    for attempt in range(2):
        world.clock.advance(30)
        assert world.monitors.run_check("recording", stream_id, generation, attempt) == (
            "rescheduled"
        )
    assert world.repo.streams[stream_id] == stopped
    progress = world.repo.monitor_progress(stream_id, "recording")
    assert progress is not None and progress.next_attempt == 2
    assert world.monitors.run_check("recording", stream_id, generation, 1) == "requeued"

    uid = stopped.cloudflare_id or ""
    world.provider.recordings[uid] = [video("service", "ready", 1, uid)]
    assert world.monitors.run_check("recording", stream_id, generation, 2) == "done"
    done = world.repo.streams[stream_id]
    assert done.recording_ready and done.recording_monitor is not None
    assert done.recording_monitor.state == "done"


def test_start_writes_the_stream_once_and_its_trigger_reads_nothing(world: World) -> None:
    """The write that begins the broadcast starts its status monitor too; the trigger that
    write fires only makes sure the first check is queued."""
    stream = world.service.create(people.OWNER, StreamCreateRequest(title="t"))
    scheduled = world.repo.streams[stream.id]

    world.broadcasts.start(people.OWNER, stream.id)

    live = world.repo.streams[stream.id]
    assert world.repo.stream_writes[stream.id] == 1
    assert live.status_monitor is not None and live.status_monitor.state == "running"
    assert len(status_tasks(world)) == 1
    reads = world.repo.reads[stream.id]
    assert world.changes.on_stream_written(scheduled, live) == "status monitor already running"
    assert (world.repo.reads[stream.id], world.repo.stream_writes[stream.id]) == (reads, 1)
    assert [t["attempt"] for t in status_tasks(world)] == [0]  # the same task, kept once


def test_stop_writes_the_stream_once_with_its_recording_monitor_started(world: World) -> None:
    stream = world.service.create(people.OWNER, StreamCreateRequest(title="t"))
    world.broadcasts.start(people.OWNER, stream.id)
    world.events.apply_live_event(
        stream.cloudflare_id or "", "live_input.connected", world.clock.now(), None
    )
    live = world.repo.streams[stream.id]
    writes = world.repo.stream_writes[stream.id]

    world.clock.advance(60)
    world.broadcasts.stop(people.OWNER, stream.id)

    stopped = world.repo.streams[stream.id]
    assert world.repo.stream_writes[stream.id] == writes + 1
    assert stopped.recording_monitor is not None and stopped.recording_monitor.state == "running"
    assert [t["attempt"] for t in recording_tasks(world)] == [0]
    reads = world.repo.reads[stream.id]
    assert world.changes.on_stream_written(live, stopped) == "recording monitor already running"
    assert world.repo.reads[stream.id] == reads


def part(uid: str, live_input: str, start: datetime, state: str, minutes: int) -> Recording:
    """A video of a service as Cloudflare lists it: ``minutes`` long once ready."""
    ready = state == "ready"
    return Recording(
        video_uid=uid,
        live_input_uid=live_input,
        state=state,
        ready_to_stream=ready,
        duration=minutes * 60.0 if ready else None,
        hls_url=f"https://v/{uid}.m3u8",
        created=start,
        modified=start + timedelta(minutes=minutes) if ready else start,
    )


def broadcast(world: World, stream_id: str, minutes: int) -> datetime:
    """Start, the encoder on air, Stop after ``minutes``: when the broadcast started."""
    world.broadcasts.start(people.OWNER, stream_id)
    started = world.clock.now()
    world.clock.advance(5)
    uid = world.repo.streams[stream_id].cloudflare_id or ""
    world.events.apply_live_event(uid, "live_input.connected", world.clock.now(), None)
    world.clock.advance(minutes * 60)
    return started


def new_broadcast(world: World, minutes: int) -> tuple[str, str, datetime]:
    """A new stream broadcast for ``minutes`` (not stopped yet): it, its input, its start."""
    stream_id = world.service.create(people.OWNER, StreamCreateRequest(title="t")).id
    started = broadcast(world, stream_id, minutes)
    return stream_id, world.repo.streams[stream_id].cloudflare_id or "", started


def test_a_service_split_in_two_videos_is_awaited_whole_and_the_longest_part_shown(
    world: World,
) -> None:
    # The encoder came back after Cloudflare's reconnect window but within ours: Cloudflare
    # made a second video of the same service, still recording at Stop.
    stream_id, uid, started = new_broadcast(world, 45)
    first = part("first-half", uid, started, "ready", 30)
    second_at = started + timedelta(minutes=36)
    world.provider.recordings[uid] = [
        first,
        part("second-half", uid, second_at, "live-inprogress", 0),
    ]

    world.broadcasts.stop(people.OWNER, stream_id)

    assert recording_tasks(world), "the second half is awaited"
    generation = int(str(recording_tasks(world)[0]["generation"]))
    checks = [world.monitors.run_check("recording", stream_id, generation, n) for n in range(4)]
    assert checks == ["rescheduled"] * 4  # past the budget of 3: a part is still recording
    world.provider.recordings[uid] = [first, part("second-half", uid, second_at, "ready", 9)]
    assert world.monitors.run_check("recording", stream_id, generation, 4) == "done"

    view = world.listings.get(None, stream_id)
    assert (view.recording_status, view.video_id) == ("ready", "first-half")
    assert {r.id for r in view.recordings} == {"first-half", "second-half"}


def test_a_video_recording_since_before_the_broadcast_began_is_awaited(world: World) -> None:
    # Stop, then Start again while the encoder kept sending: Cloudflare's video began before
    # this broadcast did, and is still being recorded.
    stream_id = start_and_stop(world)
    generation = int(str(recording_tasks(world)[0]["generation"]))
    uid = world.repo.streams[stream_id].cloudflare_id or ""
    long_ago = T0 - timedelta(hours=1)
    world.provider.recordings[uid] = [part("on-since", uid, long_ago, "live-inprogress", 0)]

    outcomes = [world.monitors.run_check("recording", stream_id, generation, n) for n in range(5)]

    assert outcomes == ["rescheduled"] * 5
    assert world.listings.get(None, stream_id).recording_status == "processing"


def test_a_sound_check_before_the_service_does_not_make_the_service_recorded(world: World) -> None:
    stream_id, uid, check_start = new_broadcast(world, 2)
    sound_check = part("sound-check", uid, check_start, "ready", 2)
    world.provider.recordings[uid] = [sound_check]
    world.broadcasts.stop(people.OWNER, stream_id)
    assert world.listings.get(None, stream_id).video_id == "sound-check"

    world.clock.advance(3600)
    service_start = broadcast(world, stream_id, 60)
    world.broadcasts.stop(people.OWNER, stream_id)

    # The service's recording is on its way: the page says so (the sound check's being ready
    # does not make the service's "ready").
    assert world.listings.get(None, stream_id).recording_status == "processing"
    generation = int(str(recording_tasks(world)[-1]["generation"]))
    world.provider.recordings[uid] = [sound_check, part("service", uid, service_start, "ready", 60)]
    assert world.monitors.run_check("recording", stream_id, generation, 0) == "done"
    view = world.listings.get(None, stream_id)
    assert (view.recording_status, view.video_id) == ("ready", "service")


def test_a_missing_service_recording_is_missing_whatever_a_sound_check_left(world: World) -> None:
    stream_id, uid, check_start = new_broadcast(world, 2)
    world.provider.recordings[uid] = [part("sound-check", uid, check_start, "ready", 2)]
    world.broadcasts.stop(people.OWNER, stream_id)
    world.clock.advance(3600)
    broadcast(world, stream_id, 60)
    world.broadcasts.stop(people.OWNER, stream_id)
    generation = int(str(recording_tasks(world)[-1]["generation"]))

    outcomes = [world.monitors.run_check("recording", stream_id, generation, n) for n in range(3)]

    assert outcomes[-1] == "gave_up"
    view = world.listings.get(None, stream_id)
    assert (view.recording_status, view.video_id) == ("missing", "sound-check")
    stream = world.repo.streams[stream_id]
    assert stream.last_error is not None and stream.last_error.code == "RECORDING_NOT_FOUND"


def browser_broadcast(world: World) -> tuple[str, str]:
    """A broadcast from the browser camera (WHIP) whose tab then closed without ending its
    session: the stream and its live input."""
    stream_id = world.service.create(people.OWNER, StreamCreateRequest(title="t")).id
    world.broadcasts.publish_whip(people.OWNER, stream_id, "v=0\r\n")
    uid = world.repo.streams[stream_id].cloudflare_id or ""
    world.clock.advance(5)
    world.events.apply_live_event(uid, "live_input.connected", world.clock.now(), None)
    world.clock.advance(60)
    world.events.apply_live_event(uid, "live_input.disconnected", world.clock.now(), None)
    return stream_id, uid


def test_a_browser_broadcast_is_looked_at_briefly_and_never_called_missing(world: World) -> None:
    monitors = capped(world, checks=20, hard_cap=720)  # an RTMP broadcast's budget: 20
    stream_id, _ = browser_broadcast(world)
    world.broadcasts.stop(people.OWNER, stream_id)
    generation = int(str(recording_tasks(world)[0]["generation"]))

    outcomes = [monitors.run_check("recording", stream_id, generation, n) for n in range(3)]

    assert outcomes == ["rescheduled", "rescheduled", "gave_up"]
    assert world.repo.streams[stream_id].last_error is None
    assert world.listings.get(None, stream_id).recording_status == "unavailable"


def test_an_encoder_taking_over_from_a_closed_browser_tab_gets_its_recording(
    world: World,
) -> None:
    # The tab never ended its session, so the encoder's connection reads as the browser's:
    # the stream still says "whip". Cloudflare recorded the encoder all the same.
    stream_id, uid = browser_broadcast(world)
    world.clock.advance(30)
    obs_at = world.clock.now()
    world.events.apply_live_event(uid, "live_input.connected", obs_at, None)
    assert world.repo.streams[stream_id].ingest_protocol == "whip"
    world.clock.advance(3600)
    world.provider.recordings[uid] = [part("service", uid, obs_at, "live-inprogress", 0)]
    world.broadcasts.stop(people.OWNER, stream_id)
    generation = int(str(recording_tasks(world)[0]["generation"]))

    outcomes = [world.monitors.run_check("recording", stream_id, generation, n) for n in range(5)]
    assert outcomes == ["rescheduled"] * 5  # past the browser's few checks: a video is coming
    assert world.listings.get(None, stream_id).recording_status == "processing"
    world.provider.recordings[uid] = [part("service", uid, obs_at, "ready", 60)]
    assert world.monitors.run_check("recording", stream_id, generation, 5) == "done"

    view = world.listings.get(None, stream_id)
    assert (view.recording_status, view.video_id) == ("ready", "service")


def repair_tools(world: World) -> RepairTools:
    return RepairTools(world.backends, monitors=world.monitors, policy=POLICY)


def test_sync_recording_resumes_a_chain_that_stopped_past_its_lost_check(world: World) -> None:
    stream_id = start_and_stop(world)
    generation = int(str(recording_tasks(world)[0]["generation"]))
    assert world.monitors.run_check("recording", stream_id, generation, 0) == "rescheduled"
    # Check 1 was queued, then failed for good: nothing runs the chain any more, and Cloud
    # Tasks would refuse its name again.
    world.clock.advance(15 * 60)

    repair_tools(world).sync_recording(people.OWNER, stream_id)

    assert [t["attempt"] for t in recording_tasks(world)] == [0, 1, 2]
    assert world.listings.get(None, stream_id).recording_status == "processing"
    uid = world.repo.streams[stream_id].cloudflare_id or ""
    world.provider.recordings[uid] = [video("service", "ready", 1, uid)]
    # The lost check, should it come after all, checks nothing (it only queues check 2,
    # which the queue already holds).
    assert world.monitors.run_check("recording", stream_id, generation, 1) == "requeued"
    assert [t["attempt"] for t in recording_tasks(world)] == [0, 1, 2]
    assert world.monitors.run_check("recording", stream_id, generation, 2) == "done"
    assert world.listings.get(None, stream_id).recording_status == "ready"


def test_sync_recording_leaves_a_live_chain_its_next_check(world: World) -> None:
    stream_id = start_and_stop(world)
    generation = int(str(recording_tasks(world)[0]["generation"]))
    assert world.monitors.run_check("recording", stream_id, generation, 0) == "rescheduled"
    world.clock.advance(20)

    repair_tools(world).sync_recording(people.OWNER, stream_id)

    assert [t["attempt"] for t in recording_tasks(world)] == [0, 1]  # the same check, by name
    assert world.monitors.run_check("recording", stream_id, generation, 1) == "rescheduled"


def test_a_monitor_that_gave_up_runs_again_once_cloudflare_makes_the_video(world: World) -> None:
    stream_id = start_and_stop(world)
    generation = int(str(recording_tasks(world)[0]["generation"]))
    outcomes = [world.monitors.run_check("recording", stream_id, generation, n) for n in range(3)]
    assert outcomes[-1] == "gave_up"
    assert world.listings.get(None, stream_id).recording_status == "missing"
    uid = in_the_making(world, stream_id, "inprogress")  # Cloudflare was slow to list it

    repair_tools(world).sync_recording(people.OWNER, stream_id)

    assert world.listings.get(None, stream_id).recording_status == "processing"
    assert world.repo.streams[stream_id].last_error is None
    next_check = recording_tasks(world)[-1]["attempt"]
    assert next_check == 4
    world.provider.recordings[uid] = [video("service", "ready", 1, uid)]
    assert world.monitors.run_check("recording", stream_id, generation, 4) == "done"
    assert world.listings.get(None, stream_id).recording_status == "ready"


def test_sync_recording_of_a_recording_missing_for_good_starts_nothing(world: World) -> None:
    stream_id = start_and_stop(world)
    generation = int(str(recording_tasks(world)[0]["generation"]))
    for attempt in range(3):
        world.monitors.run_check("recording", stream_id, generation, attempt)
    queued = len(recording_tasks(world))

    repair_tools(world).sync_recording(people.OWNER, stream_id)

    assert len(recording_tasks(world)) == queued
    assert world.listings.get(None, stream_id).recording_status == "missing"


def test_stop_closes_the_ingest_and_the_next_start_or_browser_opens_it(world: World) -> None:
    stream_id = start_and_stop(world)
    uid = world.repo.streams[stream_id].cloudflare_id or ""
    assert uid in world.provider.disabled  # an encoder left on is cut off, its video finished

    world.broadcasts.start(people.OWNER, stream_id)
    assert uid not in world.provider.disabled
    world.broadcasts.stop(people.OWNER, stream_id)
    assert uid in world.provider.disabled

    world.broadcasts.publish_whip(people.OWNER, stream_id, "v=0\r\n")
    assert uid not in world.provider.disabled


def test_a_first_start_asks_cloudflare_nothing_more(world: World) -> None:
    stream_id = world.service.create(people.OWNER, StreamCreateRequest(title="t")).id
    world.provider.calls.clear()
    world.broadcasts.start(people.OWNER, stream_id)
    assert "set_input_enabled" not in world.provider.calls


def stopped_while_cloudflare_fails(world: World) -> tuple[str, StreamStatus]:
    """A stream started, then stopped while Cloudflare failed to close its ingest: it, and
    the status Stop answered."""
    stream_id = world.service.create(people.OWNER, StreamCreateRequest(title="t")).id
    world.broadcasts.start(people.OWNER, stream_id)
    world.provider.fail("set_input_enabled", ProviderUnavailableError("timeout"))
    return stream_id, world.broadcasts.stop(people.OWNER, stream_id).status


def test_stop_ends_the_broadcast_even_when_cloudflare_cannot_close_the_ingest(
    world: World,
) -> None:
    stream_id, answered = stopped_while_cloudflare_fails(world)

    assert answered == StreamStatus.COMPLETED
    assert world.repo.streams[stream_id].status == StreamStatus.COMPLETED
    assert not world.repo.streams[stream_id].ingest_closed
    assert recording_tasks(world)


def test_a_start_cloudflare_cannot_open_the_ingest_for_is_refused_not_half_live(
    world: World,
) -> None:
    stream_id = start_and_stop(world)
    world.provider.fail("set_input_enabled", ProviderUnavailableError("timeout"))

    with pytest.raises(UnavailableError, match="open the stream to encoders again"):
        world.broadcasts.start(people.OWNER, stream_id)

    assert world.repo.streams[stream_id].status == StreamStatus.COMPLETED


def test_a_restart_leaves_the_last_broadcasts_chain_judging_nothing(world: World) -> None:
    # Stop, then Start again within the chain's ten minutes: the earlier chain must not call
    # the new (live) broadcast's recording missing; the new end's chain attaches both.
    stream_id = start_and_stop(world)
    generation = int(str(recording_tasks(world)[0]["generation"]))
    uid = world.repo.streams[stream_id].cloudflare_id or ""
    world.clock.advance(60)
    world.broadcasts.start(people.OWNER, stream_id)

    outcomes = [world.monitors.run_check("recording", stream_id, generation, n) for n in range(3)]

    assert outcomes == ["stale"] * 3
    assert world.repo.streams[stream_id].last_error is None
    world.provider.recordings[uid] = [video("earlier", "ready", 1, uid)]
    world.clock.advance(600)
    world.broadcasts.stop(people.OWNER, stream_id)
    assert {e.video_uid for e in world.repo.streams[stream_id].recordings} == {"earlier"}


def test_a_browser_broadcast_after_a_recorded_service_keeps_the_service_on_the_page(
    world: World,
) -> None:
    stream_id, uid, started = new_broadcast(world, 60)
    world.provider.recordings[uid] = [part("service", uid, started, "ready", 60)]
    world.broadcasts.stop(people.OWNER, stream_id)
    world.clock.advance(3600)

    world.broadcasts.publish_whip(people.OWNER, stream_id, "v=0\r\n")  # a goodbye, not recorded
    world.clock.advance(5)
    world.events.apply_live_event(uid, "live_input.connected", world.clock.now(), None)
    world.clock.advance(300)
    world.broadcasts.stop(people.OWNER, stream_id)
    generation = int(str(recording_tasks(world)[-1]["generation"]))
    for attempt in range(3):
        world.monitors.run_check("recording", stream_id, generation, attempt)

    view = world.listings.get(None, stream_id)
    assert (view.recording_status, view.video_id) == ("ready", "service")


def test_a_stop_after_the_broadcast_already_ended_closes_nothing(world: World) -> None:
    # The disconnect ended it first (or Stop is pressed twice): closing now could land behind
    # a Start made meanwhile.
    stream_id = world.service.create(people.OWNER, StreamCreateRequest(title="t")).id
    broadcast(world, stream_id, 10)
    world.repo.update(stream_id, lambda s: s.ended_broadcast(world.clock.now()))
    world.provider.calls.clear()

    world.broadcasts.stop(people.OWNER, stream_id)

    assert "set_input_enabled" not in world.provider.calls
    assert not world.repo.streams[stream_id].ingest_closed


def test_credentials_after_a_stop_open_the_ingest_for_an_encoder_that_starts_it(
    world: World,
) -> None:
    # The credentials-then-poll flow: no Start; the encoder's connection begins the broadcast.
    stream_id = start_and_stop(world)
    uid = world.repo.streams[stream_id].cloudflare_id or ""
    assert world.repo.streams[stream_id].ingest_closed

    world.broadcasts.credentials(people.OWNER, stream_id)

    assert uid not in world.provider.disabled
    assert not world.repo.streams[stream_id].ingest_closed
    world.clock.advance(60)
    world.events.apply_live_event(uid, "live_input.connected", world.clock.now(), None)
    assert world.repo.streams[stream_id].status == StreamStatus.LIVE


def test_a_start_after_a_stop_that_could_not_close_opens_it_anyway_and_goes_live(
    world: World,
) -> None:
    stream_id, _ = stopped_while_cloudflare_fails(world)
    world.provider.fail("set_input_enabled", ProviderUnavailableError("timeout"))

    world.broadcasts.start(people.OWNER, stream_id)  # most likely open: not refused for it

    assert world.repo.streams[stream_id].status == StreamStatus.LIVE


def test_a_video_cloudflare_never_finished_long_ago_holds_no_later_broadcast_back(
    world: World,
) -> None:
    stream_id = start_and_stop(world)
    generation = int(str(recording_tasks(world)[0]["generation"]))
    uid = world.repo.streams[stream_id].cloudflare_id or ""
    orphan = part("orphaned", uid, T0 - timedelta(days=3), "live-inprogress", 0)
    world.provider.recordings[uid] = [orphan]

    outcomes = [world.monitors.run_check("recording", stream_id, generation, n) for n in range(3)]

    assert outcomes[-1] == "gave_up"


def status_reads(world: World, stream_id: str, connection: str) -> int:
    """The live input's connection as Cloudflare will report it; the status chain's generation."""
    uid = world.repo.streams[stream_id].cloudflare_id or ""
    spec, live_input = world.provider.inputs[uid]
    world.provider.inputs[uid] = (spec, live_input.model_copy(update={"connection": connection}))
    return int(str(status_tasks(world)[-1]["generation"]))


def test_a_start_nobody_came_to_ends_after_the_grace_though_cloudflare_says_nothing(
    world: World,
) -> None:
    stream_id = world.service.create(people.OWNER, StreamCreateRequest(title="t")).id
    world.broadcasts.start(people.OWNER, stream_id)
    generation = status_reads(world, stream_id, "unknown")  # a settings change's status

    outcomes = [world.monitors.run_check("status", stream_id, generation, n) for n in range(2)]

    assert outcomes == ["rescheduled", "done"]
    assert world.repo.streams[stream_id].status == StreamStatus.COMPLETED


def test_a_broadcast_on_air_is_not_ended_when_cloudflare_says_nothing(world: World) -> None:
    stream_id = world.service.create(people.OWNER, StreamCreateRequest(title="t")).id
    world.broadcasts.publish_whip(people.OWNER, stream_id, "v=0\r\n")  # never recorded
    generation = status_reads(world, stream_id, "unknown")

    outcomes = [world.monitors.run_check("status", stream_id, generation, n) for n in range(4)]

    assert outcomes == ["rescheduled"] * 4
    assert world.repo.streams[stream_id].status == StreamStatus.LIVE


def test_a_broadcast_on_air_for_the_whole_status_chain_is_ended_and_cut_off(world: World) -> None:
    # An encoder left on overnight with nobody to press Stop (5 checks here, 12 h deployed).
    stream_id = world.service.create(people.OWNER, StreamCreateRequest(title="t")).id
    world.broadcasts.start(people.OWNER, stream_id)
    generation = status_reads(world, stream_id, "connected")

    outcomes = [world.monitors.run_check("status", stream_id, generation, n) for n in range(5)]

    assert outcomes == ["rescheduled"] * 4 + ["done"]
    stream = world.repo.streams[stream_id]
    assert stream.status == StreamStatus.COMPLETED and stream.ingest_closed
    assert stream.cloudflare_id in world.provider.disabled
    assert stream.last_error is not None and stream.last_error.code == "MAXIMUM_DURATION"
    assert recording_tasks(world), "its recording is watched for, as after Stop"


def test_stopping_a_browser_broadcast_says_it_is_not_recorded(world: World) -> None:
    stream_id, _ = browser_broadcast(world)

    stopped = world.broadcasts.stop(people.OWNER, stream_id)

    assert stopped.message == "Stream stopped; browser broadcasts are not recorded"
