"""Services on a schedule: a stream with a start time reads "starting soon" before it, and one
the family forgot to Stop is ended after its planned end, but never while an encoder is on air.

Two Cloud Tasks mark a window's edges: ``soon`` (the lead before the start) and ``close`` (the
planned end plus the over-run). Each carries the window's ``revision``; rescheduling or
extending re-arms the window under a new revision, so every task queued before it is stale
and acts on nothing. A close that finds the broadcast on air moves the close on by a step, up
to the hard maximum past the planned end.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from math import ceil
from typing import Literal

from common.access import Action
from common.errors import AppError, ConflictError
from common.models.api import WindowResponse
from common.models.domain import ScheduleWindow, Stream, StreamStatus, User, WindowCloser
from common.ports import ScheduledTask
from common.services.backends import BackendPorts, WithBackends
from common.services.broadcasts import BroadcastService
from common.services.monitors import MonitorService, dropped_since

log = logging.getLogger(__name__)

WINDOW_TASK_PATH = "/api/tasks/window"
WindowEdge = Literal["soon", "close"]
EdgeOutcome = Literal["starting_soon", "extended", "ended", "closed", "waiting", "stale", "gone"]
# Cloud Tasks refuses a schedule time more than 30 days ahead: an edge further off is queued
# as a hop that, delivered, queues the edge again (a funeral planned months ahead).
MAX_TASK_DELAY = timedelta(days=29)
_NOT_SCHEDULED_ANY_MORE = frozenset({StreamStatus.CANCELLED, StreamStatus.ERROR})


@dataclass(frozen=True)
class WindowPolicy:
    """The edges of a schedule window, in seconds (the settings of the same names)."""

    window_starting_soon_lead_s: float = 30 * 60
    window_overrun_s: float = 30 * 60
    window_default_duration_s: float = 2 * 3600
    window_extension_s: float = 15 * 60
    window_hard_maximum_s: float = 4 * 3600


def planned_window(
    stream: Stream, now: datetime, policy: WindowPolicy, revision: int
) -> ScheduleWindow | None:
    """The window the stream's schedule asks for now (``None`` without a start time)."""
    opens_at = stream.scheduled_start_time
    if opens_at is None:
        return None
    planned_end = _planned_end(stream, opens_at, policy)
    closes_at = planned_end + timedelta(seconds=policy.window_overrun_s)
    # Counted from when the window is armed if that is later (a schedule set during the
    # broadcast, or on a document written before windows): a hard maximum already past then
    # must not end a service that is on air.
    latest_close = max(planned_end, now) + timedelta(
        seconds=max(policy.window_hard_maximum_s, policy.window_overrun_s)
    )
    soon_from = opens_at - timedelta(seconds=policy.window_starting_soon_lead_s)
    return ScheduleWindow(
        revision=revision,
        state="starting_soon" if now >= soon_from else "upcoming",
        opens_at=opens_at,
        planned_end=planned_end,
        closes_at=closes_at,
        latest_close=latest_close,
    )


def window_is_current(stream: Stream, policy: WindowPolicy) -> bool:
    """Whether the stream's armed window is the one its schedule asks for (no re-arming)."""
    window, opens_at = stream.schedule_window, stream.scheduled_start_time
    if window is None or opens_at is None:
        return window is None and opens_at is None
    return window.opens_at == opens_at and window.planned_end == _planned_end(
        stream, opens_at, policy
    )


def _planned_end(stream: Stream, opens_at: datetime, policy: WindowPolicy) -> datetime:
    """The service's planned end: its own, or the default duration after its start."""
    return stream.scheduled_end_time or opens_at + timedelta(
        seconds=policy.window_default_duration_s
    )


