"""In-memory implementations of the ports, for fast service tests."""

from __future__ import annotations

import base64
import dataclasses
import functools
import itertools
import threading
from collections import Counter
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from common import pagination
from common.adapters.cloudflare.signing import LocalPlaybackTokens
from common.errors import ConflictError, NotFoundError, UnavailableError
from common.models.domain import (
    Memorial,
    MonitorKind,
    MonitorProgress,
    Stream,
    StreamCredentials,
)
from common.pagination import in_order, page_of, place_of, position_of
from common.ports import (
    CreateQuotaUsage,
    IdempotencyChange,
    IdempotencyRecord,
    Invitation,
    MonitorCheck,
    ScheduledTask,
    StreamAndProgress,
    StreamPage,
    StreamQuery,
    WhipSession,
)


class FixedClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


MEMORIAL_STREAM_LIMIT = 200  # the Firestore repository's cap on one memorial's streams
UPDATE_ATTEMPTS = 25  # optimistic attempts before an update gives up with a 409, as in Firestore

T = TypeVar("T")


class _OptimisticStore:
    """Read-modify-write the way the Firestore adapters do it: the change runs on a snapshot
    outside any lock and only lands if nobody wrote in between (else it re-reads and runs
    again, ``UPDATE_ATTEMPTS`` times at most). With ``replay_changes`` every change also runs
    twice per attempt, the first result thrown away, as a retried transaction would: a change
    with side effects shows up in the service tests, not first in production."""

    def __init__(self, *, replay_changes: bool) -> None:
        self.replay_changes = replay_changes
        self._lock = threading.RLock()
        self._versions: dict[object, int] = {}
        self._clock = itertools.count(1)

    def _wrote(self, key: object) -> None:
        """Note a write of ``key`` (call it holding ``_lock``)."""
        self._versions[key] = next(self._clock)

    def _apply(
        self,
        key: object,
        read: Callable[[], T],
        change: Callable[[T], T],
        write: Callable[[T, T], T],
    ) -> T:
        """Run ``change`` on what ``read`` gives and ``write(before, after)`` if nobody wrote
        ``key`` meanwhile; returns what ``write`` returns."""
        for _ in range(UPDATE_ATTEMPTS):
            with self._lock:
                before, version = read(), self._versions.get(key)
            if self.replay_changes:
                change(before)
            after = change(before)
            with self._lock:
                if self._versions.get(key) == version:
                    return write(before, after)
        raise ConflictError("Too many concurrent changes; try again", retry_after_s=1)


