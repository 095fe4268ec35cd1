"""FirebaseAuthenticator reads role, disabling and revocation from the user's Auth record,
cached per uid for the TTL, over faked ``Identities`` (verifying and reading records over
HTTP is tested in test_identity_toolkit.py and, against the Auth emulator, in
tests/integration/test_auth_freshness.py)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from common.adapters.firebase_auth import (
    Account,
    CredentialKind,
    FirebaseAuthenticator,
    InvalidCredentialError,
)
from common.errors import UnauthenticatedError, UnavailableError
from common.ports import RequestCredentials
from tests.fakes import FakeMonotonic

TTL_S = 30.0
UID = "user-1"
SIGNED_IN_AT_S = 1_700_000_000
COOKIE = RequestCredentials(session_cookie="cookie-of-user-1")
BEARER = RequestCredentials(bearer_token="id-token-of-user-1")
ADMIN_CLAIMS = {"role": "admin", "admin": True}


class FakeIdentities:
    """Verifying credentials and reading records, over in-memory users; records every call."""

    def __init__(self) -> None:
        # What each credential verifies to, and as which kind; the token claims say "admin"
        # whatever the record says.
        claims = {"uid": UID, "auth_time": SIGNED_IN_AT_S, "iat": SIGNED_IN_AT_S} | ADMIN_CLAIMS
        self.credentials: dict[str, tuple[CredentialKind, dict[str, Any]]] = {
            "cookie-of-user-1": (CredentialKind.SESSION_COOKIE, claims),
            "id-token-of-user-1": (CredentialKind.ID_TOKEN, claims),
        }
        self.records: dict[str, Account] = {}
        self.outage = False
        self.keys_outage = False
        self.calls: list[str] = []

    def set_user(
        self,
        claims: dict[str, Any] | None = None,
        *,
        disabled: bool = False,
        valid_since_s: int = SIGNED_IN_AT_S - 60,
    ) -> None:
        self.records[UID] = Account(
            email="user-1@example.com",
            custom_claims=claims or {},
            disabled=disabled,
            tokens_valid_after_ms=valid_since_s * 1000,
        )

    def verify(self, credential: str, kind: CredentialKind) -> dict[str, Any]:
        self.calls.append(f"verify {kind}")
        if self.keys_outage:
            raise UnavailableError("the signing keys cannot be fetched", retry_after_s=5)
        verified_kind, claims = self.credentials.get(credential, (None, {}))
        if verified_kind is not kind:  # forged, or a cookie sent as a token or the reverse
            raise InvalidCredentialError("signature does not verify")
        return dict(claims)

    def account(self, uid: str) -> Account | None:
        self.calls.append("account")
        if self.outage:
            raise UnavailableError("Auth is unreachable", retry_after_s=5)
        return self.records.get(uid)


@pytest.fixture
def firebase() -> FakeIdentities:
    return FakeIdentities()


@pytest.fixture
def clock() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def authenticator(firebase: FakeIdentities, clock: FakeMonotonic) -> FirebaseAuthenticator:
    return FirebaseAuthenticator(firebase, user_cache_ttl_s=TTL_S, monotonic=clock)


def test_anonymous_request_makes_no_auth_call(
    firebase: FakeIdentities, authenticator: FirebaseAuthenticator
) -> None:
    assert authenticator.authenticate(RequestCredentials()) is None
    assert firebase.calls == []


@pytest.mark.parametrize("credentials", [COOKIE, BEARER], ids=["cookie", "bearer"])
def test_role_comes_from_the_user_record_not_the_token(
    firebase: FakeIdentities,
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
    firebase: FakeIdentities, authenticator: FirebaseAuthenticator
) -> None:
    firebase.set_user(None)

    user = authenticator.authenticate(COOKIE)

    assert user is not None
    assert (user.role, user.is_administrator) == ("owner", False)


def test_cache_hit_within_the_ttl_makes_no_auth_call(
    firebase: FakeIdentities, authenticator: FirebaseAuthenticator, clock: FakeMonotonic
) -> None:
    firebase.set_user(ADMIN_CLAIMS)
    authenticator.authenticate(COOKIE)
    firebase.calls.clear()

    clock.now += TTL_S - 0.1
    user = authenticator.authenticate(BEARER)

    assert user is not None
    assert user.is_administrator
    assert firebase.calls == ["verify ID token"]


@pytest.mark.parametrize(
    ("claims", "changed_to", "credential"),
    [(ADMIN_CLAIMS, None, COOKIE), (None, ADMIN_CLAIMS, BEARER)],
    ids=["admin-rights-withdrawn", "made-admin"],
)
def test_claims_changed_in_auth_apply_once_the_ttl_has_passed_without_signing_in_again(
    firebase: FakeIdentities,
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
    assert firebase.calls.count("account") == 2


def test_zero_ttl_reads_the_record_on_every_request(
    firebase: FakeIdentities, clock: FakeMonotonic
) -> None:
    authenticator = FirebaseAuthenticator(firebase, user_cache_ttl_s=0, monotonic=clock)
    firebase.set_user(ADMIN_CLAIMS)
    authenticator.authenticate(COOKIE)
    firebase.set_user(None)

    user = authenticator.authenticate(COOKIE)

    assert user is not None
    assert not user.is_administrator
    assert firebase.calls.count("account") == 2


def test_disabled_user_cookie_is_anonymous_and_bearer_is_rejected(
    firebase: FakeIdentities, authenticator: FirebaseAuthenticator
) -> None:
    firebase.set_user(ADMIN_CLAIMS, disabled=True)

    assert authenticator.authenticate(COOKIE) is None
    with pytest.raises(UnauthenticatedError):
        authenticator.authenticate(BEARER)


def test_disabling_applies_once_the_ttl_has_passed(
    firebase: FakeIdentities, authenticator: FirebaseAuthenticator, clock: FakeMonotonic
) -> None:
    firebase.set_user(ADMIN_CLAIMS)
    assert authenticator.authenticate(COOKIE) is not None
    firebase.set_user(ADMIN_CLAIMS, disabled=True)

    clock.now += TTL_S

    assert authenticator.authenticate(COOKIE) is None


def test_revoked_tokens_cookie_is_anonymous_and_bearer_is_rejected(
    firebase: FakeIdentities, authenticator: FirebaseAuthenticator
) -> None:
    firebase.set_user(ADMIN_CLAIMS, valid_since_s=SIGNED_IN_AT_S + 1)

    assert authenticator.authenticate(COOKIE) is None
    with pytest.raises(UnauthenticatedError):
        authenticator.authenticate(BEARER)


def test_sign_in_in_the_same_second_as_the_revocation_is_still_valid(
    firebase: FakeIdentities, authenticator: FirebaseAuthenticator
) -> None:
    firebase.set_user(ADMIN_CLAIMS, valid_since_s=SIGNED_IN_AT_S)

    assert authenticator.authenticate(COOKIE) is not None


def test_deleted_user_cookie_is_anonymous_and_bearer_is_rejected(
    firebase: FakeIdentities, authenticator: FirebaseAuthenticator
) -> None:
    assert authenticator.authenticate(COOKIE) is None
    with pytest.raises(UnauthenticatedError):
        authenticator.authenticate(BEARER)
    # The absence is cached like any record: a deleted user's cookie does not call Auth each time.
    assert firebase.calls.count("account") == 1


def test_invalid_credentials_never_reach_the_user_lookup(
    firebase: FakeIdentities, authenticator: FirebaseAuthenticator
) -> None:
    firebase.set_user(ADMIN_CLAIMS)

    assert authenticator.authenticate(RequestCredentials(session_cookie="forged")) is None
    with pytest.raises(UnauthenticatedError):
        authenticator.authenticate(RequestCredentials(bearer_token="forged"))
    assert "account" not in firebase.calls


@pytest.mark.parametrize("credentials", [COOKIE, BEARER], ids=["cookie", "bearer"])
def test_auth_outage_is_a_503_and_is_not_cached(
    firebase: FakeIdentities,
    authenticator: FirebaseAuthenticator,
    credentials: RequestCredentials,
) -> None:
    firebase.set_user(ADMIN_CLAIMS)
    firebase.outage = True

    with pytest.raises(UnavailableError) as raised:
        authenticator.authenticate(credentials)
    assert raised.value.http_status == 503
    assert raised.value.retry_after_s

    firebase.outage = False
    user = authenticator.authenticate(credentials)
    assert user is not None
    assert user.is_administrator


def test_signing_keys_outage_is_a_503(
    firebase: FakeIdentities, authenticator: FirebaseAuthenticator
) -> None:
    firebase.keys_outage = True

    with pytest.raises(UnavailableError):
        authenticator.authenticate(COOKIE)


def test_each_user_is_cached_separately(
    firebase: FakeIdentities, authenticator: FirebaseAuthenticator
) -> None:
    firebase.set_user(ADMIN_CLAIMS)
    firebase.records["user-2"] = Account(
        email=None, custom_claims={}, disabled=False, tokens_valid_after_ms=0
    )
    kind, claims = firebase.credentials["cookie-of-user-1"]
    firebase.credentials["cookie-of-user-2"] = (kind, dict(claims, uid="user-2"))

    first = authenticator.authenticate(COOKIE)
    second = authenticator.authenticate(RequestCredentials(session_cookie="cookie-of-user-2"))

    assert first is not None
    assert first.is_administrator
    assert second is not None
    assert (second.uid, second.is_administrator) == ("user-2", False)
    assert firebase.calls.count("account") == 2


@pytest.mark.parametrize(
    "claims",
    [{"role": "superuser"}, {"role": ["admin"]}, {"admin": "true"}, {"admin": 1}],
    ids=["unknown-role", "role-not-a-string", "admin-string", "admin-number"],
)
def test_unexpected_claims_give_no_extra_rights(
    firebase: FakeIdentities, authenticator: FirebaseAuthenticator, claims: dict[str, Any]
) -> None:
    firebase.set_user(claims)

    user = authenticator.authenticate(COOKIE)

    assert user is not None
    assert (user.role, user.is_administrator) == ("owner", False)


def test_a_slow_fetch_that_ends_last_does_not_replace_a_fresher_record(
    firebase: FakeIdentities, authenticator: FirebaseAuthenticator, clock: FakeMonotonic
) -> None:
    # A fetch begins, Auth is slow to answer it; the user is made an admin, and a later
    # fetch brings that back first. The slow answer (the old record) must not win the cache.
    firebase.set_user(None)
    began, release = threading.Event(), threading.Event()
    read = firebase.account

    def slow_first_answer(uid: str) -> Account | None:
        record = read(uid)
        if not began.is_set():
            began.set()
            release.wait(5)
        return record

    firebase.account = slow_first_answer  # type: ignore[method-assign]
    slow = threading.Thread(target=authenticator.authenticate, args=(COOKIE,))
    slow.start()
    assert began.wait(5)
    clock.now += 1
    firebase.set_user(ADMIN_CLAIMS)
    fresh = authenticator.authenticate(BEARER)
    release.set()
    slow.join(5)

    firebase.calls.clear()
    clock.now += 1
    again = authenticator.authenticate(COOKIE)
    assert fresh is not None and fresh.is_administrator
    assert again is not None and again.is_administrator  # from the cache, the fresher record
    assert "account" not in firebase.calls
