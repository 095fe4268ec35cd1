"""Private playback over HTTP: signed URLs for those who may watch, plain ones for public
streams, invitations for guests (created, listed, revoked by managers only), and wrong codes
limited per stream and client with 429 + Retry-After."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from werkzeug.test import TestResponse

from common.bootstrap import override
from tests import people
from tests.fakes import (
    TEST_SIGNING_KEY_ID,
    InMemoryCreateQuota,
    InMemoryInvitationStore,
    local_playback_tokens,
)
from tests.functions.calls import bearer, client, error, ok
from tests.functions.conftest import DELIVERY_BASE, SITE, Backend, assert_no_secrets, local_settings


class PlaybackBackend(Backend):
    """The functions' backend with the real signer and in-memory invitations."""

    def __init__(self, *, signing_key: bool = True) -> None:
        super().__init__(local_settings(invitation_attempt_limit=3))
        self.invitations = InMemoryInvitationStore()
        self.services = self.build(
            playback_tokens=local_playback_tokens(self.clock) if signing_key else None,
            invitations=self.invitations,
            invitation_attempts=InMemoryCreateQuota(),
        )


@pytest.fixture(autouse=True)
def backend() -> Iterator[Backend]:
    built = PlaybackBackend()
    with override(built.services):
        yield built


def playback(stream_id: str, **kwargs: Any) -> TestResponse:
    return client("streamplayback").get(f"/api/streams/{stream_id}/playback", **kwargs)


def redeem(stream_id: str, code: str, ip: str = "203.0.113.7") -> TestResponse:
    return client("streamaccess").post(
        f"/api/streams/{stream_id}/access",
        json={"code": code},
        headers={"X-Forwarded-For": f"{ip}, 10.0.0.1"},
    )


def invite(stream_id: str, **body: object) -> dict[str, object]:
    path = f"/api/streams/{stream_id}/invitations"
    reply = client("streaminvitations").post(
        path, json=body, headers=bearer(people.FUNERAL_DIRECTOR)
    )
    answer: dict[str, object] = ok(reply, 201)
    return answer


def private_stream(backend: Backend) -> str:
    return backend.create_stream(on_memorial=people.MEMORIAL.id, isPublic=False).id


def test_a_public_stream_plays_from_plain_urls_for_anyone(backend: Backend) -> None:
    made = backend.create_stream(on_memorial=people.MEMORIAL.id)

    reply = playback(made.id)

    body = ok(reply)
    assert body["hlsUrl"] == f"{DELIVERY_BASE}/{made.cloudflareId}/manifest/video.m3u8"
    assert body["requiresToken"] is False
    assert body["expiresAt"] is None
    assert body["source"] == "live"
    assert backend.provider.signed[made.cloudflareId] is False
    assert_no_secrets(reply, backend)


def test_a_private_stream_is_signed_for_its_managers_and_refused_to_others(
    backend: Backend, prefix: str
) -> None:
    stream_id = private_stream(backend)
    live_input = backend.live_input_of(stream_id)
    path = f"{prefix}/streams/{stream_id}/playback"

    error(client("streamplayback").get(path), 401, "unauthenticated")
    body = ok(client("streamplayback").get(path, headers=bearer(people.FUNERAL_DIRECTOR)))

    token = body["hlsUrl"].removeprefix(f"{DELIVERY_BASE}/").removesuffix("/manifest/video.m3u8")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == live_input and claims["kid"] == TEST_SIGNING_KEY_ID
    assert "downloadable" not in claims
    assert live_input not in body["hlsUrl"] + body["playerUrl"] + body["dashUrl"]
    assert body["requiresToken"] is True and body["expiresAt"]
    assert backend.provider.signed[live_input] is True


def test_an_account_that_may_read_a_private_stream_still_gets_no_signed_playback(
    backend: Backend,
) -> None:
    # Any signed-in account may read a visible stream of a public memorial (the frontend's
    # contract), but a private service plays only for those the family chose.
    stream_id = private_stream(backend)
    assert ok(client("stream").get(f"/api/streams/{stream_id}", headers=bearer(people.STRANGER)))[
        "id"
    ]

    refused = error(playback(stream_id, headers=bearer(people.STRANGER)), 403, "permission-denied")

    assert refused["reason"] == "invitation-required"
    assert "hlsUrl" not in refused


def test_turning_a_stream_private_protects_its_input_and_recordings(backend: Backend) -> None:
    made = backend.create_stream(on_memorial=people.MEMORIAL.id)
    backend.add_recording(made.id, "video-1")
    path = f"/api/streams/{made.id}"

    ok(
        client("stream").put(
            path, json={"isPublic": False}, headers=bearer(people.FUNERAL_DIRECTOR)
        )
    )

    assert backend.provider.signed == {made.cloudflareId: True, "video-1": True}
    view = ok(client("stream").get(path, headers=bearer(people.FUNERAL_DIRECTOR)))
    assert view["requiresToken"] is True
    ok(client("stream").put(path, json={"isPublic": True}, headers=bearer(people.FUNERAL_DIRECTOR)))
    assert backend.provider.signed == {made.cloudflareId: False, "video-1": False}


