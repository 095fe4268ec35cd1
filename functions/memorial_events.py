"""A memorial's events (its streams grouped in order) and its calendar.
``common/services/memorial_events.py`` does the work."""

from __future__ import annotations

import flask

from common.http import Ctx, Op, Reply
from common.models.api import DeleteResponse
from common.models.event_api import (
    EventCreateRequest,
    EventListResponse,
    EventUpdateRequest,
    EventView,
)
from functions.paths import unified_function

ICS = "text/calendar"
EVENT_LIST = {
    "GET": Op("A memorial's events and their sessions", {200: EventListResponse, 304: None}),
    "POST": Op(
        "Create an event: its sessions new, existing streams or from a template",
        {200: EventView},
        body=EventCreateRequest,
    ),
}
EVENT = {
    "PUT": Op("Edit an event and its sessions", {200: EventView}, body=EventUpdateRequest),
    "DELETE": Op("Delete an event (its streams stay)", {200: DeleteResponse}),
}
CALENDAR = {"GET": Op("The memorial's public sessions (iCalendar)", {200: ICS, 304: None})}


# The list is CDN-cacheable for visitors (managers' answers are private).
@unified_function("/memorials/{memorialId}/events", EVENT_LIST, cache="anonymous")
def memorialevents(ctx: Ctx) -> Reply:
    """GET lists a memorial's events (visitors see public sessions); POST creates one."""
    memorial_id = ctx.param("memorialId")
    if ctx.method == "POST":
        return ctx.services.memorial_events.create_event(
            ctx.user, memorial_id, ctx.body(EventCreateRequest)
        )
    return ctx.services.memorial_events.list_events(ctx.user, memorial_id)


@unified_function("/memorials/{memorialId}/events/{eventId}", EVENT)
def memorialevent(ctx: Ctx) -> Reply:
    """PUT edits an event (words, sessions' order and schedules); DELETE removes it."""
    memorial_id, event_id = ctx.param("memorialId"), ctx.param("eventId")
    if ctx.method == "DELETE":
        return ctx.services.memorial_events.delete_event(ctx.user, memorial_id, event_id)
    return ctx.services.memorial_events.update_event(
        ctx.user, memorial_id, event_id, ctx.body(EventUpdateRequest)
    )


@unified_function("/memorials/{memorialId}/calendar.ics", CALENDAR, public_cache=True)
def memorialcalendar(ctx: Ctx) -> Reply:
    """GET the memorial's public sessions as an RFC 5545 calendar to subscribe to."""
    text = ctx.services.memorial_events.calendar(ctx.param("memorialId"))
    return flask.Response(text, mimetype=ICS, content_type=f"{ICS}; charset=utf-8")
