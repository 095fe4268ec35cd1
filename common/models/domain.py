"""Our own vocabulary: streams, memorials, users, live inputs and recordings."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class StreamStatus(StrEnum):
    """Lifecycle of a stream. ``ready`` is only ever read from legacy documents."""

    SCHEDULED = "scheduled"
    READY = "ready"
    LIVE = "live"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ERROR = "error"


Role = Literal["admin", "owner", "funeral_director"]


class User(BaseModel):
    """An authenticated caller, from Firebase Auth custom claims."""

    model_config = ConfigDict(frozen=True)

    uid: str
    email: str | None = None
    role: Role = "owner"
    is_admin: bool = False

    @property
    def is_administrator(self) -> bool:
        return self.is_admin or self.role == "admin"


class Memorial(BaseModel):
    """The parts of a memorial page that decide who may manage its streams."""

    model_config = ConfigDict(frozen=True)

    id: str
    owner_uid: str | None = None
    funeral_director_uid: str | None = None
    is_public: bool = True
    loved_one_name: str | None = None


class StreamCredentials(BaseModel):
    """Publishing secrets of a stream. Never part of a public view or a log line."""

    model_config = ConfigDict(frozen=True)

    rtmp_url: str
    stream_key: SecretStr
    whip_url: SecretStr


class RecordingEntry(BaseModel):
    """One recording of a stream as we keep it (a broadcast or a late reconnect each make one)."""

    model_config = ConfigDict(frozen=True)

    video_uid: str
    state: str
    ready: bool
    hls_url: str | None = None
    dash_url: str | None = None
    thumbnail_url: str | None = None
    duration: float | None = None
    size: int | None = None
    created: datetime | None = None
    modified: datetime | None = None
    # A manager's choice: hidden recordings (a test broadcast) are off every public view.
    hidden: bool = False


MonitorKind = Literal["recording", "status"]


class MonitorState(BaseModel):
    """Progress of a chain of scheduled checks; ``generation`` names one broadcast's chain."""

    model_config = ConfigDict(frozen=True)

    generation: int
    next_attempt: int = 0
    state: Literal["running", "done", "gave_up"] = "running"
    checked_at: datetime | None = None
    seen_connected: bool = False


