"""Role changes and revocations in Firebase Auth reach sessions that already exist, within the
user cache TTL (2 s locally), with the same session cookie and the same ID token."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import firebase_admin
import httpx
import pytest
from firebase_admin import App, auth

from emulators.stack import PROJECT_ID, LocalStack
from tests.integration.conftest import Caller

pytestmark = pytest.mark.emulator

ADMIN_CLAIMS = {"role": "admin", "admin": True}
# Local TTL is 2 s; the rest is slack for a busy machine.
PROPAGATION_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class SignedInUser:
    """One of this module's own users, signed in before any change to their account."""

    uid: str
    id_token: str
    session_cookie: str

    @property
    def with_cookie(self) -> dict[str, str]:
        return {"Cookie": f"__session={self.session_cookie}"}

    @property
    def with_bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.id_token}"}


@pytest.fixture(scope="module")
def app(stack: LocalStack) -> Iterator[App]:
    app = firebase_admin.initialize_app(
        options={"projectId": PROJECT_ID}, name="auth-freshness-tests"
    )
    yield app
    firebase_admin.delete_app(app)


@pytest.fixture
def sign_in(stack: LocalStack, app: App) -> Callable[..., SignedInUser]:
    def sign_in(claims: dict[str, Any] | None = None) -> SignedInUser:
        email = f"freshness-{uuid.uuid4().hex[:8]}@example.com"
        user = auth.create_user(email=email, password="secret-pass-1", app=app)
        if claims:
            auth.set_custom_user_claims(user.uid, claims, app=app)
        response = httpx.post(
            f"http://127.0.0.1:{stack.ports.auth}/identitytoolkit.googleapis.com/v1/"
            "accounts:signInWithPassword?key=emulator",
            json={"email": email, "password": "secret-pass-1", "returnSecureToken": True},
        )
        response.raise_for_status()
        id_token: str = response.json()["idToken"]
        cookie = auth.create_session_cookie(id_token, expires_in=3600, app=app)
        return SignedInUser(
            user.uid, id_token, cookie.decode() if isinstance(cookie, bytes) else cookie
        )

    return sign_in


@pytest.fixture
def private_stream(api: httpx.Client, callers: dict[str, Caller]) -> str:
    """A stream of the shared owner that only its managers and administrators may read."""
    response = api.post(
        "/api/streams",
        json={"title": "Private service", "isPublic": False, "isVisible": False},
        headers=callers["owner"].bearer,
    )
    assert response.status_code == 200, response.text
    stream_id: str = response.json()["id"]
    return stream_id


def eventually_status(
    api: httpx.Client, path: str, headers: dict[str, str], status: int
) -> httpx.Response:
    """GET ``path`` until it answers ``status``; fails after ``PROPAGATION_TIMEOUT_S``."""
    deadline = time.monotonic() + PROPAGATION_TIMEOUT_S
    while True:
        response = api.get(path, headers=headers)
        if response.status_code == status or time.monotonic() > deadline:
            assert response.status_code == status, (
                f"still {response.status_code} after {PROPAGATION_TIMEOUT_S} s: {response.text}"
            )
            return response
        time.sleep(0.25)


def test_removed_admin_loses_stream_keys_on_the_same_cookie_and_token(
    api: httpx.Client,
    app: App,
    sign_in: Callable[..., SignedInUser],
    private_stream: str,
) -> None:
    admin = sign_in(ADMIN_CLAIMS)
    path = f"/api/streams/{private_stream}"
    for headers in (admin.with_cookie, admin.with_bearer):
        response = api.get(path, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["streamKey"]

    auth.set_custom_user_claims(admin.uid, None, app=app)

    for headers in (admin.with_cookie, admin.with_bearer):
        denied = eventually_status(api, path, headers, 403)
        assert "streamKey" not in denied.json()


def test_user_made_admin_gets_admin_access_without_signing_in_again(
    api: httpx.Client,
    app: App,
    sign_in: Callable[..., SignedInUser],
    private_stream: str,
) -> None:
    user = sign_in()
    path = f"/api/streams/{private_stream}"
    for headers in (user.with_cookie, user.with_bearer):
        assert api.get(path, headers=headers).status_code == 403

    auth.set_custom_user_claims(user.uid, ADMIN_CLAIMS, app=app)

    for headers in (user.with_cookie, user.with_bearer):
        granted = eventually_status(api, path, headers, 200)
        assert granted.json()["streamKey"]


def test_revoked_session_cookie_becomes_anonymous(
    api: httpx.Client,
    app: App,
    sign_in: Callable[..., SignedInUser],
    private_stream: str,
) -> None:
    admin = sign_in(ADMIN_CLAIMS)
    path = f"/api/streams/{private_stream}"
    assert api.get(path, headers=admin.with_cookie).status_code == 200
    # Revocation times have 1 s granularity: revoke in a later second than the sign-in.
    time.sleep(1.1)

    auth.revoke_refresh_tokens(admin.uid, app=app)

    anonymous = eventually_status(api, path, admin.with_cookie, 401)
    assert "streamKey" not in anonymous.json()
    # Anonymous, not rejected: public pages still work for a browser holding the old cookie.
    assert api.get("/api/streams/public", headers=admin.with_cookie).status_code == 200
    rejected = eventually_status(api, path, admin.with_bearer, 401)
    assert rejected.json()["code"] == "unauthenticated"


def test_a_deleted_users_credentials_are_refused_cleanly(
    api: httpx.Client, app: App, sign_in: Callable[..., SignedInUser], private_stream: str
) -> None:
    """The probe that found a 500: an ID token or cookie of a user deleted from Auth."""
    user = sign_in(ADMIN_CLAIMS)
    assert api.get(f"/api/streams/{private_stream}", headers=user.with_bearer).status_code == 200

    auth.delete_user(user.uid, app=app)

    def refused() -> bool:
        bearer = api.get(f"/api/streams/{private_stream}", headers=user.with_bearer)
        cookie = api.get(f"/api/streams/{private_stream}", headers=user.with_cookie)
        return bearer.status_code == 401 and cookie.status_code == 401

    deadline = time.monotonic() + PROPAGATION_TIMEOUT_S
    while not refused():
        assert time.monotonic() < deadline, "the deleted user's credentials still work"
        time.sleep(0.25)
    # The cookie makes the caller anonymous: public pages still load, writes need a sign-in.
    assert api.get("/api/streams/public", headers=user.with_cookie).status_code == 200
    created = api.post("/api/streams", json={"title": "x"}, headers=user.with_cookie)
    assert created.status_code == 401 and created.json()["error"]
