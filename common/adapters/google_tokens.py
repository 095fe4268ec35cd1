"""Access tokens for Google's REST APIs (Firestore, Identity Toolkit) on the standard
library's HTTP client: the emulators' admin token, or the instance's service account's from
the metadata server, the identity the client libraries use in production."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Protocol

from common.adapters.keep_alive import KeepAliveConnections
from common.errors import UnavailableError

DEFAULT_METADATA_HOST = "metadata.google.internal"
TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"  # noqa: S105 - a path
# The emulators accept this bearer token as an administrator's (no rules, like a server SDK).
EMULATOR_TOKEN = "owner"  # noqa: S105 - the emulators' documented admin token, not a secret
# As google-auth waits for the metadata server: it is on the instance's own link.
ATTEMPT_TIMEOUT_S = 3.0
# A token is renewed this long before the metadata server says it expires.
TOKEN_MARGIN_S = 60.0
# As google-auth, a fetch the metadata server fails (no answer, 429, 5xx) is tried again,
# here within one attempt's time in all; after a failed fetch, requests fail at once for
# this long rather than each waiting out a fetch of its own in turn.
FETCH_TRIES = 3
FAILED_FETCH_HOLD_S = 1.0
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


class MetadataServerError(RuntimeError):
    """The metadata server refused a token: a fault of this deployment, not of the caller."""


class AccessTokens(Protocol):
    """The ``Authorization`` header of each request."""

    def header(self) -> str: ...

    def refused(self, header: str) -> None:
        """A server answered 401 to ``header``: the next request fetches a new token."""


class EmulatorToken:
    def header(self) -> str:
        return f"Bearer {EMULATOR_TOKEN}"

    def refused(self, header: str) -> None:
        del header  # the emulators' token never changes


class MetadataServerTokens:
    """Access tokens of the instance's service account, from the metadata server (Cloud Run,
    Cloud Functions), each kept until shortly before it expires; one fetch at a time."""

    def __init__(
        self, host: str = DEFAULT_METADATA_HOST, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._host = host
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self._expires_at = 0.0
        self._failed_until = 0.0

    def header(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                try:
                    self._renew()
                except UnavailableError:
                    # Renewal is due a minute before expiry: the token in hand still serves.
                    if self._token is None or self._clock() >= self._expires_at:
                        raise
            return f"Bearer {self._token}"

    def _renew(self) -> None:
        if self._clock() < self._failed_until:
            raise _unavailable()
        try:
            token, lifetime = self._fetch()
        except UnavailableError:
            self._failed_until = self._clock() + FAILED_FETCH_HOLD_S
            raise
        self._token = token
        self._renew_at = self._clock() + max(lifetime - TOKEN_MARGIN_S, 0.0)
        self._expires_at = self._clock() + lifetime

    def refused(self, header: str) -> None:
        # A token revoked or rotated before its expiry; another thread may have renewed it.
        with self._lock:
            if header == f"Bearer {self._token}":
                self._token = None
                self._expires_at = 0.0

    def _fetch(self) -> tuple[str, float]:
        deadline = time.monotonic() + ATTEMPT_TIMEOUT_S
        delay = 0.1
        for attempt in range(FETCH_TRIES):
            if attempt:
                time.sleep(delay)
                delay *= 2
            answer = self._ask(deadline)
            if answer is not None and answer[0] not in TRANSIENT_STATUSES:
                return _token_of(*answer)
            if time.monotonic() + delay >= deadline:
                break
        raise _unavailable()

    def _ask(self, deadline: float) -> tuple[int, bytes] | None:
        """The metadata server's answer to one token request, ``None`` if none came."""
        timeout = min(ATTEMPT_TIMEOUT_S, max(deadline - time.monotonic(), 0.1))
        connection = http.client.HTTPConnection(self._host, timeout=timeout)
        try:
            connection.request("GET", TOKEN_PATH, headers={"Metadata-Flavor": "Google"})
            response = connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            return None
        finally:
            connection.close()


def _token_of(status: int, body: bytes) -> tuple[str, float]:
    if status != 200:
        raise MetadataServerError(f"the metadata server gave no token (HTTP {status})")
    try:
        token = json.loads(body)
        return str(token["access_token"]), float(token.get("expires_in", 0))
    except (ValueError, KeyError, TypeError) as exc:
        raise MetadataServerError(f"the metadata server gave no token: {exc}") from exc


def _unavailable() -> UnavailableError:
    return UnavailableError("A Google service is temporarily unavailable", retry_after_s=2)


def authorized_exchange(
    connections: KeepAliveConnections,
    tokens: AccessTokens,
    request: tuple[str, str, bytes | None],
    headers: dict[str, str],
    deadline: float,
) -> tuple[int, bytes]:
    """``connections.exchange`` of ``request`` (method, path, body) with ``headers`` and the
    ``Authorization`` of ``tokens``. A 401 (a token revoked or rotated before its expiry) is
    answered by fetching a new token and sending again, once, where the time left before
    ``deadline`` (monotonic) covers a token fetch."""
    method, path, body = request
    authorized = {**headers, "Authorization": tokens.header()}
    status, data = connections.exchange(method, path, body, authorized, deadline)
    if status == 401 and deadline - time.monotonic() > ATTEMPT_TIMEOUT_S:
        tokens.refused(authorized["Authorization"])
        authorized = {**headers, "Authorization": tokens.header()}
        status, data = connections.exchange(method, path, body, authorized, deadline)
    return status, data


def instance_tokens() -> MetadataServerTokens:
    """The instance's service account's tokens, from ``GCE_METADATA_HOST`` where it names a
    metadata server (as Google's libraries read it), else the instance's own."""
    return MetadataServerTokens(os.environ.get("GCE_METADATA_HOST") or DEFAULT_METADATA_HOST)
