"""Firebase Auth over its HTTP APIs on the standard library's client, without firebase-admin.

ID tokens and session cookies are verified here, as Firebase documents for third-party JWT
libraries: RS256 signed by one of Google's published keys (``kid``), for this project
(``aud``), from the right issuer (``iss``), unexpired, with a subject. Users' records come from
the Identity Toolkit API (``accounts:lookup``). firebase-admin would load requests, google-auth
and CacheControl, about a hundred milliseconds of every signed-in cold start; ``http.client``
is already loaded by functions-framework.

Against the Auth emulator (``FIREBASE_AUTH_EMULATOR_HOST``) credentials are unsigned, as the
emulator issues them (``alg: none``), and every other check still applies; requests carry the
emulator's admin token. In production, lookups carry an access token of the instance's
service account from the metadata server.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.x509 import load_pem_x509_certificate
from jwt.types import Options

from common.adapters.firebase_auth import Account, CredentialKind, InvalidCredentialError
from common.adapters.google_tokens import AccessTokens, EmulatorToken, instance_tokens
from common.adapters.keep_alive import KeepAliveConnections
from common.errors import UnavailableError

log = logging.getLogger(__name__)

ID_TOKEN_KEYS_URL = (
    "https://www.googleapis.com/robot/v1/metadata/x509/"  # noqa: S105 - public keys' address
    "securetoken@system.gserviceaccount.com"
)
SESSION_COOKIE_KEYS_URL = "https://www.googleapis.com/identitytoolkit/v3/relyingparty/publicKeys"
ISSUERS: Mapping[CredentialKind, str] = {
    CredentialKind.ID_TOKEN: "https://securetoken.google.com/",
    CredentialKind.SESSION_COOKIE: "https://session.firebase.google.com/",
}
PRODUCTION_ORIGIN = "https://identitytoolkit.googleapis.com"
ATTEMPT_TIMEOUT_S = 5.0
# Tolerated difference between Google's clock and ours (exp, iat, auth_time).
CLOCK_SKEW_S = 10
MAX_SUBJECT_LENGTH = 128
# Without a Cache-Control max-age, keys are kept this long; they are fetched at most once per
# interval; while fetching fails, the last keys serve this long past their max-age (Google
# publishes a key well before it signs with it and keeps it long after).
DEFAULT_KEYS_TTL_S = 3600.0
REFETCH_INTERVAL_S = 60.0
STALE_KEYS_GRACE_S = 3600.0
# Claims every credential must carry and that PyJWT checks (exp, iat, aud, iss); the
# subject and the time of sign-in are checked in ``IdentityToolkit.verify``.
_CLAIM_CHECKS: Options = {
    "require": ["exp", "iat", "aud", "iss", "sub", "auth_time"],
    "strict_aud": True,  # aud is the project's id, not a list holding it
    "verify_exp": True,
    "verify_iat": True,
    "verify_aud": True,
    "verify_iss": True,
}
_MAX_AGE = re.compile(r"max-age=(\d+)")
_RETRY_AFTER_S = 5


def _outage(what: str) -> UnavailableError:
    log.warning("Firebase Auth is unreachable: %s", what)
    return UnavailableError(
        "Sign-in cannot be checked right now; try again", retry_after_s=_RETRY_AFTER_S
    )


class _Origin:
    """JSON over keep-alive connections to one origin; a connection the server closed is
    reopened once."""

    def __init__(self, origin: str) -> None:
        self._connections = KeepAliveConnections(origin, ATTEMPT_TIMEOUT_S)

    def send(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        for attempt in range(2):
            connection = self._connections.get()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, response.headers, response.read()
            except (OSError, http.client.HTTPException) as exc:
                self._connections.drop()
                if attempt:
                    netloc = self._connections.netloc
                    raise _outage(f"{method} {netloc}{path}: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


@dataclass(frozen=True)
class _Keys:
    by_id: Mapping[str, RSAPublicKey]
    expires_at: float


class SigningKeys:
    """Google's public keys of one kind of credential by key id, kept for the response's
    Cache-Control max-age (as Firebase asks); one fetch at a time."""

    def __init__(self, url: str, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        parts = urlsplit(url)
        self._path = parts.path or "/"
        self._origin = _Origin(f"{parts.scheme}://{parts.netloc}")
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._keys: _Keys | None = None
        self._next_fetch_at = float("-inf")

    def key(self, key_id: str) -> RSAPublicKey | None:
        """The key ``key_id`` names, or ``None`` if Google publishes no such key.

        Keys are fetched again once their max-age has passed, or for an unknown key id; at
        most once a minute whatever the outcome, so neither forged key ids nor an outage of
        the key endpoint make every request wait on a fetch. While a fetch fails, the keys
        fetched before keep serving for ``STALE_KEYS_GRACE_S`` past their max-age.
        """
        with self._lock:
            now = self._monotonic()
            keys = self._keys
            fresh = keys is not None and now < keys.expires_at
            known = keys is not None and key_id in keys.by_id
            if not (fresh and known) and now >= self._next_fetch_at:
                self._next_fetch_at = now + REFETCH_INTERVAL_S
                try:
                    keys = self._keys = self._fetch(now)
                except UnavailableError:
                    if keys is None or now >= keys.expires_at + STALE_KEYS_GRACE_S:
                        raise
                    log.warning("serving the signing keys fetched before; the fetch failed")
            if keys is None or now >= keys.expires_at + STALE_KEYS_GRACE_S:
                raise _outage("no signing keys: the last fetch failed")
            return keys.by_id.get(key_id)

    def _fetch(self, now: float) -> _Keys:
        status, headers, body = self._origin.send("GET", self._path, None, {})
        if status != 200:
            raise _outage(f"the signing keys answered HTTP {status}")
        try:
            certificates = json.loads(body)
            by_id = {
                str(key_id): load_pem_x509_certificate(str(pem).encode()).public_key()
                for key_id, pem in certificates.items()
            }
        except (ValueError, AttributeError) as exc:
            raise _outage(f"the signing keys could not be read: {exc}") from exc
        max_age = _MAX_AGE.search(headers.get("Cache-Control") or "")
        ttl_s = float(max_age.group(1)) if max_age else DEFAULT_KEYS_TTL_S
        return _Keys(
            by_id={key_id: key for key_id, key in by_id.items() if isinstance(key, RSAPublicKey)},
            expires_at=now + ttl_s,
        )


class IdentityToolkit:
    """``common.adapters.firebase_auth.Identities`` over Firebase Auth's HTTP APIs.

    Args:
        project: The Firebase project credentials must be issued for.
        api_origin: Where the Identity Toolkit API answers (the emulator's, or production's).
        tokens: The ``Authorization`` of lookups.
        keys: The signing keys of each kind of credential; ``None``: credentials are unsigned
            (the Auth emulator's) and only their claims are checked.
    """

    def __init__(
        self,
        project: str,
        *,
        api_origin: str,
        tokens: AccessTokens,
        keys: Mapping[CredentialKind, SigningKeys] | None,
    ) -> None:
        self._project = project
        self._api = _Origin(api_origin)
        self._api_prefix = urlsplit(api_origin).path.rstrip("/")
        self._tokens = tokens
        self._keys = keys

    @classmethod
    def from_environment(cls, project: str, *, production: bool = False) -> IdentityToolkit:
        """The Auth emulator where ``FIREBASE_AUTH_EMULATOR_HOST`` names one, else production.
        In ``production`` the emulator is refused outright: its tokens are unsigned, so this
        is a second guard beside the settings' refusal of emulator variables."""
        emulator = os.environ.get("FIREBASE_AUTH_EMULATOR_HOST")
        if emulator and production:
            raise RuntimeError(
                "FIREBASE_AUTH_EMULATOR_HOST is set in production: unsigned tokens would be "
                "accepted; unset it"
            )
        if emulator:
            origin = f"http://{emulator}/identitytoolkit.googleapis.com"
            return cls(project, api_origin=origin, tokens=EmulatorToken(), keys=None)
        return cls(
            project,
            api_origin=PRODUCTION_ORIGIN,
            tokens=instance_tokens(),
            keys={
                CredentialKind.ID_TOKEN: SigningKeys(ID_TOKEN_KEYS_URL),
                CredentialKind.SESSION_COOKIE: SigningKeys(SESSION_COOKIE_KEYS_URL),
            },
        )

    def verify(self, credential: str, kind: CredentialKind) -> dict[str, Any]:
        issuer = ISSUERS[kind] + self._project
        try:
            header = jwt.get_unverified_header(credential)
            if self._keys is None:
                claims = jwt.decode(
                    credential,
                    options={**_CLAIM_CHECKS, "verify_signature": False},
                    audience=self._project,
                    issuer=issuer,
                    leeway=CLOCK_SKEW_S,
                )
            else:
                key_id = header.get("kid")
                if header.get("alg") != "RS256" or not isinstance(key_id, str):
                    raise InvalidCredentialError(f"a {kind} must be RS256 with a key id")
                key = self._keys[kind].key(key_id)
                if key is None:
                    raise InvalidCredentialError(f"no published key {key_id!r} for a {kind}")
                claims = jwt.decode(
                    credential,
                    key,
                    algorithms=["RS256"],
                    options=_CLAIM_CHECKS,
                    audience=self._project,
                    issuer=issuer,
                    leeway=CLOCK_SKEW_S,
                )
        except jwt.InvalidTokenError as exc:
            raise InvalidCredentialError(f"the {kind} is not valid: {exc}") from exc
        subject = claims.get("sub")
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_LENGTH:
            raise InvalidCredentialError(f"the {kind} names no valid subject")
        signed_in_at = claims["auth_time"]
        if not isinstance(signed_in_at, int) or signed_in_at > time.time() + CLOCK_SKEW_S:
            raise InvalidCredentialError(f"the {kind} was signed in to in the future")
        return {**claims, "uid": subject}

    def account(self, uid: str) -> Account | None:
        path = f"{self._api_prefix}/v1/projects/{self._project}/accounts:lookup"
        body = json.dumps({"localId": [uid]}).encode()
        for _ in range(2):
            headers = {"Authorization": self._tokens.header(), "Content-Type": "application/json"}
            status, _, data = self._api.send("POST", path, body, headers)
            if status != 401:
                break
            self._tokens.refused(headers["Authorization"])
        if status != 200:
            raise _outage(f"accounts:lookup answered HTTP {status}: {data[:200]!r}")
        try:
            users = json.loads(data).get("users") or []
            if not users:
                return None
            record = users[0]
            claims = json.loads(record.get("customAttributes") or "{}")
            return Account(
                email=record.get("email"),
                custom_claims=claims if isinstance(claims, dict) else {},
                disabled=bool(record.get("disabled")),
                tokens_valid_after_ms=int(record.get("validSince") or 0) * 1000,
            )
        except (ValueError, TypeError, AttributeError) as exc:
            raise _outage(f"accounts:lookup answered what is not a record: {exc}") from exc
