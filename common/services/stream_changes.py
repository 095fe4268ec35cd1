"""Reactions to changes of a stream document (the Firestore trigger)."""

from __future__ import annotations

from datetime import timedelta

from common.errors import NotFoundError
from common.models.domain import MonitorKind, Stream, StreamStatus
from common.models.recording_rules import broadcast_recorded
from common.services.backends import BackendPorts, WithBackends
from common.services.monitors import MonitorService
from common.services.schedule_windows import ScheduleWindowService, window_is_current

# A service that is over needs no window (a migrated document's past schedule, say).
_MAY_BE_ARMED = frozenset({StreamStatus.SCHEDULED, StreamStatus.READY, StreamStatus.LIVE})


class StreamChangeService(WithBackends):
    """Starts the right monitor when a stream's status changes; removes a deleted stream's
    live input."""

    def __init__(
        self,
        backends: BackendPorts,
        *,
        monitors: MonitorService,
        windows: ScheduleWindowService | None = None,
    ) -> None:
        super().__init__(backends)
        self._monitors = monitors
        self._windows = windows

    def on_stream_written(self, before: Stream | None, after: Stream | None) -> str:
        """Start the right monitor on status changes; remove the input of a deleted stream;
        arm the window of a schedule written without one (a document an earlier backend or
        the site wrote)."""
        if after is None:
            return self._deleted(before)
        if (
            self._windows
            and after.status in _MAY_BE_ARMED
            and not window_is_current(after, self._windows.policy)
        ):
            try:
                after = self._windows.arm(after.id)
            except NotFoundError:
                return "stream no longer exists"
        previous = before.status if before else None
        recorded = broadcast_recorded(after)
        # A document the migration moved here, whose broadcast ended long ago, needs no
        # monitor: it would only spend checks (sync-recording finds its recording).
        moved_in_long_ended = before is None and self._ended_long_ago(after)
        if after.status == StreamStatus.LIVE and previous != StreamStatus.LIVE:
            kind: MonitorKind = "status"
        elif (
            after.status == StreamStatus.COMPLETED
            and previous != after.status
            and not recorded
            and not moved_in_long_ended
        ):
            kind = "recording"
        else:
            return "nothing to do"
        if self._monitors.is_current(kind, after):
            # Started by the write that changed the status (Start, Stop): make sure its first
            # check is queued, which costs no read.
            self._monitors.schedule_first(kind, after, required=True)
            return f"{kind} monitor already running"
        try:
            # Required: if the first check cannot be queued the event is delivered again,
            # and nothing else would start the chain of a Stop whose own queueing failed.
            self._monitors.start_monitor(kind, after, required=True)
        except NotFoundError:
            # Events can arrive after the stream was deleted; a retry cannot bring it back.
            return "stream no longer exists"
        return f"{kind} monitor started"

    def _deleted(self, before: Stream | None) -> str:
        if before is None or not before.cloudflare_id:
            return "nothing to do"
        try:
            self._provider.delete_live_input(before.cloudflare_id)
        except NotFoundError:
            return "live input already gone"
        return "live input removed"

    def _ended_long_ago(self, stream: Stream) -> bool:
        window = timedelta(
            seconds=self._monitors.policy.recording_monitor_checks
            * self._monitors.policy.recording_monitor_interval_s
        )
        ended = stream.end_time or stream.updated_at
        return self._clock.now() - ended > window
