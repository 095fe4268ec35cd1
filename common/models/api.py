"""Request bodies and response views of the HTTP API (field names as the frontend reads them).

View classes form a ladder: ``StreamPublicView`` (anyone who may view) ⊂ ``StreamManagerView``
(editors) ⊂ ``StreamOwnerView`` (those who may start the stream). Only the last has credential
fields, so a public response cannot carry a stream key by construction.
"""

import re
from datetime import UTC, datetime
from math import ceil
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    ConfigDict,
    Field,
    computed_field,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from common.errors import InvalidArgumentError
from common.models.base import Model
from common.models.delivery import hls_of_player
from common.models.domain import (
    RecordingEntry,
    ScheduleWindow,
    Stream,
    StreamCredentials,
    StreamManagerFields,
    StreamPublicFields,
    StreamStatus,
)
from common.models.recording_rules import (
    BroadcastState,
    RecordingStatus,
    SchedulePhase,
    broadcast_state,
    recording_message,
    recording_status,
    schedule_phase,
)

# A stream creation carrying this header is done at most once (``common.services.create_guards``).
IDEMPOTENCY_HEADER = "Idempotency-Key"
_TITLE_MAX = 200
_DESCRIPTION_MAX = 5000
_MAX_ALLOWED_USERS = 100
_EARLIEST_YEAR = 1900
_LATEST_YEAR = 2200


def _sane_instant(value: datetime) -> datetime:
    """A point in time as UTC, within years we can store and compare (naive means UTC).

    Offsets at the calendar's edge (``0001-01-01T00:00:00+14:00``) parse but cannot be
    converted to UTC or stored; they are refused here as a 400 instead of failing later.
    """
    try:
        instant = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        instant = None
    if instant is None or not _EARLIEST_YEAR <= instant.year <= _LATEST_YEAR:
        raise ValueError(
            f"must be a date and time between the years {_EARLIEST_YEAR} and {_LATEST_YEAR}"
        )
    return instant


Instant = Annotated[datetime, AfterValidator(_sane_instant)]
# The same, with its offset required (a naive time is refused).
AwareInstant = Annotated[AwareDatetime, AfterValidator(_sane_instant)]


def window_problem(start: datetime | None, end: datetime | None) -> str | None:
    """What is wrong with a planned window (``None``: nothing): it must end after it starts."""
    if start is not None and end is not None and end <= start:
        return "the window ends before it starts: scheduledEndTime must be after scheduledStartTime"
    return None


# Firestore document ids we accept: no slashes, and never the reserved __name__ form.
ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"


def is_document_id(value: str) -> bool:
    """Whether ``value`` can name one of our Firestore documents."""
    return bool(re.match(ID_PATTERN, value)) and not (
        value.startswith("__") and value.endswith("__")
    )


def _document_id(value: str) -> str:
    if not is_document_id(value):
        raise ValueError("not a valid id")
    return value


StreamId = Annotated[str, AfterValidator(_document_id)]


class _Request(Model):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _StreamFieldsRequest(Model):
    """A body that sets stream fields: named like the stream's fields in Python and like the
    frontend's JSON on the wire, so its fields go onto the stream by name, unmapped."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


class StreamCreateRequest(_StreamFieldsRequest):
    """Body of ``POST /streams`` (unified and MVP Two field names)."""

    title: str = Field(min_length=1, max_length=_TITLE_MAX)
    description: str = Field(default="", max_length=_DESCRIPTION_MAX)
    memorial_id: StreamId | None = None
    memorial_name: str | None = Field(default=None, max_length=_TITLE_MAX)
    schedule_type: Literal["now", "scheduled"] | None = None
    scheduled_start_time: Instant | None = None
    scheduled_date_time: Instant | None = None  # the MVP Two name of the same time
    scheduled_end_time: Instant | None = None
    is_visible: bool = True
    is_public: bool = True
    allowed_users: tuple[str, ...] = Field(default=(), max_length=_MAX_ALLOWED_USERS)
    display_order: int = Field(default=0, ge=0, le=1_000_000)
    featured: bool = False

    @model_validator(mode="after")
    def _scheduled_needs_a_time(self) -> "StreamCreateRequest":
        if self.schedule_type == "scheduled" and self.scheduled_start is None:
            raise ValueError("scheduleType 'scheduled' needs scheduledStartTime")
        problem = window_problem(self.scheduled_start, self.scheduled_end_time)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def scheduled_start(self) -> datetime | None:
        return self.scheduled_start_time or self.scheduled_date_time

    def stream_fields(self) -> dict[str, object]:
        """The fields a new stream takes from this body, by the stream's own names."""
        fields = self.model_dump(by_alias=False, exclude={"schedule_type", "scheduled_date_time"})
        return fields | {"scheduled_start_time": self.scheduled_start}


