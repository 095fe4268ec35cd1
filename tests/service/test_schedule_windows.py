"""Schedule windows over fakes: "starting soon" before the start, ended after the planned end
plus the over-run unless still on air (then extended, to the hard maximum), managers' extend and
end-now, and rescheduling that leaves every earlier task stale."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from common.errors import ConflictError, PermissionDeniedError
from common.models.api import StreamCreateRequest, StreamPublicView, StreamUpdateRequest
from common.models.domain import Stream, StreamStatus
from common.models.recording_rules import schedule_phase
from common.ports import ProviderUnavailableError, ScheduledTask
from common.services.schedule_windows import WINDOW_TASK_PATH, EdgeOutcome
from common.services.stream_info import StreamInfoService
from tests import people
from tests.conftest import World


def window_tasks(world: World) -> list[ScheduledTask]:
    return [t for t in world.tasks.tasks if t.path == WINDOW_TASK_PATH]


def run(world: World, task: ScheduledTask) -> EdgeOutcome:
    """Deliver ``task`` at its time (the clock moves there if it has not yet)."""
    payload = task.payload
    return world.windows.run_edge(
        str(payload["streamId"]),
        "soon" if payload["edge"] == "soon" else "close",
        int(str(payload["revision"])),
    )


class Scheduled:
    """A stream planned to start in two hours and to last an hour."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.start = world.clock.now() + timedelta(hours=2)
        self.end = self.start + timedelta(hours=1)
        request = StreamCreateRequest(
            title="Funeral", scheduled_start_time=self.start, scheduled_end_time=self.end
        )
        self.id = world.service.create(people.OWNER, request).id
        self.uid = self.stream.cloudflare_id or ""

    @classmethod
    def on_air_from_its_start(cls, world: World) -> Scheduled:
        """The scheduled stream, its start come, Start pressed and the encoder sending."""
        scheduled = cls(world)
        scheduled.at(scheduled.start)
        scheduled.on_air()
        return scheduled

    @property
    def stream(self) -> Stream:
        return self.world.repo.streams[self.id]

    @property
    def revision(self) -> int:
        window = self.stream.schedule_window
        assert window is not None
        return window.revision

    def task(self, edge: str) -> ScheduledTask:
        """The newest queued task of ``edge``."""
        return [t for t in window_tasks(self.world) if t.payload["edge"] == edge][-1]

    def at(self, when: datetime) -> None:
        self.world.clock.current = when

    def connection(self, state: str) -> None:
        spec, live_input = self.world.provider.inputs[self.uid]
        self.world.provider.inputs[self.uid] = (
            spec,
            live_input.model_copy(update={"connection": state}),
        )

    def on_air(self) -> None:
        """Start pressed and the encoder sending."""
        self.world.broadcasts.start(people.OWNER, self.id)
        self.connection("connected")


def test_a_scheduled_stream_gets_a_task_at_each_edge_of_its_window(world: World) -> None:
    scheduled = Scheduled(world)
    window = scheduled.stream.schedule_window
    assert window is not None
    # The revision is the arming's time in ms: never reused, not even after a clear.
    assert (window.revision, window.state) == (
        int(world.clock.now().timestamp() * 1000),
        "upcoming",
    )
    assert window.closes_at == scheduled.end + timedelta(minutes=30)
    assert window.latest_close == scheduled.end + timedelta(hours=2)
    delays = {str(t.payload["edge"]): t.delay_s for t in window_tasks(world)}
    assert delays == {"soon": 90 * 60, "close": 3.5 * 3600}
    assert schedule_phase(scheduled.stream) == "upcoming"


def test_it_reads_starting_soon_with_a_countdown_from_the_lead_before_its_start(
    world: World,
) -> None:
    scheduled = Scheduled(world)
    scheduled.at(scheduled.start - timedelta(minutes=30))
    assert run(world, scheduled.task("soon")) == "starting_soon"
    view = StreamPublicView.of(scheduled.stream)
    assert view.schedule_phase == "starting_soon"
    info = StreamInfoService(
        repo=world.repo, memorials=world.memorials, clock=world.clock, delivery_base="https://x"
    )
    schedule = info.status(None, scheduled.id).schedule
    assert schedule is not None
    assert schedule.phase == "starting_soon"
    assert schedule.startsInSeconds == 30 * 60
    assert schedule.scheduledStartTime == scheduled.start
    # A duplicated delivery changes nothing.
    assert run(world, scheduled.task("soon")) == "stale"


