"""Stream-creation guards in Firestore: per-user creation counts and idempotency keys.

Both are small documents changed by optimistic read-modify-write: the write carries a
precondition (the document must not exist yet, or must be unchanged since it was read), so
concurrent requests on any instance re-read and re-decide instead of both passing. Neither
collection is readable or writable by clients (firestore.rules allows only what it lists);
both carry ``expiresAt`` for their Firestore TTL policies (firestore.indexes.json).
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore

from common.adapters.firestore.streams import (
    EXPIRES_AT_FIELD,
    REQUEST_TIME_LIMITS,
    firestore_errors,
)
from common.errors import ConflictError
from common.models.api import is_document_id
from common.ports import CreateQuotaUsage, IdempotencyChange, IdempotencyRecord

CREATE_QUOTA_COLLECTION = "stream_create_quota"
IDEMPOTENCY_COLLECTION = "idempotency_keys"
ATTEMPTS = 25

T = TypeVar("T")


def read_modify_write(
    client: firestore.Client,
    ref: Any,
    read: Callable[[dict[str, Any] | None], T],
    write: Callable[[T], dict[str, Any]],
    change: Callable[[T], T],
) -> T:
    """Apply ``change`` to the document's value; only lands if nobody wrote in between."""
    for attempt in range(ATTEMPTS):
        with firestore_errors():
            snapshot = ref.get(**REQUEST_TIME_LIMITS)
        before = read(snapshot.to_dict() if snapshot.exists else None)
        after = change(before)
        if after is None or after == before:
            return before
        if _write_if_unchanged(client, ref, snapshot, write(after)):
            return after
        time.sleep(random.uniform(0, 0.02 * (attempt + 1)))  # noqa: S311 - jitter
    raise ConflictError("Too many concurrent requests; try again", retry_after_s=1)


def _write_if_unchanged(client: firestore.Client, ref: Any, snapshot: Any, data: Any) -> bool:
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


class FirestoreCreateQuota:
    """``CreateQuota``: ``stream_create_quota/{uid}`` holds the user's recent creations."""

    def __init__(self, client: firestore.Client, collection: str = CREATE_QUOTA_COLLECTION):
        self._client = client
        self._collection = client.collection(collection)

    def update(
        self, uid: str, change: Callable[[CreateQuotaUsage], CreateQuotaUsage]
    ) -> CreateQuotaUsage:
        ref = self._collection.document(quota_document_id(uid))
        return read_modify_write(self._client, ref, _usage_from, _usage_to, change)


def quota_document_id(uid: str) -> str:
    """The user's uid, or a hash of it when it cannot name a document."""
    return uid if is_document_id(uid) else "sha256-" + hashlib.sha256(uid.encode()).hexdigest()


def _usage_from(data: dict[str, Any] | None) -> CreateQuotaUsage:
    if data is None:
        return CreateQuotaUsage()
    creations = tuple(t for t in data.get("creations") or () if isinstance(t, datetime))
    return CreateQuotaUsage(creations=creations, expires_at=data.get(EXPIRES_AT_FIELD))


def _usage_to(usage: CreateQuotaUsage) -> dict[str, Any]:
    return {"creations": list(usage.creations), EXPIRES_AT_FIELD: usage.expires_at}


class FirestoreIdempotencyStore:
    """``IdempotencyStore``: ``idempotency_keys/{sha256(uid, key)}``; the key itself, which a
    client may have made from anything, is never stored."""

    def __init__(self, client: firestore.Client, collection: str = IDEMPOTENCY_COLLECTION):
        self._client = client
        self._collection = client.collection(collection)

    def update(self, uid: str, key: str, change: IdempotencyChange) -> IdempotencyRecord | None:
        ref = self._collection.document(idempotency_document_id(uid, key))

        def write(record: IdempotencyRecord | None) -> dict[str, Any]:
            assert record is not None  # noqa: S101 - None is never written
            return _record_to(uid, record)

        return read_modify_write(self._client, ref, _record_from, write, change)


def idempotency_document_id(uid: str, key: str) -> str:
    """One document per (user, key): keys are scoped to the user who sent them."""
    return hashlib.sha256(f"{uid}\n{key}".encode()).hexdigest()


def _record_from(data: dict[str, Any] | None) -> IdempotencyRecord | None:
    if data is None:
        return None
    return IdempotencyRecord(
        fingerprint=data["fingerprint"],
        stream_id=data["streamId"],
        state=data["state"],
        lease_until=data["leaseUntil"],
        expires_at=data[EXPIRES_AT_FIELD],
    )


def _record_to(uid: str, record: IdempotencyRecord) -> dict[str, Any]:
    return {
        "uid": uid,
        "fingerprint": record.fingerprint,
        "streamId": record.stream_id,
        "state": record.state,
        "leaseUntil": record.lease_until,
        EXPIRES_AT_FIELD: record.expires_at,
    }
