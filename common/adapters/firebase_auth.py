"""Firebase Auth: session cookies (as the frontend sends them) and bearer ID tokens."""

from __future__ import annotations

import logging
from typing import Any

from firebase_admin import App, auth

from common.errors import UnauthenticatedError
from common.models.domain import Role, User
from common.ports import RequestCredentials

log = logging.getLogger(__name__)
_ROLES: frozenset[str] = frozenset({"admin", "owner", "funeral_director"})


class FirebaseAuthenticator:
    """``Authenticator`` over firebase-admin, with revocation checks."""

    def __init__(self, app: App) -> None:
        self._app = app

    def authenticate(self, credentials: RequestCredentials) -> User | None:
        if credentials.bearer_token:
            try:
                claims = auth.verify_id_token(
                    credentials.bearer_token, app=self._app, check_revoked=True
                )
            except (ValueError, auth.InvalidIdTokenError, auth.UserDisabledError) as exc:
                raise UnauthenticatedError("Invalid or expired ID token") from exc
            return _user(claims)
        if credentials.session_cookie:
            try:
                claims = auth.verify_session_cookie(
                    credentials.session_cookie, app=self._app, check_revoked=True
                )
            except (ValueError, auth.InvalidSessionCookieError, auth.UserDisabledError):
                # Browsers keep sending stale cookies; public pages must still work for them.
                log.info("ignoring an invalid session cookie")
                return None
            return _user(claims)
        return None


def _user(claims: dict[str, Any]) -> User:
    role = claims.get("role")
    checked_role: Role = role if role in _ROLES else "owner"
    return User(
        uid=str(claims["uid"]),
        email=claims.get("email"),
        role=checked_role,
        is_admin=claims.get("admin") is True,
    )
