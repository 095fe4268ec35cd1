"""The documents of the stream-creation guards (per-user creation counts, idempotency keys),
which ``rest_guards.py`` changes over REST, and the optimistic read-modify-write that
``RestDocuments`` also changes invitations and events with; nothing here loads gRPC.

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
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from common.adapters.firestore.documents import EXPIRES_AT_FIELD
from common.errors import ConflictError
from common.models.api import is_document_id
from common.ports import CreateQuotaUsage, IdempotencyRecord

CREATE_QUOTA_COLLECTION = "stream_create_quota"
IDEMPOTENCY_COLLECTION = "idempotency_keys"
ATTEMPTS = 25

T = TypeVar("T")
Snapshot = TypeVar("Snapshot")


def optimistic_update(
    load: Callable[[], tuple[dict[str, Any] | None, Snapshot]],
    write_if_unchanged: Callable[[Snapshot, dict[str, Any]], bool],
    read: Callable[[dict[str, Any] | None], T],
    write: Callable[[T], dict[str, Any]],
    change: Callable[[T], T],
) -> T:
    """Apply ``change`` to the value of a document ``load`` reads (its data, ``None`` when
    there is none, and what ``write_if_unchanged`` conditions on); it lands only if nobody
    wrote in between, else the document is read again and ``change`` decides again."""
    for attempt in range(ATTEMPTS):
        data, snapshot = load()
        before = read(data)
        after = change(before)
        if after is None or after == before:
            return before
        if write_if_unchanged(snapshot, write(after)):
            return after
        time.sleep(random.uniform(0, 0.02 * (attempt + 1)))  # noqa: S311 - jitter
    raise ConflictError("Too many concurrent requests; try again", retry_after_s=1)


@dataclass(frozen=True)
class Codec(Generic[T]):
    """A value to and from its document's data (``None``: there is no document)."""

    read: Callable[[dict[str, Any] | None], T]
    write: Callable[[T], dict[str, Any]]


def quota_document_id(uid: str) -> str:
    """The user's uid, or a hash of it when it cannot name a document."""
    return uid if is_document_id(uid) else "sha256-" + hashlib.sha256(uid.encode()).hexdigest()


def usage_from(data: dict[str, Any] | None) -> CreateQuotaUsage:
    if data is None:
        return CreateQuotaUsage()
    creations = tuple(t for t in data.get("creations") or () if isinstance(t, datetime))
    counts = tuple(c for c in data.get("recentCounts") or () if isinstance(c, str))
    return CreateQuotaUsage(creations, data.get(EXPIRES_AT_FIELD), counts)


def usage_to(usage: CreateQuotaUsage) -> dict[str, Any]:
    return {
        "creations": list(usage.creations),
        EXPIRES_AT_FIELD: usage.expires_at,
        "recentCounts": list(usage.recent_counts),
    }


USAGE: Codec[CreateQuotaUsage] = Codec(usage_from, usage_to)


def idempotency_document_id(uid: str, key: str) -> str:
    """One document per (user, key): keys are scoped to the user who sent them. The key
    itself, which a client may have made from anything, is never stored."""
    return hashlib.sha256(f"{uid}\n{key}".encode()).hexdigest()


def record_from(data: dict[str, Any] | None) -> IdempotencyRecord | None:
    if data is None:
        return None
    return IdempotencyRecord(
        fingerprint=data["fingerprint"],
        stream_id=data["streamId"],
        state=data["state"],
        lease_until=data["leaseUntil"],
        expires_at=data[EXPIRES_AT_FIELD],
    )


def record_writer(uid: str) -> Callable[[IdempotencyRecord | None], dict[str, Any]]:
    """The document of the user's record (``None`` is never written: a change that clears a
    record leaves it to its TTL)."""

    def write(record: IdempotencyRecord | None) -> dict[str, Any]:
        assert record is not None  # noqa: S101 - None is never written
        return {
            "uid": uid,
            "fingerprint": record.fingerprint,
            "streamId": record.stream_id,
            "state": record.state,
            "leaseUntil": record.lease_until,
            EXPIRES_AT_FIELD: record.expires_at,
        }

    return write
