"""The event service over fakes: sessions made or taken, the calendar's revisions and
tombstones, checked by a real iCalendar parser (what the text of one entry becomes:
``tests/unit/test_calendar_text.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import icalendar
import pytest

from common.bootstrap import override
from common.errors import InvalidArgumentError, NotFoundError
from common.models.api import StreamUpdateRequest
from common.models.domain import StreamStatus
from common.models.event_api import EventCreateRequest, EventUpdateRequest, EventView
from common.services.memorial_events import EventService
from tests import people
from tests.functions.conftest import Backend

START = datetime(2026, 12, 5, 17, 0, tzinfo=UTC)


@pytest.fixture
def backend() -> Iterator[Backend]:
    built = Backend()
    with override(built.services):  # Backend.create_stream goes through the function
        yield built


def service(backend: Backend) -> EventService:
    return backend.services.memorial_events


def create(backend: Backend, memorial: str = people.MEMORIAL.id, **body: Any) -> EventView:
    sessions = [
        {"title": "Visitation", "scheduledStartTime": START.isoformat()},
        {"title": "Funeral", "scheduledStartTime": (START + timedelta(hours=2)).isoformat()},
    ]
    request = EventCreateRequest.model_validate({"title": "Service", "sessions": sessions} | body)
    return service(backend).create_event(people.MEMORIAL_OWNER, memorial, request)


def calendar(backend: Backend, memorial: str = people.MEMORIAL.id) -> dict[str, Any]:
    parsed = icalendar.Calendar.from_ical(service(backend).calendar(memorial))
    return {str(e["UID"]).split("@")[0]: e for e in parsed.walk("VEVENT")}


def went_live(backend: Backend, stream_id: str) -> None:
    backend.repo.update(stream_id, lambda s: s.began_broadcast(backend.clock.now()))


def test_new_sessions_are_streams_with_live_inputs_of_the_memorial(backend: Backend) -> None:
    event = create(backend)

    for session in event.sessions:
        stream = backend.stream(session.streamId)
        assert stream.memorial_id == people.MEMORIAL.id
        assert stream.cloudflare_id in backend.provider.inputs
    assert event.startTime == START


def test_a_refused_event_leaves_no_stream_it_made_behind(backend: Backend) -> None:
    elsewhere = backend.create_stream(people.MEMORIAL_OWNER, on_memorial=people.PRIVATE_MEMORIAL.id)
    request = EventCreateRequest.model_validate(
        {"title": "Service", "sessions": [{"title": "Funeral"}, {"streamId": elsewhere.id}]}
    )

    with pytest.raises(InvalidArgumentError, match="another memorial"):
        service(backend).create_event(people.MEMORIAL_OWNER, people.MEMORIAL.id, request)

    assert [s.id for s in backend.repo.streams.values()] == [elsewhere.id]


def test_a_stream_is_a_session_of_one_event_only(backend: Backend) -> None:
    event = create(backend)
    again = {"title": "Again", "sessions": [{"streamId": event.sessions[0].streamId}]}

    with pytest.raises(InvalidArgumentError, match="already a session"):
        service(backend).create_event(
            people.MEMORIAL_OWNER, people.MEMORIAL.id, EventCreateRequest.model_validate(again)
        )
    with pytest.raises(NotFoundError):
        service(backend).create_event(
            people.MEMORIAL_OWNER,
            people.MEMORIAL.id,
            EventCreateRequest.model_validate({"title": "X", "sessions": [{"streamId": "nope"}]}),
        )


def test_cancelling_a_session_marks_its_stream_and_the_calendar_says_so(backend: Backend) -> None:
    event = create(backend)
    funeral = event.sessions[1].streamId
    assert str(calendar(backend)[funeral]["STATUS"]) == "CONFIRMED"
    sessions: list[dict[str, object]] = [{"streamId": s.streamId} for s in event.sessions]
    sessions[1]["cancelled"] = True

    updated = service(backend).update_event(
        people.FUNERAL_DIRECTOR,
        people.MEMORIAL.id,
        event.id,
        EventUpdateRequest.model_validate({"sessions": sessions}),
    )

    assert backend.stream(funeral).status == StreamStatus.CANCELLED
    assert updated.sessions[1].state == "cancelled"
    entry = calendar(backend)[funeral]
    assert (str(entry["STATUS"]), int(entry["SEQUENCE"])) == ("CANCELLED", 1)


def test_a_session_that_has_begun_cannot_be_cancelled(backend: Backend) -> None:
    event = create(backend)
    first = event.sessions[0].streamId
    went_live(backend, first)
    body = {"sessions": [{"streamId": first, "cancelled": True}]}

    with pytest.raises(InvalidArgumentError, match="has begun"):
        service(backend).update_event(
            people.MEMORIAL_OWNER,
            people.MEMORIAL.id,
            event.id,
            EventUpdateRequest.model_validate(body),
        )


def test_going_live_and_a_deleted_stream_each_raise_the_sequence(backend: Backend) -> None:
    event = create(backend)
    visitation, funeral = (s.streamId for s in event.sessions)
    calendar(backend)
    went_live(backend, visitation)
    backend.services.streams.delete(people.MEMORIAL_OWNER, funeral)

    entries = calendar(backend)

    assert int(entries[visitation]["SEQUENCE"]) == 1
    assert "Live now" in str(entries[visitation]["DESCRIPTION"])
    assert (str(entries[funeral]["STATUS"]), int(entries[funeral]["SEQUENCE"])) == ("CANCELLED", 1)
    assert entries[funeral].decoded("DTSTART") == START + timedelta(hours=2)  # as published


def test_a_session_left_out_of_the_event_is_cancelled_in_the_calendar(backend: Backend) -> None:
    event = create(backend)
    visitation, funeral = (s.streamId for s in event.sessions)
    calendar(backend)

    service(backend).update_event(
        people.MEMORIAL_OWNER,
        people.MEMORIAL.id,
        event.id,
        EventUpdateRequest.model_validate({"sessions": [{"streamId": visitation}]}),
    )

    entries = calendar(backend)
    assert str(entries[funeral]["STATUS"]) == "CANCELLED"
    assert str(entries[visitation]["STATUS"]) == "CONFIRMED"
    assert backend.stream(funeral).status == StreamStatus.SCHEDULED  # the stream itself stays


def test_a_private_memorials_calendar_publishes_nothing(backend: Backend) -> None:
    create(backend, people.PRIVATE_MEMORIAL.id)

    assert calendar(backend, people.PRIVATE_MEMORIAL.id) == {}
    assert service(backend).list_events(None, people.PRIVATE_MEMORIAL.id).events == []


def test_a_memorial_gone_private_keeps_its_feed_to_what_was_published(backend: Backend) -> None:
    event = create(backend, location="Chapel of Rest")
    assert {str(e["STATUS"]) for e in calendar(backend).values()} == {"CONFIRMED"}
    # The family makes the memorial private, then writes what only invited people should read.
    backend.memorials.memorials[people.MEMORIAL.id] = people.MEMORIAL.model_copy(
        update={"is_public": False}
    )
    words = EventUpdateRequest.model_validate(
        {"location": "12 Family Home Rd", "description": "House empty 2-5pm"}
    )
    service(backend).update_event(people.MEMORIAL_OWNER, people.MEMORIAL.id, event.id, words)

    feed = service(backend).calendar(people.MEMORIAL.id)
    entries = calendar(backend)

    assert {str(e["STATUS"]) for e in entries.values()} == {"CANCELLED"}
    assert set(entries) == {s.streamId for s in event.sessions}
    assert "Family Home" not in feed and "House empty" not in feed and "Chapel" not in feed
    assert "X-WR-CALNAME" not in feed


def test_a_streams_planned_end_is_checked_against_its_start_and_can_be_cleared(
    backend: Backend,
) -> None:
    stream_id = create(backend).sessions[0].streamId
    streams = backend.services.streams
    early = StreamUpdateRequest.model_validate({"scheduledEndTime": START.isoformat()})

    with pytest.raises(InvalidArgumentError, match="ends before it starts"):
        streams.update(people.MEMORIAL_OWNER, stream_id, early)
    later = (START + timedelta(hours=1)).isoformat()
    streams.update(
        people.MEMORIAL_OWNER,
        stream_id,
        StreamUpdateRequest.model_validate({"scheduledEndTime": later}),
    )
    assert backend.stream(stream_id).scheduled_end_time == START + timedelta(hours=1)
    cleared = StreamUpdateRequest.model_validate({"scheduledEndTime": None})
    view = streams.update(people.MEMORIAL_OWNER, stream_id, cleared)
    assert (view.scheduled_start_time, view.scheduled_end_time) == (START, None)