def test_a_memorial_turned_private_is_applied_when_playback_is_asked(backend: Backend) -> None:
    made = backend.create_stream(on_memorial=people.PRIVATE_MEMORIAL.id)
    assert backend.provider.signed[made.cloudflareId] is False  # filed there afterwards

    error(playback(made.id), 401)
    error(playback(made.id, headers=bearer(people.STRANGER)), 403, "permission-denied")

    assert backend.provider.signed[made.cloudflareId] is True
    assert backend.stream(made.id).signed_urls is True


def test_only_managers_create_list_and_revoke_invitations(backend: Backend) -> None:
    stream_id = private_stream(backend)
    path = f"/api/streams/{stream_id}/invitations"

    error(client("streaminvitations").post(path, json={}), 401)
    error(client("streaminvitations").get(path, headers=bearer(people.STRANGER)), 403)
    made = invite(stream_id, label="Aunt May")
    listed = ok(client("streaminvitations").get(path, headers=bearer(people.FUNERAL_DIRECTOR)))

    code = str(made["code"])
    assert len(code) >= 32
    assert made["link"] == f"{SITE}/livestream/{stream_id}?invite={code}"
    assert [i["code"] for i in listed["invitations"]] == [code]
    error(client("streaminvitation").delete(f"{path}/{code}", headers=bearer(people.STRANGER)), 403)
    revoked = ok(
        client("streaminvitation").delete(f"{path}/{code}", headers=bearer(people.FUNERAL_DIRECTOR))
    )
    assert revoked["revoked"] is True
    error(
        client("streaminvitation").delete(f"{path}/nope", headers=bearer(people.FUNERAL_DIRECTOR)),
        404,
    )


def test_a_guest_code_plays_view_only_until_revoked(backend: Backend) -> None:
    stream_id = private_stream(backend)
    code = str(invite(stream_id)["code"])

    body = ok(redeem(stream_id, code))
    token = body["hlsUrl"].split("/")[3]
    assert jwt.decode(token, options={"verify_signature": False}).get("downloadable") is None
    path = f"/api/streams/{stream_id}/invitations/{code}"
    ok(client("streaminvitation").delete(path, headers=bearer(people.FUNERAL_DIRECTOR)))

    refused = error(redeem(stream_id, code), 403, "permission-denied")
    assert refused["reason"] == "revoked"
    assert "Url" not in str(refused)


def test_a_code_never_opens_another_stream_and_expired_codes_are_refused(
    backend: Backend,
) -> None:
    first, second = private_stream(backend), private_stream(backend)
    code = str(invite(first, expiresAt="2026-11-24T11:00:00Z")["code"])

    assert error(redeem(second, code), 403)["reason"] == "invalid-code"
    # The guest's token ends with the invitation (in 1 h), not after the usual 2 h.
    played = ok(redeem(first, code))
    ends = datetime.fromisoformat(played["expiresAt"].replace("Z", "+00:00"))
    assert ends == datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
    token = played["hlsUrl"].removeprefix(f"{DELIVERY_BASE}/").split("/")[0]
    assert jwt.decode(token, options={"verify_signature": False})["exp"] == ends.timestamp()
    backend.clock.advance(3601)
    assert error(redeem(first, code), 403)["reason"] == "expired"


def test_wrong_codes_are_limited_per_stream_and_client(backend: Backend) -> None:
    stream_id, other = private_stream(backend), private_stream(backend)
    code = str(invite(stream_id)["code"])

    for _ in range(3):
        error(redeem(stream_id, "wrong-code"), 403)
    limited = redeem(stream_id, "wrong-code")

    error(limited, 429, "resource-exhausted")
    assert int(limited.headers["Retry-After"]) > 0
    # The right code still plays: a guest behind the same address (a shared NAT, or one an
    # attacker forges to lock them out) is never refused their own invitation.
    ok(redeem(stream_id, code))
    error(redeem(stream_id, "wrong-code", ip="198.51.100.9"), 403)  # another client
    error(redeem(other, "wrong-code"), 403)  # another stream counts on its own
    backend.clock.advance(601)
    error(redeem(stream_id, "wrong-code"), 403)  # the window has passed


@pytest.mark.parametrize("body", [{}, {"code": ""}, {"code": "x" * 201}, {"code": "c", "extra": 1}])
def test_a_bad_access_body_is_a_400(backend: Backend, body: dict[str, object]) -> None:
    stream_id = private_stream(backend)
    path = f"/api/streams/{stream_id}/access"
    error(client("streamaccess").post(path, json=body), 400, "invalid-argument")


@pytest.mark.parametrize(
    "expires_at", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "2026-12-31T10:00:00"]
)
def test_an_invitation_expiry_out_of_range_or_without_offset_is_a_400(
    backend: Backend, expires_at: str
) -> None:
    # Such dates parse, but cannot be converted to UTC or stored: a 400, never a 500.
    path = f"/api/streams/{private_stream(backend)}/invitations"
    reply = client("streaminvitations").post(
        path, json={"expiresAt": expires_at}, headers=bearer(people.FUNERAL_DIRECTOR)
    )
    error(reply, 400, "invalid-argument")


def test_unknown_streams_are_404_and_no_signing_key_is_a_503(backend: Backend) -> None:
    error(playback("no-such-stream"), 404)
    error(redeem("no-such-stream", "code"), 404)
    stream_id = private_stream(backend)
    unsigned = PlaybackBackend(signing_key=False)
    with override(unsigned.services):
        unsigned.repo.create(backend.stream(stream_id), None)
        error(playback(stream_id, headers=bearer(people.FUNERAL_DIRECTOR)), 503, "unavailable")
