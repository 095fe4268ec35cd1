"""What viewers' pages poll about one stream: its status, its recordings, how to embed it.

None of these calls Cloudflare: they answer from the stream document alone, so a memorial page
polling every few seconds costs one document read per request (the memorial that decides who
may view is cached briefly per instance).
"""

from datetime import datetime
from typing import Literal

from common.access import Action
from common.errors import NotFoundError
from common.models.api import ScheduleView
from common.models.base import Model
from common.models.delivery import DeliveryUrls
from common.models.domain import Stream, StreamStatus, User
from common.models.recording_rules import RecordingStatus, broadcast_state, recording_status
from common.ports import Clock, MemorialDirectory, StreamReads
from common.services.stream_access import TimedMemorialCache, load_authorized


class LiveInputState(Model):
    """The live input as far as the stream document knows it (no Cloudflare call)."""

    uid: str
    connected: bool


class StreamStatusResponse(Model):
    """Reply of ``GET /streams/{id}/status`` (newer pages poll it every 5-10 s)."""

    streamId: str
    status: StreamStatus
    title: str
    isVisible: bool
    isPublic: bool
    recordingReady: bool
    recordingStatus: RecordingStatus
    createdAt: datetime
    actualStartTime: datetime | None
    endTime: datetime | None
    cloudflare: LiveInputState | None
    lastChecked: datetime
    # Viewers now and the peak, as the status monitor last read them (no Cloudflare call here).
    viewerCount: int = 0
    maxViewers: int | None = None
    schedule: ScheduleView | None = None


# The stream's own fields the status reply carries, as the stream names them on the wire.
_STATUS_FIELDS = frozenset(
    {
        "status",
        "title",
        "is_visible",
        "is_public",
        "recording_ready",
        "created_at",
        "actual_start_time",
        "end_time",
        "viewer_count",
        "max_viewers",
    }
)


class StreamRecording(Model):
    """One playable recording, as the memorial page's ``recordings[]`` reads it."""

    id: str
    cloudflareVideoId: str
    recordingUrl: str
    playbackUrl: str
    duration: float | None
    createdAt: datetime | None
    title: str
    sequenceNumber: int
    recordingReady: Literal[True] = True


class StreamRecordingsResponse(Model):
    """Reply of ``GET /streams/{id}/recordings``: the ready recordings, oldest first."""

    streamId: str
    totalRecordings: int
    recordings: list[StreamRecording]
    recordingReady: bool
    recordingUrl: str | None
    recordingDuration: float | None
    playbackUrl: str | None
    cloudflareId: str | None
    lastChecked: datetime
    # The URLs play only with a token (a private stream): GET /api/streams/{id}/playback.
    requiresToken: bool = False


class Thumbnails(Model):
    default: str
    at10s: str
    custom: str | None


class EmbedLiveInput(Model):
    """Connection state only: publish URLs are credentials and never leave the owner's views."""

    status: Literal["live", "idle"]
    isConnected: bool


class EmbedVideo(Model):
    status: str
    duration: float | None
    size: int | None
    created: datetime | None
    isReady: bool


class RecommendedEmbed(Model):
    type: Literal["iframe"] = "iframe"
    url: str
    html: str


class EmbedInfoResponse(Model):
    """Reply of ``GET /streams/{id}/embed-info``: ready-made player URLs for the stream."""

    streamId: str
    cloudflareId: str
    status: StreamStatus
    iframeUrl: str
    iframeUrlWithControls: str
    hlsManifest: str
    dashManifest: str
    thumbnails: Thumbnails
    liveInput: EmbedLiveInput
    video: EmbedVideo | None
    recommendedEmbed: RecommendedEmbed
    # The URLs play only with a token (a private stream): GET /api/streams/{id}/playback.
    requiresToken: bool = False


