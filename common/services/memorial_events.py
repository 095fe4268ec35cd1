"""Events of a memorial (its streams grouped in order), templates that make their sessions,
and the memorial's calendar. Each method authorises the caller itself."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from common.access import Action, can_manage_memorial, is_publicly_viewable, stream_permissions
from common.errors import (
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from common.models.api import (
    DeleteResponse,
    StreamCreateRequest,
    StreamPublicView,
    StreamUpdateRequest,
    page_group,
)
from common.models.domain import Memorial, Stream, StreamStatus, User
from common.models.event_api import (
    EventCreateRequest,
    EventListResponse,
    EventSessionRequest,
    EventUpdateRequest,
    EventView,
    SessionView,
    TemplateListResponse,
    TemplateRequest,
    TemplateView,
)
from common.models.events import (
    CANCELLED,
    CalendarEntry,
    EventTemplate,
    EventWords,
    MemorialEvent,
)
from common.ports import EventStore, TemplateStore
from common.services.backends import BackendPorts, WithBackends
from common.services.calendar import CalendarSession, render_calendar
from common.services.streams import StreamService

# A session with no planned end shows in calendars as lasting this long.
DEFAULT_SESSION_LENGTH = timedelta(hours=1)
_NOT_BEGUN = frozenset({StreamStatus.SCHEDULED, StreamStatus.READY, StreamStatus.CANCELLED})


@dataclass
class _Draft:
    """What deciding an event's sessions needs: who asks, the memorial, its streams, those
    already sessions of another event, and the streams made so far."""

    user: User
    memorial: Memorial
    streams: dict[str, Stream]
    taken: dict[str, str]
    made: list[str] = field(default_factory=list)


class EventService(WithBackends):
    """``/api/memorials/{id}/events``, ``/api/templates`` and ``/calendar.ics``."""

    def __init__(
        self,
        backends: BackendPorts,
        *,
        streams: StreamService,
        stores: tuple[EventStore, TemplateStore],
        site: str,
    ) -> None:
        super().__init__(backends)
        self._streams = streams
        self._events, self._templates = stores
        self._site = site.rstrip("/")

    # --- events ----------------------------------------------------------------------------

    def list_events(self, user: User | None, memorial_id: str) -> EventListResponse:
        """The memorial's events with the sessions ``user`` may see (visitors: public ones;
        an event with none the caller may see is left out, unless the caller manages it)."""
        memorial = self._memorial(memorial_id)
        manager = user is not None and can_manage_memorial(user, memorial)
        streams = self._streams_of(memorial_id)
        views = []
        for event in self._events.list_by_memorial(memorial_id):
            if event.deleted_at is not None:
                continue
            view = self._view(user, memorial, event, streams)
            if view.sessions or manager:
                views.append(view)
        return EventListResponse(memorialId=memorial_id, events=views, timestamp=self._now())

    def create_event(
        self, user: User | None, memorial_id: str, request: EventCreateRequest
    ) -> EventView:
        """A new event: its sessions made (each a stream with its live input) or taken from
        the memorial's streams, or made from a template at ``startTime``."""
        memorial = self._managed(user, memorial_id)
        assert user is not None  # noqa: S101 - _managed refused anonymous callers
        if request.template_id is not None:
            request = self._from_template(user, request)
        draft = self._draft(user, memorial, None)
        order = self._sessions(draft, request.sessions)
        now = self._now()
        event = MemorialEvent(
            id=self._events.new_id(),
            memorial_id=memorial_id,
            title=request.title or "",
            description=request.description,
            location=request.location,
            time_zone=request.time_zone,
            sessions=order,
            created_by=user.uid,
            created_at=now,
            updated_at=now,
        )
        with self._undone_on_failure(draft):
            self._events.create(event)
        return self._view(user, memorial, event, self._streams_of(memorial_id))

    def update_event(
        self, user: User | None, memorial_id: str, event_id: str, request: EventUpdateRequest
    ) -> EventView:
        """Change an event's words or its sessions (their order, schedules, titles, whether
        called off); new sessions are made as on create."""
        memorial = self._managed(user, memorial_id)
        assert user is not None  # noqa: S101
        event = self._event(memorial_id, event_id)
        changes: dict[str, object] = request.model_dump(
            by_alias=False, exclude_unset=True, exclude={"sessions"}
        )
        draft = self._draft(user, memorial, event_id)
        if request.sessions is not None:
            changes["sessions"] = self._sessions(draft, request.sessions)
        changes["updated_at"] = self._now()
        with self._undone_on_failure(draft):
            updated = self._events.update(event.id, lambda e: e.model_copy(update=changes))
        return self._view(user, memorial, updated, self._streams_of(memorial_id))

    def delete_event(self, user: User | None, memorial_id: str, event_id: str) -> DeleteResponse:
        """Delete the event: its streams stay on the memorial; its tombstone keeps what the
        calendar published, so subscribed calendars show its sessions cancelled."""
        self._managed(user, memorial_id)
        event = self._event(memorial_id, event_id)
        now = self._now()
        self._events.update(event.id, lambda e: e.model_copy(update={"deleted_at": now}))
        return DeleteResponse(message="Event deleted; its sessions' streams are kept")

    # --- the calendar ----------------------------------------------------------------------

    def calendar(self, memorial_id: str) -> str:
        """The memorial's public sessions as an RFC 5545 calendar; each change a visitor
        would see since the last read bumps that session's ``SEQUENCE`` (written once)."""
        memorial = self._memorial(memorial_id)
        streams = self._streams_of(memorial_id)
        now = self._now()
        sessions: list[CalendarSession] = []
        for listed in self._events.list_by_memorial(memorial_id):
            event = listed
            if published(event, streams, memorial, now) != event.calendar:
                event = self._events.update(
                    event.id,
                    lambda e: e.model_copy(
                        update={"calendar": published(e, streams, memorial, now)}
                    ),
                )
            sessions += [CalendarSession(event, entry) for entry in event.calendar]
        return render_calendar(
            sessions,
            domain=urlsplit(self._site).hostname or "localhost",
            page_url=f"{self._site}/{memorial.full_slug or memorial.id}",
            name=memorial.loved_one_name if memorial.is_public else None,
        )

    # --- templates -------------------------------------------------------------------------

    def list_templates(self, user: User | None) -> TemplateListResponse:
        """The caller's templates."""
        owner = _director(user)
        return TemplateListResponse(
            templates=[TemplateView.of(t) for t in self._templates.list_by_owner(owner.uid)]
        )

    def create_template(self, user: User | None, request: TemplateRequest) -> TemplateView:
        """A new template of the calling funeral director (or admin)."""
        owner = _director(user)
        now = self._now()
        template = _template(self._templates.new_id(), owner.uid, request, now, now)
        self._templates.save(template)
        return TemplateView.of(template)

    def update_template(
        self, user: User | None, template_id: str, request: TemplateRequest
    ) -> TemplateView:
        """Replace a template (its owner or an admin)."""
        current = self._own_template(user, template_id)
        template = _template(
            current.id, current.owner_uid, request, current.created_at, self._now()
        )
        self._templates.save(template)
        return TemplateView.of(template)

    def delete_template(self, user: User | None, template_id: str) -> DeleteResponse:
        """Delete a template (its owner or an admin); events made from it stay."""
        self._templates.delete(self._own_template(user, template_id).id)
        return DeleteResponse(message="Template deleted")

    # --- helpers ---------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self._clock.now()

    def _memorial(self, memorial_id: str) -> Memorial:
        memorial = self._memorials.get(memorial_id)
        if memorial is None:
            raise NotFoundError("Memorial not found")
        return memorial

    def _managed(self, user: User | None, memorial_id: str) -> Memorial:
        if user is None:
            raise UnauthenticatedError("Authentication required")
        memorial = self._memorial(memorial_id)
        if not can_manage_memorial(user, memorial):
            raise PermissionDeniedError("Only the memorial's managers may change its events")
        return memorial

    def _event(self, memorial_id: str, event_id: str) -> MemorialEvent:
        event = self._events.get(event_id)
        if event is None or event.memorial_id != memorial_id or event.deleted_at is not None:
            raise NotFoundError("Event not found")
        return event

    def _streams_of(self, memorial_id: str) -> dict[str, Stream]:
        return {s.id: s for s in self._repo.list_by_memorial(memorial_id, visible_only=False)}

    def _taken_elsewhere(self, memorial_id: str, event_id: str | None) -> dict[str, str]:
        """Streams already sessions of another (live) event of the memorial: stream → event."""
        return {
            stream_id: event.id
            for event in self._events.list_by_memorial(memorial_id)
            if event.deleted_at is None and event.id != event_id
            for stream_id in event.sessions
        }

    def _draft(self, user: User, memorial: Memorial, event_id: str | None) -> _Draft:
        return _Draft(
            user,
            memorial,
            self._streams_of(memorial.id),
            self._taken_elsewhere(memorial.id, event_id),
        )

    def _sessions(self, draft: _Draft, entries: list[EventSessionRequest]) -> tuple[str, ...]:
        """The stream ids of the sessions, in order (streams made for a refused list are
        deleted again)."""
        with self._undone_on_failure(draft):
            order = [self._session(draft, entry) for entry in entries]
            if len(set(order)) != len(order):
                raise InvalidArgumentError("A stream can be only one session of an event")
        return tuple(order)

    @contextmanager
    def _undone_on_failure(self, draft: _Draft) -> Iterator[None]:
        """No stream made for a refused event is left behind."""
        try:
            yield
        except BaseException:
            for stream_id in draft.made:
                self._streams.delete(draft.user, stream_id)
            raise

    def _session(self, draft: _Draft, entry: EventSessionRequest) -> str:
        """The stream id of one session: made now, or an existing stream of the memorial
        (changed as the entry says)."""
        user, memorial, streams, taken = draft.user, draft.memorial, draft.streams, draft.taken
        if entry.stream_id is None:
            body = _validated(
                StreamCreateRequest,
                entry.model_dump(
                    by_alias=False, exclude_none=True, exclude={"stream_id", "cancelled"}
                ),
            )
            stream_id = self._streams.create_for_memorial(user, memorial.id, body).id
            draft.made.append(stream_id)
            return stream_id
        stream = streams.get(entry.stream_id) or self._repo.get(entry.stream_id)
        if stream is None:
            raise NotFoundError(f"Stream {entry.stream_id} not found")
        if stream.memorial_id != memorial.id:
            raise InvalidArgumentError(
                f"Stream {stream.id} belongs to another memorial; an event's sessions must be "
                f"streams of memorial {memorial.id}"
            )
        if stream.id in taken:
            raise InvalidArgumentError(
                f"Stream {stream.id} is already a session of event {taken[stream.id]}"
            )
        if not stream_permissions(user, stream, memorial).can(Action.EDIT):
            raise PermissionDeniedError(f"Permission denied for stream {stream.id}")
        changes = entry.stream_changes()
        if changes:
            self._streams.update(user, stream.id, _validated(StreamUpdateRequest, changes))
        if entry.cancelled is not None:
            self._set_cancelled(stream.id, cancelled=entry.cancelled)
        return stream.id

    def _set_cancelled(self, stream_id: str, *, cancelled: bool) -> None:
        """Call a session off (only before it begins), or on again."""

        def change(stream: Stream) -> Stream:
            if stream.status not in _NOT_BEGUN:
                raise InvalidArgumentError(
                    f"Stream {stream_id} has begun ({stream.status}); only an upcoming session "
                    "can be cancelled"
                )
            status = StreamStatus.CANCELLED if cancelled else StreamStatus.SCHEDULED
            if status == stream.status:
                return stream
            return stream.model_copy(update={"status": status, "updated_at": self._now()})

        self._repo.update(stream_id, change)

    def _view(
        self,
        user: User | None,
        memorial: Memorial,
        event: MemorialEvent,
        streams: dict[str, Stream],
    ) -> EventView:
        sessions = []
        for position, stream_id in enumerate(event.sessions):
            stream = streams.get(stream_id)
            if stream is None or not stream_permissions(user, stream, memorial).can(Action.VIEW):
                continue
            sessions.append(
                SessionView(
                    streamId=stream.id,
                    position=position,
                    title=stream.title,
                    state=session_state(stream),
                    scheduledStartTime=stream.scheduled_start_time,
                    scheduledEndTime=stream.scheduled_end_time,
                    stream=StreamPublicView.of(stream),
                )
            )
        starts = [s.scheduledStartTime for s in sessions if s.scheduledStartTime]
        ends = [s.scheduledEndTime for s in sessions if s.scheduledEndTime]
        words = event.model_dump(include={"id", "memorial_id", *EventWords.model_fields})
        return EventView.model_validate(
            words
            | {
                "startTime": min(starts, default=None),
                "endTime": max(ends, default=None),
                "liveSessionId": next((s.streamId for s in sessions if s.state == "live"), None),
                "sessions": sessions,
            }
        )

    def _from_template(self, user: User, request: EventCreateRequest) -> EventCreateRequest:
        """The event a template makes at ``startTime``: each session's offset is wall-clock
        time in the event's time zone (a committal "the next day at 10:00" stays at 10:00
        across a daylight-saving change)."""
        assert request.template_id is not None and request.start_time is not None  # noqa: S101
        template = self._own_template(user, request.template_id)
        time_zone = request.time_zone or template.time_zone
        zone = zoneinfo.ZoneInfo(time_zone) if time_zone else UTC
        start = request.start_time.astimezone(zone)
        sessions = [
            {
                "title": defaults.title,
                "description": defaults.description,
                "scheduled_start_time": _at(start, defaults.offset_minutes),
                "scheduled_end_time": _at(
                    start, defaults.offset_minutes + defaults.duration_minutes
                ),
            }
            for defaults in template.sessions
        ]
        return _validated(
            EventCreateRequest,
            {
                "title": request.title or template.title,
                "description": request.description or template.description,
                "location": request.location or template.location,
                "time_zone": time_zone,
                "sessions": sessions,
            },
        )

    def _own_template(self, user: User | None, template_id: str) -> EventTemplate:
        if user is None:
            raise UnauthenticatedError("Authentication required")
        template = self._templates.get(template_id)
        if template is None:
            raise NotFoundError("Template not found")
        if template.owner_uid != user.uid and not user.is_administrator:
            raise PermissionDeniedError("Only the template's owner may use or change it")
        return template