class StreamUpdateRequest(_StreamFieldsRequest):
    """Body of ``PUT /streams/{id}``: only the editable fields. Only the schedule may be
    cleared with ``null``; every other field, when present, needs a value."""

    title: str | None = Field(default=None, min_length=1, max_length=_TITLE_MAX)
    description: str | None = Field(default=None, max_length=_DESCRIPTION_MAX)
    is_visible: bool | None = None
    is_public: bool | None = None
    display_order: int | None = Field(default=None, ge=0, le=1_000_000)
    featured: bool | None = None
    scheduled_start_time: Instant | None = None
    scheduled_date_time: Instant | None = None  # the MVP Two name of the same time
    scheduled_end_time: Instant | None = None
    allowed_users: tuple[str, ...] | None = Field(default=None, max_length=_MAX_ALLOWED_USERS)

    @model_validator(mode="after")
    def _not_empty(self) -> "StreamUpdateRequest":
        if not self.model_fields_set:
            raise ValueError("the body names no field to update")
        nulled = sorted(
            to_camel(name)
            for name in self.model_fields_set - _CLEARABLE
            if getattr(self, name) is None
        )
        if nulled:
            raise ValueError(f"{', '.join(nulled)} cannot be null")
        problem = window_problem(
            self.scheduled_start_time or self.scheduled_date_time, self.scheduled_end_time
        )
        if problem:
            raise ValueError(problem)
        return self

    def changes(self) -> dict[str, object]:
        """The stream fields this body sets, by the stream's own names."""
        changes = self.model_dump(
            by_alias=False, exclude_unset=True, exclude={"scheduled_date_time"}
        )
        if self.model_fields_set & _START_NAMES:
            changes["scheduled_start_time"] = self.scheduled_start_time or self.scheduled_date_time
        return changes


_START_NAMES = frozenset({"scheduled_start_time", "scheduled_date_time"})
_CLEARABLE = _START_NAMES | {"scheduled_end_time"}


class RecordingChoiceRequest(_Request):
    """Body of ``PUT /streams/{id}/recordings/{videoId}``: show it first, or hide it."""

    primary: bool | None = Field(
        default=None,
        description="true: the memorial page shows it (a ready recording; it is unhidden); "
        "false: no longer the managers' choice (the page shows the latest ready one that is "
        "not hidden, which may be this one)",
    )
    hidden: bool | None = Field(
        default=None, description="true: left out of what visitors see; false: shown again"
    )

    @model_validator(mode="after")
    def _says_something(self) -> "RecordingChoiceRequest":
        if self.primary is None and self.hidden is None:
            raise ValueError("the body names neither primary nor hidden")
        if self.primary and self.hidden:
            raise ValueError("a recording cannot be both primary and hidden")
        return self


class ReorderRequest(_Request):
    """Body of ``PUT /streams/reorder``."""

    streamIds: list[StreamId] = Field(min_length=1, max_length=500)
    memorialId: StreamId | None = None

    @field_validator("streamIds")
    @classmethod
    def _unique(cls, ids: list[str]) -> list[str]:
        if len(set(ids)) != len(ids):
            raise ValueError("streamIds must not repeat")
        return ids


class RecordingView(Model):
    """One recording of a stream, as the unified frontend's ``recordings[]`` reads it: a
    ``RecordingEntry``'s fields under the names the page reads (``validation_alias``: the
    entry's name), its place and whether it is the one shown."""

    id: str = Field(validation_alias="video_uid")
    cloudflareVideoId: str
    sequenceNumber: int
    state: str
    recordingReady: bool = Field(validation_alias="ready")
    recordingUrl: str | None = Field(validation_alias="hls_url")
    dashUrl: str | None = Field(validation_alias="dash_url")
    thumbnailUrl: str | None = Field(validation_alias="thumbnail_url")
    duration: float | None
    size: int | None
    createdAt: datetime | None = Field(validation_alias="created")
    primary: bool
    hidden: bool

    @classmethod
    def of(cls, entry: RecordingEntry, number: int, stream: Stream) -> "RecordingView":
        shown = entry.video_uid == stream.video_id and stream.recording_ready
        place = {"cloudflareVideoId": entry.video_uid, "sequenceNumber": number, "primary": shown}
        return cls.model_validate(entry.model_dump() | place)


Moment = datetime | None
Text = str | None


