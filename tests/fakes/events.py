"""In-memory ``EventStore`` and ``TemplateStore``, with the Firestore adapters' semantics (the
contract suite in tests/integration/contract/test_event_stores.py runs both)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from common.errors import ConflictError, NotFoundError
from common.models.events import EventTemplate, MemorialEvent
from tests.fakes import _OptimisticStore


class _Ids:
    """Fresh ids ``<prefix>-1``, ``<prefix>-2``..."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._ids = itertools.count(1)

    def new_id(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"


class InMemoryEventStore(_OptimisticStore, _Ids):
    """Events in a dict; ``update`` is optimistic and re-validates what the change returns."""

    def __init__(self, *, replay_changes: bool = True) -> None:
        _OptimisticStore.__init__(self, replay_changes=replay_changes)
        _Ids.__init__(self, "event")
        self.events: dict[str, MemorialEvent] = {}

    def get(self, event_id: str) -> MemorialEvent | None:
        return self.events.get(event_id)

    def create(self, event: MemorialEvent) -> None:
        with self._lock:
            if self.events.get(event.id, event) != event:
                raise ConflictError("An event with this id exists")
            self.events[event.id] = event
            self._wrote(event.id)

    def update(
        self, event_id: str, change: Callable[[MemorialEvent], MemorialEvent]
    ) -> MemorialEvent:
        def read() -> MemorialEvent:
            current = self.events.get(event_id)
            if current is None:
                raise NotFoundError("Event not found")
            return current

        def write(before: MemorialEvent, after: MemorialEvent) -> MemorialEvent:
            after = MemorialEvent.model_validate(after.model_dump())
            if after != before:
                self.events[event_id] = after
                self._wrote(event_id)
            return after

        return self._apply(event_id, read, change, write)

    def list_by_memorial(self, memorial_id: str) -> list[MemorialEvent]:
        found = [e for e in self.events.values() if e.memorial_id == memorial_id]
        return sorted(found, key=lambda e: e.created_at)


class InMemoryTemplateStore(_Ids):
    """Templates in a dict."""

    def __init__(self) -> None:
        super().__init__("template")
        self.templates: dict[str, EventTemplate] = {}

    def get(self, template_id: str) -> EventTemplate | None:
        return self.templates.get(template_id)

    def save(self, template: EventTemplate) -> None:
        self.templates[template.id] = template

    def delete(self, template_id: str) -> None:
        self.templates.pop(template_id, None)

    def list_by_owner(self, owner_uid: str) -> list[EventTemplate]:
        found = [t for t in self.templates.values() if t.owner_uid == owner_uid]
        return sorted(found, key=lambda t: t.created_at)
