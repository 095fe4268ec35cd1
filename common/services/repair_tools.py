"""The console's repair tools (FRONTEND_CONTRACT.md §3.7–3.12), with the listed bugs fixed:
they check permissions, match recordings by live input, use PUT, and never store WHEP URLs
as recordings."""

from typing import Literal

from pydantic import Field

from common.access import Action
from common.errors import ConflictError, FailedPreconditionError, NotFoundError
from common.models.api import RecordingChoiceRequest, StreamManagerView
from common.models.base import Model
from common.models.delivery import DeliveryUrls
from common.models.domain import Stream, StreamStatus, User
from common.models.recording_rules import with_recordings
from common.services.backends import BackendPorts, WithBackends
from common.services.monitors import MonitorService
from common.services.policy import StreamPolicy


class RecordingSummary(Model):
    videoId: str
    state: str
    readyToStream: bool
    duration: float | None
    recordingUrl: str | None
    createdAt: str | None


class SyncRecordingResponse(Model):
    """Reply of "attach the recordings": what Cloudflare has of the stream's live input and,
    once one is ready, the primary recording (its fields are null until then)."""

    success: bool = True
    message: str
    streamId: str
    status: Literal["synced", "processing", "no_recordings"]
    recordingsFound: int = Field(description="Recordings of the live input, ready or not")
    readyRecordings: int = Field(description="Those of them that play")
    recordingId: str | None = Field(default=None, description="The primary recording's id")
    videoId: str | None = Field(default=None, description="The same id, as the console names it")
    recordingUrl: str | None = None
    playbackUrl: str | None = Field(default=None, description="Its Cloudflare player page")
    duration: float | None = None
    recordings: list[RecordingSummary]


class RecordingsSyncResponse(Model):
    """Reply of ``POST /streams/{id}/recordings`` (the management page's "Sync Recording")."""

    streamId: str
    recordingsFound: int
    totalRecordings: int
    newRecordingsAdded: int
    recordings: list[RecordingSummary]
    recordingReady: bool
    recordingUrl: str | None
    recordingDuration: float | None
    syncedAt: str


class SyncStatusResponse(Model):
    success: bool = True
    streamId: str
    previousStatus: StreamStatus
    status: StreamStatus
    connected: bool
    connection: str
    recordingReady: bool
    lastChecked: str


class VideoIdResponse(Model):
    success: bool = True
    streamId: str
    cloudflareId: str
    videoId: str | None
    totalVideos: int
    recordings: list[RecordingSummary]


class CorsResponse(Model):
    success: bool = True
    message: str = "CORS configured successfully"
    streamId: str
    allowedOrigins: list[str]
    recordingMode: str = "automatic"
    recordingsUpdated: int


class PlaybackUrlResponse(Model):
    success: bool = True
    message: str = "Playback URL updated successfully"
    streamId: str
    oldUrl: str | None
    newPlaybackUrl: str
    newRecordingUrl: str | None


