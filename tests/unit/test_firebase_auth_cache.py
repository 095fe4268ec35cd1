"""FirebaseAuthenticator reads role, disabling and revocation from the user's Auth record,
cached per uid for the TTL, with firebase-admin's verify and get_user calls faked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import firebase_admin
import pytest
from firebase_admin import App, auth, exceptions

from common.adapters.firebase_auth import FirebaseAuthenticator
from common.errors import UnauthenticatedError, UnavailableError
from common.ports import RequestCredentials

TTL_S = 30.0
UID = "user-1"
SIGNED_IN_AT_S = 1_700_000_000
COOKIE = RequestCredentials(session_cookie="cookie-of-user-1")
BEARER = RequestCredentials(bearer_token="id-token-of-user-1")
ADMIN_CLAIMS = {"role": "admin", "admin": True}


class FakeFirebaseAuth:
    """firebase-admin's verify and get_user, over in-memory users; records every call."""

    def __init__(self, app: App) -> None:
        self.app = app
        # What each credential verifies to; the token claims say "admin" whatever the record says.
        self.credentials: dict[str, dict[str, Any]] = {
            credential: {"uid": UID, "auth_time": SIGNED_IN_AT_S, "iat": SIGNED_IN_AT_S}
            | ADMIN_CLAIMS
            for credential in (COOKIE.session_cookie, BEARER.bearer_token)
            if credential
        }
        self.records: dict[str, dict[str, Any]] = {}
        self.outage: Exception | None = None
        self.certificate_outage = False
        self.calls: list[str] = []

    def set_user(
        self,
        claims: dict[str, Any] | None = None,
        *,
        disabled: bool = False,
        valid_since_s: int = SIGNED_IN_AT_S - 60,
    ) -> None:
        self.records[UID] = {
            "localId": UID,
            "email": "user-1@example.com",
            "customAttributes": json.dumps(claims or {}),
            "disabled": disabled,
            "validSince": str(valid_since_s),
        }

    def verify_id_token(
        self, token: str, app: App | None = None, check_revoked: bool = True
    ) -> dict[str, Any]:
        return self._verify("verify_id_token", token, app, check_revoked, auth.InvalidIdTokenError)

    def verify_session_cookie(
        self, cookie: str, check_revoked: bool = True, app: App | None = None
    ) -> dict[str, Any]:
        return self._verify(
            "verify_session_cookie", cookie, app, check_revoked, auth.InvalidSessionCookieError
        )

    def get_user(self, uid: str, app: App | None = None) -> auth.UserRecord:
        assert app is self.app
        self.calls.append("get_user")
        if self.outage is not None:
            raise self.outage
        if uid not in self.records:
            raise auth.UserNotFoundError(f"No user record found for the provided user ID: {uid}")
        return auth.UserRecord(self.records[uid])

    def _verify(
        self,
        name: str,
        credential: str,
        app: App | None,
        check_revoked: bool,
        invalid: type[Exception],
    ) -> dict[str, Any]:
        assert app is self.app
        # Revocation is our own check against the cached record, never a per-request Auth call.
        assert check_revoked is False
        self.calls.append(name)
        if self.certificate_outage:
            raise auth.CertificateFetchError("could not fetch the public keys", cause=None)
        if credential not in self.credentials:
            raise invalid("signature does not verify")
        return dict(self.credentials[credential])


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def app() -> Iterator[App]:
    app = firebase_admin.initialize_app(options={"projectId": "unit-test"}, name="auth-cache-test")
    yield app
    firebase_admin.delete_app(app)


@pytest.fixture
def firebase(app: App, monkeypatch: pytest.MonkeyPatch) -> FakeFirebaseAuth:
    fake = FakeFirebaseAuth(app)
    monkeypatch.setattr(auth, "verify_id_token", fake.verify_id_token)
    monkeypatch.setattr(auth, "verify_session_cookie", fake.verify_session_cookie)
    monkeypatch.setattr(auth, "get_user", fake.get_user)
    return fake


@pytest.fixture
def clock() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def authenticator(app: App, clock: FakeMonotonic) -> FirebaseAuthenticator:
    return FirebaseAuthenticator(app, user_cache_ttl_s=TTL_S, monotonic=clock)


def test_anonymous_request_makes_no_auth_call(
    firebase: FakeFirebaseAuth, authenticator: FirebaseAuthenticator
) -> None:
    assert authenticator.authenticate(RequestCredentials()) is None
    assert firebase.calls == []


