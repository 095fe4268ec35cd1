"""Invitation codes in Firestore: ``{streams}/{streamId}/private/invite-{sha256(code)}``.

Beside the stream's credentials, in the subcollection no client may read or write
(firestore.rules); deleted with the stream, moved with it by the migration. The document id
is a hash, so the code never names a document (ids appear in logs and consoles). The expiry
is ``validUntil``, not ``expiresAt``: the TTL policy of ``private`` would delete an expired
invitation, and a guest holding it would then read as a wrong code instead of an expired one.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from common.adapters.firestore.documents import CREDENTIALS_SUBCOLLECTION
from common.adapters.firestore.guards import read_modify_write
from common.adapters.firestore.streams import (
    REQUEST_TIME_LIMITS,
    firestore_errors,
)
from common.ports import Invitation

KIND = "invitation"
LIST_LIMIT = 500


class FirestoreInvitationStore:
    """``InvitationStore`` over the streams collection's ``private`` subcollections."""

    def __init__(self, client: firestore.Client, streams_collection: str) -> None:
        self._client = client
        self._streams = client.collection(streams_collection)

    def add(self, invitation: Invitation) -> None:
        ref = self._ref(invitation.stream_id, invitation.code)
        with firestore_errors():
            ref.create(_to_document(invitation), **REQUEST_TIME_LIMITS)

    def get(self, stream_id: str, code: str) -> Invitation | None:
        with firestore_errors():
            snapshot = self._ref(stream_id, code).get(**REQUEST_TIME_LIMITS)
        data = snapshot.to_dict() if snapshot.exists else None
        if data is None or data.get("kind") != KIND or data.get("code") != code:
            return None
        return _from_document(stream_id, data)

    def list(self, stream_id: str) -> list[Invitation]:
        query = (
            self._streams.document(stream_id)
            .collection(CREDENTIALS_SUBCOLLECTION)
            .where(filter=FieldFilter("kind", "==", KIND))
            .limit(LIST_LIMIT)
        )
        with firestore_errors():
            rows = [_from_document(stream_id, d.to_dict() or {}) for d in query.stream()]
        return sorted(rows, key=lambda i: i.created_at, reverse=True)

    def revoke(self, stream_id: str, code: str, at: datetime) -> Invitation | None:
        def read(data: dict[str, Any] | None) -> Invitation | None:
            if data is None or data.get("kind") != KIND or data.get("code") != code:
                return None
            return _from_document(stream_id, data)

        def change(current: Invitation | None) -> Invitation | None:
            if current is None or current.revoked_at is not None:
                return current
            return dataclasses.replace(current, revoked_at=at)

        def write(invitation: Invitation | None) -> dict[str, Any]:
            assert invitation is not None  # noqa: S101 - None is never written
            return _to_document(invitation)

        ref = self._ref(stream_id, code)
        return read_modify_write(self._client, ref, read, write, change)

    def _ref(self, stream_id: str, code: str) -> Any:
        private = self._streams.document(stream_id).collection(CREDENTIALS_SUBCOLLECTION)
        return private.document(invitation_document_id(code))


def invitation_document_id(code: str) -> str:
    """The document of a code: its hash (any string a caller sends maps to a valid id)."""
    return "invite-" + hashlib.sha256(code.encode()).hexdigest()


def _to_document(invitation: Invitation) -> dict[str, Any]:
    return {
        "kind": KIND,
        "code": invitation.code,
        "createdBy": invitation.created_by,
        "createdAt": invitation.created_at,
        "label": invitation.label,
        "validUntil": invitation.expires_at,
        "revokedAt": invitation.revoked_at,
    }


def _from_document(stream_id: str, data: dict[str, Any]) -> Invitation:
    return Invitation(
        code=str(data["code"]),
        stream_id=stream_id,
        created_by=str(data.get("createdBy") or ""),
        created_at=data["createdAt"],
        label=data.get("label"),
        expires_at=data.get("validUntil"),
        revoked_at=data.get("revokedAt"),
    )