def test_a_stream_made_inside_the_lead_starts_as_starting_soon_with_no_soon_task(
    world: World,
) -> None:
    start = world.clock.now() + timedelta(minutes=10)
    view = world.service.create(
        people.OWNER, StreamCreateRequest(title="t", scheduled_start_time=start)
    )
    window = world.repo.streams[view.id].schedule_window
    assert window is not None and window.state == "starting_soon"
    # No planned end: the default duration plans one (an hour here), so it is still ended.
    assert window.planned_end == start + timedelta(hours=1)
    assert [t.payload["edge"] for t in window_tasks(world)] == ["close"]


def test_forgotten_stop_the_close_ends_the_broadcast_once_nothing_is_on_air(
    world: World,
) -> None:
    scheduled = Scheduled.on_air_from_its_start(world)
    scheduled.connection("disconnected")
    scheduled.at(scheduled.end + timedelta(minutes=30))
    assert run(world, scheduled.task("close")) == "ended"
    stream = scheduled.stream
    assert stream.status == StreamStatus.COMPLETED
    assert stream.end_time == world.clock.now()
    assert stream.schedule_window is not None
    assert stream.schedule_window.closed_by == "window"
    assert schedule_phase(stream) == "ended"
    # Its recording is watched for, as after Stop; the input stays open for a late encoder.
    assert stream.recording_monitor is not None and stream.recording_monitor.state == "running"
    assert stream.cloudflare_id not in world.provider.disabled
    assert any(t.payload.get("kind") == "recording" for t in world.tasks.tasks)
    assert run(world, scheduled.task("close")) == "stale"


def test_on_air_at_the_close_it_is_extended_step_by_step_to_the_hard_maximum(
    world: World,
) -> None:
    scheduled = Scheduled.on_air_from_its_start(world)
    closes = []
    outcomes = []
    for _ in range(7):
        task = scheduled.task("close")
        window = scheduled.stream.schedule_window
        assert window is not None
        scheduled.at(window.closes_at)
        closes.append(window.closes_at - scheduled.end)
        outcomes.append(run(world, task))
    assert outcomes == ["extended"] * 6 + ["ended"]
    assert closes == [timedelta(minutes=30 + 15 * step) for step in range(7)]
    stream = scheduled.stream
    assert stream.status == StreamStatus.COMPLETED
    assert stream.schedule_window is not None
    assert stream.schedule_window.closed_by == "hard_maximum"
    assert stream.schedule_window.extensions == 6
    # Still sending: Cloudflare cuts the encoder off too, as after Stop.
    assert stream.cloudflare_id in world.provider.disabled


def test_a_close_that_cannot_read_the_connection_keeps_the_service_on(world: World) -> None:
    scheduled = Scheduled(world)
    scheduled.at(scheduled.start)
    world.broadcasts.start(people.OWNER, scheduled.id)
    scheduled.at(scheduled.end + timedelta(minutes=30))
    world.provider.fail("get_live_input", ProviderUnavailableError("down"))
    assert run(world, scheduled.task("close")) == "extended"
    assert scheduled.stream.status == StreamStatus.LIVE


def test_a_service_that_never_went_live_stops_counting_down_at_the_close(world: World) -> None:
    scheduled = Scheduled(world)
    scheduled.at(scheduled.end + timedelta(minutes=30))
    assert run(world, scheduled.task("close")) == "closed"
    stream = scheduled.stream
    assert stream.status == StreamStatus.SCHEDULED
    assert schedule_phase(stream) == "ended"


def test_rescheduling_moves_the_tasks_and_none_of_the_old_ones_acts(world: World) -> None:
    scheduled = Scheduled(world)
    old_soon, old_close = scheduled.task("soon"), scheduled.task("close")
    first = scheduled.revision
    later = scheduled.start + timedelta(days=1)
    request = StreamUpdateRequest(
        scheduled_start_time=later, scheduled_end_time=later + timedelta(hours=1)
    )
    world.service.update(people.OWNER, scheduled.id, request)
    window = scheduled.stream.schedule_window
    assert window is not None
    assert (window.revision, window.opens_at) == (first + 1, later)
    assert {t.name for t in window_tasks(world)} >= {
        f"window-soon-{scheduled.id}-{first + 1}",
        f"window-close-{scheduled.id}-{first + 1}",
    }
    scheduled.at(scheduled.end + timedelta(minutes=30))
    assert run(world, old_soon) == "stale"
    assert run(world, old_close) == "stale"
    assert scheduled.stream.schedule_window == window