@pytest.mark.parametrize("credentials", [COOKIE, BEARER], ids=["cookie", "bearer"])
def test_role_comes_from_the_user_record_not_the_token(
    firebase: FakeFirebaseAuth,
    authenticator: FirebaseAuthenticator,
    credentials: RequestCredentials,
) -> None:
    firebase.set_user({"role": "funeral_director"})

    user = authenticator.authenticate(credentials)

    assert user is not None
    assert (user.uid, user.email, user.role, user.is_admin) == (
        UID,
        "user-1@example.com",
        "funeral_director",
        False,
    )


def test_user_without_custom_claims_is_a_plain_owner(
    firebase: FakeFirebaseAuth, authenticator: FirebaseAuthenticator
) -> None:
    firebase.set_user(None)

    user = authenticator.authenticate(COOKIE)

    assert user is not None
    assert (user.role, user.is_administrator) == ("owner", False)


def test_cache_hit_within_the_ttl_makes_no_auth_call(
    firebase: FakeFirebaseAuth, authenticator: FirebaseAuthenticator, clock: FakeMonotonic
) -> None:
    firebase.set_user(ADMIN_CLAIMS)
    authenticator.authenticate(COOKIE)
    firebase.calls.clear()

    clock.now += TTL_S - 0.1
    user = authenticator.authenticate(BEARER)

    assert user is not None
    assert user.is_administrator
    assert firebase.calls == ["verify_id_token"]


@pytest.mark.parametrize(
    ("claims", "changed_to", "credential"),
    [(ADMIN_CLAIMS, None, COOKIE), (None, ADMIN_CLAIMS, BEARER)],
    ids=["admin-rights-withdrawn", "made-admin"],
)
def test_claims_changed_in_auth_apply_once_the_ttl_has_passed_without_signing_in_again(
    firebase: FakeFirebaseAuth,
    authenticator: FirebaseAuthenticator,
    clock: FakeMonotonic,
    claims: dict[str, Any] | None,
    changed_to: dict[str, Any] | None,
    credential: RequestCredentials,
) -> None:
    firebase.set_user(claims)
    first = authenticator.authenticate(credential)
    firebase.set_user(changed_to)

    clock.now += TTL_S - 0.1
    still_cached = authenticator.authenticate(credential)
    clock.now += 0.1
    refreshed = authenticator.authenticate(credential)

    was_admin = claims is ADMIN_CLAIMS
    assert first is not None
    assert first.is_administrator == was_admin
    assert still_cached is not None
    assert still_cached.is_administrator == was_admin
    assert refreshed is not None
    assert refreshed.is_administrator == (not was_admin)
    assert refreshed.role == ("owner" if was_admin else "admin")
    assert firebase.calls.count("get_user") == 2


def test_zero_ttl_reads_the_record_on_every_request(
    firebase: FakeFirebaseAuth, app: App, clock: FakeMonotonic
) -> None:
    authenticator = FirebaseAuthenticator(app, user_cache_ttl_s=0, monotonic=clock)
    firebase.set_user(ADMIN_CLAIMS)
    authenticator.authenticate(COOKIE)
    firebase.set_user(None)

    user = authenticator.authenticate(COOKIE)

    assert user is not None
    assert not user.is_administrator
    assert firebase.calls.count("get_user") == 2


def test_disabled_user_cookie_is_anonymous_and_bearer_is_rejected(
    firebase: FakeFirebaseAuth, authenticator: FirebaseAuthenticator
) -> None:
    firebase.set_user(ADMIN_CLAIMS, disabled=True)

    assert authenticator.authenticate(COOKIE) is None
    with pytest.raises(UnauthenticatedError):
        authenticator.authenticate(BEARER)


def test_disabling_applies_once_the_ttl_has_passed(
    firebase: FakeFirebaseAuth, authenticator: FirebaseAuthenticator, clock: FakeMonotonic
) -> None:
    firebase.set_user(ADMIN_CLAIMS)
    assert authenticator.authenticate(COOKIE) is not None
    firebase.set_user(ADMIN_CLAIMS, disabled=True)

    clock.now += TTL_S

    assert authenticator.authenticate(COOKIE) is None


