"""Playback tokens as Cloudflare's delivery host checks them: RS256 with ``{alg, kid}`` in
the header, ``sub``/``kid``/``exp``/``nbf`` (and ``downloadable`` only when asked), verified
with the public half of the key; a bad key is refused clearly."""

from __future__ import annotations

import base64
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from common.access import requires_signed_playback
from common.adapters.cloudflare.signing import (
    LocalPlaybackTokens,
    NoPlaybackTokens,
    SigningKeyError,
    load_private_key,
)
from common.bootstrap import build_services
from common.errors import UnavailableError
from common.settings import Settings
from tests import people
from tests.fakes import (
    TEST_SIGNING_KEY_ID,
    FixedClock,
    local_playback_tokens,
    session_signing_key_pem,
)
from tests.unit.test_access import stream as make_stream


def public_key() -> object:
    return load_private_key(session_signing_key_pem()).public_key()


def test_a_token_carries_cloudflares_header_and_claims_and_verifies_with_the_key() -> None:
    clock = FixedClock()
    signed = local_playback_tokens(clock, ttl_s=3600).sign("video-1")

    header = jwt.get_unverified_header(signed.token)
    claims = jwt.decode(
        signed.token,
        public_key(),  # type: ignore[arg-type]
        algorithms=["RS256"],
        options={"verify_exp": False, "verify_nbf": False},
    )

    assert header == {"alg": "RS256", "kid": TEST_SIGNING_KEY_ID}
    assert claims["sub"] == "video-1"
    assert claims["kid"] == TEST_SIGNING_KEY_ID
    assert claims["exp"] == int((clock.now() + timedelta(hours=1)).timestamp())
    assert claims["nbf"] <= int(clock.now().timestamp())
    assert "downloadable" not in claims
    assert signed.expires_at == clock.now() + timedelta(hours=1)


def test_downloadable_is_claimed_only_when_asked() -> None:
    signed = local_playback_tokens(FixedClock()).sign("video-1", downloadable=True)
    claims = jwt.decode(signed.token, options={"verify_signature": False})
    assert claims["downloadable"] is True


def test_a_token_signed_with_another_key_does_not_verify() -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tokens = LocalPlaybackTokens("k", SecretStr(base64.b64encode(pem).decode()), 60, FixedClock())
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            tokens.sign("video-1").token,
            public_key(),  # type: ignore[arg-type]
            algorithms=["RS256"],
            options={"verify_exp": False, "verify_nbf": False},
        )


@pytest.mark.parametrize("pem", ["not base64!", base64.b64encode(b"no pem here").decode()])
def test_a_pem_that_is_not_a_base64_private_key_is_refused(pem: str) -> None:
    with pytest.raises(SigningKeyError):
        LocalPlaybackTokens("k", SecretStr(pem), 60, FixedClock()).sign("video-1")


@pytest.mark.parametrize("ttl_s", [0, 24 * 3600 + 1])
def test_a_ttl_cloudflare_would_refuse_is_refused(ttl_s: int) -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        LocalPlaybackTokens("k", session_signing_key_pem(), ttl_s, FixedClock())


def test_without_a_configured_key_signing_answers_503() -> None:
    with pytest.raises(UnavailableError) as info:
        NoPlaybackTokens().sign("video-1")
    assert info.value.http_status == 503


def test_bootstrap_signs_with_the_configured_key_and_its_ttl() -> None:
    clock = FixedClock()
    settings = Settings(
        cloudflare_signing_key_id="kid-1",
        cloudflare_signing_key_pem=session_signing_key_pem(),
        playback_token_ttl_s=600,
    )
    signed = build_services(settings, clock=clock).playback_tokens.sign("input-1")
    assert jwt.get_unverified_header(signed.token)["kid"] == "kid-1"
    assert signed.expires_at == clock.now() + timedelta(seconds=600)
    # Explicitly keyless: the integration suite's stack puts its own key in the environment.
    keyless = Settings(cloudflare_signing_key_id=None, cloudflare_signing_key_pem=None)
    assert isinstance(build_services(keyless, clock=clock).playback_tokens, NoPlaybackTokens)


def test_private_streams_and_streams_of_private_memorials_need_signed_playback() -> None:
    public = make_stream(is_public=True)
    assert not requires_signed_playback(public, people.MEMORIAL)
    assert not requires_signed_playback(public, None)
    assert not requires_signed_playback(public.model_copy(update={"is_visible": False}), None)
    assert requires_signed_playback(public.model_copy(update={"is_public": False}), people.MEMORIAL)
    assert requires_signed_playback(public, people.PRIVATE_MEMORIAL)