def test_an_unrelated_edit_does_not_rearm_the_window(world: World) -> None:
    scheduled = Scheduled(world)
    queued, first = len(world.tasks.tasks), scheduled.revision
    world.service.update(people.OWNER, scheduled.id, StreamUpdateRequest(title="Funeral of Ada"))
    assert scheduled.revision == first
    assert len(world.tasks.tasks) == queued


def test_managers_extend_the_planned_end_and_the_close_moves_with_it(world: World) -> None:
    scheduled = Scheduled(world)
    old_close, first = scheduled.task("close"), scheduled.revision
    reply = world.windows.extend(people.OWNER, scheduled.id, 45)
    assert reply.schedule is not None
    assert reply.schedule.scheduledEndTime == scheduled.end + timedelta(minutes=45)
    window = scheduled.stream.schedule_window
    assert reply.schedule.scheduleWindow == window
    assert window is not None and window.revision == first + 1
    assert window.closes_at == scheduled.end + timedelta(minutes=75)
    assert scheduled.task("close").name == f"window-close-{scheduled.id}-{first + 1}"
    scheduled.at(scheduled.end + timedelta(minutes=30))
    assert run(world, old_close) == "stale"


def test_extending_after_the_planned_end_counts_from_now(world: World) -> None:
    scheduled = Scheduled.on_air_from_its_start(world)
    scheduled.at(scheduled.end + timedelta(minutes=10))
    world.windows.extend(people.OWNER, scheduled.id, 20)
    assert scheduled.stream.scheduled_end_time == world.clock.now() + timedelta(minutes=20)


def test_only_those_who_run_the_service_extend_or_end_it(world: World) -> None:
    scheduled = Scheduled(world)
    with pytest.raises(PermissionDeniedError):
        world.windows.extend(people.STRANGER, scheduled.id, 15)
    with pytest.raises(PermissionDeniedError):
        world.windows.end_now(people.STRANGER, scheduled.id)


def test_a_stream_without_a_schedule_has_no_window_to_extend(world: World) -> None:
    view, _ = world.new_stream()
    assert world.repo.streams[view.id].schedule_window is None
    assert window_tasks(world) == []
    with pytest.raises(ConflictError, match="no schedule window"):
        world.windows.extend(people.OWNER, view.id, 15)


def test_end_now_stops_a_live_service_and_closes_its_window(world: World) -> None:
    scheduled = Scheduled.on_air_from_its_start(world)
    reply = world.windows.end_now(people.OWNER, scheduled.id)
    assert reply.status == StreamStatus.COMPLETED
    assert reply.schedule is not None and reply.schedule.phase == "ended"
    assert reply.schedule.scheduleWindow is not None
    assert reply.schedule.scheduleWindow.closed_by == "manager"
    scheduled.at(scheduled.end + timedelta(minutes=30))
    assert run(world, scheduled.task("close")) == "stale"


def test_end_now_before_the_start_stops_the_countdown(world: World) -> None:
    scheduled = Scheduled(world)
    reply = world.windows.end_now(people.OWNER, scheduled.id)
    assert reply.status == StreamStatus.SCHEDULED
    assert schedule_phase(scheduled.stream) == "ended"
    with pytest.raises(ConflictError, match="window has closed"):
        world.windows.extend(people.OWNER, scheduled.id, 15)


def test_an_edge_further_off_than_cloud_tasks_allows_hops_until_it_is_due(world: World) -> None:
    start = world.clock.now() + timedelta(days=90)
    view = world.service.create(
        people.OWNER, StreamCreateRequest(title="t", scheduled_start_time=start)
    )
    soon = next(t for t in window_tasks(world) if t.payload["edge"] == "soon")
    assert soon.delay_s == timedelta(days=29).total_seconds()
    hops = 0
    while True:
        world.clock.advance(soon.delay_s)
        outcome = run(world, soon)
        if outcome != "waiting":
            break
        hops += 1
        soon = window_tasks(world)[-1]
        assert soon.payload["edge"] == "soon" and soon.delay_s <= timedelta(days=29).total_seconds()
    assert (outcome, hops) == ("starting_soon", 3)
    assert world.clock.now() == start - timedelta(minutes=30)
    assert schedule_phase(world.repo.streams[view.id]) == "starting_soon"