class StreamInfoService:
    """Read-only, Cloudflare-free answers about one stream for those who may view it."""

    def __init__(
        self,
        *,
        repo: StreamReads,
        memorials: MemorialDirectory,
        clock: Clock,
        delivery_base: str,
        memorial_cache_ttl_s: float = 30,
    ) -> None:
        self._repo = repo
        self._memorials = TimedMemorialCache(memorials, memorial_cache_ttl_s)
        self._clock = clock
        self._urls = DeliveryUrls(delivery_base)

    def status(self, user: User | None, stream_id: str) -> StreamStatusResponse:
        stream = self._viewable(user, stream_id)
        now = self._clock.now()
        carried = stream.model_dump(by_alias=True, include=set(_STATUS_FIELDS))
        return StreamStatusResponse.model_validate(
            carried
            | {
                "streamId": stream.id,
                "recordingStatus": recording_status(stream),
                "cloudflare": LiveInputState(uid=stream.cloudflare_id, connected=_on_air(stream))
                if stream.cloudflare_id
                else None,
                "lastChecked": now,
                "schedule": ScheduleView.of(stream, now),
            }
        )

    def recordings(self, user: User | None, stream_id: str) -> StreamRecordingsResponse:
        stream = self._viewable(user, stream_id)
        ready = [
            (e, e.hls_url) for e in stream.recordings if e.ready and e.hls_url and not e.hidden
        ]
        playable = [
            StreamRecording(
                id=entry.video_uid,
                cloudflareVideoId=entry.video_uid,
                recordingUrl=url,
                playbackUrl=self._urls.player(entry.video_uid),
                duration=entry.duration,
                createdAt=entry.created,
                title=f"{stream.title} - Recording {number}" if number > 1 else stream.title,
                sequenceNumber=number,
            )
            for number, (entry, url) in enumerate(ready, start=1)
        ]
        return StreamRecordingsResponse(
            streamId=stream.id,
            totalRecordings=len(playable),
            recordings=playable,
            recordingReady=stream.recording_ready,
            recordingUrl=stream.recording_url,
            recordingDuration=stream.recording_duration,
            playbackUrl=self._urls.player(stream.video_id) if stream.video_id else None,
            cloudflareId=stream.cloudflare_id,
            lastChecked=self._clock.now(),
            requiresToken=stream.signed_urls,
        )

    def embed_info(self, user: User | None, stream_id: str) -> EmbedInfoResponse:
        stream = self._viewable(user, stream_id)
        if not stream.cloudflare_id:
            raise NotFoundError("No Cloudflare ID found for stream")
        replay = stream.video_id if stream.is_recorded() else None
        media = replay or stream.cloudflare_id
        urls = self._urls
        player = urls.player(media)
        latest = stream.recordings[-1] if stream.recordings else None
        return EmbedInfoResponse(
            streamId=stream.id,
            cloudflareId=stream.cloudflare_id,
            status=stream.status,
            iframeUrl=player,
            iframeUrlWithControls=f"{player}?controls=true",
            hlsManifest=urls.hls(media),
            dashManifest=urls.dash(media),
            thumbnails=Thumbnails(
                default=urls.thumbnail(media),
                at10s=f"{urls.thumbnail(media)}?time=10s",
                custom=stream.recording_thumbnail,
            ),
            liveInput=EmbedLiveInput(
                status="live" if stream.status == StreamStatus.LIVE else "idle",
                isConnected=_on_air(stream),
            ),
            video=EmbedVideo(
                status=latest.state,
                duration=latest.duration,
                size=latest.size,
                created=latest.created,
                isReady=latest.ready,
            )
            if latest
            else None,
            requiresToken=stream.signed_urls,
            recommendedEmbed=RecommendedEmbed(
                url=player,
                html=(
                    f'<iframe src="{player}" style="border:none" height="720" width="1280" '
                    'allow="accelerometer; gyroscope; autoplay; encrypted-media; '
                    'picture-in-picture;" allowfullscreen="true"></iframe>'
                ),
            ),
        )

    def _viewable(self, user: User | None, stream_id: str) -> Stream:
        stream, _ = load_authorized(self._repo, self._memorials, user, stream_id, Action.VIEW)
        return stream


def _on_air(stream: Stream) -> bool:
    """Connected means something is being sent: a started stream may still await its encoder."""
    return broadcast_state(stream) == "on_air"
