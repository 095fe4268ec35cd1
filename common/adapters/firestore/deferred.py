"""The stream repository, built on the first call that needs it, and writes over REST.

An update starts from the stream this request has already read over REST (see
``StreamDocumentReads._remembered``), or reads it over REST. A change that alters nothing
answers from that read (a Stop after the disconnect already ended the broadcast, a duplicate
webhook, a check that finds nothing new): what the request would have done had it run
entirely at the moment of that read. A change that alters something is written over REST,
conditional on the document being unchanged since that read. So an update loads neither the
client library nor gRPC. A creation is one commit conditional on there being no document;
deletions, credentials, WHIP sessions and display orders are written over REST as well. The
repository is built only for the rest: a stream still in a legacy collection (the
repository moves it first), and a document written meanwhile (it reads again and retries).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any

from common.adapters.firestore.documents import (
    BATCH_WRITES,
    CREDENTIALS_DOC,
    CREDENTIALS_SUBCOLLECTION,
    DELETED_INPUTS_COLLECTION,
    credentials_document,
    deleted_input_document,
    monitor_progress_id,
    new_document_id,
    progress_kept_in_stream,
    snapshot_key,
    stream_changes,
    stream_from_snapshot,
    stream_to_document,
    whip_session_document,
    whip_session_id,
    whip_session_of,
)
from common.adapters.firestore.rest import FirestoreRest, RestSnapshot, is_document_id
from common.errors import ConflictError, NotFoundError
from common.models.domain import MonitorKind, MonitorProgress, Stream, StreamCredentials
from common.ports import (
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
        legacy_collections: Sequence[str] = (),
    ) -> None:
        self._build = build
        self._primary = primary_collection
        self._legacy = tuple(legacy_collections)
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
        return new_document_id() if self._rest is not None else self._repo.new_id()

    def create(self, stream: Stream, credentials: StreamCredentials | None) -> None:
        """Over REST where deployed: one commit creates the stream (refused if its document
        exists) and its credentials, as the repository's batch does."""
        if self._rest is None:
            self._repo.create(stream, credentials)
            return
        document = stream_to_document(stream)
        private = None if credentials is None else credentials_document(credentials)
        writes = [self._rest.create_write(self._primary, stream.id, document)]
        if private is not None:
            writes.append(self._rest.set_write(self._private(stream.id), CREDENTIALS_DOC, private))
        if self._rest.commit(writes) is not None:
            return
        # Ids are random, so an existing document is this very commit whose answer was lost,
        # unless it holds another stream.
        fresh = self._rest.get(self._primary, stream.id)
        if fresh.exists and _carries(fresh, document, []):
            stored = self._rest.get(self._private(stream.id), CREDENTIALS_DOC)
            if stored.to_dict() == private:
                return
        raise ConflictError("The stream was changed concurrently; try again", retry_after_s=1)

    def delete(self, stream_id: str) -> None:
        """Over REST where deployed: the stream and its private documents from every
        collection it is in (the stream with the last chunk: usually one commit in all)."""
        take(snapshot_key(self._primary, stream_id))
        if self._rest is None or not is_document_id(stream_id):
            self._repo.delete(stream_id)
            return
        for collection in (self._primary, *self._legacy):
            private = f"{collection}/{stream_id}/{CREDENTIALS_SUBCOLLECTION}"
            deletes = [self._rest.delete_write(private, i) for i in self._rest.list_ids(private)]
            chunks = [deletes[i : i + BATCH_WRITES] for i in range(0, len(deletes), BATCH_WRITES)]
            chunks = chunks or [[]]
            chunks[-1].append(self._rest.delete_write(collection, stream_id))
            for chunk in chunks:
                self._rest.apply(chunk)

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
            writes.append(self._rest.write_as_read(private, progress_id, fields, progress_snapshot))
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
        if self._rest is None or not is_document_id(live_input_uid):
            self._repo.remember_deleted_input(live_input_uid, stream_id, at)
            return
        note = deleted_input_document(stream_id, at)
        self._rest.apply([self._rest.set_write(DELETED_INPUTS_COLLECTION, live_input_uid, note)])

    def save_credentials(self, stream_id: str, credentials: StreamCredentials) -> None:
        if self._rest is None or self._rest_snapshot(stream_id) is None:
            self._repo.save_credentials(stream_id, credentials)  # a legacy stream moves first
            return
        document = credentials_document(credentials)
        self._rest.apply(
            [self._rest.set_write(self._private(stream_id), CREDENTIALS_DOC, document)]
        )

    def set_display_orders(self, orders: dict[str, int], updated_at: datetime) -> None:
        in_primary = self._rest is not None and all(
            self._rest_snapshot(stream_id) is not None for stream_id in orders
        )
        for stream_id in orders:
            take(snapshot_key(self._primary, stream_id))
        if self._rest is None or not in_primary:
            self._repo.set_display_orders(orders, updated_at)  # legacy streams move first
            return
        writes = [
            self._rest.update_write(
                self._primary, stream_id, {"displayOrder": order, "updatedAt": updated_at}, (), None
            )
            for stream_id, order in orders.items()
        ]
        if self._rest.commit(writes) is not None:
            return
        if not all(self._rest.get(self._primary, stream_id).exists for stream_id in orders):
            raise NotFoundError("A stream to reorder no longer exists")  # nothing written
        raise ConflictError("The streams were changed concurrently; try again", retry_after_s=1)

    def save_whip_session(self, stream_id: str, session: WhipSession) -> None:
        if self._rest is None or self._rest_snapshot(stream_id) is None:
            self._repo.save_whip_session(stream_id, session)  # a legacy stream moves first
            return
        document_id, document = whip_session_id(session.session_id), whip_session_document(session)
        self._rest.apply([self._rest.set_write(self._private(stream_id), document_id, document)])

    def whip_session(self, stream_id: str, session_id: str) -> WhipSession | None:
        if self._rest is None or not is_document_id(stream_id):
            return self._repo.whip_session(stream_id, session_id)
        snapshot = self._rest.get(self._private(stream_id), whip_session_id(session_id))
        return whip_session_of(session_id, snapshot.to_dict() or {}) if snapshot.exists else None

    def delete_whip_session(self, stream_id: str, session_id: str) -> None:
        if self._rest is None or not is_document_id(stream_id):
            self._repo.delete_whip_session(stream_id, session_id)
            return
        write = self._rest.delete_write(self._private(stream_id), whip_session_id(session_id))
        self._rest.apply([write])


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
