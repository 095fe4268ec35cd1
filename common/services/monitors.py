"""Recordings never get lost: scheduled checks confirm with Cloudflare what webhooks hint.

After a broadcast the recording monitor checks until a ready recording of that broadcast is
attached (or gives up loudly); while a stream is live the status monitor ends it once its
publisher has gone for longer than the reconnect window. Each check is claimed in the stream
document, so duplicated task deliveries do nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from common.errors import AppError, NotFoundError
from common.models.domain import (
    MonitorKind,
    MonitorProgress,
    MonitorState,
    Recording,
    Stream,
    StreamIssue,
    StreamStatus,
)
from common.models.recording_rules import (
    RECORDING_NOT_FOUND,
    broadcast_recorded,
    entry_of,
    has_recording_since,
    has_recording_underway,
    merge_recordings,
    with_recordings,
)
from common.ports import ProviderError, StreamAndProgress, check_task
from common.services.backends import BackendPorts, WithBackends

log = logging.getLogger(__name__)
T = TypeVar("T")

MONITOR_TASK_PATH = "/api/tasks/monitor"
# "requeued": a redelivered check that had already run queued its successor again (the
# delivery that ran it may have died, or failed to queue it, before answering).
# "unanswered": Cloudflare failed this check; the next one is queued as usual.
CheckOutcome = Literal["rescheduled", "requeued", "unanswered", "done", "gave_up", "stale", "gone"]
_CHAIN_GOES_ON: frozenset[CheckOutcome] = frozenset({"rescheduled", "requeued", "unanswered"})
# The issue a broadcast ended by the status chain's end carries.
MAXIMUM_DURATION = "MAXIMUM_DURATION"
# A chain whose next check is this late has stopped (see ``resume_recording``).
STALLED = timedelta(minutes=10)


@dataclass(frozen=True)
class MonitorPolicy:
    """How often and how long the scheduled checks run."""

    recording_monitor_checks: int = 20
    recording_monitor_interval_s: float = 30
    # While Cloudflare still records or processes the broadcast's video (the reconnect
    # window, a long service's processing, an encoder Stop could not cut off) the monitor
    # checks past ``recording_monitor_checks``, up to this many.
    recording_monitor_max_checks: int = 720
    # A browser (WHIP) broadcast is not recorded, but an encoder may have taken over from the
    # browser within it (a closed tab never says so): a few checks look for its video, and
    # one listed keeps them going as for any other.
    whip_recording_checks: int = 3
    status_checks: int = 720
    status_monitor_interval_s: float = 60
    status_monitor_grace_checks: int = 30
    # A publisher that drops comes back within this (the live input's recording timeout) to
    # continue the same recording: until then the broadcast is "reconnecting", not over.
    recording_timeout_seconds: float = 0


# What a check decides: the stream, its claim, and the outcome.
Decision = tuple[Stream, MonitorProgress, CheckOutcome]


@dataclass(frozen=True)
class CheckClaim:
    """One check of a chain, and whether Cloudflare answered what it asked."""

    kind: MonitorKind
    stream_id: str
    generation: int
    attempt: int
    answered: bool


class MonitorService(WithBackends):
    """The recording and status monitors, and the reconciliation they and the tools share."""

    def __init__(self, backends: BackendPorts, *, policy: MonitorPolicy) -> None:
        super().__init__(backends)
        self.policy = policy

    def reconcile(self, stream_id: str) -> tuple[Stream, list[Recording]]:
        """Fetch every recording of the stream's input from Cloudflare and merge them in."""
        stream = self._reads.get(stream_id)
        if stream is None:
            raise NotFoundError("Stream not found")
        if not stream.cloudflare_id:
            return stream, []
        recordings = self._recordings_of(stream)
        now = self._clock.now()
        entries = [entry_of(r) for r in recordings]

        def merged(current: Stream) -> Stream:
            return with_recordings(current, merge_recordings(current.recordings, entries), now)

        # Nothing new writes nothing: the update answers from the read above.
        return self._repo.update(stream.id, merged), recordings

    def start_monitor(self, kind: MonitorKind, stream: Stream, *, required: bool = False) -> None:
        """Begin the chain of checks for the stream's current broadcast (idempotent).
        ``required``: a first check that cannot be queued raises (the caller's delivery is
        retried) instead of being logged for the fallbacks to pick up."""
        generation = self._generation(kind, stream)
        started: list[bool] = []

        def begin(current: Stream) -> Stream:
            started[:] = [not self.is_current(kind, current, generation)]
            return self.with_monitor(kind, current, generation)

        updated = self._repo.update(stream.id, begin)
        monitor = updated.monitor(kind)
        if monitor is None or monitor.generation != generation or monitor.state != "running":
            return
        if not started[-1]:
            # Already started for this broadcast: schedule the first check again only if it
            # has not run (its task name is the same, so the queue keeps one).
            progress = self._repo.monitor_progress(stream.id, kind)
            if _checks_done(progress, generation) > 0:
                return
        self._schedule(kind, stream.id, generation, 0, required=required)

    def ensure_started(self, kind: MonitorKind, stream: Stream) -> None:
        """``start_monitor``, except that a monitor the stream's last write already started
        only gets its first check queued (no read)."""
        if self.is_current(kind, stream):
            self.schedule_first(kind, stream)
        else:
            self.start_monitor(kind, stream)

    def resume_recording(self, stream: Stream) -> bool:
        """Keep the recording monitor of a broadcast whose recording is not all there going
        (a manager's sync-recording). A chain stalled well past its next check (a check that
        failed for good, a successor that could not be queued) may have lost that check for
        good (Cloud Tasks refuses its name for an hour): it goes on from the next attempt
        number, which makes the lost one stale should it come. One that gave up while
        Cloudflare still makes a video of the broadcast runs again (its hard cap stands). A
        chain checking on time is left alone. Whether a check was queued."""
        monitor = stream.recording_monitor
        if (
            monitor is None
            or stream.status != StreamStatus.COMPLETED
            or not self.is_current("recording", stream)
            or broadcast_recorded(stream)
        ):
            return False
        underway = has_recording_underway(stream, stream.actual_start_time)
        if monitor.state == "done" or (monitor.state == "gave_up" and not underway):
            return False
        progress = self._repo.monitor_progress(stream.id, "recording")
        attempt = _checks_done(progress, monitor.generation)
        interval = timedelta(seconds=self.policy.recording_monitor_interval_s)
        last_check = (progress.checked_at if progress and attempt else None) or stream.end_time
        stalled = last_check is not None and self._clock.now() > last_check + interval + STALLED
        if monitor.state == "running" and not stalled:
            return False

        claimed: list[bool] = []

        def resumed(current: Stream, now_at: MonitorProgress | None) -> StreamAndProgress:
            claimed.append(current.recording_monitor == monitor and now_at == progress)
            if not claimed[-1]:
                return current, now_at  # a check ran meanwhile: the chain is alive
            changes: dict[str, object] = {
                "recording_monitor": MonitorState(generation=monitor.generation)
            }
            if current.last_error and current.last_error.code == RECORDING_NOT_FOUND:
                changes["last_error"] = None  # not missing: Cloudflare is making it
            skipped = MonitorProgress(
                generation=monitor.generation,
                next_attempt=attempt + 1,
                checked_at=now_at.checked_at if now_at else None,
            )
            return current.model_copy(update=changes), skipped

        self._repo.record_check(stream.id, "recording", resumed)
        if not claimed[-1]:
            return False
        log.warning("recording monitor of %s resumed at check %d", stream.id, attempt + 1)
        self._schedule("recording", stream.id, monitor.generation, attempt + 1)
        return True

    def with_monitor(
        self, kind: MonitorKind, stream: Stream, generation: int | None = None
    ) -> Stream:
        """``stream`` with its ``kind`` monitor started for the current broadcast, so the
        write that begins a broadcast starts its monitor too (``schedule_first`` then)."""
        generation = self._generation(kind, stream) if generation is None else generation
        if self.is_current(kind, stream, generation):
            return stream
        return stream.model_copy(update={f"{kind}_monitor": MonitorState(generation=generation)})

    def is_current(self, kind: MonitorKind, stream: Stream, generation: int | None = None) -> bool:
        """Whether the stream's ``kind`` monitor is the one of its current broadcast."""
        generation = self._generation(kind, stream) if generation is None else generation
        monitor = stream.monitor(kind)
        return monitor is not None and monitor.generation == generation

    def schedule_first(self, kind: MonitorKind, stream: Stream, *, required: bool = False) -> None:
        """Schedule the first check of the stream's running ``kind`` monitor. Its task name is
        fixed, so scheduling it again is harmless (the queue keeps one). ``required`` as in
        ``start_monitor``."""
        monitor = stream.monitor(kind)
        if monitor is not None and monitor.state == "running":
            self._schedule(kind, stream.id, monitor.generation, 0, required=required)

    def _generation(self, kind: MonitorKind, stream: Stream) -> int:
        anchor = (stream.end_time if kind == "recording" else stream.actual_start_time) or (
            self._clock.now()
        )
        return int(anchor.timestamp())

    def run_check(
        self, kind: MonitorKind, stream_id: str, generation: int, attempt: int
    ) -> CheckOutcome:
        """One scheduled check. Duplicate or out-of-date deliveries change nothing, except
        that a redelivered check that already ran queues its successor again. The next check
        must be queued: if it cannot be, this raises, so the queue delivers this check again
        (otherwise the monitor would stay running with nothing left to run it)."""
        stream = self._repo.get(stream_id)
        if stream is None:
            return "gone"
        monitor = stream.monitor(kind)
        if monitor is None or monitor.generation != generation or monitor.state != "running":
            return "stale"
        if _superseded(kind, stream):
            return "stale"
        # Whether this attempt is still due is decided with the claim, in record_check.
        if kind == "recording":
            outcome = self._check_recording(stream, generation, attempt)
        else:
            outcome = self._check_status(stream, generation, attempt)
        if outcome in _CHAIN_GOES_ON:
            self._schedule(kind, stream_id, generation, attempt + 1, required=True)
        return outcome

    def _check_recording(self, stream: Stream, generation: int, attempt: int) -> CheckOutcome:
        listed = self._asked(stream, "recordings", lambda: self._recordings_of(stream))
        entries = [entry_of(r) for r in listed or []]
        now = self._clock.now()

        def decide(current: Stream, _: MonitorProgress | None) -> Decision:
            merged = with_recordings(current, merge_recordings(current.recordings, entries), now)
            # Done once all of the broadcast is there; at the last check, with what is.
            found = broadcast_recorded(merged)
            last = self._last_recording_check(merged, attempt, answered=listed is not None)
            if last and has_recording_since(merged, merged.actual_start_time):
                found = True
            result: CheckOutcome = "done" if found else "gave_up" if last else "rescheduled"
            claimed = MonitorProgress(
                generation=generation, next_attempt=attempt + 1, checked_at=now
            )
            if result == "gave_up" and not current.went_on_air:
                # Nothing was ever sent: there is no footage to lose, and no error to show.
                log.info("stream %s never went on air; no recording expected", current.id)
            elif result == "gave_up" and current.ingest_protocol == "whip":
                log.info("stream %s was broadcast from a browser: not recorded", current.id)
            elif result == "gave_up":
                log.error("no recording for stream %s after %d checks", current.id, attempt + 1)
                issue = StreamIssue(
                    code=RECORDING_NOT_FOUND,
                    message=f"No ready recording after {attempt + 1} checks; use sync-recording "
                    "or contact support",
                    at=now,
                )
                merged = merged.model_copy(update={"last_error": issue})
            return merged, claimed, result

        check = CheckClaim("recording", stream.id, generation, attempt, listed is not None)
        outcome, _ = self._claim(check, decide)
        return outcome

    def _claim(
        self, check: CheckClaim, decide: Callable[[Stream, MonitorProgress | None], Decision]
    ) -> tuple[CheckOutcome, Stream]:
        """``decide`` on the stream in the write that claims the check, if it is still due
        (else nothing changes): its outcome, and the stream as written. A chain that ends is
        noted on the stream; one whose check Cloudflare did not answer goes on "unanswered"."""
        outcome: list[CheckOutcome] = []

        def record(current: Stream, progress: MonitorProgress | None) -> StreamAndProgress:
            monitor = current.monitor(check.kind)
            if _superseded(check.kind, current):
                outcome.append("stale")
                return current, progress
            if not _is_due(monitor, progress, check.generation, check.attempt):
                outcome.append(_not_due(monitor, progress, check.generation, check.attempt))
                return current, progress
            updated, claimed, result = decide(current, progress)
            if result == "rescheduled" and not check.answered:
                result = "unanswered"
            outcome.append(result)
            if result not in _CHAIN_GOES_ON:
                state = MonitorState(generation=check.generation, state=result)
                updated = updated.model_copy(update={f"{check.kind}_monitor": state})
            return updated, claimed

        written = self._repo.record_check(check.stream_id, check.kind, record)
        return outcome[-1], written

    def _last_recording_check(self, stream: Stream, attempt: int, *, answered: bool) -> bool:
        """Whether check ``attempt`` is the last: the budget is spent, Cloudflare answered it,
        and is not still recording or processing a video of the broadcast (else the monitor
        goes on, up to the hard cap)."""
        checks = attempt + 1
        if checks >= self.policy.recording_monitor_max_checks:
            return True
        budget = self.policy.recording_monitor_checks
        if stream.ingest_protocol == "whip":
            budget = min(budget, self.policy.whip_recording_checks)
        return (
            answered
            and checks >= budget
            and not has_recording_underway(stream, stream.actual_start_time)
        )

    def _asked(self, stream: Stream, what: str, ask: Callable[[], T]) -> T | None:
        """``ask()``, or ``None`` when Cloudflare fails it: the check is then unanswered and
        the chain goes on by its own next check, never by the queue's retries (which end)."""
        try:
            return ask()
        except ProviderError as error:
            log.warning(
                "no %s from Cloudflare for stream %s this check: %s", what, stream.id, error
            )
            return None

    def _check_status(self, stream: Stream, generation: int, attempt: int) -> CheckOutcome:
        asked = self._connection_of(stream)
        answered = asked is not None
        # Unknown: neither a publisher on air nor one gone; nothing ends on it.
        connection = asked or "unknown"
        viewers = self._live_viewers(stream, connection)
        now = self._clock.now()
        # Live for the whole chain (12 h): over, as Mux ends a broadcast at its maximum
        # continuous duration (an encoder left on overnight), and cut off at Cloudflare; else
        # the stream would stay live with nothing left to end it.
        last = attempt + 1 >= self.policy.status_checks
        closed = (
            last and stream.status == StreamStatus.LIVE and self._set_ingest(stream, enabled=False)
        )

        def decide(current: Stream, progress: MonitorProgress | None) -> Decision:
            seen = (
                connection == "connected"
                or current.went_on_air
                or bool(progress and progress.generation == generation and progress.seen_connected)
            )
            # "Start" is pressed before the encoder connects: only a broadcast that was seen on
            # air (or never arrived within the grace period) is ended by a disconnect, and only
            # once the publisher has had the reconnect window to come back.
            waiting = not seen and attempt + 1 < self.policy.status_monitor_grace_checks
            dropped_at = dropped_since(current, connection, now)
            reconnecting = self.may_reconnect(dropped_at, now)
            # Cloudflare answered without saying (a settings change's status) and nothing was
            # ever seen on air through the grace period: nobody came, as for "disconnected".
            nobody_came = connection == "unknown" and answered and not seen and not waiting
            ended = (
                last
                or current.status != StreamStatus.LIVE
                or nobody_came
                or (connection == "disconnected" and not waiting and not reconnecting)
            )
            result: CheckOutcome = "done" if ended else "rescheduled"
            claimed = MonitorProgress(
                generation=generation, next_attempt=attempt + 1, checked_at=now, seen_connected=seen
            )
            updated = current
            if connection == "connected":
                updated = seen_connected(updated, now)
            elif connection == "disconnected" and current.on_air and not ended:
                # The drop's notification never came: the window counts from now.
                updated = updated.model_copy(update={"on_air": False, "live_event_at": now})
            if viewers is not None and not ended:
                updated = with_audience(updated, viewers)
            if ended and current.status == StreamStatus.LIVE:
                # The write that ends the broadcast starts its recording monitor too.
                updated = self.with_recording_monitor(updated.ended_broadcast(dropped_at or now))
                if last:
                    log.warning("stream %s ended at its maximum duration", current.id)
                    hours = self.policy.status_checks * self.policy.status_monitor_interval_s / 3600
                    issue = StreamIssue(
                        code=MAXIMUM_DURATION,
                        message=f"Ended after {hours:g} h live, the longest a broadcast runs",
                        at=now,
                    )
                    updated = updated.model_copy(
                        update={"last_error": issue, "ingest_closed": closed}
                    )
            return updated, claimed, result

        check = CheckClaim("status", stream.id, generation, attempt, answered)
        outcome, updated = self._claim(check, decide)
        if outcome == "done" and updated.status == StreamStatus.COMPLETED:
            self.schedule_first("recording", updated)
        return outcome

    def _connection_of(self, stream: Stream) -> str | None:
        """The live input's connection (``None``: Cloudflare did not answer); a stream no
        longer live is read as disconnected, without asking."""
        live_input_uid = stream.cloudflare_id
        if stream.status != StreamStatus.LIVE or not live_input_uid:
            return "disconnected"
        live_input = self._asked(
            stream, "connection", lambda: self._provider.get_live_input(live_input_uid)
        )
        return live_input.connection if live_input is not None else None

    def may_reconnect(self, dropped_at: datetime | None, now: datetime) -> bool:
        """Whether a publisher that dropped at ``dropped_at`` may still come back to continue
        the same recording (the live input's recording timeout has not passed)."""
        return dropped_at is not None and (
            (now - dropped_at).total_seconds() < self.policy.recording_timeout_seconds
        )

    def _live_viewers(self, stream: Stream, connection: str) -> int | None:
        """The live viewer count, read once per status check of a broadcast on air (never
        per viewer request); WHIP broadcasts have none at Cloudflare. A failed read keeps the
        count the stream shows."""
        if (
            connection != "connected"
            or stream.ingest_protocol == "whip"
            or not stream.cloudflare_id
        ):
            return None
        try:
            return self._provider.live_viewers(stream.cloudflare_id)
        except AppError:
            log.warning("no viewer count for stream %s this check", stream.id, exc_info=True)
            return None

    def with_recording_monitor(self, ended: Stream) -> Stream:
        """A broadcast just ended, with its recording monitor started (none when its
        recording is already attached)."""
        if broadcast_recorded(ended):
            return ended
        return self.with_monitor("recording", ended)

    def _recordings_of(self, stream: Stream) -> list[Recording]:
        if not stream.cloudflare_id:
            return []
        return self._provider.list_recordings(stream.cloudflare_id)

    def _schedule(
        self,
        kind: MonitorKind,
        stream_id: str,
        generation: int,
        attempt: int,
        *,
        required: bool = False,
    ) -> None:
        interval = (
            self.policy.recording_monitor_interval_s
            if kind == "recording"
            else self.policy.status_monitor_interval_s
        )
        chain = {"kind": kind, "streamId": stream_id}
        task = check_task(MONITOR_TASK_PATH, chain, generation, attempt, interval)
        if required:
            self._tasks.enqueue(task)
        else:
            # Should it fail, the trigger on status changes and the repair tools remain.
            self._enqueue(task)


