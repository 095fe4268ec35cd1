"""What Cloudflare reports (a video's progress, a live input's connection), applied to the
stream it belongs to. Merging is monotonic, so duplicated and reordered deliveries converge."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from common.errors import NotFoundError
from common.models.domain import Recording, Stream, StreamIssue, StreamStatus
from common.models.recording_rules import (
    ended_if_recorded,
    entry_of,
    merge_recordings,
    with_recordings,
)
from common.services.backends import BackendPorts, WithBackends
from common.services.monitors import MonitorService

log = logging.getLogger(__name__)

LiveEvent = Literal["live_input.connected", "live_input.disconnected", "live_input.errored"]
LIVE_EVENTS: frozenset[str] = frozenset(get_args(LiveEvent))


@dataclass(frozen=True)
class VideoOutcome:
    """What a reported video did: attached to ``stream_id``, or deleted with it (``purged``)."""

    stream_id: str | None
    purged: bool


class ProviderEventService(WithBackends):
    """Applies the video platform's reports to streams, then lets the monitors confirm."""

    def __init__(self, backends: BackendPorts, *, monitors: MonitorService) -> None:
        super().__init__(backends)
        self._monitors = monitors

    def apply_video_event(self, recording: Recording, stream_hint: str | None) -> VideoOutcome:
        """Attach a video the Stream webhook reported to its stream. A late recording of a
        deleted stream is deleted at Cloudflare, as the stream's recordings were."""
        stream = self._stream_for(recording, stream_hint)
        if stream is None:
            uid = recording.live_input_uid
            deleted = self._reads.deleted_stream_of_input(uid) if uid else None
            if deleted is None:
                log.info("video %s matches no stream", recording.video_uid)
                return VideoOutcome(stream_id=None, purged=False)
            with contextlib.suppress(NotFoundError):
                self._provider.delete_recording(recording.video_uid)
            log.info("video %s of deleted stream %s deleted", recording.video_uid, deleted)
            return VideoOutcome(stream_id=deleted, purged=True)
        now = self._clock.now()
        self._repo.update(
            stream.id,
            lambda s: ended_if_recorded(
                with_recordings(s, merge_recordings(s.recordings, [entry_of(recording)]), now)
            ),
        )
        return VideoOutcome(stream_id=stream.id, purged=False)

    def apply_live_event(
        self, input_uid: str, event: LiveEvent, at: datetime, error: StreamIssue | None
    ) -> str | None:
        """Apply a live-input notification unless a newer one was already applied."""
        stream = self._reads.find_by_live_input(input_uid)
        if stream is None:
            return None
        if event == "live_input.errored":
            issue = error or StreamIssue(code="ERR_UNKNOWN", message="Live input error", at=at)
            self._repo.update(stream.id, lambda s: s.model_copy(update={"last_error": issue}))
            return stream.id
        connected = event == "live_input.connected"
        updated = self._repo.update(stream.id, lambda s: _apply_connection(s, connected, at))
        if updated.live_event_at == at:
            # A drop ends nothing yet: the status monitor ends the broadcast once the
            # reconnect window has passed without the publisher coming back.
            still_live = updated.status == StreamStatus.LIVE
            self._monitors.start_monitor(
                "status" if connected or still_live else "recording", updated
            )
        return stream.id

    def _stream_for(self, recording: Recording, stream_hint: str | None) -> Stream | None:
        live_input_uid = recording.live_input_uid
        if live_input_uid:
            found = self._reads.find_by_live_input(live_input_uid)
            if found is not None:
                return found
        if stream_hint:
            hinted = self._reads.get(stream_hint)
            # A clip has no live input: it is the stream's only if the stream noted its uid.
            if hinted is not None and (
                (live_input_uid is not None and live_input_uid == hinted.cloudflare_id)
                or (live_input_uid is None and _knows_video(hinted, recording.video_uid))
            ):
                return hinted
        return None


def _knows_video(stream: Stream, video_uid: str) -> bool:
    pending = stream.pending_clip
    return (pending is not None and pending.video_uid == video_uid) or any(
        entry.video_uid == video_uid for entry in stream.recordings
    )


def _apply_connection(stream: Stream, connected: bool, at: datetime) -> Stream:
    if stream.live_event_at is not None and at <= stream.live_event_at:
        return stream
    applied = _connection_applied(stream, connected, at)
    if connected and not stream.whip_active:
        # An encoder connected and no browser session is open: RTMP (or SRT) ingest.
        applied = applied.model_copy(update={"ingest_protocol": "rtmp"})
    return applied


def _connection_applied(stream: Stream, connected: bool, at: datetime) -> Stream:
    seen = stream.model_copy(update={"live_event_at": at, "updated_at": at})
    if connected and stream.status != StreamStatus.LIVE:
        if stream.end_time is not None and at <= stream.end_time:
            # Delivered late: that connection belongs to a broadcast already stopped, which
            # did go on air (its recording is on its way).
            started = stream.actual_start_time
            return seen.model_copy(update={"went_on_air": started is None or at >= started})
        return seen.began_broadcast(at).publisher_connected(at)
    if connected:
        return seen.publisher_connected(at)
    # A drop is not the end: "reconnecting" until the status monitor sees the window pass.
    return seen.model_copy(update={"on_air": False})