class StreamIssue(BaseModel):
    """The last problem the platform reported for a stream (e.g. storage quota exhausted)."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: str
    at: datetime


class Stream(BaseModel):
    """A livestream of a memorial service, in canonical (unaliased) form."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    description: str = ""
    memorial_id: str | None = None
    memorial_name: str | None = None
    created_by: str
    allowed_users: tuple[str, ...] = ()
    status: StreamStatus = StreamStatus.SCHEDULED
    is_visible: bool = True
    is_public: bool = True
    display_order: int = 0
    featured: bool = False
    scheduled_start_time: datetime | None = None
    actual_start_time: datetime | None = None
    end_time: datetime | None = None
    cloudflare_id: str | None = None
    playback_url: str | None = None
    whip_active: bool = False
    recording_ready: bool = False
    video_id: str | None = None
    recording_url: str | None = None
    recording_dash_url: str | None = None
    recording_thumbnail: str | None = None
    recording_duration: float | None = None
    recording_size: int | None = None
    recording_updated_at: datetime | None = None
    viewer_count: int = 0
    max_viewers: int | None = None
    duration: float | None = None
    thumbnail_url: str | None = None
    recordings: tuple[RecordingEntry, ...] = ()
    # The recording a manager chose to show (else the latest ready one that is not hidden).
    primary_video_id: str | None = None
    ingest_protocol: Literal["rtmp", "whip"] | None = None
    webrtc_playback_url: str | None = None
    recording_monitor: MonitorState | None = None
    status_monitor: MonitorState | None = None
    last_error: StreamIssue | None = None
    live_event_at: datetime | None = None
    # Whether a publisher (encoder or browser) is sending now, and whether one has since this
    # broadcast began: a started stream with nothing on air is not lost footage.
    on_air: bool = False
    went_on_air: bool = False
    created_at: datetime
    updated_at: datetime

    def monitor(self, kind: MonitorKind) -> MonitorState | None:
        return self.recording_monitor if kind == "recording" else self.status_monitor

    def is_recorded(self) -> bool:
        """What "recorded" means everywhere: the service is over and its recording plays."""
        return self.status == StreamStatus.COMPLETED and self.recording_ready

    def began_broadcast(self, at: datetime) -> Stream:
        """Live from ``at`` on; a new broadcast clears the previous one's end."""
        return self.model_copy(
            update={
                "status": StreamStatus.LIVE,
                "actual_start_time": at,
                "end_time": None,
                "on_air": False,
                "went_on_air": False,
                "updated_at": at,
            }
        )

    def publisher_connected(self, at: datetime) -> Stream:
        """An encoder or a browser is sending."""
        return self.model_copy(update={"on_air": True, "went_on_air": True, "updated_at": at})

    def ended_broadcast(self, at: datetime) -> Stream:
        """Off the air at ``at``, whichever way it was sent."""
        return self.model_copy(
            update={
                "status": StreamStatus.COMPLETED,
                "end_time": at,
                "whip_active": False,
                "on_air": False,
                "updated_at": at,
            }
        )

    def shared_fields(self) -> dict[str, Any]:
        """The fields stored and shown under the frontend's names, legacy aliases included
        (FRONTEND_CONTRACT.md §2.3): one definition for the document and the views."""
        return {
            "title": self.title,
            "description": self.description,
            "memorialId": self.memorial_id,
            "memorialName": self.memorial_name,
            "status": str(self.status),
            "isVisible": self.is_visible,
            "isPublic": self.is_public,
            "displayOrder": self.display_order,
            "featured": self.featured,
            "scheduledStartTime": self.scheduled_start_time,
            "scheduledDateTime": self.scheduled_start_time,
            "actualStartTime": self.actual_start_time,
            "endTime": self.end_time,
            "actualEndTime": self.end_time,
            "cloudflareId": self.cloudflare_id,
            "cloudflareStreamId": self.cloudflare_id,
            "playbackUrl": self.playback_url,
            "whipActive": self.whip_active,
            "recordingReady": self.recording_ready,
            "videoId": self.video_id,
            "recordingUrl": self.recording_url,
            "recordingPlaybackUrl": self.recording_url,
            "recordingDashUrl": self.recording_dash_url,
            "recordingThumbnail": self.recording_thumbnail,
            "recordingDuration": self.recording_duration,
            "recordingSize": self.recording_size,
            "recordingUpdatedAt": self.recording_updated_at,
            "viewerCount": self.viewer_count,
            "maxViewers": self.max_viewers,
            "duration": self.duration,
            "thumbnailUrl": self.thumbnail_url,
            "ingestProtocol": self.ingest_protocol,
            "webRTCPlaybackUrl": self.webrtc_playback_url,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }


LiveConnection = Literal["connected", "reconnecting", "disconnected", "unknown"]


class LiveInputSpec(BaseModel):
    """What we ask the provider for when a stream gets its ingest point."""

    model_config = ConfigDict(frozen=True)

    stream_id: str
    name: str
    recording_timeout_seconds: int
    allowed_origins: tuple[str, ...]
    delete_recording_after_days: int | None = None


class LiveInput(BaseModel):
    """A provider ingest point, with its credentials."""

    model_config = ConfigDict(frozen=True)

    uid: str
    rtmp_url: str
    stream_key: SecretStr
    whip_url: SecretStr
    whep_url: str | None = None
    connection: LiveConnection = "unknown"
    stream_id: str | None = Field(default=None, description="our stream id, from the input's meta")

    def credentials(self) -> StreamCredentials:
        return StreamCredentials(
            rtmp_url=self.rtmp_url, stream_key=self.stream_key, whip_url=self.whip_url
        )


class WhipAnswer(BaseModel):
    """The provider's answer to a WHIP offer, and the session resource to DELETE later."""

    model_config = ConfigDict(frozen=True)

    sdp: str
    resource_url: str | None


class Recording(BaseModel):
    """One video recorded from a live input (each broadcast or late reconnect makes one)."""

    model_config = ConfigDict(frozen=True)

    video_uid: str
    live_input_uid: str | None
    state: str
    ready_to_stream: bool
    duration: float | None = None
    size: int | None = None
    hls_url: str | None = None
    dash_url: str | None = None
    thumbnail_url: str | None = None
    created: datetime | None = None
    modified: datetime | None = None

    @property
    def is_ready(self) -> bool:
        return self.ready_to_stream and self.state == "ready"


class VideoReport(BaseModel):
    """A verified report that a video of a live input changed (the Stream webhook)."""

    model_config = ConfigDict(frozen=True)

    recording: Recording
    stream_hint: str | None = None


class LiveInputNotice(BaseModel):
    """A verified live-input notification: ``event`` as Cloudflare names it."""

    model_config = ConfigDict(frozen=True)

    input_uid: str
    event: str
    at: datetime
    issue: StreamIssue | None = None
