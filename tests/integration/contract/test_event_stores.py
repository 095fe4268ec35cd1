"""The ``EventStore`` and ``TemplateStore`` contracts: the in-memory fakes and Firestore alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from common.adapters.firestore.memorial_events import RestEventStore, RestTemplateStore
from common.errors import ConflictError, NotFoundError
from common.models.events import CalendarEntry, EventTemplate, MemorialEvent, SessionDefaults
from common.ports import EventStore, TemplateStore
from tests.fakes.events import InMemoryEventStore, InMemoryTemplateStore
from tests.integration.contract.conftest import _rest_collection, implementations

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


FAKES = {"events": InMemoryEventStore, "templates": InMemoryTemplateStore}
ADAPTERS = {"events": RestEventStore, "templates": RestTemplateStore}


def store(request: pytest.FixtureRequest, kind: str) -> Any:
    """The fake, or the Firestore adapter (over REST) over a collection of this test alone."""
    if request.param == "fake":
        return FAKES[kind]()
    return ADAPTERS[kind](*_rest_collection(request, kind))


@pytest.fixture(params=implementations("firestore-rest"))
def events(request: pytest.FixtureRequest) -> EventStore:
    made: EventStore = store(request, "events")
    return made


@pytest.fixture(params=implementations("firestore-rest"))
def templates(request: pytest.FixtureRequest) -> TemplateStore:
    made: TemplateStore = store(request, "templates")
    return made


def an_event(store: EventStore, memorial: str = "m-1", minute: int = 0) -> MemorialEvent:
    at = NOW + timedelta(minutes=minute)
    return MemorialEvent(
        id=store.new_id(),
        memorial_id=memorial,
        title="Celebration of life",
        location="Chapel",
        time_zone="America/Chicago",
        sessions=("s-1", "s-2"),
        calendar=(
            CalendarEntry(
                stream_id="s-1",
                sequence=3,
                title="Visitation",
                start=at,
                end=at + timedelta(hours=1),
                state="upcoming",
                changed_at=at,
            ),
        ),
        created_by="u-1",
        created_at=at,
        updated_at=at,
    )


def test_an_event_reads_back_as_stored_and_its_id_is_taken_once(events: EventStore) -> None:
    event = an_event(events)
    events.create(event)

    assert events.get(event.id) == event
    assert events.get("unknown") is None
    with pytest.raises(ConflictError):
        events.create(event.model_copy(update={"title": "Another event"}))
    assert events.get(event.id) == event


def test_the_same_event_created_again_is_stored_once(events: EventStore) -> None:
    """A create retried after its answer was lost finds its own event: not a conflict."""
    event = an_event(events)
    events.create(event)
    events.create(event)

    assert events.get(event.id) == event
    assert events.list_by_memorial(event.memorial_id) == [event]


def test_a_memorials_events_list_oldest_first_with_tombstones(events: EventStore) -> None:
    later = an_event(events, minute=5)
    earlier = an_event(events, minute=1)
    elsewhere = an_event(events, memorial="m-2")
    for event in (later, earlier, elsewhere):
        events.create(event)
    events.update(later.id, lambda e: e.model_copy(update={"deleted_at": NOW}))

    listed = events.list_by_memorial("m-1")

    assert [e.id for e in listed] == [earlier.id, later.id]
    assert listed[1].deleted_at == NOW
    assert events.list_by_memorial("m-3") == []


def test_an_update_applies_the_change_and_refuses_an_invalid_or_missing_event(
    events: EventStore,
) -> None:
    event = an_event(events)
    events.create(event)

    updated = events.update(event.id, lambda e: e.model_copy(update={"sessions": ("s-2",)}))

    assert updated.sessions == ("s-2",)
    assert events.get(event.id) == updated
    with pytest.raises(NotFoundError):
        events.update("unknown", lambda e: e)
    with pytest.raises(ValidationError):
        events.update(event.id, lambda e: e.model_copy(update={"title": None}))
    assert events.get(event.id) == updated


def a_template(store: TemplateStore, owner: str = "fd-1", minute: int = 0) -> EventTemplate:
    at = NOW + timedelta(minutes=minute)
    defaults = SessionDefaults(title="Funeral", offset_minutes=60, duration_minutes=45)
    words = {"name": "Three-part", "title": "Celebration of life", "sessions": (defaults,)}
    made = {"id": store.new_id(), "owner_uid": owner, "created_at": at, "updated_at": at}
    return EventTemplate.model_validate(words | made)


def test_templates_are_kept_per_owner_oldest_first(templates: TemplateStore) -> None:
    second, first = a_template(templates, minute=2), a_template(templates, minute=1)
    templates.save(second)
    templates.save(first)
    templates.save(a_template(templates, owner="fd-2"))

    assert [t.id for t in templates.list_by_owner("fd-1")] == [first.id, second.id]
    assert templates.get(first.id) == first
    renamed = first.model_copy(update={"name": "Renamed"})
    templates.save(renamed)
    assert templates.get(first.id) == renamed

    templates.delete(first.id)
    templates.delete(first.id)  # gone already: nothing happens
    assert templates.get(first.id) is None
    assert [t.id for t in templates.list_by_owner("fd-1")] == [second.id]
