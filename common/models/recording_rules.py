"""The rules of recordings and broadcasts, pure functions of the domain: how a reported video
merges into a stream's recordings, which one the page shows, whether a broadcast got its
recording, and what a family is told about both.

Merging is monotonic (a ready recording never goes back to processing, a newer state of a
video wins), so duplicated and reordered webhooks and concurrent checks all converge.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from common.models.domain import Recording, RecordingEntry, Stream, StreamIssue, StreamStatus

RECORDING_NOT_FOUND = "RECORDING_NOT_FOUND"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_STATE_RANK = {
    "pendingupload": 0,
    "downloading": 1,
    "queued": 1,
    "live-inprogress": 1,
    "inprogress": 2,
    "error": 3,
    "ready": 4,
}

# A video reported as being recorded this long before a broadcast began is one Cloudflare
# never finished (its input deleted mid-broadcast): it holds no later broadcast back.
_STALE_IN_PROGRESS = timedelta(hours=24)

RecordingStatus = Literal["none", "processing", "ready", "missing", "unavailable"]
WHIP_NOT_RECORDED = (
    "Browser (WHIP) broadcasts are not recorded by Cloudflare Stream: no recording will follow. "
    "Broadcast with OBS or another RTMP encoder to get a recording."
)


def entry_of(recording: Recording) -> RecordingEntry:
    """Our stored form of a provider recording."""
    shared = RecordingEntry.model_fields.keys() & Recording.model_fields.keys()
    return RecordingEntry.model_validate(
        recording.model_dump(include=shared) | {"ready": recording.is_ready}
    )


def merge_recordings(
    entries: tuple[RecordingEntry, ...], incoming: list[RecordingEntry]
) -> tuple[RecordingEntry, ...]:
    """``entries`` updated with ``incoming``, each video keeping its most advanced state (and
    what managers chose about it)."""
    by_uid = {entry.video_uid: entry for entry in entries}
    for entry in incoming:
        current = by_uid.get(entry.video_uid)
        if current is None or _progress(entry) > _progress(current):
            by_uid[entry.video_uid] = entry if current is None else _keeping_ours(entry, current)
    return tuple(sorted(by_uid.values(), key=lambda e: (e.created or _EPOCH, e.video_uid)))


def _keeping_ours(entry: RecordingEntry, current: RecordingEntry) -> RecordingEntry:
    """A newer report of a video, keeping what we know of it that the provider does not say:
    managers' choices, its download, what it was trimmed from."""
    return entry.model_copy(
        update={
            "hidden": current.hidden,
            "download": current.download,
            "clipped_from": entry.clipped_from or current.clipped_from,
        }
    )


def _progress(entry: RecordingEntry) -> tuple[bool, int, datetime]:
    return entry.ready, _STATE_RANK.get(entry.state, 0), entry.modified or _EPOCH


def with_recordings(stream: Stream, entries: tuple[RecordingEntry, ...], now: datetime) -> Stream:
    """``stream`` holding ``entries``, its primary fields on the recording a manager chose or
    else the latest ready one that is not hidden; a trim that became ready is chosen. Deleted
    recordings stay deleted, however late they are reported."""
    entries = tuple(e for e in entries if e.video_uid not in stream.deleted_video_ids)
    stream = with_finished_clip(stream, entries, now)
    primary = primary_recording(entries, stream.primary_video_id)
    changes: dict[str, object] = {"recordings": entries}
    if primary is not None and (
        not stream.recording_ready
        or primary.video_uid != stream.video_id
        or primary.hls_url != stream.recording_url
    ):
        changes |= {
            "recording_ready": True,
            "video_id": primary.video_uid,
            "recording_url": primary.hls_url,
            "recording_dash_url": primary.dash_url,
            "recording_thumbnail": primary.thumbnail_url,
            "recording_duration": primary.duration,
            "recording_size": primary.size,
            "recording_updated_at": now,
        }
    if primary is None and any(e.ready for e in entries) and stream.recording_ready:
        # Every ready recording is hidden: the page shows none.
        changes |= {
            "recording_ready": False,
            "video_id": None,
            "recording_url": None,
            "recording_dash_url": None,
            "recording_thumbnail": None,
            "recording_duration": None,
            "recording_size": None,
            "recording_updated_at": now,
        }
    missing = stream.last_error and stream.last_error.code == RECORDING_NOT_FOUND
    if missing and has_recording_since(
        stream.model_copy(update={"recordings": entries}), stream.actual_start_time
    ):
        changes["last_error"] = None  # its cause is gone: the broadcast's recording is here
    if entries != stream.recordings or len(changes) > 1:
        changes["updated_at"] = now
    return stream.model_copy(update=changes)