class RepairTools(WithBackends):
    """Manual reconciliation for stream managers: each one is safe to press repeatedly."""

    def __init__(
        self, backends: BackendPorts, *, monitors: MonitorService, policy: StreamPolicy
    ) -> None:
        super().__init__(backends)
        self._monitors = monitors
        self._policy = policy
        self._urls = DeliveryUrls(policy.delivery_base)

    def sync_recording(self, user: User | None, stream_id: str) -> SyncRecordingResponse:
        """Fetch the input's recordings from Cloudflare and attach them."""
        self._managed(user, stream_id)
        stream, found = self._monitors.reconcile(stream_id)
        self._monitors.resume_recording(stream)
        ready = [r for r in found if r.is_ready]
        if not found:
            status: Literal["synced", "processing", "no_recordings"] = "no_recordings"
            message = "No recordings found yet"
        elif not ready:
            status, message = "processing", "Recordings found but still processing"
        else:
            status, message = "synced", "Recording synced successfully"
        return SyncRecordingResponse(
            message=message,
            streamId=stream.id,
            status=status,
            recordingsFound=len(found),
            readyRecordings=len(ready),
            recordingId=stream.video_id if ready else None,
            videoId=stream.video_id if ready else None,
            recordingUrl=stream.recording_url if ready else None,
            playbackUrl=self._urls.player(stream.video_id) if ready and stream.video_id else None,
            duration=stream.recording_duration if ready else None,
            recordings=_summaries(stream),
        )

    def sync_recordings(self, user: User | None, stream_id: str) -> RecordingsSyncResponse:
        """Fetch the input's recordings from Cloudflare, attach them, say what was new."""
        before = self._managed(user, stream_id)
        _live_input(before)
        stream, found = self._monitors.reconcile(stream_id)
        known = {entry.video_uid for entry in before.recordings}
        return RecordingsSyncResponse(
            streamId=stream.id,
            recordingsFound=len(found),
            totalRecordings=len(stream.recordings),
            newRecordingsAdded=sum(1 for e in stream.recordings if e.video_uid not in known),
            recordings=_summaries(stream),
            recordingReady=stream.recording_ready,
            recordingUrl=stream.recording_url,
            recordingDuration=stream.recording_duration,
            syncedAt=self._clock.now().isoformat(),
        )

    def choose_recording(
        self, user: User | None, stream_id: str, video_id: str, choice: RecordingChoiceRequest
    ) -> StreamManagerView:
        """Make one recording the one the memorial page shows, or hide it (a test broadcast
        after the service must not replace the funeral)."""
        self._managed(user, stream_id)
        now = self._clock.now()

        def apply(current: Stream) -> Stream:
            entry = next((e for e in current.recordings if e.video_uid == video_id), None)
            if entry is None:
                raise NotFoundError("This stream has no such recording")
            hidden = choice.hidden if choice.hidden is not None else entry.hidden
            primary = current.primary_video_id
            if choice.primary:
                if not entry.ready:
                    raise ConflictError("This recording is not ready yet")
                hidden, primary = False, video_id
            elif (choice.primary is False or hidden) and primary == video_id:
                primary = None
            entries = tuple(
                e.model_copy(update={"hidden": hidden}) if e.video_uid == video_id else e
                for e in current.recordings
            )
            chosen = current.model_copy(update={"primary_video_id": primary, "updated_at": now})
            return with_recordings(chosen, entries, now)

        return StreamManagerView.of(self._repo.update(stream_id, apply))

    def sync_status(self, user: User | None, stream_id: str) -> SyncStatusResponse:
        """Align the stream's status with the live input's connection, both ways."""
        stream = self._managed(user, stream_id)
        uid = _live_input(stream)
        connection = self._provider.get_live_input(uid).connection
        now = self._clock.now()
        connected = connection == "connected"

        def align(current: Stream) -> Stream:
            if connected and current.status != StreamStatus.LIVE:
                return current.began_broadcast(now)
            if connection == "disconnected" and current.status == StreamStatus.LIVE:
                return current.ended_broadcast(now)
            return current

        # Nothing to align writes nothing: the update answers from the read above.
        updated = self._repo.update(stream.id, align)
        if updated.status == StreamStatus.COMPLETED and stream.status == StreamStatus.LIVE:
            self._monitors.start_monitor("recording", updated)
        if updated.status == StreamStatus.LIVE and stream.status != StreamStatus.LIVE:
            self._monitors.start_monitor("status", updated)
        return SyncStatusResponse(
            streamId=stream.id,
            previousStatus=stream.status,
            status=updated.status,
            connected=connected,
            connection=connection,
            recordingReady=updated.recording_ready,
            lastChecked=now.isoformat(),
        )

    def fix_status(self, user: User | None, stream_id: str) -> SyncStatusResponse:
        """Status both ways, then recordings: the one button for a stuck stream."""
        self.sync_status(user, stream_id)
        self._monitors.reconcile(stream_id)
        return self.sync_status(user, stream_id)

    def get_video_id(self, user: User | None, stream_id: str) -> VideoIdResponse:
        """The recordings of the stream's input and which one is primary."""
        self._managed(user, stream_id)
        stream, found = self._monitors.reconcile(stream_id)
        return VideoIdResponse(
            streamId=stream.id,
            cloudflareId=_live_input(stream),
            videoId=stream.video_id,
            totalVideos=len(found),
            recordings=_summaries(stream),
        )

    def configure_cors(self, user: User | None, stream_id: str) -> CorsResponse:
        """Apply the configured allowed origins to the input and to every existing recording."""
        stream = self._managed(user, stream_id)
        uid = _live_input(stream)
        origins = self._policy.allowed_origins
        # A private stream stays private.
        rules = self._policy.recording_rules(require_signed_urls=stream.signed_urls)
        stored = self._provider.set_input_allowed_origins(uid, rules)
        videos = self._provider.list_recordings(uid)
        for video in videos:
            self._provider.set_video_allowed_origins(video.video_uid, origins)
        now = self._clock.now()
        self._repo.update(stream.id, lambda s: s.model_copy(update={"updated_at": now}))
        return CorsResponse(
            streamId=stream.id, allowedOrigins=list(stored), recordingsUpdated=len(videos)
        )

    def fix_playback_url(self, user: User | None, stream_id: str) -> PlaybackUrlResponse:
        """Rebuild the live player URL on the customer host and the recording's HLS URL."""
        stream = self._managed(user, stream_id)
        uid = _live_input(stream)
        refreshed, _ = self._monitors.reconcile(stream.id)
        playback = self._urls.player(uid)
        now = self._clock.now()
        updated = self._repo.update(
            stream.id, lambda s: s.model_copy(update={"playback_url": playback, "updated_at": now})
        )
        return PlaybackUrlResponse(
            streamId=stream.id,
            oldUrl=stream.playback_url,
            newPlaybackUrl=playback,
            newRecordingUrl=refreshed.recording_url if updated.recording_ready else None,
        )

    def _managed(self, user: User | None, stream_id: str) -> Stream:
        stream, _ = self._load(user, stream_id, Action.EDIT)
        return stream


def _live_input(stream: Stream) -> str:
    if not stream.cloudflare_id:
        raise FailedPreconditionError("No Cloudflare stream ID found")
    return stream.cloudflare_id


def _summaries(stream: Stream) -> list[RecordingSummary]:
    return [
        RecordingSummary(
            videoId=e.video_uid,
            state=e.state,
            readyToStream=e.ready,
            duration=e.duration,
            recordingUrl=e.hls_url,
            createdAt=e.created.isoformat() if e.created else None,
        )
        for e in stream.recordings
    ]
