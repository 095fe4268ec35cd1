"""Stream-creation guards over Firestore's REST API: the documents and the optimistic
read-modify-write of ``guard_documents.py``, each write a ``documents:commit`` conditional on
the update time read (or on the document not existing yet). A creation then loads no gRPC."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from common.adapters.firestore.guard_documents import (
    ATTEMPTS,
    CREATE_QUOTA_COLLECTION,
    IDEMPOTENCY_COLLECTION,
    USAGE,
    Codec,
    idempotency_document_id,
    optimistic_update,
    quota_document_id,
    record_from,
    record_writer,
)
from common.adapters.firestore.rest import FirestoreRest, RestSnapshot
from common.errors import ConflictError
from common.ports import CreateQuotaUsage, IdempotencyChange, IdempotencyRecord

T = TypeVar("T")


class RestDocuments:
    """The documents of one collection, each changed by the optimistic read-modify-write."""

    def __init__(self, rest: FirestoreRest, collection: str) -> None:
        self._rest = rest
        self._collection = collection

    def change(self, document_id: str, codec: Codec[T], change: Callable[[T], T]) -> T:
        """Apply ``change`` to the document's value; only lands if nobody wrote in between."""

        def load() -> tuple[dict[str, Any] | None, RestSnapshot]:
            snapshot = self._rest.get(self._collection, document_id)
            return snapshot.to_dict(), snapshot

        def write_if_unchanged(snapshot: RestSnapshot, data: dict[str, Any]) -> bool:
            write = self._rest.write_as_read(self._collection, document_id, data, snapshot)
            return self._rest.commit([write]) is not None

        return optimistic_update(load, write_if_unchanged, codec.read, codec.write, change)

    def create(self, document_id: str, data: dict[str, Any], taken: str) -> None:
        """Create the document, once (``created_once``): ``ConflictError(taken)`` if the id
        holds another one."""
        write = self._rest.create_write(self._collection, document_id, data)
        created_once(
            lambda: self._rest.commit([write]) is not None,
            lambda: self._rest.get(self._collection, document_id).to_dict(),
            data,
            taken,
        )


def created_once(
    create: Callable[[], bool],
    stored: Callable[[], dict[str, Any] | None],
    document: dict[str, Any],
    taken: str,
) -> None:
    """Create a document (``create`` is ``False`` when its commit was refused). A refusal is
    read back: the same ``document`` is there when an earlier attempt landed and its answer
    was lost (done); none is there when the commit was aborted under contention (tried
    again); anything else is another's document: ``ConflictError(taken)``."""
    for _ in range(ATTEMPTS):
        if create():
            return
        found = stored()
        if found == document:
            return
        if found is not None:
            raise ConflictError(taken)
    raise ConflictError("Too many concurrent requests; try again", retry_after_s=1)


class RestCreateQuota:
    """``CreateQuota``: ``stream_create_quota/{uid}`` holds the user's recent creations."""

    def __init__(self, rest: FirestoreRest, collection: str = CREATE_QUOTA_COLLECTION) -> None:
        self._documents = RestDocuments(rest, collection)

    def update(
        self, uid: str, change: Callable[[CreateQuotaUsage], CreateQuotaUsage]
    ) -> CreateQuotaUsage:
        return self._documents.change(quota_document_id(uid), USAGE, change)


class RestIdempotencyStore:
    """``IdempotencyStore``: ``idempotency_keys/{sha256(uid, key)}``."""

    def __init__(self, rest: FirestoreRest, collection: str = IDEMPOTENCY_COLLECTION) -> None:
        self._documents = RestDocuments(rest, collection)

    def update(self, uid: str, key: str, change: IdempotencyChange) -> IdempotencyRecord | None:
        codec = Codec(record_from, record_writer(uid))
        return self._documents.change(idempotency_document_id(uid, key), codec, change)
