"""Firebase Auth: session cookies (as the frontend sends them) and bearer ID tokens.

A credential's signature and expiry are checked locally, but who its user is *now* comes from
the user's Auth record: custom claims (role, admin), whether the account is disabled, and when
its tokens were revoked. Records are cached per uid for a short TTL, so role changes and
revocations reach existing sessions within that TTL while most requests make no Auth call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, get_args

import google.auth.exceptions
from firebase_admin import App, auth, exceptions

from common.errors import UnauthenticatedError, UnavailableError
from common.models.domain import Role, User
from common.ports import RequestCredentials

log = logging.getLogger(__name__)
_ROLES: tuple[Role, ...] = get_args(Role)
_INVALID_ID_TOKEN = (ValueError, auth.InvalidIdTokenError)
_INVALID_SESSION_COOKIE = (ValueError, auth.InvalidSessionCookieError)
# Failing to reach Auth is an outage, not a bad credential.
_AUTH_OUTAGE = (exceptions.FirebaseError, google.auth.exceptions.GoogleAuthError)
_RETRY_AFTER_S = 5


@dataclass(frozen=True)
class _Account:
    """What a user's Auth record said when it was fetched."""

    email: str | None
    custom_claims: Mapping[str, Any]
    disabled: bool
    tokens_valid_after_ms: int


@dataclass(frozen=True)
class _CachedAccount:
    account: _Account | None  # None: no such user (deleted)
    expires_at: float


class FirebaseAuthenticator:
    """``Authenticator`` over firebase-admin, with fresh claims, disabling and revocation.

    Args:
        app: The firebase-admin app to verify credentials and read users with.
        user_cache_ttl_s: How long a fetched Auth record is trusted (0: never cached).
        monotonic: Seconds from a monotonic clock; injectable for tests.
    """

    def __init__(
        self,
        app: App,
        *,
        user_cache_ttl_s: float = 30,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._app = app
        self._ttl_s = user_cache_ttl_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        # In fetch order, which with one TTL for all is also expiry order.
        self._accounts: OrderedDict[str, _CachedAccount] = OrderedDict()

    def authenticate(self, credentials: RequestCredentials) -> User | None:
        if credentials.bearer_token:
            user = self._current_user(
                credentials.bearer_token, auth.verify_id_token, _INVALID_ID_TOKEN
            )
            if user is None:
                raise UnauthenticatedError("Invalid or expired ID token")
            return user
        if credentials.session_cookie:
            user = self._current_user(
                credentials.session_cookie, auth.verify_session_cookie, _INVALID_SESSION_COOKIE
            )
            if user is None:
                # Browsers keep sending stale cookies; public pages must still work for them.
                log.info("ignoring an invalid session cookie")
            return user
        return None

    def _current_user(
        self,
        credential: str,
        verify: Callable[..., dict[str, Any]],
        invalid: tuple[type[Exception], ...],
    ) -> User | None:
        """The credential's user as their account stands now, or ``None`` if it is not valid."""
        try:
            claims = verify(credential, app=self._app, check_revoked=False)
        except invalid:
            return None
        except auth.CertificateFetchError as exc:
            raise _outage(exc) from exc
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

    def _account(self, uid: str) -> _Account | None:
        """The user's Auth record from the cache, fetched again once it is older than the TTL."""
        fetched_at = self._monotonic()
        with self._lock:
            cached = self._accounts.get(uid)
            if cached is not None and fetched_at < cached.expires_at:
                return cached.account
        # Fetched outside the lock: one slow Auth call must not hold up every other user.
        account = self._fetch_account(uid)
        with self._lock:
            self._accounts.pop(uid, None)
            self._accounts[uid] = _CachedAccount(account, fetched_at + self._ttl_s)
            while self._accounts:
                oldest = next(iter(self._accounts.values()))
                if oldest.expires_at > fetched_at:
                    break
                self._accounts.popitem(last=False)
        return account

    def _fetch_account(self, uid: str) -> _Account | None:
        try:
            record = auth.get_user(uid, app=self._app)
        except auth.UserNotFoundError:
            return None
        except _AUTH_OUTAGE as exc:
            raise _outage(exc) from exc
        return _Account(
            email=record.email,
            custom_claims=record.custom_claims or {},
            disabled=bool(record.disabled),
            tokens_valid_after_ms=int(record.tokens_valid_after_timestamp or 0),
        )


def _outage(exc: Exception) -> UnavailableError:
    log.warning("Firebase Auth is unreachable: %s: %s", type(exc).__name__, exc)
    return UnavailableError(
        "Sign-in cannot be checked right now; try again", retry_after_s=_RETRY_AFTER_S
    )