CLIP_FAILED = "CLIP_FAILED"


def with_finished_clip(
    stream: Stream, entries: tuple[RecordingEntry, ...], now: datetime
) -> Stream:
    """The pending trim, once its recording is ready, is the primary one (the page shows the
    trimmed service); one the provider failed to make is dropped, and the family told."""
    pending = stream.pending_clip
    clip = next((e for e in entries if pending and e.video_uid == pending.video_uid), None)
    if clip is None or not (clip.ready or clip.state == "error"):
        return stream
    if clip.ready:
        return stream.model_copy(update={"pending_clip": None, "primary_video_id": clip.video_uid})
    issue = StreamIssue(code=CLIP_FAILED, message="Cloudflare could not make the trim", at=now)
    return stream.model_copy(update={"pending_clip": None, "last_error": issue})


def primary_recording(
    entries: tuple[RecordingEntry, ...], chosen: str | None
) -> RecordingEntry | None:
    """The recording the memorial page shows first: the one a manager chose, else the longest
    ready one (the latest of equals). Not merely the latest: a sound check after the service,
    a fragment an encoder reconnecting by itself makes, the second part of a service split by
    a drop past Cloudflare's reconnect window (or by a Stop pressed by mistake) would each
    replace the service."""
    ready = [entry for entry in entries if entry.ready and not entry.hidden]
    picked = next((entry for entry in ready if entry.video_uid == chosen), None)
    if picked is not None:
        return picked
    return max(reversed(ready), key=lambda entry: entry.duration or 0.0, default=None)


def has_recording_since(stream: Stream, started: datetime | None) -> bool:
    """Whether a ready recording of the broadcast that started at ``started`` is attached.

    A recording belongs to that broadcast when it ends at or after its start, by the video's
    own times: a reconnect within the recording window continues a recording that began
    before the reconnect (and became the broadcast's new start). A trim is no recording of a
    broadcast."""
    return any(
        entry.ready and entry.clipped_from is None and _ends_at_or_after(entry, started)
        for entry in stream.recordings
    )


def has_recording_underway(stream: Stream, started: datetime | None) -> bool:
    """Whether Cloudflare is still recording or processing a video of the broadcast that
    started at ``started`` (one that failed is not underway, nor is a trim)."""
    return any(
        not entry.ready
        and entry.state != "error"
        and entry.clipped_from is None
        and _ends_at_or_after(entry, started)
        for entry in stream.recordings
    )


def broadcast_recorded(stream: Stream) -> bool:
    """Whether the recording of the stream's last broadcast is all there: a ready recording of
    it is attached and no other part of it is still being recorded or processed (a publisher
    that came back after Cloudflare's reconnect window started a new video, which the same
    broadcast goes on in)."""
    started = stream.actual_start_time
    return has_recording_since(stream, started) and not has_recording_underway(stream, started)


def _ends_at_or_after(entry: RecordingEntry, started: datetime | None) -> bool:
    if started is None:
        return True
    if entry.state == "live-inprogress" and (
        entry.created is None or started - entry.created < _STALE_IN_PROGRESS
    ):
        # A video still being recorded ends later than now, so after any start: the encoder
        # may have been sending since before the broadcast began (Stop, then Start again).
        return True
    if entry.created is not None and entry.duration is not None:
        return entry.created + timedelta(seconds=entry.duration) >= started
    latest = entry.modified or entry.created
    return latest is None or latest >= started