def with_audience(stream: Stream, viewers: int) -> Stream:
    """``stream`` showing ``viewers`` watching now and its peak (never lowered), changed only
    when either changes: the monitor writes the stream document only then."""
    if viewers == stream.viewer_count and (stream.max_viewers or 0) >= viewers:
        return stream
    peak = max(viewers, stream.max_viewers or 0)
    return stream.model_copy(update={"viewer_count": viewers, "max_viewers": peak})


def _superseded(kind: MonitorKind, stream: Stream) -> bool:
    """Whether a recording chain is of a broadcast the stream has left behind: it is live
    again, and would judge the new broadcast by its own budget (the new one's end starts the
    chain that attaches every recording of the input, the earlier one's included)."""
    return kind == "recording" and stream.status == StreamStatus.LIVE


def _checks_done(progress: MonitorProgress | None, generation: int) -> int:
    return progress.next_attempt if progress and progress.generation == generation else 0


def _is_due(
    monitor: MonitorState | None, progress: MonitorProgress | None, generation: int, attempt: int
) -> bool:
    return (
        monitor is not None
        and monitor.generation == generation
        and monitor.state == "running"
        and _checks_done(progress, generation) == attempt
    )


def _not_due(
    monitor: MonitorState | None, progress: MonitorProgress | None, generation: int, attempt: int
) -> CheckOutcome:
    """A check that is not due: "requeued" when it is the one that ran last, so the running
    monitor's next check is queued again (by name: a queue that has it keeps one), else
    "stale"."""
    running = (
        monitor is not None and monitor.generation == generation and monitor.state == "running"
    )
    return "requeued" if running and _checks_done(progress, generation) == attempt + 1 else "stale"


def seen_connected(stream: Stream, now: datetime) -> Stream:
    """``stream`` as the connected notification would have left it, should that have been
    lost: on air, and sent by an encoder (recorded) unless a browser session is open."""
    if not stream.on_air:
        stream = stream.publisher_connected(now)
    if not stream.whip_active:
        stream = stream.model_copy(update={"ingest_protocol": "rtmp"})
    return stream


def dropped_since(stream: Stream, connection: str, now: datetime) -> datetime | None:
    """When the publisher of a live broadcast that was on air dropped, if it has."""
    if connection != "disconnected" or stream.status != StreamStatus.LIVE:
        return None
    if not stream.went_on_air:
        return None
    if stream.on_air:
        return now  # first seen by this check (its notification was lost)
    return stream.live_event_at or now
