"""Events (a memorial's streams grouped in order: visitation, funeral, committal), the
templates that make their sessions, and what the memorial's calendar has published.

A session is one of the memorial's streams: its schedule, state and recordings stay on the
stream. The event keeps only the order, its own words and, per session the calendar ever
published, the revision the calendar showed (``CalendarEntry``): its ``sequence`` goes up with
each change of the session's title, time or state, and an entry stays (cancelled) when the
session goes away, so subscribed calendars see the cancellation.
"""

from __future__ import annotations

from datetime import datetime

from common.models.domain import WireModel

# What a calendar entry says of its session: a stream's page group, or that it is called off.
CANCELLED = "cancelled"


class CalendarEntry(WireModel):
    """What the calendar last published for one session, and its revision."""

    stream_id: str
    sequence: int = 0
    title: str
    start: datetime
    end: datetime
    state: str
    changed_at: datetime

    @property
    def cancelled(self) -> bool:
        return self.state == CANCELLED

    def shows(self) -> tuple[object, ...]:
        """What a subscriber sees change (the revision goes up when it does)."""
        return self.title, self.start, self.end, self.state


class EventWords(WireModel):
    """What an event (or a template's event) says of itself; ``time_zone`` is IANA."""

    title: str
    description: str = ""
    location: str | None = None
    time_zone: str | None = None


class MemorialEvent(EventWords):
    """One event of a memorial: its sessions (stream ids) in order. A deleted event stays as a
    tombstone (``deleted_at``) whose published sessions the calendar shows cancelled."""

    id: str
    memorial_id: str
    sessions: tuple[str, ...] = ()
    calendar: tuple[CalendarEntry, ...] = ()
    created_by: str
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None


class SessionDefaults(WireModel):
    """One session a template makes: its title, when it starts after the event's start (wall
    clock minutes in the event's time zone) and how long it lasts."""

    title: str
    description: str = ""
    offset_minutes: int
    duration_minutes: int


class EventTemplate(EventWords):
    """A funeral director's defaults for an event's sessions."""

    id: str
    owner_uid: str
    name: str
    sessions: tuple[SessionDefaults, ...]
    created_at: datetime
    updated_at: datetime