def _legacy(alias: str, field: str, kind: object) -> Any:
    """A view's ``field`` once more under ``alias``, the name older pages read (computed, so
    it is rendered and documented but never accepted)."""
    value = property(lambda view: getattr(view, field))
    return computed_field(alias=alias, return_type=kind)(value)


class StreamPublicView(StreamPublicFields):
    """What anyone allowed to view a stream sees: its public fields (declared once, in the
    domain), what a page derives from them, and the legacy names older pages read."""

    model_config = ConfigDict(extra="forbid")

    id: str
    recordings: list[RecordingView]
    recording_status: RecordingStatus
    recording_message: str | None
    live_hls_url: str | None
    broadcast_state: BroadcastState
    # A scheduled service's phase ("starting_soon": show the countdown to scheduledStartTime).
    schedule_phase: SchedulePhase | None = None
    # A private stream's URLs here play only with a token in place of the uid: pages get
    # playable ones from GET /api/streams/{id}/playback (or /access, for invited guests).
    requires_token: bool = False

    # The same values under the names the MVP Two pages read (FRONTEND_CONTRACT.md §2.3).
    scheduled_date_time: ClassVar = _legacy("scheduledDateTime", "scheduled_start_time", Moment)
    actual_end_time: ClassVar = _legacy("actualEndTime", "end_time", Moment)
    cloudflare_stream_id: ClassVar = _legacy("cloudflareStreamId", "cloudflare_id", Text)
    recording_playback_url: ClassVar = _legacy("recordingPlaybackUrl", "recording_url", Text)

    @classmethod
    def of(cls, stream: Stream) -> "StreamPublicView":
        return cls.model_validate(_view_fields(stream, StreamPublicFields))


class StreamManagerView(StreamPublicView, StreamManagerFields):
    """What editors of a stream see: adds who owns and who may manage it, its last error and
    the recordings hidden from the public."""

    @classmethod
    def of(cls, stream: Stream) -> "StreamManagerView":
        return cls.model_validate(_view_fields(stream, StreamManagerFields, with_hidden=True))


def whip_endpoint(stream_id: str) -> str:
    """Our own WHIP URL for a stream: the provider's publish URL never reaches the browser."""
    return f"/api/streams/{stream_id}/whip"


class StreamOwnerView(StreamManagerView):
    """What those allowed to start the stream see: adds the RTMP credentials."""

    stream_key: str | None
    stream_url: str | None
    whip_endpoint: str

    @classmethod
    def with_credentials(
        cls, stream: Stream, credentials: StreamCredentials | None
    ) -> "StreamOwnerView":
        return cls.model_validate(
            _view_fields(stream, StreamManagerFields, with_hidden=True)
            | {
                "stream_key": credentials.stream_key.get_secret_value() if credentials else None,
                "stream_url": credentials.rtmp_url if credentials else None,
                "whip_endpoint": whip_endpoint(stream.id),
            }
        )


class PublishCredentials(Model):
    """The ``credentials`` object of the start response."""

    streamKey: str | None
    streamUrl: str | None
    whipEndpoint: str
    playbackUrl: str | None


class StartResponse(Model):
    """Reply of ``POST /streams/{id}/start`` (nested and flat credentials, for both frontends)."""

    success: Literal[True] = True
    streamId: str
    cloudflareId: str
    status: StreamStatus
    credentials: PublishCredentials
    streamKey: str | None
    streamUrl: str | None
    whipEndpoint: str
    playbackUrl: str | None


class CredentialsResponse(Model):
    """Reply of ``GET /streams/{id}/credentials``: start's credentials, status unchanged."""

    success: Literal[True] = True
    streamId: str
    cloudflareId: str
    status: StreamStatus
    credentials: PublishCredentials


class StopResponse(Model):
    """Reply of ``POST /streams/{id}/stop``."""

    success: Literal[True] = True
    streamId: str
    status: StreamStatus
    recordingStatus: Literal["processing", "ready"]
    recordingReady: bool
    recordingUrl: str | None
    message: str


class Pagination(Model):
    """Offset pagination block of list responses (``nextOffset`` null on the last page)."""

    limit: int
    offset: int
    nextOffset: int | None

    @classmethod
    def after(
        cls, *, limit: int, offset: int, has_more: bool, by_cursor: bool, passed: int | None
    ) -> "Pagination":
        """The block of a page that went ``passed`` streams past its offset (``None``: its
        limit); one asked for by cursor has no offset to go on from."""
        step = limit if passed is None else passed
        return cls(
            limit=limit,
            offset=offset,
            nextOffset=offset + step if has_more and not by_cursor else None,
        )


