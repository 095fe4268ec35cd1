"""The stream repository, built on the first call that needs it, and updates over REST.

An update starts from the stream this request has already read over REST (see
``StreamDocumentReads._remembered``), or reads it over REST. A change that alters nothing
answers from that read (a Stop after the disconnect already ended the broadcast, a duplicate
webhook, a check that finds nothing new): what the request would have done had it run
entirely at the moment of that read. A change that alters something is written over REST,
conditional on the document being unchanged since that read. So an update loads neither the
client library nor gRPC; the repository is built only for the rest: a stream still in a
legacy collection (the repository moves it), a document written meanwhile (it reads again
and retries), and every other write.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cached_property
from typing import Any

from common.adapters.firestore.documents import (
    CREDENTIALS_SUBCOLLECTION,
    monitor_progress_id,
    progress_kept_in_stream,
    snapshot_key,
    stream_changes,
    stream_from_snapshot,
    stream_to_document,
)
from common.adapters.firestore.rest import FirestoreRest, RestSnapshot, is_document_id
from common.models.domain import MonitorKind, MonitorProgress, Stream, StreamCredentials
from common.ports import (
    CreateQuota,
    CreateQuotaUsage,
    IdempotencyChange,
    IdempotencyRecord,
    IdempotencyStore,
    MonitorCheck,
    StreamPage,
    StreamQuery,
    StreamReads,
    StreamRepository,
    WhipSession,
)
from common.request_scope import peek, remember, take


class DeferredStreamRepository:
    """``StreamRepository`` that updates over ``rest`` where it can, reads through ``reads``
    (REST where deployed), and builds ``build()`` on the first call that needs it,
    delegating every other call to it."""

    def __init__(
        self,
        build: Callable[[], StreamRepository],
        primary_collection: str,
        rest: FirestoreRest | None = None,
        reads: StreamReads | None = None,
    ) -> None:
        self._build = build
        self._primary = primary_collection
        self._rest = rest
        self._given_reads = reads

    @cached_property
    def _reads(self) -> StreamReads:
        return self._given_reads or self._repo

    @cached_property
    def _repo(self) -> StreamRepository:
        return self._build()

    def update(self, stream_id: str, change: Callable[[Stream], Stream]) -> Stream:
        key = snapshot_key(self._primary, stream_id)
        snapshot = peek(key)
        if snapshot is None and self._rest is not None and is_document_id(stream_id):
            snapshot = self._rest.get(self._primary, stream_id)
        if snapshot is None or not snapshot.exists:
            return self._repo.update(stream_id, change)
        before = stream_from_snapshot(snapshot)
        # model_copy does not validate: re-check so a bug can never store an invalid stream.
        after = Stream.model_validate(change(before).model_dump())
        changed, secrets = stream_changes(before, after, snapshot.to_dict() or {})
        if not changed:
            return after
        if self._rest is not None and isinstance(snapshot, RestSnapshot) and snapshot.update_time:
            written = self._rest.update_fields(
                self._primary, stream_id, changed, secrets, snapshot.update_time
            )
            if written is not None:
                # A later update of this request starts from what this one wrote.
                remember(key, snapshot.written(changed, secrets, written))
                return after
            # Changed since the read, perhaps by an attempt of this very write whose answer
            # was lost: applying ``change`` again to that would apply it twice.
            fresh = self._rest.get(self._primary, stream_id)
            if fresh.exists and _carries(fresh, changed, secrets):
                remember(key, fresh)
                return after
        take(key)  # changed since: the repository reads again and retries
        return self._repo.update(stream_id, change)

    def get(self, stream_id: str) -> Stream | None:
        return self._reads.get(stream_id)

    def get_credentials(self, stream_id: str) -> StreamCredentials | None:
        return self._reads.get_credentials(stream_id)

    def find(self, query: StreamQuery) -> StreamPage:
        return self._reads.find(query)

    def list_by_memorial(self, memorial_id: str, *, visible_only: bool) -> list[Stream]:
        return self._reads.list_by_memorial(memorial_id, visible_only=visible_only)

    def find_by_live_input(self, live_input_uid: str) -> Stream | None:
        return self._reads.find_by_live_input(live_input_uid)

    def deleted_stream_of_input(self, live_input_uid: str) -> str | None:
        return self._reads.deleted_stream_of_input(live_input_uid)

    def new_id(self) -> str:
        return self._repo.new_id()

    def create(self, stream: Stream, credentials: StreamCredentials | None) -> None:
        self._repo.create(stream, credentials)

    def delete(self, stream_id: str) -> None:
        take(snapshot_key(self._primary, stream_id))
        self._repo.delete(stream_id)

    def monitor_progress(self, stream_id: str, kind: MonitorKind) -> MonitorProgress | None:
        snapshot = self._rest_snapshot(stream_id)
        if self._rest is None or snapshot is None:
            return self._repo.monitor_progress(stream_id, kind)
        progress = self._rest.get(self._private(stream_id), monitor_progress_id(kind))
        return _progress(progress, snapshot, kind)

    def record_check(self, stream_id: str, kind: MonitorKind, change: MonitorCheck) -> Stream:
        """Like ``update``: from the request's REST read (or one of its own) and the progress
        read over REST, one conditional commit of what changed; the repository re-reads and
        retries when either document changed meanwhile."""
        key = snapshot_key(self._primary, stream_id)
        snapshot = self._rest_snapshot(stream_id)
        if self._rest is None or snapshot is None or not snapshot.update_time:
            return self._repo.record_check(stream_id, kind, change)
        private, progress_id = self._private(stream_id), monitor_progress_id(kind)
        progress_snapshot = self._rest.get(private, progress_id)
        before = stream_from_snapshot(snapshot)
        progress = _progress(progress_snapshot, snapshot, kind)
        changed_stream, claimed = change(before, progress)
        after = Stream.model_validate(changed_stream.model_dump())
        if claimed == progress and after == before:
            return after
        writes: list[dict[str, Any]] = []
        if claimed != progress and claimed is not None:
            fields = claimed.model_dump()
            if progress_snapshot.exists and progress_snapshot.update_time:
                write = self._rest.update_write(
                    private, progress_id, fields, (), progress_snapshot.update_time
                )
            else:
                write = self._rest.create_write(private, progress_id, fields)
            writes.append(write)
        changed, _ = stream_changes(before, after, {})
        if changed:
            writes.append(
                self._rest.update_write(self._primary, stream_id, changed, (), snapshot.update_time)
            )
        if not writes:
            return after
        written = self._rest.commit(writes)
        if written is not None:
            if changed:
                remember(key, snapshot.written(changed, [], written[-1]))
            return after
        # Changed since the read, perhaps by this very commit whose answer was lost: its claim
        # (unique to the attempt: it carries the time of the check) says whether it landed.
        fresh = self._rest.get(self._primary, stream_id)
        if (
            claimed is not None
            and fresh.exists
            and _carries(fresh, changed, [])
            and _progress(self._rest.get(private, progress_id), fresh, kind) == claimed
        ):
            remember(key, fresh)
            return after
        take(key)  # changed since: the repository reads again and retries
        return self._repo.record_check(stream_id, kind, change)

    def _rest_snapshot(self, stream_id: str) -> RestSnapshot | None:
        """The stream as this request read it over REST, or as read now; ``None`` where the
        repository must answer (no REST, a stream not in the primary collection)."""
        if self._rest is None or not is_document_id(stream_id):
            return None
        snapshot = peek(snapshot_key(self._primary, stream_id))
        if snapshot is None:
            snapshot = self._rest.get(self._primary, stream_id)
        if not isinstance(snapshot, RestSnapshot) or not snapshot.exists:
            return None
        return snapshot

    def _private(self, stream_id: str) -> str:
        return f"{self._primary}/{stream_id}/{CREDENTIALS_SUBCOLLECTION}"

    def remember_deleted_input(self, live_input_uid: str, stream_id: str, at: datetime) -> None:
        self._repo.remember_deleted_input(live_input_uid, stream_id, at)

    def save_credentials(self, stream_id: str, credentials: StreamCredentials) -> None:
        self._repo.save_credentials(stream_id, credentials)

    def set_display_orders(self, orders: dict[str, int], updated_at: datetime) -> None:
        for stream_id in orders:
            take(snapshot_key(self._primary, stream_id))
        self._repo.set_display_orders(orders, updated_at)

    def save_whip_session(self, stream_id: str, session: WhipSession) -> None:
        self._repo.save_whip_session(stream_id, session)

    def whip_session(self, stream_id: str, session_id: str) -> WhipSession | None:
        return self._repo.whip_session(stream_id, session_id)

    def delete_whip_session(self, stream_id: str, session_id: str) -> None:
        self._repo.delete_whip_session(stream_id, session_id)


def _progress(
    progress: RestSnapshot, stream: RestSnapshot, kind: MonitorKind
) -> MonitorProgress | None:
    if progress.exists:
        return MonitorProgress.model_validate(progress.to_dict() or {})
    return progress_kept_in_stream(stream.to_dict() or {}, kind)


def _carries(snapshot: RestSnapshot, changed: dict[str, Any], secrets: list[str]) -> bool:
    """Whether the document already holds what a write of ``changed`` and ``secrets`` sets."""
    stored = stream_to_document(stream_from_snapshot(snapshot))
    fields = snapshot.to_dict() or {}
    return all(stored.get(key) == value for key, value in changed.items()) and not any(
        name in fields for name in secrets
    )


class DeferredCreateQuota:
    """``CreateQuota`` whose adapter is built on the first creation: the functions that also
    edit and delete streams load no client library for those."""

    def __init__(self, build: Callable[[], CreateQuota]) -> None:
        self._build = build

    @cached_property
    def _quota(self) -> CreateQuota:
        return self._build()

    def update(
        self, uid: str, change: Callable[[CreateQuotaUsage], CreateQuotaUsage]
    ) -> CreateQuotaUsage:
        return self._quota.update(uid, change)


class DeferredIdempotencyStore:
    """``IdempotencyStore`` whose adapter is built on the first creation, as above."""

    def __init__(self, build: Callable[[], IdempotencyStore]) -> None:
        self._build = build

    @cached_property
    def _keys(self) -> IdempotencyStore:
        return self._build()

    def update(self, uid: str, key: str, change: IdempotencyChange) -> IdempotencyRecord | None:
        return self._keys.update(uid, key, change)
