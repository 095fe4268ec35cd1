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

from common.adapters.firestore.documents import CREDENTIALS_SUBCOLLECTION, DocumentQuery
from common.adapters.firestore.guard_documents import Codec
from common.adapters.firestore.rest import FirestoreRest
from common.adapters.firestore.rest_guards import RestDocuments
from common.ports import Invitation

KIND = "invitation"
LIST_LIMIT = 500


class RestInvitationStore:
    """``InvitationStore`` over the streams collection's ``private`` subcollections, by
    Firestore's REST API (a guest's first request then loads no gRPC)."""

    def __init__(self, rest: FirestoreRest, streams_collection: str) -> None:
        self._rest = rest
        self._streams = streams_collection

    def add(self, invitation: Invitation) -> None:
        documents = RestDocuments(self._rest, self._private(invitation.stream_id))
        documents.create(
            invitation_document_id(invitation.code),
            _to_document(invitation),
            "This invitation code is taken",
        )

    def get(self, stream_id: str, code: str) -> Invitation | None:
        snapshot = self._rest.get(self._private(stream_id), invitation_document_id(code))
        return _matching(stream_id, code, snapshot.to_dict())

    def list(self, stream_id: str) -> list[Invitation]:
        query = DocumentQuery(
            filters={"kind": KIND}, orderings=(), start_after=None, offset=0, limit=LIST_LIMIT
        )
        found = self._rest.run_query(self._private(stream_id), query)
        rows = [_from_document(stream_id, snapshot.fields) for snapshot in found]
        return sorted(rows, key=lambda i: i.created_at, reverse=True)

    def revoke(self, stream_id: str, code: str, at: datetime) -> Invitation | None:
        def change(current: Invitation | None) -> Invitation | None:
            if current is None or current.revoked_at is not None:
                return current
            return dataclasses.replace(current, revoked_at=at)

        def write(invitation: Invitation | None) -> dict[str, Any]:
            assert invitation is not None  # noqa: S101 - None is never written
            return _to_document(invitation)

        codec = Codec(lambda data: _matching(stream_id, code, data), write)
        documents = RestDocuments(self._rest, self._private(stream_id))
        return documents.change(invitation_document_id(code), codec, change)

    def _private(self, stream_id: str) -> str:
        return f"{self._streams}/{stream_id}/{CREDENTIALS_SUBCOLLECTION}"


def _matching(stream_id: str, code: str, data: dict[str, Any] | None) -> Invitation | None:
    """The invitation ``data`` holds, if it is one and of this very code."""
    if data is None or data.get("kind") != KIND or data.get("code") != code:
        return None
    return _from_document(stream_id, data)


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
