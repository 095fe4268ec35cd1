"""Firebase Auth: session cookies (as the frontend sends them) and bearer ID tokens.

A credential's signature and expiry are checked locally, but who its user is *now* comes from
the user's Auth record: custom claims (role, admin), whether the account is disabled, and when
its tokens were revoked. Records are cached per uid for a short TTL, so role changes and
revocations reach existing sessions within that TTL while most requests make no Auth call.
Verifying and reading records are the ``Identities`` (``identity_toolkit.py`` over Firebase
Auth's HTTP APIs).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, get_args

from common.errors import UnauthenticatedError
from common.models.domain import Role, User
from common.ports import RequestCredentials

log = logging.getLogger(__name__)
_ROLES: tuple[Role, ...] = get_args(Role)


class CredentialKind(StrEnum):
    ID_TOKEN = "ID token"  # noqa: S105 - a name, not a secret
    SESSION_COOKIE = "session cookie"


class InvalidCredentialError(Exception):
    """The credential is malformed, forged, expired, or issued for another project."""


@dataclass(frozen=True)
class Account:
    """What a user's Auth record said when it was fetched."""

    email: str | None
    custom_claims: Mapping[str, Any]
    disabled: bool
    tokens_valid_after_ms: int


class Identities(Protocol):
    """Firebase Auth as the authenticator needs it; each method raises ``UnavailableError``
    when Auth cannot be reached (an outage, never a bad credential)."""

    def verify(self, credential: str, kind: CredentialKind) -> Mapping[str, Any]:
        """The credential's claims (``uid`` among them), checked locally.

        Raises:
            InvalidCredentialError: the credential is not valid.
        """
        ...

    def account(self, uid: str) -> Account | None:
        """The user's Auth record, or ``None`` if there is no such user."""
        ...


@dataclass(frozen=True)
class _CachedAccount:
    account: Account | None  # None: no such user (deleted)
    expires_at: float


class FirebaseAuthenticator:
    """``Authenticator`` over Firebase Auth, with fresh claims, disabling and revocation.

    Args:
        identities: Verifies credentials and reads users' records.
        user_cache_ttl_s: How long a fetched Auth record is trusted (0: never cached).
        monotonic: Seconds from a monotonic clock; injectable for tests.
    """

    def __init__(
        self,
        identities: Identities,
        *,
        user_cache_ttl_s: float = 30,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._identities = identities
        self._ttl_s = user_cache_ttl_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        # In fetch order, which with one TTL for all is also expiry order.
        self._accounts: OrderedDict[str, _CachedAccount] = OrderedDict()

    def authenticate(self, credentials: RequestCredentials) -> User | None:
        if credentials.bearer_token:
            user = self._current_user(credentials.bearer_token, CredentialKind.ID_TOKEN)
            if user is None:
                raise UnauthenticatedError("Invalid or expired ID token")
            return user
        if credentials.session_cookie:
            user = self._current_user(credentials.session_cookie, CredentialKind.SESSION_COOKIE)
            if user is None:
                # Browsers keep sending stale cookies; public pages must still work for them.
                log.info("ignoring an invalid session cookie")
            return user
        return None

    def _current_user(self, credential: str, kind: CredentialKind) -> User | None:
        """The credential's user as their account stands now, or ``None`` if it is not valid."""
        try:
            claims = self._identities.verify(credential, kind)
        except InvalidCredentialError as exc:
            log.debug("refused a credential: %s", exc)
            return None
        uid = str(claims["uid"])
        account = self._account(uid)
        if account is None or account.disabled:
            return None
        signed_in_at_s = claims.get("auth_time", claims.get("iat", 0))
        if int(signed_in_at_s) * 1000 < account.tokens_valid_after_ms:
            return None
        claimed_role = account.custom_claims.get("role")
        return User(
            uid=uid,
            email=account.email,
            role=next((role for role in _ROLES if role == claimed_role), "owner"),
            is_admin=account.custom_claims.get("admin") is True,
        )

    def _account(self, uid: str) -> Account | None:
        """The user's Auth record from the cache, fetched again once it is older than the TTL."""
        fetched_at = self._monotonic()
        with self._lock:
            cached = self._accounts.get(uid)
            if cached is not None and fetched_at < cached.expires_at:
                return cached.account
        # Fetched outside the lock: one slow Auth call must not hold up every other user.
        account = self._identities.account(uid)
        with self._lock:
            newer = self._accounts.get(uid)
            if newer is not None and newer.expires_at > fetched_at + self._ttl_s:
                # A fetch that began after this one finished first: its record is fresher.
                return account
            self._accounts.pop(uid, None)
            self._accounts[uid] = _CachedAccount(account, fetched_at + self._ttl_s)
            while self._accounts:
                oldest = next(iter(self._accounts.values()))
                if oldest.expires_at > fetched_at:
                    break
                self._accounts.popitem(last=False)
        return account