def test_revoked_tokens_cookie_is_anonymous_and_bearer_is_rejected(
    firebase: FakeFirebaseAuth, authenticator: FirebaseAuthenticator
) -> None:
    firebase.set_user(ADMIN_CLAIMS, valid_since_s=SIGNED_IN_AT_S + 1)

    assert authenticator.authenticate(COOKIE) is None
    with pytest.raises(UnauthenticatedError):
        authenticator.authenticate(BEARER)


def test_sign_in_in_the_same_second_as_the_revocation_is_still_valid(
    firebase: FakeFirebaseAuth, authenticator: FirebaseAuthenticator
) -> None:
    firebase.set_user(ADMIN_CLAIMS, valid_since_s=SIGNED_IN_AT_S)

    assert authenticator.authenticate(COOKIE) is not None


def test_deleted_user_cookie_is_anonymous_and_bearer_is_rejected(
    firebase: FakeFirebaseAuth, authenticator: FirebaseAuthenticator
) -> None:
    assert authenticator.authenticate(COOKIE) is None
    with pytest.raises(UnauthenticatedError):
        authenticator.authenticate(BEARER)
    # The absence is cached like any record: a deleted user's cookie does not call Auth each time.
    assert firebase.calls.count("get_user") == 1


def test_invalid_credentials_never_reach_the_user_lookup(
    firebase: FakeFirebaseAuth, authenticator: FirebaseAuthenticator
) -> None:
    firebase.set_user(ADMIN_CLAIMS)

    assert authenticator.authenticate(RequestCredentials(session_cookie="forged")) is None
    with pytest.raises(UnauthenticatedError):
        authenticator.authenticate(RequestCredentials(bearer_token="forged"))
    assert "get_user" not in firebase.calls


@pytest.mark.parametrize(
    "failure",
    [
        exceptions.UnavailableError("connection refused"),
        exceptions.DeadlineExceededError("timed out"),
        exceptions.UnknownError("unexpected response"),
    ],
    ids=["unavailable", "deadline", "unknown"],
)
@pytest.mark.parametrize("credentials", [COOKIE, BEARER], ids=["cookie", "bearer"])
def test_auth_outage_is_a_503_and_is_not_cached(
    firebase: FakeFirebaseAuth,
    authenticator: FirebaseAuthenticator,
    credentials: RequestCredentials,
    failure: Exception,
) -> None:
    firebase.set_user(ADMIN_CLAIMS)
    firebase.outage = failure

    with pytest.raises(UnavailableError) as raised:
        authenticator.authenticate(credentials)
    assert raised.value.http_status == 503
    assert raised.value.retry_after_s

    firebase.outage = None
    user = authenticator.authenticate(credentials)
    assert user is not None
    assert user.is_administrator


def test_signing_keys_outage_is_a_503(
    firebase: FakeFirebaseAuth, authenticator: FirebaseAuthenticator
) -> None:
    firebase.certificate_outage = True

    with pytest.raises(UnavailableError):
        authenticator.authenticate(COOKIE)


def test_each_user_is_cached_separately(
    firebase: FakeFirebaseAuth, authenticator: FirebaseAuthenticator
) -> None:
    firebase.set_user(ADMIN_CLAIMS)
    firebase.records["user-2"] = dict(
        firebase.records[UID], localId="user-2", customAttributes="{}"
    )
    firebase.credentials["cookie-of-user-2"] = dict(
        firebase.credentials[COOKIE.session_cookie or ""], uid="user-2"
    )

    first = authenticator.authenticate(COOKIE)
    second = authenticator.authenticate(RequestCredentials(session_cookie="cookie-of-user-2"))

    assert first is not None
    assert first.is_administrator
    assert second is not None
    assert (second.uid, second.is_administrator) == ("user-2", False)
    assert firebase.calls.count("get_user") == 2


@pytest.mark.parametrize(
    "claims",
    [{"role": "superuser"}, {"role": ["admin"]}, {"admin": "true"}, {"admin": 1}],
    ids=["unknown-role", "role-not-a-string", "admin-string", "admin-number"],
)
def test_unexpected_claims_give_no_extra_rights(
    firebase: FakeFirebaseAuth, authenticator: FirebaseAuthenticator, claims: dict[str, Any]
) -> None:
    firebase.set_user(claims)

    user = authenticator.authenticate(COOKIE)

    assert user is not None
    assert (user.role, user.is_administrator) == ("owner", False)
