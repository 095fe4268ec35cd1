"""Stream-creation guards over Firestore's REST API: the documents and the optimistic
read-modify-write of ``guard_documents.py``, each write a ``documents:commit`` conditional on
the update time read (or on the document not existing yet). A creation then loads no gRPC."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from common.adapters.firestore.guard_documents import (
    CREATE_QUOTA_COLLECTION,
    IDEMPOTENCY_COLLECTION,
    idempotency_document_id,
    optimistic_update,
    quota_document_id,
    record_from,
    record_writer,
    usage_from,
    usage_to,
)
from common.adapters.firestore.rest import FirestoreRest, RestSnapshot
from common.ports import CreateQuotaUsage, IdempotencyChange, IdempotencyRecord

T = TypeVar("T")


def rest_read_modify_write(
    rest: FirestoreRest,
    collection: str,
    document_id: str,
    *,
    read: Callable[[dict[str, Any] | None], T],
    write: Callable[[T], dict[str, Any]],
    change: Callable[[T], T],
) -> T:
    """Apply ``change`` to the document's value; only lands if nobody wrote in between."""

    def load() -> tuple[dict[str, Any] | None, RestSnapshot]:
        snapshot = rest.get(collection, document_id)
        return snapshot.to_dict(), snapshot

    def write_if_unchanged(snapshot: RestSnapshot, data: dict[str, Any]) -> bool:
        if snapshot.exists and snapshot.update_time:
            update = rest.update_write(collection, document_id, data, (), snapshot.update_time)
        else:
            update = rest.create_write(collection, document_id, data)
        return rest.commit([update]) is not None

    return optimistic_update(load, write_if_unchanged, read, write, change)


class RestCreateQuota:
    """``CreateQuota``: ``stream_create_quota/{uid}`` holds the user's recent creations."""

    def __init__(self, rest: FirestoreRest, collection: str = CREATE_QUOTA_COLLECTION) -> None:
        self._rest = rest
        self._collection = collection

    def update(
        self, uid: str, change: Callable[[CreateQuotaUsage], CreateQuotaUsage]
    ) -> CreateQuotaUsage:
        document_id = quota_document_id(uid)
        return rest_read_modify_write(
            self._rest,
            self._collection,
            document_id,
            read=usage_from,
            write=usage_to,
            change=change,
        )


class RestIdempotencyStore:
    """``IdempotencyStore``: ``idempotency_keys/{sha256(uid, key)}``."""

    def __init__(self, rest: FirestoreRest, collection: str = IDEMPOTENCY_COLLECTION) -> None:
        self._rest = rest
        self._collection = collection

    def update(self, uid: str, key: str, change: IdempotencyChange) -> IdempotencyRecord | None:
        document_id = idempotency_document_id(uid, key)
        return rest_read_modify_write(
            self._rest,
            self._collection,
            document_id,
            read=record_from,
            write=record_writer(uid),
            change=change,
        )
