"""Stream-creation guards on the client library: per-user creation counts and idempotency
keys (their documents and the read-modify-write: ``guard_documents.py``), and the same
read-modify-write for the other small documents changed that way (invitations, events)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore

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
from common.adapters.firestore.streams import REQUEST_TIME_LIMITS, firestore_errors
from common.ports import CreateQuotaUsage, IdempotencyChange, IdempotencyRecord

T = TypeVar("T")


def read_modify_write(
    client: firestore.Client,
    ref: Any,
    read: Callable[[dict[str, Any] | None], T],
    write: Callable[[T], dict[str, Any]],
    change: Callable[[T], T],
) -> T:
    """Apply ``change`` to the document's value; only lands if nobody wrote in between."""

    def load() -> tuple[dict[str, Any] | None, Any]:
        with firestore_errors():
            snapshot = ref.get(**REQUEST_TIME_LIMITS)
        return (snapshot.to_dict() if snapshot.exists else None), snapshot

    def write_if_unchanged(snapshot: Any, data: dict[str, Any]) -> bool:
        """Write ``data``; ``False`` when the document changed since ``snapshot`` was read."""
        with firestore_errors():
            try:
                if snapshot.exists:
                    option = client.write_option(last_update_time=snapshot.update_time)
                    ref.update(data, option=option, **REQUEST_TIME_LIMITS)
                else:
                    ref.create(data, **REQUEST_TIME_LIMITS)
            except (gexc.AlreadyExists, gexc.FailedPrecondition, gexc.NotFound):
                return False
        return True

    return optimistic_update(load, write_if_unchanged, read, write, change)


class FirestoreCreateQuota:
    """``CreateQuota``: ``stream_create_quota/{uid}`` holds the user's recent creations."""

    def __init__(self, client: firestore.Client, collection: str = CREATE_QUOTA_COLLECTION):
        self._client = client
        self._collection = client.collection(collection)

    def update(
        self, uid: str, change: Callable[[CreateQuotaUsage], CreateQuotaUsage]
    ) -> CreateQuotaUsage:
        ref = self._collection.document(quota_document_id(uid))
        return read_modify_write(self._client, ref, usage_from, usage_to, change)


class FirestoreIdempotencyStore:
    """``IdempotencyStore``: ``idempotency_keys/{sha256(uid, key)}``."""

    def __init__(self, client: firestore.Client, collection: str = IDEMPOTENCY_COLLECTION):
        self._client = client
        self._collection = client.collection(collection)

    def update(self, uid: str, key: str, change: IdempotencyChange) -> IdempotencyRecord | None:
        ref = self._collection.document(idempotency_document_id(uid, key))
        return read_modify_write(self._client, ref, record_from, record_writer(uid), change)
