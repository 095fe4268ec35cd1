"""Events and templates in Firestore: ``memorial_events/{eventId}`` (tombstones included) and
``event_templates/{templateId}``. No client reads or writes either (firestore.rules): the
functions serve them. Each listing is one equality filter ordered by ``createdAt``, which
firestore.indexes.json covers (``EVENT_QUERIES``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from common.adapters.firestore.documents import DocumentQuery, _storable, new_document_id
from common.adapters.firestore.guard_documents import Codec
from common.adapters.firestore.rest import FirestoreRest, RestSnapshot
from common.adapters.firestore.rest_guards import RestDocuments
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
    """One collection of ``model`` documents (the id is the document's), over Firestore's
    REST API: the pages of events and templates load no gRPC."""

    model: type[DocT]
    default_collection: str

    def __init__(self, rest: FirestoreRest, collection: str | None = None) -> None:
        self._rest = rest
        self._collection = collection or self.default_collection

    def new_id(self) -> str:
        return new_document_id()

    def get(self, document_id: str) -> DocT | None:
        return self._of(self._rest.get(self._collection, document_id))

    def _of(self, snapshot: RestSnapshot) -> DocT | None:
        if not snapshot.exists:
            return None
        return self.model.model_validate(snapshot.fields | {"id": snapshot.id})

    def _listed(self, field: str, value: str) -> list[DocT]:
        query = DocumentQuery(
            filters={field: value},
            orderings=(("createdAt", "ASCENDING"),),
            start_after=None,
            offset=0,
            limit=LIST_LIMIT,
        )
        found = [self._of(snapshot) for snapshot in self._rest.run_query(self._collection, query)]
        return [document for document in found if document is not None]


class RestEventStore(_Collection[MemorialEvent]):
    """``EventStore`` over one collection."""

    model = MemorialEvent
    default_collection = EVENTS_COLLECTION

    def create(self, event: MemorialEvent) -> None:
        documents = RestDocuments(self._rest, self._collection)
        documents.create(event.id, _document(event), "An event with this id exists")

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

        documents = RestDocuments(self._rest, self._collection)
        result = documents.change(event_id, Codec(read, write), changed)
        assert result is not None  # noqa: S101 - a missing event raised above
        return result

    def list_by_memorial(self, memorial_id: str) -> list[MemorialEvent]:
        return self._listed("memorialId", memorial_id)


class RestTemplateStore(_Collection[EventTemplate]):
    """``TemplateStore`` over one collection."""

    model = EventTemplate
    default_collection = TEMPLATES_COLLECTION

    def save(self, template: EventTemplate) -> None:
        self._rest.apply([self._rest.set_write(self._collection, template.id, _document(template))])

    def delete(self, template_id: str) -> None:
        self._rest.apply([self._rest.delete_write(self._collection, template_id)])

    def list_by_owner(self, owner_uid: str) -> list[EventTemplate]:
        return self._listed("ownerUid", owner_uid)
