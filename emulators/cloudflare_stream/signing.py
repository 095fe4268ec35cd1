"""Stream signed URLs as Cloudflare documents them (securing-your-stream): RSA signing keys
(``POST /stream/keys``), RS256 tokens with ``kid``/``sub``/``exp``/``nbf`` and optional
``downloadable``/``accessRules``, and their checks at the delivery host.

What the docs leave open, the emulator decides (README, "Signed URLs"): a token must carry
``exp`` (a number or a numeric string, as the ``/token`` examples show), no more than 24 h
ahead; ``ip.geoip.country`` rules never match, the emulator having no geolocation.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

MAX_TOKEN_LIFETIME_S = 24 * 3600
MAX_ACCESS_RULES = 5
RULE_TYPES = ("any", "ip.src", "ip.geoip.country")
RULE_ACTIONS = ("allow", "block")


class TokenRefusedError(Exception):
    """A delivery request whose token does not open the media: ``status`` is the answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class SigningKey:
    id: str
    created: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        created = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(secrets.token_hex(16), created, key)

    def pem(self) -> bytes:
        """The private key as PKCS#1 PEM (``BEGIN RSA PRIVATE KEY``), as Cloudflare gives it."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )

    def created_json(self) -> dict[str, str]:
        """``POST /stream/keys``' answer: ``pem`` and ``jwk`` base64-encoded, shown only once."""
        numbers = RSAAlgorithm.to_jwk(self.private_key, as_dict=True)
        jwk = {"use": "sig", "kty": "RSA", "kid": self.id, "alg": "RS256"}
        jwk.update({k: numbers[k] for k in ("n", "e", "d", "p", "q", "dp", "dq", "qi")})
        return {
            "id": self.id,
            "pem": base64.b64encode(self.pem()).decode(),
            "jwk": base64.b64encode(json.dumps(jwk).encode()).decode(),
            "created": self.created,
        }


def sign(claims: dict[str, Any], key: SigningKey) -> str:
    """An RS256 JWT over ``claims`` with Cloudflare's header ``{alg, kid}`` (no ``typ``)."""
    headers = {"kid": key.id, "typ": None}
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers=headers)


def private_key_from_pem(pem_b64: str) -> rsa.RSAPrivateKey | None:
    """The RSA key in a base64 PEM (the ``pem`` of a signing key), or None if it is not one."""
    try:
        key = serialization.load_pem_private_key(base64.b64decode(pem_b64), password=None)
    except ValueError:
        return None
    return key if isinstance(key, rsa.RSAPrivateKey) else None


@dataclass
class Keyring:
    """The account's signing keys, and the key Cloudflare itself signs ``/token`` answers with
    (never listed, never revoked)."""

    keys: dict[str, SigningKey] = field(default_factory=dict)
    _internal: SigningKey | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def internal(self) -> SigningKey:
        with self._lock:
            if self._internal is None:
                self._internal = SigningKey.generate()
            return self._internal

    def verifying_key(self, kid: str) -> rsa.RSAPublicKey | None:
        with self._lock:
            key = self.keys.get(kid)
            if key is None and self._internal is not None and self._internal.id == kid:
                key = self._internal
        return key.private_key.public_key() if key is not None else None

    def verify(self, token: str, now: float | None = None) -> dict[str, Any]:
        """The claims of a token that opens ``claims["sub"]`` now; else TokenRefusedError(401)."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError as exc:
            raise TokenRefusedError(401, "malformed token") from exc
        public = self.verifying_key(str(kid)) if kid else None
        if public is None:
            raise TokenRefusedError(401, "unknown or revoked signing key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                public,
                algorithms=["RS256"],
                # exp/nbf are checked below: Cloudflare's own tokens carry them as strings.
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.InvalidTokenError as exc:
            raise TokenRefusedError(401, "bad token signature") from exc
        _check_claims(claims, time.time() if now is None else now)
        return claims


def _epoch(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _check_claims(claims: dict[str, Any], now: float) -> None:
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise TokenRefusedError(401, "token has no sub")
    exp = _epoch(claims.get("exp"))
    if exp is None or exp <= now:
        raise TokenRefusedError(401, "token expired or without exp")
    if exp > now + MAX_TOKEN_LIFETIME_S:
        raise TokenRefusedError(401, "token exp is more than 24 hours ahead")
    if "nbf" in claims:
        nbf = _epoch(claims["nbf"])
        if nbf is None or nbf > now:
            raise TokenRefusedError(401, "token not valid yet (nbf)")
    rules = claims.get("accessRules")
    if rules is not None and access_rules_problem(rules):
        raise TokenRefusedError(401, "invalid accessRules")


def access_rules_problem(rules: Any) -> str | None:
    """Why ``rules`` is not a valid ``accessRules`` array, if it is not."""
    if not isinstance(rules, list) or len(rules) > MAX_ACCESS_RULES:
        return f"accessRules must be an array of at most {MAX_ACCESS_RULES} rules"
    for rule in rules:
        if not isinstance(rule, dict):
            return "each access rule must be an object"
        if rule.get("type") not in RULE_TYPES or rule.get("action") not in RULE_ACTIONS:
            return f"access rule type must be one of {RULE_TYPES}, action allow or block"
        if rule["type"] == "ip.src" and not _networks(rule.get("ip")):
            return "an ip.src rule needs ip: a list of addresses or CIDRs"
    return None


def _networks(values: Any) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    if not isinstance(values, list) or not values:
        return []
    try:
        return [ipaddress.ip_network(str(v), strict=False) for v in values]
    except ValueError:
        return []


def access_allowed(rules: list[dict[str, Any]] | None, client_ip: str) -> bool:
    """Cloudflare's evaluation: first matching rule decides; none matching allows."""
    address = ipaddress.ip_address(client_ip)
    for rule in rules or []:
        if rule["type"] == "any":
            matched = True
        elif rule["type"] == "ip.src":
            matched = any(
                address.version == net.version and address in net for net in _networks(rule["ip"])
            )
        else:  # ip.geoip.country: no geolocation locally, so never a match
            matched = False
        if matched:
            return bool(rule["action"] == "allow")
    return True


def looks_like_token(path_id: str) -> bool:
    """A delivery path's id is a JWT (header.payload.signature) rather than a uid."""
    return path_id.count(".") == 2
