"""Our own vocabulary: streams, memorials, users, live inputs and recordings."""

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import ConfigDict, Field, SecretStr
from pydantic.alias_generators import to_camel

from common.models.base import Model


class StreamStatus(StrEnum):
    """Lifecycle of a stream. ``ready`` is only ever read from legacy documents."""

    SCHEDULED = "scheduled"
    READY = "ready"
    LIVE = "live"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ERROR = "error"


def _wire_name(field_name: str) -> str:
    """A field's name on the wire and in Firestore: camelCase, as the frontend reads it."""
    return _WIRE_NAME_EXCEPTIONS.get(field_name) or to_camel(field_name)


_WIRE_NAME_EXCEPTIONS = {"webrtc_playback_url": "webRTCPlaybackUrl"}


class Value(Model):
    """A domain value: immutable once made."""

    model_config = ConfigDict(frozen=True)


class WireModel(Value):
    """Fields named in snake_case in Python, in camelCase on the wire and in documents."""

    model_config = ConfigDict(
        frozen=True,
        alias_generator=_wire_name,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


Role = Literal["admin", "owner", "funeral_director"]


class User(Value):
    """An authenticated caller, from Firebase Auth custom claims."""

    uid: str
    email: str | None = None
    role: Role = "owner"
    is_admin: bool = False

    @property
    def is_administrator(self) -> bool:
        return self.is_admin or self.role == "admin"


class Memorial(Value):
    """The parts of a memorial page that decide who may manage its streams."""

    id: str
    owner_uid: str | None = None
    funeral_director_uid: str | None = None
    is_public: bool = True
    loved_one_name: str | None = None
    # The memorial page's path on the site (``/<fullSlug>``), where calendars link to.
    full_slug: str | None = None


class StreamCredentials(Value):
    """Publishing secrets of a stream. Never part of a public view or a log line."""

    rtmp_url: str
    stream_key: SecretStr
    whip_url: SecretStr


DownloadState = Literal["preparing", "ready", "error"]


class FollowedRequest(WireModel):
    """A family's request a chain of checks follows until the provider has done it:
    ``generation`` names the request's chain, ``checks`` how many have run (the claim a
    duplicate delivery is refused by), ``unanswered`` how many of them the provider did not
    answer (those do not count against the chain's budget)."""

    requested_at: datetime
    checks: int = 0
    unanswered: int = 0

    @property
    def generation(self) -> int:
        return int(self.requested_at.timestamp())


class RecordingDownload(FollowedRequest):
    """An MP4 download of one recording a family asked for."""

    state: DownloadState = "preparing"
    percent_complete: float = 0
    url: str | None = None


class PendingClip(FollowedRequest):
    """A trim being made at the provider: the clip becomes the primary recording when ready."""

    video_uid: str
    clipped_from: str
    start_time_seconds: int
    end_time_seconds: int


class RecordingEntry(Value):
    """One recording of a stream as we keep it (a broadcast or a late reconnect each make one)."""

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
    # A trim of another recording of the stream (its video uid), and its MP4 download, if any.
    clipped_from: str | None = None
    download: RecordingDownload | None = None


MonitorKind = Literal["recording", "status"]


class MonitorState(WireModel):
    """Where a chain of scheduled checks stands; ``generation`` names one broadcast's chain.
    Part of the stream: what a page says ("processing", "missing") depends on it."""

    generation: int
    state: Literal["running", "done", "gave_up"] = "running"


class MonitorProgress(WireModel):
    """How far a chain of checks has got. Kept apart from the stream, so a check that changes
    nothing a viewer sees writes nothing the stream's Firestore trigger would react to."""

    generation: int
    next_attempt: int = 0
    checked_at: datetime | None = None
    seen_connected: bool = False


class StreamIssue(WireModel):
    """The last problem the platform reported for a stream (e.g. storage quota exhausted)."""

    code: str
    message: str
    at: datetime


WindowState = Literal["upcoming", "starting_soon", "closed"]
WindowCloser = Literal["window", "hard_maximum", "manager"]


class ScheduleWindow(WireModel):
    """The planned window of a scheduled service, as its Cloud Tasks were last armed for it.

    ``revision`` names one arming: a task carries the revision it was queued for, so a
    reschedule or an extension leaves every task queued before it stale. The page reads
    ``state`` ("starting soon" before the start) while the stream is not live.
    """

    revision: int
    state: WindowState
    opens_at: datetime
    planned_end: datetime
    # When the end check runs: the planned end plus the over-run, later while still on air.
    closes_at: datetime
    # The hard maximum: a broadcast still on air then is ended all the same.
    latest_close: datetime
    extensions: int = 0
    closed_by: WindowCloser | None = None
    closed_at: datetime | None = None


class StreamPublicFields(WireModel):
    """A stream as anyone allowed to view it may know it: each field declared once, here, for
    the domain, the views and the stored document alike. No credentials, no user ids."""

    title: str
    description: str = ""
    memorial_id: str | None = None
    memorial_name: str | None = None
    status: StreamStatus = StreamStatus.SCHEDULED
    is_visible: bool = True
    is_public: bool = True
    display_order: int = 0
    featured: bool = False
    scheduled_start_time: datetime | None = None
    # The planned end of the service (events' sessions, calendars, the schedule window).
    scheduled_end_time: datetime | None = None
    schedule_window: ScheduleWindow | None = None
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
    ingest_protocol: Literal["rtmp", "whip"] | None = None
    webrtc_playback_url: str | None = None
    created_at: datetime
    updated_at: datetime


class StreamManagerFields(StreamPublicFields):
    """What those who may edit a stream know beyond its public fields."""

    created_by: str
    allowed_users: tuple[str, ...] = ()
    last_error: StreamIssue | None = None


class Stream(StreamManagerFields):
    """A livestream of a memorial service, in canonical (unaliased) form."""

    id: str
    recordings: tuple[RecordingEntry, ...] = ()
    # Recordings a manager deleted: a late webhook or a check that listed them before the
    # delete must not bring them back (their playback is gone at Cloudflare).
    deleted_video_ids: tuple[str, ...] = ()
    # The recording a manager chose to show (else the latest ready one that is not hidden).
    primary_video_id: str | None = None
    recording_monitor: MonitorState | None = None
    status_monitor: MonitorState | None = None
    # The trim being made, whose uid matches its Stream webhook (a clip has no live input).
    pending_clip: PendingClip | None = None
    live_event_at: datetime | None = None
    # Whether a publisher (encoder or browser) is sending now, and whether one has since this
    # broadcast began: a started stream with nothing on air is not lost footage.
    on_air: bool = False
    went_on_air: bool = False
    # Whether Cloudflare was last told to require signed URLs for the live input and every
    # recording (``access.requires_signed_playback``); a change is applied, then noted here.
    signed_urls: bool = False
    # Whether a Stop disabled the live input at Cloudflare (ending what was still sent): the
    # next Start, browser broadcast or credentials request enables it again.
    ingest_closed: bool = False

    def monitor(self, kind: MonitorKind) -> MonitorState | None:
        return self.recording_monitor if kind == "recording" else self.status_monitor

    def is_recorded(self) -> bool:
        """What "recorded" means everywhere: the service is over and its recording plays."""
        return self.status == StreamStatus.COMPLETED and self.recording_ready

    def began_broadcast(self, at: datetime) -> "Stream":
        """Live from ``at`` on; a new broadcast clears the previous one's end, and how the
        previous one was sent (a browser test before an OBS service must not make the
        service look unrecorded): its publisher's connection tells again."""
        return self.model_copy(
            update={
                "status": StreamStatus.LIVE,
                "actual_start_time": at,
                "end_time": None,
                "on_air": False,
                "went_on_air": False,
                "ingest_protocol": None,
                # Whoever begins it, something can publish: the input is open.
                "ingest_closed": False,
                "updated_at": at,
            }
        )

    def publisher_connected(self, at: datetime) -> "Stream":
        """An encoder or a browser is sending."""
        return self.model_copy(update={"on_air": True, "went_on_air": True, "updated_at": at})

    def ended_broadcast(self, at: datetime) -> "Stream":
        """Off the air at ``at``, whichever way it was sent."""
        return self.model_copy(
            update={
                "status": StreamStatus.COMPLETED,
                "end_time": at,
                "whip_active": False,
                "on_air": False,
                "viewer_count": 0,  # nobody watches it live any more; max_viewers stays
                "updated_at": at,
            }
        )


LiveConnection = Literal["connected", "reconnecting", "disconnected", "unknown"]


class LiveInputSpec(Value):
    """What we ask the provider for when a stream gets its ingest point."""

    stream_id: str
    name: str
    recording_timeout_seconds: int
    allowed_origins: tuple[str, ...]
    delete_recording_after_days: int | None = None
    # Private streams: the input and the recordings it makes play only through signed URLs.
    require_signed_urls: bool = False


class LiveInput(Value):
    """A provider ingest point, with its credentials."""

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


DownloadProgress = Literal["inprogress", "ready", "error"]


class DownloadStatus(Value):
    """Where the provider's MP4 download of a video stands."""

    state: DownloadProgress
    url: str | None = None
    percent_complete: float = 0


class ClipSpec(Value):
    """What we ask the provider for when a manager trims a recording."""

    source_uid: str
    start_time_seconds: int
    end_time_seconds: int
    stream_id: str
    name: str
    require_signed_urls: bool = False
    allowed_origins: tuple[str, ...] = ()


class WhipAnswer(Value):
    """The provider's answer to a WHIP offer, and the session resource to DELETE later."""

    sdp: str
    resource_url: str | None


class Recording(Value):
    """One video recorded from a live input (each broadcast or late reconnect makes one)."""

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
    clipped_from: str | None = None

    @property
    def is_ready(self) -> bool:
        return self.ready_to_stream and self.state == "ready"


class VideoReport(Value):
    """A verified report that a video of a live input changed (the Stream webhook)."""

    recording: Recording
    stream_hint: str | None = None


class LiveInputNotice(Value):
    """A verified live-input notification: ``event`` as Cloudflare names it."""

    input_uid: str
    event: str
    at: datetime
    issue: StreamIssue | None = None