class StreamListResponse(Model):
    """Reply of ``GET /api/streams``."""

    streams: list[StreamPublicView]
    total: int
    hasMore: bool
    # The ``cursor`` of the next page (null on the last one): an opaque token that reads no
    # skipped streams, where each one an ``offset`` skips is a billed read.
    nextCursor: str | None
    pagination: Pagination


class PublicListResponse(StreamListResponse):
    """Reply of the public listings, pre-grouped for the memorial page."""

    liveStreams: list[StreamPublicView]
    scheduledStreams: list[StreamPublicView]
    recordedStreams: list[StreamPublicView]
    processingStreams: list[StreamPublicView]

    @classmethod
    def grouped(
        cls,
        views: list[StreamPublicView],
        *,
        limit: int,
        offset: int,
        has_more: bool,
        next_cursor: str | None = None,
        by_cursor: bool = False,
        passed: int | None = None,
    ) -> "PublicListResponse":
        """One page of ``views``, grouped as the memorial page shows them."""
        return cls(
            streams=views,
            liveStreams=in_group(views, "live"),
            scheduledStreams=in_group(views, "upcoming"),
            recordedStreams=in_group(views, "recorded"),
            processingStreams=in_group(views, "processing"),
            total=len(views),
            hasMore=has_more,
            nextCursor=next_cursor if has_more else None,
            pagination=Pagination.after(
                limit=limit, offset=offset, has_more=has_more, by_cursor=by_cursor, passed=passed
            ),
        )


class MemorialStreamsResponse(Model):
    """Reply of ``GET /api/memorials/{id}/streams``."""

    memorialId: str
    liveStreams: list[StreamPublicView]
    scheduledStreams: list[StreamPublicView]
    readyStreams: list[StreamPublicView]
    recordedStreams: list[StreamPublicView]
    publicRecordedStreams: list[StreamPublicView]
    processingStreams: list[StreamPublicView]
    totalStreams: int
    allStreams: list[StreamPublicView]

    @classmethod
    def grouped(cls, memorial_id: str, views: list[StreamPublicView]) -> "MemorialStreamsResponse":
        recorded = in_group(views, "recorded")
        return cls(
            memorialId=memorial_id,
            liveStreams=in_group(views, "live"),
            scheduledStreams=[v for v in views if v.status == StreamStatus.SCHEDULED],
            readyStreams=[v for v in views if v.status == StreamStatus.READY],
            recordedStreams=recorded,
            publicRecordedStreams=[v for v in recorded if v.is_visible],
            processingStreams=in_group(views, "processing"),
            totalStreams=len(views),
            allStreams=views,
        )


class MemorialStreamStatusResponse(Model):
    """Reply of ``GET /api/memorials/{id}/streams/status``."""

    liveStreams: list[StreamPublicView]
    scheduledStreams: list[StreamPublicView]
    completedStreams: list[StreamPublicView]
    recordedStreams: list[StreamPublicView]
    processingStreams: list[StreamPublicView]
    timestamp: datetime

    @classmethod
    def grouped(
        cls, views: list[StreamPublicView], timestamp: datetime
    ) -> "MemorialStreamStatusResponse":
        return cls(
            liveStreams=in_group(views, "live"),
            scheduledStreams=in_group(views, "upcoming"),
            completedStreams=[v for v in views if v.status == StreamStatus.COMPLETED],
            recordedStreams=in_group(views, "recorded"),
            processingStreams=in_group(views, "processing"),
            timestamp=timestamp,
        )


class ReorderedStream(Model):
    """One line of the reorder reply."""

    streamId: str
    title: str
    oldOrder: int
    newOrder: int


class ReorderResponse(Model):
    """Reply of ``PUT /streams/reorder``."""

    success: Literal[True] = True
    message: str
    updatedStreams: list[ReorderedStream]
    totalUpdated: int


class DeleteResponse(Model):
    """Reply of ``DELETE /streams/{id}``."""

    success: Literal[True] = True
    message: str = "Stream deleted successfully"


_UPCOMING = frozenset({StreamStatus.SCHEDULED, StreamStatus.READY})


PageGroup = Literal["live", "upcoming", "recorded", "processing", "ended"]


def page_group(view: StreamPublicView) -> PageGroup:
    """Where a memorial page shows a stream. The one definition of "recorded" every listing
    uses: the service is over and its recording is ready to play (``recordingStatus: ready``);
    "processing" is over with the recording still expected; "ended" is over with none to come
    (never on air, a browser broadcast, missing, or cancelled)."""
    if view.status == StreamStatus.LIVE:
        return "live"
    if view.status in _UPCOMING:
        return "upcoming"
    if view.status == StreamStatus.COMPLETED:
        if view.recording_status == "ready":
            return "recorded"
        if view.recording_status == "processing":
            return "processing"
    return "ended"


