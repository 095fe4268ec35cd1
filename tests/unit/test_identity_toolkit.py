"""IdentityToolkit, Firebase Auth over HTTP: credentials signed with RS256 keys published by a
local key server (standing in for Google's, with its Cache-Control), and users' records from a
local Identity Toolkit API. The same adapter runs against the Auth emulator in every
integration test that signs in (tests/integration/test_auth_freshness.py among them)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from common.adapters.firebase_auth import Account, CredentialKind, InvalidCredentialError
from common.adapters.google_tokens import EmulatorToken
from common.adapters.identity_toolkit import IdentityToolkit, SigningKeys
from common.errors import UnavailableError
from tests.fakes import FakeMonotonic
from tests.local_http import serving

PROJECT = "memorial-project"
ID_ISSUER = f"https://securetoken.google.com/{PROJECT}"
COOKIE_ISSUER = f"https://session.firebase.google.com/{PROJECT}"


class SigningKey:
    """An RSA key and its self-signed certificate, as Google publishes its keys."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken")])
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.private.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .sign(self.private, hashes.SHA256())
        )
        self.pem = certificate.public_bytes(serialization.Encoding.PEM).decode()

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.private, algorithm="RS256", headers={"kid": self.key_id})


def claims(issuer: str = ID_ISSUER, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": issuer, "aud": PROJECT, "sub": "user-1", "iat": now, "auth_time": now - 5}
    return {**base, "exp": now + 3600, **changes}


@pytest.fixture
def published() -> SigningKey:
    return SigningKey("key-1")


@pytest.fixture
def key_server(
    published: SigningKey,
) -> Iterator[tuple[str, list[tuple[str, str, dict[str, str]]], dict[str, Any]]]:
    """Google's key endpoint: the published certificates, cacheable for an hour."""
    state: dict[str, Any] = {"status": 200, "keys": {published.key_id: published.pem}}

    def keys(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        return state["status"], state["keys"], {"Cache-Control": "public, max-age=3600"}

    with serving(keys) as (origin, seen):
        yield origin, seen, state


def toolkit(
    keys_origin: str, monotonic: Callable[[], float] = time.monotonic, api: str = "http://x"
) -> IdentityToolkit:
    """Production's verification: ID tokens and session cookies each against their keys."""
    return IdentityToolkit(
        PROJECT,
        api_origin=api,
        tokens=EmulatorToken(),
        keys={
            CredentialKind.ID_TOKEN: SigningKeys(f"{keys_origin}/id", monotonic=monotonic),
            CredentialKind.SESSION_COOKIE: SigningKeys(
                f"{keys_origin}/cookie", monotonic=monotonic
            ),
        },
    )


def test_credentials_signed_with_a_published_key_verify_as_their_kind(
    published: SigningKey, key_server: Any
) -> None:
    origin, seen, _ = key_server
    identities = toolkit(origin)

    token = identities.verify(published.sign(claims()), CredentialKind.ID_TOKEN)
    cookie = identities.verify(published.sign(claims(COOKIE_ISSUER)), CredentialKind.SESSION_COOKIE)

    assert (token["uid"], cookie["uid"]) == ("user-1", "user-1")
    assert [path for _, path, _ in seen] == ["/id", "/cookie"]  # each kind has its keys


def _encoded(part: dict[str, Any]) -> str:
    return jwt.utils.base64url_encode(json.dumps(part).encode()).decode()


def _hs256_with_the_public_key(published: SigningKey) -> str:
    """The classic algorithm confusion: the public key used as an HMAC secret."""
    public_pem = published.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signed = f"{_encoded({'alg': 'HS256', 'kid': published.key_id})}.{_encoded(claims())}"
    mac = hmac.new(public_pem, signed.encode(), hashlib.sha256).digest()
    return f"{signed}.{jwt.utils.base64url_encode(mac).decode()}"


def _refused_credentials(published: SigningKey) -> dict[str, str]:
    stranger = SigningKey(published.key_id)  # claims a published key id, signs with its own
    head, _, signature = published.sign(claims()).split(".")
    return {
        "expired": published.sign(claims(exp=int(time.time()) - 60, iat=int(time.time()) - 4000)),
        "another project": published.sign(claims(aud="another-project")),
        "a session cookie as an ID token": published.sign(claims(COOKIE_ISSUER)),
        "another issuer": published.sign(claims("https://securetoken.google.com/other")),
        "signed by another key": stranger.sign(claims()),
        "a changed payload": f"{head}.{_encoded(claims(sub='admin-1'))}.{signature}",
        "unsigned": jwt.encode(claims(), "", algorithm="none", headers={"kid": "key-1"}),
        "HS256 with the public key": _hs256_with_the_public_key(published),
        "no key id": jwt.encode(claims(), published.private, algorithm="RS256"),
        "an unpublished key id": SigningKey("key-2").sign(claims()),
        "no subject": published.sign({k: v for k, v in claims().items() if k != "sub"}),
        "no time of sign-in": published.sign(
            {k: v for k, v in claims().items() if k != "auth_time"}
        ),
        "an audience list": published.sign(claims(aud=[PROJECT, "another-project"])),
        "an empty subject": published.sign(claims(sub="")),
        "a subject over 128 characters": published.sign(claims(sub="u" * 129)),
        "signed in in the future": published.sign(claims(auth_time=int(time.time()) + 600)),
        "issued in the future": published.sign(claims(iat=int(time.time()) + 600)),
        "not a JWT": "not-a-jwt",
    }


def test_credentials_that_are_not_valid_are_refused(published: SigningKey, key_server: Any) -> None:
    origin, _, _ = key_server
    identities = toolkit(origin)

    accepted = []
    for case, credential in _refused_credentials(published).items():
        try:
            identities.verify(credential, CredentialKind.ID_TOKEN)
            accepted.append(case)
        except InvalidCredentialError:
            pass

    assert accepted == []


@dataclass
class KeysInUse:
    """A verifier on a fake clock that has verified ``token`` once (one fetch of the keys)."""

    identities: IdentityToolkit
    clock: FakeMonotonic
    token: str
    seen: list[tuple[str, str, dict[str, str]]]
    state: dict[str, Any]


@pytest.fixture
def keys_in_use(published: SigningKey, key_server: Any) -> KeysInUse:
    origin, seen, state = key_server
    clock = FakeMonotonic()
    used = KeysInUse(toolkit(origin, clock), clock, published.sign(claims()), seen, state)
    used.identities.verify(used.token, CredentialKind.ID_TOKEN)
    return used


def test_keys_are_kept_for_their_max_age_and_an_unknown_key_id_refetches_at_most_a_minute(
    published: SigningKey, keys_in_use: KeysInUse
) -> None:
    identities, clock, token = keys_in_use.identities, keys_in_use.clock, keys_in_use.token
    seen, state = keys_in_use.seen, keys_in_use.state

    clock.now += 3599
    identities.verify(token, CredentialKind.ID_TOKEN)
    assert len(seen) == 1  # within the max-age
    clock.now += 1
    identities.verify(token, CredentialKind.ID_TOKEN)
    assert len(seen) == 2  # expired: fetched again

    rotated = SigningKey("key-2")  # Google starts signing with a new key
    for _ in range(3):
        with pytest.raises(InvalidCredentialError):
            identities.verify(rotated.sign(claims()), CredentialKind.ID_TOKEN)
    assert len(seen) == 2  # unknown ids within a minute of the fetch fetch nothing
    state["keys"] = {published.key_id: published.pem, rotated.key_id: rotated.pem}
    clock.now += 60
    assert identities.verify(rotated.sign(claims()), CredentialKind.ID_TOKEN)["uid"] == "user-1"
    assert len(seen) == 3


def test_while_the_key_endpoint_fails_the_last_keys_serve_and_it_is_tried_once_a_minute(
    keys_in_use: KeysInUse,
) -> None:
    identities, clock, token = keys_in_use.identities, keys_in_use.clock, keys_in_use.token
    seen, state = keys_in_use.seen, keys_in_use.state
    state["status"] = 500  # Google's key endpoint fails from now on

    clock.now += 3600  # past the max-age: fetched again, which fails; the last keys serve
    assert identities.verify(token, CredentialKind.ID_TOKEN)["uid"] == "user-1"
    for _ in range(3):  # forged key ids within the minute fetch nothing
        with pytest.raises(InvalidCredentialError):
            identities.verify(SigningKey("forged").sign(claims()), CredentialKind.ID_TOKEN)
    assert len(seen) == 2
    clock.now += 3600  # past the grace too: an outage, not a refusal
    with pytest.raises(UnavailableError):
        identities.verify(token, CredentialKind.ID_TOKEN)
    with pytest.raises(UnavailableError):  # and the next request within the minute waits on
        identities.verify(token, CredentialKind.ID_TOKEN)  # no fetch
    assert len(seen) == 3


@pytest.mark.parametrize("outage", ["HTTP 500", "not keys", "unreachable"])
def test_keys_that_cannot_be_fetched_are_an_outage_not_a_refusal(
    published: SigningKey, key_server: Any, outage: str
) -> None:
    origin, _, state = key_server
    if outage == "HTTP 500":
        state["status"] = 500
    elif outage == "not keys":
        state["keys"] = {"key-1": "not a certificate"}
    else:
        with serving(lambda *_: (200, {}, {})) as (gone, _):
            pass
        origin = gone

    with pytest.raises(UnavailableError) as raised:
        toolkit(origin).verify(published.sign(claims()), CredentialKind.ID_TOKEN)
    assert raised.value.http_status == 503


def test_the_emulators_unsigned_credentials_are_checked_for_everything_but_a_signature() -> None:
    emulated = IdentityToolkit(PROJECT, api_origin="http://x", tokens=EmulatorToken(), keys=None)

    def unsigned(**changes: Any) -> str:
        return jwt.encode(claims(**changes), "", algorithm="none")

    assert emulated.verify(unsigned(), CredentialKind.ID_TOKEN)["uid"] == "user-1"
    for refused in (unsigned(aud="other"), unsigned(exp=int(time.time()) - 60), unsigned(sub="")):
        with pytest.raises(InvalidCredentialError):
            emulated.verify(refused, CredentialKind.ID_TOKEN)


def test_a_users_record_is_read_with_the_access_token_and_unknown_users_are_none() -> None:
    record = {
        "localId": "user-1",
        "email": "ada@example.com",
        "disabled": True,
        "customAttributes": json.dumps({"role": "funeral_director", "admin": True}),
        "validSince": "1700000000",
    }

    def api(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        wanted = json.loads(body)["localId"]
        return 200, {"users": [record]} if wanted == ["user-1"] else {}, {}

    with serving(api) as (origin, seen):
        identities = IdentityToolkit(
            PROJECT, api_origin=f"{origin}/prefix", tokens=EmulatorToken(), keys=None
        )
        found = identities.account("user-1")
        missing = identities.account("user-2")

    assert found == Account(
        email="ada@example.com",
        custom_claims={"role": "funeral_director", "admin": True},
        disabled=True,
        tokens_valid_after_ms=1_700_000_000_000,
    )
    assert missing is None
    method, path, headers = seen[0]
    assert (method, path) == ("POST", f"/prefix/v1/projects/{PROJECT}/accounts:lookup")
    assert headers["authorization"] == "Bearer owner"


@pytest.mark.parametrize("status", [503, 403, None], ids=["HTTP 503", "HTTP 403", "unreachable"])
def test_a_record_that_cannot_be_read_is_an_outage(status: int | None) -> None:
    with serving(lambda *_: (status or 200, {"error": {"message": "no"}}, {})) as (origin, _):
        identities = IdentityToolkit(PROJECT, api_origin=origin, tokens=EmulatorToken(), keys=None)
        if status is not None:
            with pytest.raises(UnavailableError):
                identities.account("user-1")
    if status is None:  # the server is gone
        with pytest.raises(UnavailableError):
            identities.account("user-1")


def test_a_record_that_is_not_one_is_an_outage_not_a_crash() -> None:
    garbled = {"users": [{"localId": "user-1", "validSince": "soon", "customAttributes": "{"}]}
    with serving(lambda *_: (200, garbled, {})) as (origin, _):
        identities = IdentityToolkit(PROJECT, api_origin=origin, tokens=EmulatorToken(), keys=None)
        with pytest.raises(UnavailableError):
            identities.account("user-1")


def test_production_refuses_the_auth_emulator_even_past_the_settings_guard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")
    with pytest.raises(RuntimeError, match="FIREBASE_AUTH_EMULATOR_HOST is set in production"):
        IdentityToolkit.from_environment("memorials-prod", production=True)
    # Locally the same variable selects the emulator's unsigned mode.
    local = IdentityToolkit.from_environment(PROJECT)
    unsigned = jwt.encode(claims(), "", algorithm="none")
    assert local.verify(unsigned, CredentialKind.ID_TOKEN)["uid"] == "user-1"
