"""Events and templates in Firestore: ``memorial_events/{eventId}`` (tombstones included) and
``event_templates/{templateId}``. No client reads or writes either (firestore.rules): the
functions serve them. Each listing is one equality filter ordered by ``createdAt``, which
firestore.indexes.json covers (``EVENT_QUERIES``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from common.adapters.firestore.documents import _storable
from common.adapters.firestore.guards import read_modify_write
from common.adapters.firestore.streams import REQUEST_TIME_LIMITS, firestore_errors
from common.errors import NotFoundError
from common.models.events import EventTemplate, MemorialEvent

EVENTS_COLLECTION = "memorial_events"
TEMPLATES_COLLECTION = "event_templates"
LIST_LIMIT = 200
# (collection, equality filter, ordering) of every listing query here.
EVENT_QUERIES = (
    (EVENTS_COLLECTION, "memorialId", ("createdAt", "ASCENDING")),
    (TEMPLATES_COLLECTION, "ownerUid", ("createdAt", "ASCENDING")),
)


DocT = TypeVar("DocT", MemorialEvent, EventTemplate)


def _document(model: MemorialEvent | EventTemplate) -> dict[str, Any]:
    data: dict[str, Any] = _storable(model.model_dump(exclude={"id"}))
    return data


class _Collection(Generic[DocT]):
    """One collection of ``model`` documents (the id is the document's)."""

    model: type[DocT]
    default_collection: str

    def __init__(self, client: firestore.Client, collection: str | None = None) -> None:
        self._client = client
        self._collection = client.collection(collection or self.default_collection)

    def new_id(self) -> str:
        return str(self._collection.document().id)

    def get(self, document_id: str) -> DocT | None:
        with firestore_errors():
            snapshot = self._collection.document(document_id).get(**REQUEST_TIME_LIMITS)
        if not snapshot.exists:
            return None
        return self.model.model_validate((snapshot.to_dict() or {}) | {"id": snapshot.id})

    def _write(self, document: DocT, *, create: bool = False) -> None:
        """Store ``document``; ``create`` refuses an existing id (a Conflict, which
        firestore_errors makes a ConflictError)."""
        ref = self._collection.document(document.id)
        with firestore_errors():
            (ref.create if create else ref.set)(_document(document), **REQUEST_TIME_LIMITS)

    def _listed(self, field: str, value: str) -> list[DocT]:
        query = (
            self._collection.where(filter=FieldFilter(field, "==", value))
            .order_by("createdAt", direction=firestore.Query.ASCENDING)
            .limit(LIST_LIMIT)
        )
        with firestore_errors():
            rows = [(d.to_dict() or {}) | {"id": d.id} for d in query.stream(**REQUEST_TIME_LIMITS)]
        return [self.model.model_validate(row) for row in rows]


class FirestoreEventStore(_Collection[MemorialEvent]):
    """``EventStore`` over one collection."""

    model = MemorialEvent
    default_collection = EVENTS_COLLECTION

    def create(self, event: MemorialEvent) -> None:
        self._write(event, create=True)

    def update(
        self, event_id: str, change: Callable[[MemorialEvent], MemorialEvent]
    ) -> MemorialEvent:
        def read(data: dict[str, Any] | None) -> MemorialEvent | None:
            return None if data is None else MemorialEvent.model_validate(data | {"id": event_id})

        def changed(event: MemorialEvent | None) -> MemorialEvent | None:
            if event is None:
                raise NotFoundError("Event not found")
            return MemorialEvent.model_validate(change(event).model_dump())

        def write(event: MemorialEvent | None) -> dict[str, Any]:
            assert event is not None  # noqa: S101 - None is never written
            return _document(event)

        ref = self._collection.document(event_id)
        result = read_modify_write(self._client, ref, read, write, changed)
        assert result is not None  # noqa: S101 - a missing event raised above
        return result

    def list_by_memorial(self, memorial_id: str) -> list[MemorialEvent]:
        return self._listed("memorialId", memorial_id)


class FirestoreTemplateStore(_Collection[EventTemplate]):
    """``TemplateStore`` over one collection."""

    model = EventTemplate
    default_collection = TEMPLATES_COLLECTION

    def save(self, template: EventTemplate) -> None:
        self._write(template)

    def delete(self, template_id: str) -> None:
        with firestore_errors():
            self._collection.document(template_id).delete(**REQUEST_TIME_LIMITS)

    def list_by_owner(self, owner_uid: str) -> list[EventTemplate]:
        return self._listed("ownerUid", owner_uid)