def in_group(views: list[StreamPublicView], group: PageGroup) -> list[StreamPublicView]:
    return [view for view in views if page_group(view) == group]


def parse_status_filter(text: str | None) -> StreamStatus | None:
    """The ``status`` query parameter, or a 400 naming the accepted values."""
    if text is None:
        return None
    try:
        return StreamStatus(text)
    except ValueError:
        accepted = ", ".join(s.value for s in StreamStatus)
        raise InvalidArgumentError(f"status must be one of: {accepted}") from None


def _view_fields(
    stream: Stream, declared: type[StreamPublicFields], *, with_hidden: bool = False
) -> dict[str, object]:
    """The fields ``declared`` takes from ``stream``, and what a page derives from them."""
    status = recording_status(stream)
    whip = stream.ingest_protocol == "whip"
    return {name: getattr(stream, name) for name in declared.model_fields} | {
        "id": stream.id,
        "recordings": [
            RecordingView.of(entry, number, stream)
            for number, entry in enumerate(stream.recordings, start=1)
            if with_hidden or not entry.hidden
        ],
        "recording_status": status,
        "recording_message": recording_message(stream, status),
        "broadcast_state": broadcast_state(stream),
        "schedule_phase": schedule_phase(stream),
        # WHEP plays only browser (WHIP) broadcasts; Cloudflare answers 409 for RTMP ones,
        # which it serves over HLS instead (and never WHIP ones).
        "webrtc_playback_url": stream.webrtc_playback_url if whip else None,
        "live_hls_url": None if whip else live_hls_url(stream),
        "requires_token": stream.signed_urls,
    }


def live_hls_url(stream: Stream) -> str | None:
    """The live HLS manifest on the same delivery host as the stream's player page."""
    return hls_of_player(stream.playback_url) if stream.cloudflare_id else None


class CheckTaskPayload(_Request):
    """Body of one check of a chain (``common.ports.check_task``), sent by our own queue."""

    streamId: StreamId
    generation: int
    attempt: int = Field(ge=0)


class MonitorTaskPayload(CheckTaskPayload):
    """Body of a scheduled monitor check."""

    kind: Literal["recording", "status"]


class MonitorTaskResult(Model):
    """Reply of a monitor check."""

    outcome: str


class WindowTaskPayload(_Request):
    """Body of a schedule window's edge task (sent by our own Cloud Tasks queue)."""

    streamId: str = Field(min_length=1)
    edge: Literal["soon", "close"]
    revision: int = Field(ge=1)


class WindowTaskResult(Model):
    """Reply of a window edge task."""

    outcome: str


class ExtendRequest(_Request):
    """Body of ``POST /streams/{id}/extend``: how much later the service is planned to end."""

    minutes: int = Field(default=15, ge=1, le=240)


class ScheduleView(Model):
    """A scheduled service as its page shows it: its phase, its planned times, what a
    countdown needs (``startsInSeconds`` by the server's clock, 0 once the start has passed)
    and the window its tasks were armed for."""

    phase: SchedulePhase | None
    scheduledStartTime: datetime | None
    scheduledEndTime: datetime | None
    startsInSeconds: int | None
    scheduleWindow: ScheduleWindow | None

    @classmethod
    def of(cls, stream: Stream, now: datetime) -> "ScheduleView | None":
        start = stream.scheduled_start_time
        if start is None and stream.schedule_window is None:
            return None
        planned = stream.model_dump(by_alias=True, include=set(_SCHEDULE_FIELDS))
        starts_in = max(0, ceil((start - now).total_seconds())) if start else None
        return cls.model_validate(
            planned | {"phase": schedule_phase(stream), "startsInSeconds": starts_in}
        )


_SCHEDULE_FIELDS = frozenset({"scheduled_start_time", "scheduled_end_time", "schedule_window"})


class WindowResponse(Model):
    """Reply of ``POST /streams/{id}/extend`` and ``/end``: where the service stands now."""

    streamId: str
    status: StreamStatus
    schedule: ScheduleView | None

    @classmethod
    def of(cls, stream: Stream, now: datetime) -> "WindowResponse":
        return cls(streamId=stream.id, status=stream.status, schedule=ScheduleView.of(stream, now))


class OrphanSweepPayload(_Request):
    """Body of a scheduled sweep for live inputs a failed create may have left behind."""

    streamId: StreamId


class OrphanSweepResult(Model):
    """Reply of a sweep: how many orphaned live inputs it deleted."""

    deleted: int