class InMemoryStreamRepository(_OptimisticStore):
    """``StreamRepository`` in a dict, with the Firestore adapter's semantics (the contract
    suite in tests/integration/contract runs both): ``create`` refuses an existing id with
    ``ConflictError``, ``update`` is optimistic (see ``_OptimisticStore``) and re-validates
    what the change returns, a memorial lists up to 200 streams. ``fail_next_create``
    simulates a database outage; listings find the streams named in ``unreadable`` as the
    adapter finds a document it cannot read as a stream (its place only), and those in
    ``unplaceable`` as one whose place no cursor can name."""

    def __init__(self, *, replay_changes: bool = True) -> None:
        super().__init__(replay_changes=replay_changes)
        self.streams: dict[str, Stream] = {}
        self.credentials: dict[str, StreamCredentials] = {}
        self.fail_next_create: Exception | None = None
        self.whip_sessions: dict[tuple[str, str], WhipSession] = {}
        self.deleted_inputs: dict[str, str] = {}
        self.unreadable: set[str] = set()
        self.unplaceable: set[str] = set()
        self.progress: dict[tuple[str, MonitorKind], MonitorProgress] = {}
        self.progress_writes = 0
        # Reads of each stream and its monitors' progress, and writes of each stream after its
        # creation (each write fires the Firestore trigger).
        self.reads: Counter[str] = Counter()
        self.stream_writes: Counter[str] = Counter()
        self._ids = itertools.count(1)

    def new_id(self) -> str:
        return f"stream-{next(self._ids)}"

    def get(self, stream_id: str) -> Stream | None:
        self.reads[stream_id] += 1
        return self.streams.get(stream_id)

    def create(self, stream: Stream, credentials: StreamCredentials | None) -> None:
        if self.fail_next_create is not None:
            error, self.fail_next_create = self.fail_next_create, None
            raise error
        with self._lock:
            if stream.id in self.streams:
                raise ConflictError(f"Stream {stream.id} already exists", retry_after_s=1)
            self.streams[stream.id] = stream
            if credentials is not None:
                self.credentials[stream.id] = credentials
            self._wrote(stream.id)

    def update(self, stream_id: str, change: Callable[[Stream], Stream]) -> Stream:
        def read() -> Stream:
            self.reads[stream_id] += 1
            current = self.streams.get(stream_id)
            if current is None:
                raise NotFoundError("Stream not found")
            return current

        def validated(current: Stream) -> Stream:
            # As the adapter does: model_copy does not validate, so a bug cannot store junk.
            return Stream.model_validate(change(current).model_dump())

        def write(before: Stream, after: Stream) -> Stream:
            if after != before:
                self.streams[stream_id] = after
                self.stream_writes[stream_id] += 1
                self._wrote(stream_id)
            return after

        return self._apply(stream_id, read, validated, write)

    def delete(self, stream_id: str) -> None:
        with self._lock:
            self.streams.pop(stream_id, None)
            self.credentials.pop(stream_id, None)
            for key in [k for k in self.whip_sessions if k[0] == stream_id]:
                del self.whip_sessions[key]
            for kind in [k for k in self.progress if k[0] == stream_id]:
                del self.progress[kind]
            self._wrote(stream_id)

    def monitor_progress(self, stream_id: str, kind: MonitorKind) -> MonitorProgress | None:
        self.reads[stream_id] += 1
        return self.progress.get((stream_id, kind))

    def record_check(self, stream_id: str, kind: MonitorKind, change: MonitorCheck) -> Stream:
        key = (stream_id, kind)

        def read() -> StreamAndProgress:
            self.reads[stream_id] += 1
            current = self.streams.get(stream_id)
            if current is None:
                raise NotFoundError("Stream not found")
            return current, self.progress.get(key)

        def validated(
            current: StreamAndProgress,
        ) -> StreamAndProgress:
            stream, claimed = change(*current)
            return Stream.model_validate(stream.model_dump()), claimed

        def write(
            before: StreamAndProgress,
            after: StreamAndProgress,
        ) -> StreamAndProgress:
            if after[1] != before[1] and after[1] is not None:
                self.progress[key] = after[1]
                self.progress_writes += 1
                self._wrote(stream_id)
            if after[0] != before[0]:
                self.streams[stream_id] = after[0]
                self.stream_writes[stream_id] += 1
                self._wrote(stream_id)
            return after

        # One version covers the stream and its progress, as the adapter's batch checks both.
        return self._apply(stream_id, read, validated, write)[0]

    def remember_deleted_input(self, live_input_uid: str, stream_id: str, at: datetime) -> None:
        self.deleted_inputs[live_input_uid] = stream_id

    def deleted_stream_of_input(self, live_input_uid: str) -> str | None:
        return self.deleted_inputs.get(live_input_uid)

    def get_credentials(self, stream_id: str) -> StreamCredentials | None:
        return self.credentials.get(stream_id)

    def save_credentials(self, stream_id: str, credentials: StreamCredentials) -> None:
        self.credentials[stream_id] = credentials

    def find(self, query: StreamQuery) -> StreamPage:
        with self._lock:
            streams = list(self.streams.values())
        matches = [
            s
            for s in streams
            if (query.memorial_id is None or s.memorial_id == query.memorial_id)
            and (query.status is None or s.status == query.status)
            and (query.is_public is None or s.is_public == query.is_public)
            and (query.is_visible is None or s.is_visible == query.is_visible)
            and (query.created_by is None or s.created_by == query.created_by)
        ]
        order = query.order
        ranked = in_order([pagination.Listed(place_of(s, order), s) for s in matches], order)
        after = position_of(query)
        if after is not None:
            ranked = [row for row in ranked if after.precedes(row.place, order)]
        rows = [
            pagination.Listed(
                row.place,
                None if row.place.stream_id in self.unreadable else row.stream,
                nameable=row.place.stream_id not in self.unplaceable,
            )
            for row in ranked
        ]
        return page_of(query, rows[query.offset :])

    def find_by_live_input(self, live_input_uid: str) -> Stream | None:
        with self._lock:
            streams = list(self.streams.values())
        return next((s for s in streams if s.cloudflare_id == live_input_uid), None)

    def list_by_memorial(self, memorial_id: str, *, visible_only: bool) -> list[Stream]:
        query = StreamQuery(
            memorial_id=memorial_id,
            is_visible=True if visible_only else None,
            limit=MEMORIAL_STREAM_LIMIT,
        )
        return self.find(query).streams

    def save_whip_session(self, stream_id: str, session: WhipSession) -> None:
        self.whip_sessions[(stream_id, session.session_id)] = session

    def whip_session(self, stream_id: str, session_id: str) -> WhipSession | None:
        return self.whip_sessions.get((stream_id, session_id))

    def delete_whip_session(self, stream_id: str, session_id: str) -> None:
        self.whip_sessions.pop((stream_id, session_id), None)

    def set_display_orders(self, orders: dict[str, int], updated_at: datetime) -> None:
        with self._lock:
            missing = [stream_id for stream_id in orders if stream_id not in self.streams]
            if missing:  # one atomic write: all or nothing
                raise NotFoundError(f"Stream {missing[0]} not found")
            for stream_id, order in orders.items():
                self.streams[stream_id] = self.streams[stream_id].model_copy(
                    update={"display_order": order, "updated_at": updated_at}
                )
                self._wrote(stream_id)


