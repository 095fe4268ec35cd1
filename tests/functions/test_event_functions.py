"""Events, templates and the calendar through functions-framework: who may do what, the bad
inputs (400/403/404), what visitors see (no stream keys, cacheable) and the ICS feed."""

from __future__ import annotations

from typing import Any

import icalendar

from tests import people
from tests.functions.calls import bearer, client, error, ok
from tests.functions.conftest import Backend, assert_no_secrets

EVENTS = f"/api/memorials/{people.MEMORIAL.id}/events"
CALENDAR = f"/api/memorials/{people.MEMORIAL.id}/calendar.ics"
TEMPLATE = {
    "name": "Three-part service",
    "title": "Celebration of life",
    "timeZone": "America/Chicago",
    "sessions": [
        {"title": "Visitation", "offsetMinutes": 0, "durationMinutes": 90},
        {"title": "Funeral", "offsetMinutes": 120, "durationMinutes": 60},
        {"title": "Committal", "offsetMinutes": 1440, "durationMinutes": 30},
    ],
}


def new_template(body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = client("eventtemplates").post(
        "/api/templates", json=body or TEMPLATE, headers=bearer(people.FUNERAL_DIRECTOR)
    )
    created: dict[str, Any] = ok(response)
    return created


def templated_event(start: str = "2026-12-05T15:00:00Z") -> dict[str, Any]:
    template = new_template()
    body = {"templateId": template["id"], "startTime": start}
    event: dict[str, Any] = ok(
        client("memorialevents").post(EVENTS, json=body, headers=bearer(people.FUNERAL_DIRECTOR))
    )
    return event


def calendar_events() -> dict[str, Any]:
    response = client("memorialcalendar").get(CALENDAR)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    parsed = icalendar.Calendar.from_ical(response.get_data())
    return {str(e["UID"]): e for e in parsed.walk("VEVENT")}


def test_a_template_makes_the_events_sessions_at_wall_clock_offsets() -> None:
    event = templated_event()

    assert event["title"] == "Celebration of life"
    assert [s["title"] for s in event["sessions"]] == ["Visitation", "Funeral", "Committal"]
    starts = [s["scheduledStartTime"] for s in event["sessions"]]
    # 09:00 in Chicago (CST, -6); the committal the next day at the same wall-clock time.
    assert starts == ["2026-12-05T15:00:00Z", "2026-12-05T17:00:00Z", "2026-12-06T15:00:00Z"]
    assert event["sessions"][0]["scheduledEndTime"] == "2026-12-05T16:30:00Z"
    assert {s["state"] for s in event["sessions"]} == {"upcoming"}


def test_the_public_view_is_cacheable_and_carries_no_stream_keys(backend: Backend) -> None:
    event = templated_event()
    hidden = event["sessions"][2]["streamId"]
    backend.repo.update(hidden, lambda s: s.model_copy(update={"is_visible": False}))

    response = client("memorialevents").get(EVENTS)

    body = ok(response)
    assert response.headers["Cache-Control"].startswith("public")
    assert_no_secrets(response, backend)
    (listed,) = body["events"]
    assert [s["title"] for s in listed["sessions"]] == ["Visitation", "Funeral"]
    managers = client("memorialevents").get(EVENTS, headers=bearer(people.MEMORIAL_OWNER))
    assert managers.headers["Cache-Control"] == "private, no-store"
    assert_no_secrets(managers, backend)
    assert len(ok(managers)["events"][0]["sessions"]) == 3


def test_a_session_of_another_memorial_is_refused_with_a_clear_message(backend: Backend) -> None:
    other = backend.create_stream(people.MEMORIAL_OWNER, on_memorial="memorial-private")
    body = {"title": "Service", "sessions": [{"streamId": other.id}]}

    refused = error(
        client("memorialevents").post(EVENTS, json=body, headers=bearer(people.MEMORIAL_OWNER)), 400
    )

    assert "another memorial" in refused["error"]


def test_a_window_that_ends_before_it_starts_is_refused() -> None:
    session = {
        "title": "Funeral",
        "scheduledStartTime": "2026-12-05T17:00:00Z",
        "scheduledEndTime": "2026-12-05T16:00:00Z",
    }
    body = {"title": "Service", "sessions": [session]}

    refused = error(
        client("memorialevents").post(EVENTS, json=body, headers=bearer(people.FUNERAL_DIRECTOR)),
        400,
    )

    assert "ends before it starts" in refused["error"]


def test_only_the_memorials_managers_change_its_events_and_unknown_ones_are_404() -> None:
    event = templated_event()
    one = f"{EVENTS}/{event['id']}"
    body = {"title": "Renamed"}

    new = {"title": "Service", "sessions": [{"title": "Funeral"}]}
    error(client("memorialevents").post(EVENTS, json=new, headers=bearer(people.STRANGER)), 403)
    error(client("memorialevent").put(one, json=body, headers=bearer(people.STRANGER)), 403)
    error(client("memorialevent").delete(one, headers=bearer(people.STRANGER)), 403)
    error(client("memorialevent").put(one, json=body), 401)
    error(
        client("memorialevent").put(f"{EVENTS}/nope", json=body, headers=bearer(people.ADMIN)), 404
    )
    elsewhere = f"/api/memorials/memorial-private/events/{event['id']}"
    error(
        client("memorialevent").put(elsewhere, json=body, headers=bearer(people.MEMORIAL_OWNER)),
        404,
    )
    error(client("memorialevents").get("/api/memorials/nope/events"), 404)
    renamed = ok(client("memorialevent").put(one, json=body, headers=bearer(people.MEMORIAL_OWNER)))
    assert renamed["title"] == "Renamed"


def test_templates_belong_to_their_funeral_director() -> None:
    template = new_template()
    one = f"/api/templates/{template['id']}"
    changed = TEMPLATE | {"name": "Two-part service", "sessions": TEMPLATE["sessions"][:2]}

    error(
        client("eventtemplates").post(
            "/api/templates", json=TEMPLATE, headers=bearer(people.MEMORIAL_OWNER)
        ),
        403,
    )
    error(client("eventtemplate").put(one, json=changed, headers=bearer(people.STRANGER)), 403)
    error(client("eventtemplate").delete(one, headers=bearer(people.STRANGER)), 403)
    error(client("eventtemplate").delete("/api/templates/nope", headers=bearer(people.ADMIN)), 404)
    assert ok(client("eventtemplates").get("/api/templates", headers=bearer(people.ADMIN))) == {
        "templates": []
    }
    updated = ok(
        client("eventtemplate").put(one, json=changed, headers=bearer(people.FUNERAL_DIRECTOR))
    )
    assert updated["name"] == "Two-part service"
    listed = ok(
        client("eventtemplates").get("/api/templates", headers=bearer(people.FUNERAL_DIRECTOR))
    )
    assert [t["id"] for t in listed["templates"]] == [template["id"]]
    ok(client("eventtemplate").delete(one, headers=bearer(people.ADMIN)))
    error(
        client("eventtemplate").put(one, json=changed, headers=bearer(people.FUNERAL_DIRECTOR)), 404
    )


def test_someone_elses_template_cannot_make_an_event() -> None:
    template = new_template()
    body = {"templateId": template["id"], "startTime": "2026-12-05T15:00:00Z"}

    error(
        client("memorialevents").post(EVENTS, json=body, headers=bearer(people.MEMORIAL_OWNER)), 403
    )


def test_the_calendar_bumps_sequence_on_a_reschedule_and_cancels_a_deleted_event() -> None:
    event = templated_event()
    funeral = event["sessions"][1]["streamId"]
    first = calendar_events()
    uid = next(u for u in first if u.startswith(funeral))
    assert int(first[uid]["SEQUENCE"]) == 0
    assert str(first[uid]["STATUS"]) == "CONFIRMED"
    assert str(first[uid]["URL"]).endswith(f"/{people.MEMORIAL.id}")

    sessions = [{"streamId": s["streamId"]} for s in event["sessions"]]
    sessions[1] |= {
        "scheduledStartTime": "2026-12-05T18:00:00Z",
        "scheduledEndTime": "2026-12-05T19:00:00Z",
    }
    one = f"{EVENTS}/{event['id']}"
    ok(
        client("memorialevent").put(
            one, json={"sessions": sessions}, headers=bearer(people.MEMORIAL_OWNER)
        )
    )
    moved = calendar_events()[uid]
    assert int(moved["SEQUENCE"]) == 1
    assert moved.decoded("DTSTART").isoformat() == "2026-12-05T18:00:00+00:00"
    assert int(calendar_events()[uid]["SEQUENCE"]) == 1  # reading again changes nothing

    ok(client("memorialevent").delete(one, headers=bearer(people.FUNERAL_DIRECTOR)))
    cancelled = calendar_events()
    assert set(cancelled) == set(first)
    assert {str(e["STATUS"]) for e in cancelled.values()} == {"CANCELLED"}
    assert int(cancelled[uid]["SEQUENCE"]) == 2
    assert ok(client("memorialevents").get(EVENTS))["events"] == []


def test_what_a_session_or_template_cannot_be_is_a_400_not_a_500() -> None:
    event = templated_event()
    one = f"{EVENTS}/{event['id']}"
    nulled = {"sessions": [{"streamId": event["sessions"][0]["streamId"], "description": None}]}
    folder = TEMPLATE | {"timeZone": "America"}
    too_late = {"templateId": new_template()["id"], "startTime": "2200-12-31T23:00:00Z"}

    assert (
        "description"
        in error(
            client("memorialevent").put(one, json=nulled, headers=bearer(people.MEMORIAL_OWNER)),
            400,
        )["error"]
    )
    error(
        client("eventtemplates").post("/api/templates", json=folder, headers=bearer(people.ADMIN)),
        400,
    )
    error(
        client("memorialevents").post(
            EVENTS, json=too_late, headers=bearer(people.FUNERAL_DIRECTOR)
        ),
        400,
    )
