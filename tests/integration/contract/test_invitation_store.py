"""The ``InvitationStore`` contract: the in-memory fake and Firestore (REST) keep codes alike."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from common.adapters.firestore.invitations import RestInvitationStore
from common.errors import ConflictError
from common.ports import Invitation, InvitationStore
from tests.fakes import InMemoryInvitationStore
from tests.integration.contract.conftest import _rest_collection, implementations

AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.fixture(params=implementations("firestore-rest"))
def invitations(request: pytest.FixtureRequest) -> InvitationStore:
    if request.param == "fake":
        return InMemoryInvitationStore()
    return RestInvitationStore(*_rest_collection(request, "streams"))


def invitation(stream_id: str, minutes: int = 0, **changes: object) -> Invitation:
    fields: dict[str, object] = {
        "code": secrets.token_hex(16),
        "stream_id": stream_id,
        "created_by": "owner-uid",
        "created_at": AT + timedelta(minutes=minutes),
        **changes,
    }
    return Invitation(**fields)  # type: ignore[arg-type]


def test_an_invitation_is_found_by_its_stream_and_code_only(invitations: InvitationStore) -> None:
    stream, other = f"s-{uuid.uuid4().hex[:8]}", f"s-{uuid.uuid4().hex[:8]}"
    kept = invitation(stream, label="Aunt Ada", expires_at=AT + timedelta(days=7))
    invitations.add(kept)

    assert invitations.get(stream, kept.code) == kept
    assert invitations.get(other, kept.code) is None
    assert invitations.get(stream, secrets.token_hex(16)) is None


def test_the_list_is_the_streams_own_newest_first_revoked_ones_included(
    invitations: InvitationStore,
) -> None:
    stream, other = f"s-{uuid.uuid4().hex[:8]}", f"s-{uuid.uuid4().hex[:8]}"
    first, second, third = (invitation(stream, minutes) for minutes in (0, 5, 10))
    for made in (second, third, first):
        invitations.add(made)
    invitations.add(invitation(other))
    invitations.revoke(stream, second.code, AT + timedelta(hours=1))

    listed = invitations.list(stream)

    assert [i.code for i in listed] == [third.code, second.code, first.code]
    assert [i.revoked_at is not None for i in listed] == [False, True, False]


def test_revoking_keeps_the_first_time_and_a_foreign_code_revokes_nothing(
    invitations: InvitationStore,
) -> None:
    stream = f"s-{uuid.uuid4().hex[:8]}"
    made = invitation(stream)
    invitations.add(made)
    first = AT + timedelta(hours=1)

    revoked = invitations.revoke(stream, made.code, first)
    again = invitations.revoke(stream, made.code, first + timedelta(hours=1))

    assert revoked is not None and revoked.revoked_at == first
    assert again is not None and again.revoked_at == first
    stored = invitations.get(stream, made.code)
    assert stored is not None and stored.revoked_at == first
    assert invitations.revoke(f"s-{uuid.uuid4().hex[:8]}", made.code, first) is None


def test_a_code_is_stored_once_and_a_taken_one_is_refused(invitations: InvitationStore) -> None:
    stream = f"s-{uuid.uuid4().hex[:8]}"
    kept = invitation(stream, label="Aunt Ada")
    invitations.add(kept)
    invitations.add(kept)  # a retry whose first answer was lost: the same invitation

    with pytest.raises(ConflictError):
        invitations.add(replace(kept, label="Someone else"))
    assert invitations.list(stream) == [kept]
