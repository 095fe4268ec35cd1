"""Request bodies and views of events, their sessions and templates (camelCase on the wire).

A session's stream is shown as ``StreamPublicView`` to everyone (managers included): an event
view never carries credentials, whoever asks. Managers edit a stream at its own endpoints.
"""

import zoneinfo
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from common.models.api import (
    Instant,
    PageGroup,
    StreamId,
    StreamPublicView,
    _StreamFieldsRequest,
    window_problem,
)
from common.models.base import Model
from common.models.events import EventTemplate

_TITLE_MAX = 200
_TEXT_MAX = 5000
MAX_SESSIONS = 20
# Template offsets: up to two weeks after the event's start; sessions up to a day long.
MAX_OFFSET_MINUTES = 14 * 24 * 60
MAX_DURATION_MINUTES = 24 * 60


def _iana_zone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a folder
        raise ValueError("must be an IANA time zone such as America/Chicago") from exc
    return name


TimeZoneName = Annotated[str, Field(max_length=64), AfterValidator(_iana_zone)]
Title = Annotated[str, Field(min_length=1, max_length=_TITLE_MAX)]
Text = Annotated[str, Field(max_length=_TEXT_MAX)]
Location = Annotated[str, Field(max_length=_TITLE_MAX)]


# Bodies named like the stream's fields in Python and camelCase on the wire (sessions' fields
# go onto their streams by name).
_Body = _StreamFieldsRequest


class EventSessionRequest(_Body):
    """One session of an event, in its place: an existing stream of the memorial
    (``streamId``, optionally retitled, rescheduled or called off) or a new one (``title``)."""

    stream_id: StreamId | None = None
    title: Title | None = None
    description: Text | None = None
    scheduled_start_time: Instant | None = None
    scheduled_end_time: Instant | None = None
    cancelled: bool | None = None

    @model_validator(mode="after")
    def _names_a_session(self) -> "EventSessionRequest":
        if self.stream_id is None and self.title is None:
            raise ValueError("a session needs a streamId (an existing stream) or a title (new)")
        if self.stream_id is None and self.cancelled:
            raise ValueError("a new session cannot be cancelled")
        problem = window_problem(self.scheduled_start_time, self.scheduled_end_time)
        if problem:
            raise ValueError(problem)
        return self

    def stream_changes(self) -> dict[str, object]:
        """The fields of an existing stream this entry changes (stream field names)."""
        named = self.model_fields_set - {"stream_id", "cancelled"}
        return {name: getattr(self, name) for name in sorted(named)}


class EventCreateRequest(_Body):
    """Body of ``POST /api/memorials/{memorialId}/events``: the event and its sessions, or a
    template (``templateId``) and the event's ``startTime``."""

    title: Title | None = None
    description: Text = ""
    location: Location | None = None
    time_zone: TimeZoneName | None = None
    sessions: list[EventSessionRequest] = Field(default=[], max_length=MAX_SESSIONS)
    template_id: StreamId | None = None
    start_time: Instant | None = None

    @model_validator(mode="after")
    def _complete(self) -> "EventCreateRequest":
        if (self.template_id is None) != (self.start_time is None):
            raise ValueError("templateId and startTime go together")
        if self.template_id is None and (self.title is None or not self.sessions):
            raise ValueError("an event needs a title and at least one session (or a templateId)")
        if self.template_id is not None and self.sessions:
            raise ValueError("a templated event takes its sessions from the template")
        return self


class EventUpdateRequest(_Body):
    """Body of ``PUT …/events/{eventId}``: the fields to change; ``sessions``, when present,
    is the whole new order (a stream left out stops being a session of the event)."""

    title: Title | None = None
    description: Text | None = None
    location: Location | None = None
    time_zone: TimeZoneName | None = None
    sessions: list[EventSessionRequest] | None = Field(default=None, max_length=MAX_SESSIONS)

    @model_validator(mode="after")
    def _says_something(self) -> "EventUpdateRequest":
        if not self.model_fields_set:
            raise ValueError("the body names no field to update")
        if self.sessions is not None and not self.sessions:
            raise ValueError("an event keeps at least one session (DELETE it instead)")
        return self


class SessionDefaultsBody(_Body):
    """One session of a template."""

    title: Title
    description: Text = ""
    offset_minutes: int = Field(ge=0, le=MAX_OFFSET_MINUTES)
    duration_minutes: int = Field(ge=1, le=MAX_DURATION_MINUTES)


class TemplateRequest(_Body):
    """Body of ``POST /api/templates`` and ``PUT /api/templates/{templateId}`` (the whole
    template)."""

    name: Title
    title: Title
    description: Text = ""
    location: Location | None = None
    time_zone: TimeZoneName | None = None
    sessions: list[SessionDefaultsBody] = Field(min_length=1, max_length=MAX_SESSIONS)


SessionState = PageGroup | Literal["cancelled"]


class SessionView(Model):
    """One session of an event as its page shows it: where it stands and its schedule."""

    streamId: str
    position: int
    title: str
    state: SessionState
    scheduledStartTime: datetime | None
    scheduledEndTime: datetime | None
    stream: StreamPublicView


class EventView(Model):
    """One event with the sessions the caller may see, in order."""

    id: str
    memorialId: str
    title: str
    description: str
    location: str | None
    timeZone: str | None
    startTime: datetime | None
    endTime: datetime | None
    liveSessionId: str | None
    sessions: list[SessionView]


class EventListResponse(Model):
    """Reply of ``GET /api/memorials/{memorialId}/events``."""

    memorialId: str
    events: list[EventView]
    timestamp: datetime


class TemplateView(Model):
    """A template as its owner reads it."""

    id: str
    ownerUid: str
    name: str
    title: str
    description: str
    location: str | None
    timeZone: str | None
    sessions: list[SessionDefaultsBody]
    createdAt: datetime
    updatedAt: datetime

    @classmethod
    def of(cls, template: EventTemplate) -> "TemplateView":
        return cls.model_validate(template.model_dump())


class TemplateListResponse(Model):
    """Reply of ``GET /api/templates``: the caller's templates."""

    templates: list[TemplateView]