ModelT = TypeVar("ModelT", bound=BaseModel)


def _validated(model: type[ModelT], data: dict[str, Any]) -> ModelT:
    """``data`` as ``model``; what a session cannot be is a 400 naming the problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problem = exc.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(part) for part in problem["loc"]) or "session"
        raise InvalidArgumentError(f"Invalid session ({where}: {problem['msg']})") from exc


def _at(start: datetime, minutes: int) -> datetime:
    return (start + timedelta(minutes=minutes)).astimezone(UTC)


def _director(user: User | None) -> User:
    if user is None:
        raise UnauthenticatedError("Authentication required")
    if user.role != "funeral_director" and not user.is_administrator:
        raise PermissionDeniedError("Templates are kept by funeral directors")
    return user


def _template(
    template_id: str, owner: str, request: TemplateRequest, created: datetime, updated: datetime
) -> EventTemplate:
    return EventTemplate.model_validate(
        request.model_dump(by_alias=False)
        | {"id": template_id, "owner_uid": owner, "created_at": created, "updated_at": updated}
    )


def session_state(stream: Stream) -> str:
    """Live, recorded, processing, upcoming or ended, as the memorial status board says
    (``page_group``); or cancelled."""
    if stream.status == StreamStatus.CANCELLED:
        return CANCELLED
    return page_group(StreamPublicView.of(stream))


def _shown(stream: Stream | None, memorial: Memorial) -> Shown | None:
    """What the calendar shows of a session, or ``None`` when visitors may not see it."""
    if stream is None or not (is_publicly_viewable(stream) and memorial.is_public):
        return None
    start = stream.scheduled_start_time or stream.actual_start_time
    if start is None:
        return None
    end = stream.scheduled_end_time
    if end is None and stream.status == StreamStatus.COMPLETED and stream.end_time:
        end = stream.end_time
    if end is None or end <= start:
        end = start + DEFAULT_SESSION_LENGTH
    return stream.title, start, end, session_state(stream)


def published(
    event: MemorialEvent, streams: dict[str, Stream], memorial: Memorial, now: datetime
) -> tuple[CalendarEntry, ...]:
    """What the calendar publishes of the event now: each change since it was last published
    raises that session's sequence; a session that was published and is gone (deleted,
    hidden, left out of the event, the event deleted) stays, cancelled."""
    before = {entry.stream_id: entry for entry in event.calendar}
    current = event.sessions if event.deleted_at is None else ()
    entries = []
    for stream_id in dict.fromkeys([*current, *before]):
        shown = _shown(streams.get(stream_id), memorial) if stream_id in current else None
        entry = _next_entry(stream_id, before.get(stream_id), shown, now)
        if entry is not None:
            entries.append(entry)
    return tuple(entries)


Shown = tuple[str, datetime, datetime, str]


def _next_entry(
    stream_id: str, previous: CalendarEntry | None, shown: Shown | None, now: datetime
) -> CalendarEntry | None:
    """A session's calendar entry after ``previous`` when visitors now see ``shown``."""
    if shown is None:
        if previous is None:
            return None
        shown = (previous.title, previous.start, previous.end, CANCELLED)
    title, start, end, state = shown
    if previous is None:
        if state == CANCELLED:
            return None  # never published: nothing to cancel
        return CalendarEntry(
            stream_id=stream_id, title=title, start=start, end=end, state=state, changed_at=now
        )
    if previous.shows() == shown:
        return previous
    change = {"title": title, "start": start, "end": end, "state": state}
    return previous.model_copy(
        update=change | {"sequence": previous.sequence + 1, "changed_at": now}
    )
