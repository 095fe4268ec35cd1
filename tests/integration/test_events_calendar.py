"""Events, templates and the calendar through the real local stack (gateway, functions,
Firestore and Auth emulators, the Cloudflare emulator): a funeral director's template makes an
event, visitors read it, and a subscribed calendar (parsed with ``icalendar``) sees a
reschedule and a cancellation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import icalendar
from google.cloud import firestore

from emulators.stack import LocalStack
from tests.integration.conftest import Caller, create_memorial
from tests.integration.test_site_firestore import read_document

TEMPLATE = {
    "name": "Visitation and funeral",
    "title": "Celebration of life",
    "location": "St. Mary's, Main St; Springfield",
    "timeZone": "America/New_York",
    "sessions": [
        {"title": title, "offsetMinutes": offset, "durationMinutes": minutes}
        for title, offset, minutes in (("Visitation", 0, 90), ("Funeral", 120, 60))
    ],
}


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def subscribed(api: httpx.Client, memorial: str) -> dict[str, Any]:
    """What a calendar subscribed to the memorial reads: its VEVENTs by session."""
    response = api.get(f"/api/memorials/{memorial}/calendar.ics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    assert response.headers["cache-control"].startswith("public")
    parsed = icalendar.Calendar.from_ical(response.content)
    return {str(event["UID"]).split("@")[0]: event for event in parsed.walk("VEVENT")}


def test_a_templated_event_is_read_by_visitors_and_its_calendar_follows_changes(
    api: httpx.Client, db: firestore.Client, callers: dict[str, Caller], stack: LocalStack
) -> None:
    memorial = create_memorial(db, callers)
    director, family = callers["funeral_director"], callers["memorial_owner"]
    # Given a funeral director's template, made into an event at 10:00 New York time
    template = ok(api.post("/api/templates", json=TEMPLATE, headers=director.bearer))
    events = f"/api/memorials/{memorial}/events"
    body = {"templateId": template["id"], "startTime": "2026-12-05T10:00:00-05:00"}
    event = ok(api.post(events, json=body, headers=director.bearer))
    visitation, funeral = (s["streamId"] for s in event["sessions"])

    # Visitors see both sessions, upcoming, without any publishing secret
    public = api.get(events)
    (listed,) = ok(public)["events"]
    assert [(s["title"], s["state"]) for s in listed["sessions"]] == [
        ("Visitation", "upcoming"),
        ("Funeral", "upcoming"),
    ]
    assert listed["sessions"][1]["scheduledStartTime"] == "2026-12-05T17:00:00Z"
    assert "streamKey" not in public.text and "rtmp" not in public.text
    assert read_document(stack, family, f"memorial_events/{event['id']}").status_code == 403

    # The calendar has both, confirmed, linked to the memorial page
    first = subscribed(api, memorial)
    assert set(first) == {visitation, funeral}
    assert str(first[funeral]["STATUS"]) == "CONFIRMED"
    assert int(first[funeral]["SEQUENCE"]) == 0
    assert first[funeral].decoded("DTSTART") == datetime(2026, 12, 5, 17, 0, tzinfo=UTC)
    assert str(first[funeral]["LOCATION"]) == TEMPLATE["location"]
    assert str(first[funeral]["URL"]).endswith(f"/{memorial}")

    # When the family moves the funeral an hour later, the calendar's revision goes up
    moved = [
        {"streamId": visitation},
        {
            "streamId": funeral,
            "scheduledStartTime": "2026-12-05T18:00:00Z",
            "scheduledEndTime": "2026-12-05T19:00:00Z",
        },
    ]
    ok(api.put(f"{events}/{event['id']}", json={"sessions": moved}, headers=family.bearer))
    second = subscribed(api, memorial)
    assert int(second[funeral]["SEQUENCE"]) == 1
    assert second[funeral].decoded("DTSTART") == datetime(2026, 12, 5, 18, 0, tzinfo=UTC)
    assert int(second[visitation]["SEQUENCE"]) == 0

    # When the visitation is called off, the calendar says so
    called_off = [{"streamId": visitation, "cancelled": True}, {"streamId": funeral}]
    ok(api.put(f"{events}/{event['id']}", json={"sessions": called_off}, headers=family.bearer))
    third = subscribed(api, memorial)
    assert str(third[visitation]["STATUS"]) == "CANCELLED"
    assert int(third[visitation]["SEQUENCE"]) == 1
    assert str(third[funeral]["STATUS"]) == "CONFIRMED"
    assert ok(api.get(f"/api/streams/{visitation}"))["status"] == "cancelled"


def test_bad_event_input_is_refused_through_the_gateway(
    api: httpx.Client, db: firestore.Client, callers: dict[str, Caller]
) -> None:
    memorial, other = create_memorial(db, callers), create_memorial(db, callers)
    family = callers["memorial_owner"]
    foreign = ok(
        api.post(f"/api/memorials/{other}/streams", json={"title": "Other"}, headers=family.bearer)
    )
    events = f"/api/memorials/{memorial}/events"

    refused = api.post(
        events,
        json={"title": "Service", "sessions": [{"streamId": foreign["id"]}]},
        headers=family.bearer,
    )
    assert refused.status_code == 400
    assert "another memorial" in refused.json()["error"]
    stranger = api.post(
        events,
        json={"title": "Service", "sessions": [{"title": "Funeral"}]},
        headers=callers["stranger"].bearer,
    )
    assert stranger.status_code == 403
    assert api.put(f"{events}/nope", json={"title": "X"}, headers=family.bearer).status_code == 404