class ScheduleWindowService(WithBackends):
    """Arms a scheduled stream's window, runs its edges, and lets managers extend or end it."""

    def __init__(
        self,
        backends: BackendPorts,
        *,
        policy: WindowPolicy,
        monitors: MonitorService,
        broadcasts: BroadcastService,
    ) -> None:
        super().__init__(backends)
        self.policy = policy
        self._monitors = monitors
        self._broadcasts = broadcasts

    # --- arming ----------------------------------------------------------------------------

    def with_window(self, stream: Stream) -> Stream:
        """``stream`` with its window armed for its schedule (a new revision when the schedule
        changed), so the write that sets a schedule sets its window too (``queue_edges``
        then)."""
        if window_is_current(stream, self.policy):
            return stream
        now = self._clock.now()
        previous = stream.schedule_window
        # Never reused, not even after the schedule was cleared (which drops the window): a
        # task of an earlier arming can never match a later one.
        revision = max(previous.revision + 1 if previous else 0, int(now.timestamp() * 1000))
        window = planned_window(stream, now, self.policy, revision)
        return stream.model_copy(update={"schedule_window": window})

    def queue_edges(self, stream: Stream) -> None:
        """Queue the tasks of the stream's armed window (their names are fixed per revision,
        so queueing them again is harmless)."""
        window = stream.schedule_window
        if window is None or window.state == "closed":
            return
        if window.state == "upcoming":
            self._queue(stream.id, "soon", window.revision, self._due(window, "soon"))
        self._queue(stream.id, "close", window.revision, self._due(window, "close"))

    def arm(self, stream_id: str) -> Stream:
        """Arm the stream's window for its schedule (a no-op when it already is)."""
        armed = self._repo.update(stream_id, self.with_window)
        self.queue_edges(armed)
        return armed

    # --- the edges -------------------------------------------------------------------------

    def run_edge(self, stream_id: str, edge: WindowEdge, revision: int) -> EdgeOutcome:
        """One window task. Tasks of an earlier arming, duplicates and late ones do nothing."""
        stream = self._repo.get(stream_id)
        if stream is None:
            return "gone"
        window = stream.schedule_window
        if window is None or window.revision != revision:
            return "stale"
        due = self._due(window, edge)
        if self._clock.now() < due - timedelta(seconds=1):
            # A hop of an edge queued further ahead than Cloud Tasks allows, or early.
            self._queue(stream_id, edge, revision, due, again=True)
            return "waiting"
        if edge == "soon":
            return self._starting_soon(stream_id, revision)
        return self._close(stream, revision)

    def _due(self, window: ScheduleWindow, edge: WindowEdge) -> datetime:
        if edge == "soon":
            return window.opens_at - timedelta(seconds=self.policy.window_starting_soon_lead_s)
        return window.closes_at

    def _starting_soon(self, stream_id: str, revision: int) -> EdgeOutcome:
        outcome: list[EdgeOutcome] = ["stale"]

        def soon(current: Stream) -> Stream:
            window = current.schedule_window
            if not _armed(current, revision) or window is None or window.state != "upcoming":
                return current
            outcome[:] = ["starting_soon"]
            return current.model_copy(
                update={"schedule_window": window.model_copy(update={"state": "starting_soon"})}
            )

        self._repo.update(stream_id, soon)
        return outcome[-1]

    def _close(self, stream: Stream, revision: int) -> EdgeOutcome:
        if stream.status != StreamStatus.LIVE:
            return "closed" if self._closed(stream.id, revision, "window") else "stale"
        window = stream.schedule_window
        assert window is not None  # noqa: S101 - checked by _armed
        now = self._clock.now()
        on_air, dropped_at = self._publisher(stream, now)
        if on_air:
            step = timedelta(seconds=self.policy.window_extension_s)
            if now < window.latest_close - timedelta(seconds=1):
                later = min(max(window.closes_at, now) + step, window.latest_close)
                return self._extended_on_air(stream.id, revision, later)
            log.warning("stream %s still on air at its hard maximum; ending it", stream.id)
            closer: WindowCloser = "hard_maximum"
        else:
            closer = "window"
        # Still sending at the hard maximum: cut it off at Cloudflare too, as Stop does.
        closed = closer == "hard_maximum" and self._broadcasts.close_ingest(stream)
        ended: list[bool] = []

        def end(current: Stream) -> Stream:
            if not _armed(current, revision) or current.status != StreamStatus.LIVE:
                return current
            ended.append(True)
            if closed:
                current = current.model_copy(update={"ingest_closed": True})
            # Over when the publisher left, as the status monitor would have said.
            over = current.ended_broadcast(dropped_at if not on_air and dropped_at else now)
            return _closed_window(self._monitors.with_recording_monitor(over), closer, now)

        updated = self._repo.update(stream.id, end)
        if not ended:
            if closed:
                self._broadcasts.open_ingest(updated)  # extended meanwhile: still on
            return "stale"
        log.info("stream %s ended by its schedule window (%s)", stream.id, closer)
        self._monitors.schedule_first("recording", updated)
        return "ended"

    def _extended_on_air(self, stream_id: str, revision: int, closes_at: datetime) -> EdgeOutcome:
        extended: list[bool] = []

        def extend(current: Stream) -> Stream:
            window = current.schedule_window
            if not _armed(current, revision) or window is None:
                return current
            extended.append(True)
            moved = window.model_copy(
                update={
                    "revision": window.revision + 1,
                    "closes_at": closes_at,
                    "extensions": window.extensions + 1,
                }
            )
            return current.model_copy(update={"schedule_window": moved})

        updated = self._repo.update(stream_id, extend)
        if not extended:
            return "stale"
        self.queue_edges(updated)
        return "extended"

    def _publisher(self, stream: Stream, now: datetime) -> tuple[bool, datetime | None]:
        """Whether a publisher is on air, or dropped less than the reconnect window ago (it
        may come back to continue the recording), and when it dropped. Asked of Cloudflare,
        not of the last webhook, which may be late or lost."""
        if stream.whip_active:
            return True, None
        if not stream.cloudflare_id:
            return False, None
        try:
            connection = self._provider.get_live_input(stream.cloudflare_id).connection
        except AppError:
            # Unknown is not off the air: ending a service on a failed read would cut it.
            log.warning("could not read stream %s's connection; keeping it on", stream.id)
            return True, None
        if connection in ("connected", "reconnecting"):
            return True, None
        if connection == "unknown" and stream.on_air:
            return True, None  # Cloudflare says nothing, and the last word was "on air"
        dropped_at = dropped_since(stream, connection, now)
        return self._monitors.may_reconnect(dropped_at, now), dropped_at

    def _closed(self, stream_id: str, revision: int, closer: WindowCloser) -> bool:
        now = self._clock.now()
        closed: list[bool] = []

        def close(current: Stream) -> Stream:
            window = current.schedule_window
            if not _armed(current, revision) or window is None or window.state == "closed":
                return current
            closed.append(True)
            return _closed_window(current, closer, now)

        self._repo.update(stream_id, close)
        return bool(closed)

    # --- managers --------------------------------------------------------------------------

    def extend(self, user: User | None, stream_id: str, minutes: int) -> WindowResponse:
        """Move the planned end ``minutes`` later (from now, if it has passed) and re-arm."""
        stream, _ = self._load(user, stream_id, Action.STOP, "Permission denied to extend stream")
        _extendable(stream)
        now = self._clock.now()

        def later(current: Stream) -> Stream:
            window = _extendable(current)
            new_end = max(window.planned_end, now) + timedelta(minutes=minutes)
            moved = current.model_copy(update={"scheduled_end_time": new_end, "updated_at": now})
            return self.with_window(moved)

        updated = self._repo.update(stream.id, later)
        self.queue_edges(updated)
        return WindowResponse.of(updated, now)

    def end_now(self, user: User | None, stream_id: str) -> WindowResponse:
        """End the service now: a live broadcast is stopped (as Stop does) and the window is
        closed, so the page no longer says it is starting soon."""
        stream, _ = self._load(user, stream_id, Action.STOP, "Permission denied to stop stream")
        if stream.status in _NOT_SCHEDULED_ANY_MORE:
            raise ConflictError(f"The stream is {stream.status.value}")
        if stream.status == StreamStatus.LIVE:
            self._broadcasts.stop(user, stream_id)
        now = self._clock.now()

        def close(current: Stream) -> Stream:
            if current.schedule_window is None or current.schedule_window.state == "closed":
                return current
            return _closed_window(current, "manager", now)

        return WindowResponse.of(self._repo.update(stream.id, close), now)

    def _queue(
        self, stream_id: str, edge: WindowEdge, revision: int, due: datetime, *, again: bool = False
    ) -> None:
        """Queue the ``edge`` task due at ``due`` (a hop of it when that is too far off).
        A hop is named by how many hops are left, so a duplicated delivery of the one before
        queues it once; an edge queued ``again`` (delivered early) gets a name of its own."""
        now = self._clock.now()
        name = f"window-{edge}-{stream_id}-{revision}"
        at = due
        if due - now > MAX_TASK_DELAY:
            at = now + MAX_TASK_DELAY
            name += f"-hop{ceil((due - now) / MAX_TASK_DELAY)}"
        elif again:
            name += f"-again{int(now.timestamp())}"
        task = ScheduledTask(
            name=name,
            path=WINDOW_TASK_PATH,
            payload={"streamId": stream_id, "edge": edge, "revision": revision},
            delay_s=max(0.0, (at - now).total_seconds()),
        )
        # Should it fail, the status monitor still ends a broadcast whose publisher has gone.
        self._enqueue(task)


def _extendable(stream: Stream) -> ScheduleWindow:
    """The window a manager may extend: a scheduled service not over yet, or live."""
    window = stream.schedule_window
    if window is None or stream.scheduled_start_time is None:
        raise ConflictError("The stream has no schedule window: give it a scheduledStartTime")
    if stream.status in (*_NOT_SCHEDULED_ANY_MORE, StreamStatus.COMPLETED):
        raise ConflictError(f"The stream is {stream.status.value}")
    if window.state == "closed" and stream.status != StreamStatus.LIVE:
        raise ConflictError(
            "The stream's window has closed; reschedule it with PUT /api/streams/{id}"
        )
    return window


def _armed(stream: Stream, revision: int) -> bool:
    window = stream.schedule_window
    return window is not None and window.revision == revision


def _closed_window(stream: Stream, closer: WindowCloser, at: datetime) -> Stream:
    window = stream.schedule_window
    if window is None:
        return stream
    closed = window.model_copy(update={"state": "closed", "closed_by": closer, "closed_at": at})
    return stream.model_copy(update={"schedule_window": closed, "updated_at": at})
