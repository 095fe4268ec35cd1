"""Role changes and revocations in Firebase Auth reach sessions that already exist, within the
user cache TTL (2 s locally), with the same session cookie and the same ID token."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import httpx
import pytest
from firebase_admin import App, auth

from emulators.stack import LocalStack
from tests.integration.conftest import Caller, sign_up

pytestmark = pytest.mark.emulator

ADMIN_CLAIMS = {"role": "admin", "admin": True}
# Local TTL is 2 s; the rest is slack for a busy machine.
PROPAGATION_TIMEOUT_S = 10.0


@pytest.fixture
def sign_in(stack: LocalStack, firebase_app: App) -> Callable[..., Caller]:
    """Signs in a user of this module's own (with the claims given), before any change to their
    account."""
    return functools.partial(sign_up, stack, firebase_app, "freshness")


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
    api: httpx.Client, firebase_app: App, sign_in: Callable[..., Caller], private_stream: str
) -> None:
    admin = sign_in(ADMIN_CLAIMS)
    path = f"/api/streams/{private_stream}"
    for headers in (admin.cookie, admin.bearer):
        response = api.get(path, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["streamKey"]

    auth.set_custom_user_claims(admin.uid, None, app=firebase_app)

    for headers in (admin.cookie, admin.bearer):
        denied = eventually_status(api, path, headers, 403)
        assert "streamKey" not in denied.json()


def test_user_made_admin_gets_admin_access_without_signing_in_again(
    api: httpx.Client, firebase_app: App, sign_in: Callable[..., Caller], private_stream: str
) -> None:
    user = sign_in()
    path = f"/api/streams/{private_stream}"
    for headers in (user.cookie, user.bearer):
        assert api.get(path, headers=headers).status_code == 403

    auth.set_custom_user_claims(user.uid, ADMIN_CLAIMS, app=firebase_app)

    for headers in (user.cookie, user.bearer):
        granted = eventually_status(api, path, headers, 200)
        assert granted.json()["streamKey"]


def test_revoked_session_cookie_becomes_anonymous(
    api: httpx.Client, firebase_app: App, sign_in: Callable[..., Caller], private_stream: str
) -> None:
    admin = sign_in(ADMIN_CLAIMS)
    path = f"/api/streams/{private_stream}"
    assert api.get(path, headers=admin.cookie).status_code == 200
    # Revocation times have 1 s granularity: revoke in a later second than the sign-in.
    time.sleep(1.1)

    auth.revoke_refresh_tokens(admin.uid, app=firebase_app)

    anonymous = eventually_status(api, path, admin.cookie, 401)
    assert "streamKey" not in anonymous.json()
    # Anonymous, not rejected: public pages still work for a browser holding the old cookie.
    assert api.get("/api/streams/public", headers=admin.cookie).status_code == 200
    rejected = eventually_status(api, path, admin.bearer, 401)
    assert rejected.json()["code"] == "unauthenticated"


def test_a_deleted_users_credentials_are_refused_cleanly(
    api: httpx.Client, firebase_app: App, sign_in: Callable[..., Caller], private_stream: str
) -> None:
    """The probe that found a 500: an ID token or cookie of a user deleted from Auth."""
    user = sign_in(ADMIN_CLAIMS)
    assert api.get(f"/api/streams/{private_stream}", headers=user.bearer).status_code == 200

    auth.delete_user(user.uid, app=firebase_app)

    def refused() -> bool:
        bearer = api.get(f"/api/streams/{private_stream}", headers=user.bearer)
        cookie = api.get(f"/api/streams/{private_stream}", headers=user.cookie)
        return bearer.status_code == 401 and cookie.status_code == 401

    deadline = time.monotonic() + PROPAGATION_TIMEOUT_S
    while not refused():
        assert time.monotonic() < deadline, "the deleted user's credentials still work"
        time.sleep(0.25)
    # The cookie makes the caller anonymous: public pages still load, writes need a sign-in.
    assert api.get("/api/streams/public", headers=user.cookie).status_code == 200
    created = api.post("/api/streams", json={"title": "x"}, headers=user.cookie)
    assert created.status_code == 401 and created.json()["error"]