class InMemoryMemorialDirectory:
    """``MemorialDirectory`` over a dict."""

    def __init__(self, *memorials: Memorial) -> None:
        self.memorials = {m.id: m for m in memorials}

    def get(self, memorial_id: str) -> Memorial | None:
        return self.memorials.get(memorial_id)

    def get_many(self, memorial_ids: Collection[str]) -> dict[str, Memorial | None]:
        return {memorial_id: self.get(memorial_id) for memorial_id in memorial_ids}


class RecordingTaskQueue:
    """``TaskQueue`` that keeps what was enqueued and refuses duplicate names; the next
    ``unavailable_for`` calls fail as Cloud Tasks does when it is briefly unreachable."""

    def __init__(self) -> None:
        self.tasks: list[ScheduledTask] = []
        self.unavailable_for = 0

    def enqueue(self, task: ScheduledTask) -> bool:
        if self.unavailable_for > 0:
            self.unavailable_for -= 1
            raise UnavailableError("The task queue is unavailable", retry_after_s=5)
        if any(t.name == task.name for t in self.tasks):
            return False
        self.tasks.append(task)
        return True


class InMemoryCreateQuota(_OptimisticStore):
    """``CreateQuota`` in a dict, optimistic like the Firestore precondition (the change may
    run more than once; whatever it raises aborts without writing)."""

    def __init__(self, *, replay_changes: bool = True) -> None:
        super().__init__(replay_changes=replay_changes)
        self.usage: dict[str, CreateQuotaUsage] = {}

    def update(
        self, uid: str, change: Callable[[CreateQuotaUsage], CreateQuotaUsage]
    ) -> CreateQuotaUsage:
        def write(before: CreateQuotaUsage, after: CreateQuotaUsage) -> CreateQuotaUsage:
            if after != before:
                self.usage[uid] = after
                self._wrote(uid)
            return after

        return self._apply(uid, lambda: self.usage.get(uid, CreateQuotaUsage()), change, write)


class InMemoryIdempotencyStore(_OptimisticStore):
    """``IdempotencyStore`` in a dict, optimistic like the Firestore one; ``fail_updates``:
    what the next updates raise, in order (``None`` lets one through)."""

    def __init__(self, *, replay_changes: bool = True) -> None:
        super().__init__(replay_changes=replay_changes)
        self.records: dict[tuple[str, str], IdempotencyRecord] = {}
        self.fail_updates: list[Exception | None] = []

    def update(self, uid: str, key: str, change: IdempotencyChange) -> IdempotencyRecord | None:
        with self._lock:
            failure = self.fail_updates.pop(0) if self.fail_updates else None
        if failure is not None:
            raise failure

        def write(
            before: IdempotencyRecord | None, after: IdempotencyRecord | None
        ) -> IdempotencyRecord | None:
            if after is None or after == before:
                return before  # nothing to write
            self.records[(uid, key)] = after
            self._wrote((uid, key))
            return after

        return self._apply((uid, key), lambda: self.records.get((uid, key)), change, write)


TEST_SIGNING_KEY_ID = "test-signing-key"


@functools.cache
def session_signing_key_pem() -> SecretStr:
    """A Stream signing key's ``pem`` (base64 PEM, PKCS#1 as Cloudflare gives it), made once
    per test session: RSA key generation is the slow part of signing."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return SecretStr(base64.b64encode(pem).decode())


def local_playback_tokens(clock: FixedClock, ttl_s: int = 7200) -> LocalPlaybackTokens:
    """The real ``LocalPlaybackTokens`` with the session's test key (no fake signer)."""
    return LocalPlaybackTokens(TEST_SIGNING_KEY_ID, session_signing_key_pem(), ttl_s, clock)


class InMemoryInvitationStore:
    """``InvitationStore`` in memory (contract suite: tests/integration/contract)."""

    def __init__(self) -> None:
        self.invitations: dict[tuple[str, str], Invitation] = {}

    def add(self, invitation: Invitation) -> None:
        key = (invitation.stream_id, invitation.code)
        if self.invitations.get(key, invitation) != invitation:
            raise ConflictError("This invitation code is taken")
        self.invitations[key] = invitation

    def get(self, stream_id: str, code: str) -> Invitation | None:
        return self.invitations.get((stream_id, code))

    def list(self, stream_id: str) -> list[Invitation]:
        mine = [i for (sid, _), i in self.invitations.items() if sid == stream_id]
        return sorted(mine, key=lambda i: i.created_at, reverse=True)

    def revoke(self, stream_id: str, code: str, at: datetime) -> Invitation | None:
        current = self.get(stream_id, code)
        if current is None or current.revoked_at is not None:
            return current
        revoked = dataclasses.replace(current, revoked_at=at)
        self.invitations[(stream_id, code)] = revoked
        return revoked


class FakeMonotonic:
    """A monotonic clock (``time.monotonic``'s shape) that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
