"""Playback tokens signed here with a Stream signing key, as Cloudflare's "self-signed" option
describes them (anchors.md §1.6): RS256, header ``{alg, kid}``, claims ``{sub, kid, exp, nbf}``
and ``downloadable`` when asked. No Cloudflare call per viewer (the ``/token`` endpoint is
meant for fewer than about 10k tokens a day), and the key's private half never leaves us.
"""

from __future__ import annotations

import base64
import threading
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from pydantic import SecretStr

from common.errors import UnavailableError
from common.ports import Clock, PlaybackToken

# Cloudflare refuses a token whose ``exp`` is more than 24 h ahead.
MAX_TOKEN_TTL_S = 24 * 3600
# ``nbf`` a little in the past, so a delivery host whose clock runs behind ours still accepts
# a token the moment it is handed out.
CLOCK_SKEW_S = 60


class SigningKeyError(ValueError):
    """The configured signing key is not an RSA private key in base64 PEM."""


def load_private_key(pem_b64: SecretStr) -> RSAPrivateKey:
    """The RSA key in a base64 PEM, as ``POST /stream/keys`` returns ``pem``.

    Raises:
        SigningKeyError: it is not base64, not a PEM private key, or not RSA.
    """
    try:
        pem = base64.b64decode(pem_b64.get_secret_value().strip(), validate=True)
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError("the signing key pem is not a base64 PEM private key") from exc
    if not isinstance(key, RSAPrivateKey):
        raise SigningKeyError("the signing key is not an RSA key")
    return key


class LocalPlaybackTokens:
    """``PlaybackTokens`` signed locally with one Stream signing key.

    Args:
        key_id: the key's ``id`` from ``POST /stream/keys`` (the token's ``kid``).
        pem: the key's ``pem`` from the same answer, base64 as given.
        ttl_s: how long a token plays, at most 24 h.
        clock: the time ``exp`` and ``nbf`` count from.
    """

    def __init__(self, key_id: str, pem: SecretStr, ttl_s: int, clock: Clock) -> None:
        if not 0 < ttl_s <= MAX_TOKEN_TTL_S:
            raise ValueError(f"ttl_s must be in 1..{MAX_TOKEN_TTL_S}")
        self._key_id = key_id
        self._pem = pem
        self._ttl = timedelta(seconds=ttl_s)
        self._clock = clock
        self._key: RSAPrivateKey | None = None
        self._lock = threading.Lock()

    def sign(
        self, media_uid: str, *, downloadable: bool = False, until: datetime | None = None
    ) -> PlaybackToken:
        """A token opening ``media_uid`` for ``ttl_s`` from now, or until ``until`` if sooner."""
        now = self._clock.now()
        expires_at = now + self._ttl if until is None else min(now + self._ttl, until)
        claims: dict[str, Any] = {
            "sub": media_uid,
            "kid": self._key_id,
            "exp": int(expires_at.timestamp()),
            "nbf": int(now.timestamp()) - CLOCK_SKEW_S,
        }
        if downloadable:
            claims["downloadable"] = True
        # Cloudflare's header is {alg, kid}: PyJWT's default "typ" is left out.
        headers = {"kid": self._key_id, "typ": None}
        token = jwt.encode(claims, self._private_key(), algorithm="RS256", headers=headers)
        return PlaybackToken(token=token, expires_at=expires_at.replace(microsecond=0))

    def _private_key(self) -> RSAPrivateKey:
        with self._lock:
            if self._key is None:
                self._key = load_private_key(self._pem)
            return self._key


class NoPlaybackTokens:
    """``PlaybackTokens`` where no signing key is configured: private playback is refused
    with a 503 that says so (public streams never ask for a token)."""

    def sign(
        self,
        media_uid: str,  # noqa: ARG002
        *,
        downloadable: bool = False,  # noqa: ARG002
        until: datetime | None = None,  # noqa: ARG002
    ) -> PlaybackToken:
        """Always refuses."""
        raise UnavailableError(
            "Private playback is not configured (no Cloudflare signing key)",
            details={"reason": "no-signing-key"},
        )