def recording_status(stream: Stream) -> RecordingStatus:
    """Where the stream's recording stands, so pages never show "rendering" forever. It is the
    last broadcast's, once that sent anything: a recording of an earlier one (a sound check)
    stays playable but does not make the service's "ready", nor hide that it is missing."""
    last_broadcast = _last_broadcast_unrecorded(stream)
    if last_broadcast is not None:
        return last_broadcast
    if stream.recording_ready:
        return "ready"
    if stream.ingest_protocol == "whip":
        # Unless an encoder took over within the broadcast, and Cloudflare makes its video.
        underway = stream.status == StreamStatus.COMPLETED and has_recording_underway(
            stream, stream.actual_start_time
        )
        return "processing" if underway else "unavailable"
    if stream.status != StreamStatus.COMPLETED:
        return "none"
    monitor = stream.recording_monitor
    if monitor is not None and monitor.state == "gave_up":
        return "missing" if stream.went_on_air else "none"
    return "processing"


def _last_broadcast_unrecorded(stream: Stream) -> RecordingStatus | None:
    """ "processing" or "missing" for an ended broadcast that sent something and has no ready
    recording yet, whatever an earlier one left; ``None`` otherwise."""
    started = stream.actual_start_time
    if (
        stream.status != StreamStatus.COMPLETED
        or not stream.went_on_air
        or has_recording_since(stream, started)
    ):
        return None
    monitor = stream.recording_monitor
    recorded = stream.ingest_protocol != "whip"
    if has_recording_underway(stream, started) or (
        recorded and monitor is not None and monitor.state == "running"
    ):
        return "processing"
    if recorded and monitor is not None and monitor.state == "gave_up":
        return "missing"
    return None


BroadcastState = Literal["idle", "armed", "on_air", "reconnecting", "ended"]
NEVER_ON_AIR = "This service never went on air: nothing was broadcast, so there is no recording."


def broadcast_state(stream: Stream) -> BroadcastState:
    """What a page can tell a family beyond ``status``: Start was pressed and the encoder is
    awaited (``armed``), something is being sent (``on_air``), the sender dropped during the
    broadcast (``reconnecting``), or it is over (``ended``)."""
    if stream.status == StreamStatus.LIVE:
        if stream.on_air or stream.whip_active:
            return "on_air"
        return "reconnecting" if stream.went_on_air else "armed"
    if stream.status in (StreamStatus.COMPLETED, StreamStatus.ERROR, StreamStatus.CANCELLED):
        return "ended"
    return "idle"


SchedulePhase = Literal["upcoming", "starting_soon", "live", "ended"]


def schedule_phase(stream: Stream) -> SchedulePhase | None:
    """Where a scheduled service stands for its page (``None``: it has no schedule): coming,
    starting soon (the countdown's last stretch, up to going live), live, or over (ended,
    cancelled, or its window closed without a broadcast)."""
    window = stream.schedule_window
    if window is None:
        return None
    if stream.status == StreamStatus.LIVE:
        return "live"
    if stream.status not in (StreamStatus.SCHEDULED, StreamStatus.READY):
        return "ended"
    if window.state == "closed":
        return "ended"
    return window.state


def recording_message(stream: Stream, status: RecordingStatus) -> str | None:
    """A sentence for the family where the status alone could mislead."""
    if status == "unavailable":
        return WHIP_NOT_RECORDED
    if status == "none" and stream.status == StreamStatus.COMPLETED and not stream.went_on_air:
        monitor = stream.recording_monitor
        if monitor is not None and monitor.state == "gave_up":
            return NEVER_ON_AIR
    return None


def ended_if_recorded(stream: Stream) -> Stream:
    """Cloudflare makes a recording ready only once the publisher has not come back within the
    reconnect window: a dropped broadcast whose recording is ready is over."""
    dropped = stream.status == StreamStatus.LIVE and stream.went_on_air and not stream.on_air
    if dropped and not stream.whip_active and has_recording_since(stream, stream.actual_start_time):
        return stream.ended_broadcast(stream.live_event_at or stream.updated_at)
    return stream