def test_a_schedule_written_without_a_window_is_armed_by_the_stream_trigger(world: World) -> None:
    view, _ = world.new_stream()
    start = world.clock.now() + timedelta(hours=3)
    # As an earlier backend (or the site) writes it: the schedule, no window.
    written = world.repo.update(
        view.id, lambda s: s.model_copy(update={"scheduled_start_time": start})
    )
    assert written.schedule_window is None
    world.changes.on_stream_written(None, written)
    window = world.repo.streams[view.id].schedule_window
    assert window is not None and window.opens_at == start
    assert {str(t.payload["edge"]) for t in window_tasks(world)} == {"soon", "close"}
    # The write that armed it triggers again: nothing more to do.
    queued = len(world.tasks.tasks)
    world.changes.on_stream_written(written, world.repo.streams[view.id])
    assert len(world.tasks.tasks) == queued


def test_clearing_and_setting_the_schedule_again_never_reuses_a_revision(world: World) -> None:
    scheduled = Scheduled(world)
    old_close, first = scheduled.task("close"), scheduled.revision
    world.service.update(people.OWNER, scheduled.id, StreamUpdateRequest(scheduled_start_time=None))
    assert scheduled.stream.schedule_window is None
    world.clock.advance(1)
    request = StreamUpdateRequest(
        scheduled_start_time=scheduled.start - timedelta(minutes=30),
        scheduled_end_time=scheduled.end - timedelta(minutes=30),
    )
    world.service.update(people.OWNER, scheduled.id, request)
    assert scheduled.revision > first
    assert scheduled.task("close").name != old_close.name
    scheduled.at(scheduled.end + timedelta(minutes=30))
    assert run(world, old_close) == "stale"


def test_a_publisher_that_just_dropped_at_the_close_may_still_come_back(world: World) -> None:
    world.monitors.policy = replace(world.monitors.policy, recording_timeout_seconds=300)
    scheduled = Scheduled.on_air_from_its_start(world)
    world.events.apply_live_event(scheduled.uid, "live_input.connected", world.clock.now(), None)
    scheduled.at(scheduled.end + timedelta(minutes=30))
    world.events.apply_live_event(scheduled.uid, "live_input.disconnected", world.clock.now(), None)
    scheduled.connection("disconnected")
    # Inside the reconnect window (the recording timeout): the service goes on.
    assert run(world, scheduled.task("close")) == "extended"
    assert scheduled.stream.status == StreamStatus.LIVE
    # Never back: ended when it dropped, as the status monitor would have said.
    dropped = world.clock.now()
    scheduled.at(dropped + timedelta(minutes=15))
    assert run(world, scheduled.task("close")) == "ended"
    assert scheduled.stream.end_time == dropped


def test_a_window_armed_after_its_hard_maximum_does_not_end_a_service_on_air(
    world: World,
) -> None:
    view, uid = world.new_stream()
    world.broadcasts.start(people.OWNER, view.id)
    spec, live_input = world.provider.inputs[uid]
    world.provider.inputs[uid] = (spec, live_input.model_copy(update={"connection": "connected"}))
    past = world.clock.now() - timedelta(hours=7)
    request = StreamUpdateRequest(scheduled_start_time=past)
    world.service.update(people.OWNER, view.id, request)
    close = [t for t in window_tasks(world) if t.payload["edge"] == "close"][-1]
    assert close.delay_s == 0
    assert run(world, close) == "extended"
    window = world.repo.streams[view.id].schedule_window
    assert window is not None
    # One step on from now, not through the past; the hard maximum counts from the arming.
    assert window.closes_at == world.clock.now() + timedelta(minutes=15)
    assert window.latest_close == world.clock.now() + timedelta(hours=2)


def test_a_service_that_is_over_or_called_off_cannot_be_extended(world: World) -> None:
    scheduled = Scheduled(world)
    world.repo.update(
        scheduled.id, lambda s: s.model_copy(update={"status": StreamStatus.CANCELLED})
    )
    with pytest.raises(ConflictError, match="cancelled"):
        world.windows.extend(people.OWNER, scheduled.id, 15)


def test_a_close_that_runs_late_still_keeps_the_service_on_up_to_the_hard_maximum(
    world: World,
) -> None:
    scheduled = Scheduled.on_air_from_its_start(world)
    window = scheduled.stream.schedule_window
    assert window is not None
    scheduled.at(window.closes_at + timedelta(minutes=10))  # the queue was slow
    outcomes = []
    while (outcome := run(world, scheduled.task("close"))) == "extended":
        outcomes.append(outcome)
        window = scheduled.stream.schedule_window
        assert window is not None
        scheduled.at(window.closes_at)
    # Steps from when each close ran; the last one stops at the hard maximum, not before it.
    assert outcome == "ended" and len(outcomes) == 6
    assert world.clock.now() == window.latest_close
    assert scheduled.stream.schedule_window is not None
    assert scheduled.stream.schedule_window.closed_by == "hard_maximum"
