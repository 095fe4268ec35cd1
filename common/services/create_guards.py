"""Guards of stream creation: a per-user creation rate and ``Idempotency-Key``.

Every creation makes a Cloudflare live input, so creations are limited per user across all
instances (``CreateQuota``, a sliding window), and a client that retries a create with the
same ``Idempotency-Key`` gets the first result back instead of a second stream
(``IdempotencyStore``), the way Stripe's API and the IETF draft
"The Idempotency-Key HTTP Header Field" describe it:

- the key is scoped to the user and kept 24 h; the first request records a fingerprint of its
  body and the stream id it will create;
- the same key with the same body replays the stream (200, the owner view as it is now);
- the same key with another body is refused with 422 (a client bug; retrying cannot help);
- the same key while the first request still runs is refused with 409 and ``Retry-After``;
- a request that failed does not pin the key: the next one with it runs again, but under the
  same stream id, so a key can never make two streams, and every live input an attempt made
  is tagged with that id (the orphan sweep deletes the ones the stream does not use).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from common.errors import (
    AppError,
    ConflictError,
    InvalidArgumentError,
    ResourceExhaustedError,
)
from common.models.api import IDEMPOTENCY_HEADER
from common.models.domain import User
from common.ports import (
    Clock,
    CreateQuota,
    CreateQuotaUsage,
    IdempotencyRecord,
    IdempotencyStore,
)
from common.services.rate_windows import WindowFull, counted_once

log = logging.getLogger(__name__)
# 1 to 255 printable ASCII characters (space to tilde), as Stripe accepts.
_KEY_FORMAT = re.compile(r"[\x20-\x7e]{1,255}")
# How long a client is asked to wait for a request with the same key to finish.
IN_PROGRESS_RETRY_AFTER_S = 1


@dataclass(frozen=True)
class CreateLimits:
    """How many streams a user may create per window, and how long keys are kept."""

    create_rate_limit: int = 20
    create_rate_limit_admin: int = 100
    create_rate_window_s: int = 600
    idempotency_key_ttl_s: int = 24 * 3600
    # A request holding a key longer than this is presumed dead (its instance was stopped)
    # and the key may be taken over; longer than any create can take (Cloudflare timeouts).
    idempotency_lease_s: int = 120


class IdempotencyKeyReusedError(InvalidArgumentError):
    """The key was already used for a different request: 422, as the IETF draft says."""

    @property
    def http_status(self) -> int:
        return 422


def checked_idempotency_key(key: str | None) -> str | None:
    """The ``Idempotency-Key`` header if well-formed (``None`` when absent), else 400."""
    if key is None or _KEY_FORMAT.fullmatch(key):
        return key
    raise InvalidArgumentError(
        f"{IDEMPOTENCY_HEADER} must be 1 to 255 printable ASCII characters",
        details={"header": IDEMPOTENCY_HEADER},
    )


def request_fingerprint(target: str, body: dict[str, Any]) -> str:
    """A hash of what a create asks for: where (``target``) and the validated body."""
    canonical = json.dumps(
        {"target": target, "body": body}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    """The stream id a request may create under its key, or the one to replay."""

    stream_id: str
    replay: bool


class CreateGuards:
    """Rate limit and idempotency of stream creation; either store may be absent (off)."""

    def __init__(
        self,
        *,
        quota: CreateQuota | None,
        keys: IdempotencyStore | None,
        clock: Clock,
        limits: CreateLimits,
    ) -> None:
        self._quota = quota
        self._keys = keys
        self._clock = clock
        self._limits = limits

    # --- rate ------------------------------------------------------------------------------

    def count(self, user: User) -> None:
        """Count one creation of ``user``; 429 with ``Retry-After`` once the window is full."""
        if self._quota is None:
            return
        limit = (
            self._limits.create_rate_limit_admin
            if user.is_administrator
            else self._limits.create_rate_limit
        )
        window = timedelta(seconds=self._limits.create_rate_window_s)
        now = self._clock.now()
        this_count = uuid.uuid4().hex

        def admit(usage: CreateQuotaUsage) -> CreateQuotaUsage:
            try:
                return counted_once(usage, this_count, now, window, limit)
            except WindowFull as full:
                raise ResourceExhaustedError(
                    f"Too many streams created: at most {limit} per "
                    f"{_duration(self._limits.create_rate_window_s)}; "
                    f"try again in {full.retry_after_s} s",
                    details={"limit": limit, "windowSeconds": self._limits.create_rate_window_s},
                    retry_after_s=full.retry_after_s,
                ) from None

        self._quota.update(user.uid, admit)

    # --- idempotency -----------------------------------------------------------------------

    def claim(self, user: User, key: str, fingerprint: str, fresh_stream_id: str) -> Claim:
        """Hold ``key`` for this request, or say which stream it already created.

        Raises:
            IdempotencyKeyReusedError: the key was used with another body (422).
            ConflictError: a request with the key is still running (409, ``Retry-After``).
        """
        assert self._keys is not None  # noqa: S101 - only called when keys are wired
        now = self._clock.now()
        lease = timedelta(seconds=self._limits.idempotency_lease_s)
        ttl = timedelta(seconds=self._limits.idempotency_key_ttl_s)

        def take(current: IdempotencyRecord | None) -> IdempotencyRecord:
            if current is None or current.expires_at <= now:
                return IdempotencyRecord(
                    fingerprint, fresh_stream_id, "pending", now + lease, now + ttl
                )
            if current.state != "failed" and current.fingerprint != fingerprint:
                raise IdempotencyKeyReusedError(
                    f"This {IDEMPOTENCY_HEADER} was already used with a different request;"
                    " use a new key for a new stream",
                    details={"header": IDEMPOTENCY_HEADER},
                )
            if current.state == "done":
                return current
            if current.state == "pending" and current.stream_id == fresh_stream_id:
                return current  # our own claim, seen again after a retried write
            if current.state == "pending" and current.lease_until > now:
                raise ConflictError(
                    f"A request with this {IDEMPOTENCY_HEADER} is still in progress",
                    details={"header": IDEMPOTENCY_HEADER},
                    retry_after_s=IN_PROGRESS_RETRY_AFTER_S,
                )
            # Failed, or held by a request that never finished: run again, same stream id.
            return replace(
                current, fingerprint=fingerprint, state="pending", lease_until=now + lease
            )

        stored = self._keys.update(user.uid, key, take)
        assert stored is not None  # noqa: S101 - take always returns a record
        return Claim(stream_id=stored.stream_id, replay=stored.state == "done")

    def succeeded(self, user: User, key: str, stream_id: str) -> None:
        """The key's stream exists: from now on the key replays it."""
        self._settle(user, key, stream_id, "done")

    def failed(self, user: User, key: str, stream_id: str) -> None:
        """The request failed: the key is free again (for the same stream id)."""
        self._settle(user, key, stream_id, "failed")

    def _settle(self, user: User, key: str, stream_id: str, state: str) -> None:
        assert self._keys is not None  # noqa: S101
        now = self._clock.now()

        def settle(current: IdempotencyRecord | None) -> IdempotencyRecord | None:
            if current is None or current.stream_id != stream_id or current.state == "done":
                return current
            return replace(current, state="done" if state == "done" else "failed", lease_until=now)

        try:
            self._keys.update(user.uid, key, settle)
        except AppError as exc:
            # The lease runs out instead: the next request with the key finds the stream
            # (and replays it) or runs again under the same stream id.
            log.warning("could not mark an idempotency key %s: %s", state, exc.message)

    @property
    def keys_enabled(self) -> bool:
        return self._keys is not None


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
