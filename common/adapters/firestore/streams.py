"""Streams, their credentials and memorials in Firestore (google-cloud-firestore)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core import retry
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import ValidationError

from common.adapters.firestore.documents import (
    BATCH_WRITES,
    CREDENTIALS_DOC,
    CREDENTIALS_SUBCOLLECTION,
    DELETED_INPUTS_COLLECTION,
    EXPIRES_AT_FIELD,
    LEGACY_SECRET_FIELDS,
    DocumentQuery,
    StreamDocumentReads,
    _video_uid_of,
    credentials_document,
    credentials_of,
    deleted_input_document,
    deleted_stream_of,
    memorial_of,
    monitor_progress_id,
    progress_kept_in_stream,
    snapshot_key,
    stream_changes,
    stream_from_snapshot,
    stream_to_document,
    whip_session_document,
    whip_session_id,
    whip_session_of,
)
from common.errors import ConflictError, NotFoundError, UnavailableError
from common.models.domain import Memorial, MonitorKind, MonitorProgress, Stream, StreamCredentials
from common.ports import MonitorCheck, PendingMigration, WhipSession
from common.request_scope import take

UPDATE_ATTEMPTS = 25
MOVED_PRIVATE_DOCUMENTS = 100
log = logging.getLogger(__name__)
# Every call gets a short, explicit budget: a request must fail fast with a 503 rather than
# hang for the client library's default minute when the database is unreachable.
REQUEST_TIME_LIMITS: dict[str, Any] = {
    "retry": retry.Retry(
        predicate=retry.if_transient_error, initial=0.1, maximum=1.0, multiplier=2.0, timeout=6.0
    ),
    "timeout": 5.0,
}
# A full scan of a collection (the admin migration) gets a minute, not a request's budget.
SCAN_TIME_LIMITS: dict[str, Any] = {"timeout": 60.0}


def _canonical_document(snapshot: Any) -> dict[str, Any]:
    """The document in our shape; recording entries keep the fields we do not know."""
    raw = snapshot.to_dict() or {}
    canonical = stream_to_document(stream_from_snapshot(snapshot))
    stored = {
        _video_uid_of(item): item
        for item in raw.get("recordings") or []
        if isinstance(item, dict) and _video_uid_of(item)
    }
    canonical["recordings"] = [
        stored.get(entry["id"], {}) | entry for entry in canonical["recordings"]
    ]
    return canonical


def _normalized_changes(snapshot: Any) -> tuple[dict[str, Any], list[str]]:
    """The canonical fields that differ from the stored ones, and the secrets present."""
    raw = snapshot.to_dict() or {}
    canonical = _canonical_document(snapshot)
    missing = object()
    changes = {k: v for k, v in canonical.items() if raw.get(k, missing) != v}
    return changes, [field for field in LEGACY_SECRET_FIELDS if field in raw]


def normalization_actions(snapshot: Any) -> list[str]:
    """Human-readable list of what normalising this document would change."""
    raw = snapshot.to_dict() or {}
    changes, secrets = _normalized_changes(snapshot)
    actions = [f"remove credential field {field}" for field in secrets]
    for field, value in changes.items():
        if field == "status":
            actions.append(f"status {raw.get('status')!r} -> {value!r}")
        else:
            actions.append(f"{'set' if field in raw else 'add'} {field}")
    return actions


def normalize_in_place(client: Any, snapshot: Any) -> None:
    """Write the canonical fields (both name sets, mapped status, an ``actualStartTime`` the
    memorial page's ordering needs) and drop stored secrets; other fields stay untouched."""
    changes, secrets = _normalized_changes(snapshot)
    update = changes | dict.fromkeys(secrets, firestore.DELETE_FIELD)
    if update:
        snapshot.reference.update(
            update,
            option=client.write_option(last_update_time=snapshot.update_time),
            **REQUEST_TIME_LIMITS,
        )


def move_to_collection(client: Any, snapshot: Any, target: Any) -> None:
    """Move a stream document (with its private subcollection) to ``target`` under the same
    id, normalised. Atomic; does nothing if the target exists or the source changed meanwhile
    (the caller reads again)."""
    raw = snapshot.to_dict() or {}
    kept = {k: v for k, v in raw.items() if k not in LEGACY_SECRET_FIELDS}
    destination = target.document(snapshot.id)
    batch = client.batch()
    batch.create(destination, kept | _canonical_document(snapshot))
    private = list(
        snapshot.reference.collection(CREDENTIALS_SUBCOLLECTION).stream(**REQUEST_TIME_LIMITS)
    )
    now = datetime.now(UTC)
    # The credentials and the WHIP sessions that can still be ended; expired sessions are
    # left behind with the old document and deleted after the move.
    carried = [
        d
        for d in private
        if d.id == CREDENTIALS_DOC or ((d.to_dict() or {}).get(EXPIRES_AT_FIELD) or now) > now
    ][:MOVED_PRIVATE_DOCUMENTS]
    for document in carried:
        batch.set(
            destination.collection(CREDENTIALS_SUBCOLLECTION).document(document.id),
            document.to_dict() or {},
        )
    batch.delete(
        snapshot.reference, option=client.write_option(last_update_time=snapshot.update_time)
    )
    try:
        batch.commit(**REQUEST_TIME_LIMITS)
    except (gexc.Conflict, gexc.FailedPrecondition, gexc.NotFound):
        return
    for start in range(0, len(private), BATCH_WRITES):
        cleanup = client.batch()
        for document in private[start : start + BATCH_WRITES]:
            cleanup.delete(document.reference)
        cleanup.commit(**REQUEST_TIME_LIMITS)


def _unchanged_since(client: firestore.Client, snapshot: Any) -> Any:
    """The precondition of a write that starts from ``snapshot``: the document is as it read.
    A REST read gives its update time as RFC 3339 text, to the nanosecond."""
    written = snapshot.update_time
    if isinstance(written, str):
        exact = Timestamp()
        exact.FromJsonString(written)
        written = exact
    return client.write_option(last_update_time=written)


@contextmanager
def firestore_errors() -> Iterator[None]:
    """Translate Firestore client failures into the app taxonomy."""
    try:
        yield
    except (gexc.Conflict, gexc.Aborted) as exc:
        raise ConflictError(
            "The stream was changed concurrently; try again", retry_after_s=1
        ) from exc
    except (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.InternalServerError) as exc:
        raise UnavailableError("The database is temporarily unavailable", retry_after_s=2) from exc
    except gexc.RetryError as exc:
        raise UnavailableError("The database is temporarily unavailable", retry_after_s=2) from exc


class FirestoreStreamRepository(StreamDocumentReads):
    """``StreamRepository`` over one Firestore collection."""

    def __init__(
        self, client: firestore.Client, collection: str, legacy_collections: Sequence[str] = ()
    ) -> None:
        self._client = client
        self._streams = client.collection(collection)
        self._primary_name = collection
        # Streams an earlier backend wrote elsewhere are served from there until their first
        # write (or the admin migration) moves them here.
        self._legacy = [client.collection(name) for name in legacy_collections]
        self._deleted_inputs = client.collection(DELETED_INPUTS_COLLECTION)

    def new_id(self) -> str:
        return str(self._streams.document().id)

    def _in_primary(self, snapshot: Any) -> bool:
        return bool(snapshot.reference.parent.id == self._streams.id)

    def _read_for_write(self, ref: Any, stream_id: str, attempt: int) -> Any:
        """The snapshot a write starts from: on the first attempt the one this request read,
        by this client or over REST (the write is conditional on it, so a stale one only costs
        a retry)."""
        remembered = take(snapshot_key(self._primary_name, stream_id))
        if attempt == 0 and remembered is not None:
            return remembered
        return ref.get(**REQUEST_TIME_LIMITS)

    def _locate(self, stream_id: str) -> Any | None:
        """The stream's snapshot in this collection or, failing that, a legacy one."""
        for collection in (self._streams, *self._legacy):
            with firestore_errors():
                snapshot = collection.document(stream_id).get(**REQUEST_TIME_LIMITS)
            if snapshot.exists:
                return snapshot
        return None

    def _run_query(self, collection: Any, query: DocumentQuery) -> list[Any]:
        request: Any = collection
        for field, value in query.filters.items():
            request = request.where(filter=FieldFilter(field, "==", value))
        for field, direction in query.orderings:
            request = request.order_by(field, direction=direction)
        if query.start_after is not None:
            request = request.start_after(list(query.start_after))
        if query.offset:
            request = request.offset(query.offset)
        with firestore_errors():
            return list(request.limit(query.limit).stream(**REQUEST_TIME_LIMITS))

    def _move_from_legacy(self, stream_id: str) -> bool:
        """Move a legacy stream here before writing to it, so triggers and the site's pages
        see it. Whether it was found in a legacy collection (moved, or moved concurrently)."""
        for collection in self._legacy:
            snapshot = collection.document(stream_id).get(**REQUEST_TIME_LIMITS)
            if snapshot.exists:
                move_to_collection(self._client, snapshot, self._streams)
                return True
        return False

    def create(self, stream: Stream, credentials: StreamCredentials | None) -> None:
        ref = self._streams.document(stream.id)
        batch = self._client.batch()
        batch.create(ref, stream_to_document(stream))
        if credentials is not None:
            batch.set(self._credentials_ref(stream.id), credentials_document(credentials))
        with firestore_errors():
            batch.commit(**REQUEST_TIME_LIMITS)

    def update(self, stream_id: str, change: Callable[[Stream], Stream]) -> Stream:
        """Optimistic read-modify-write: the write only lands if nobody wrote in between.

        A precondition on the document's update time replaces a transaction, so concurrent
        writers (webhooks, tasks, triggers) retry instead of holding locks on each other.
        """
        ref = self._streams.document(stream_id)
        for attempt in range(UPDATE_ATTEMPTS):
            with firestore_errors():
                snapshot = self._read_for_write(ref, stream_id, attempt)
                if not snapshot.exists and self._move_from_legacy(stream_id):
                    continue
            if not snapshot.exists:
                raise NotFoundError("Stream not found")
            before = stream_from_snapshot(snapshot)
            # model_copy does not validate: re-check so a bug can never store an invalid stream.
            after = Stream.model_validate(change(before).model_dump())
            changed, secrets = stream_changes(before, after, snapshot.to_dict() or {})
            changed |= dict.fromkeys(secrets, firestore.DELETE_FIELD)
            if not changed:
                return after
            try:
                with firestore_errors():
                    ref.update(
                        changed,
                        option=_unchanged_since(self._client, snapshot),
                        **REQUEST_TIME_LIMITS,
                    )
                return after
            except gexc.FailedPrecondition:
                # Someone wrote between our read and our write: read again and re-apply.
                time.sleep(random.uniform(0, 0.05 * (attempt + 1)))  # noqa: S311 - jitter
        raise ConflictError(
            "The stream is being changed by another request; try again", retry_after_s=1
        )

    def delete(self, stream_id: str) -> None:
        """Delete the stream from every collection it is in, with its private documents."""
        for collection in (self._streams, *self._legacy):
            ref = collection.document(stream_id)
            with firestore_errors():
                private = list(
                    ref.collection(CREDENTIALS_SUBCOLLECTION).list_documents(**REQUEST_TIME_LIMITS)
                )
                # The stream goes with the last chunk: usually one atomic batch in all.
                chunks = [
                    private[i : i + BATCH_WRITES] for i in range(0, len(private), BATCH_WRITES)
                ]
                for number, chunk in enumerate(chunks or [[]], start=1):
                    batch = self._client.batch()
                    for document in chunk:
                        batch.delete(document)
                    if number == max(len(chunks), 1):
                        batch.delete(ref)
                    batch.commit(**REQUEST_TIME_LIMITS)

    def monitor_progress(self, stream_id: str, kind: MonitorKind) -> MonitorProgress | None:
        ref = self._streams.document(stream_id)
        with firestore_errors():
            progress = self._progress_ref(stream_id, kind).get(**REQUEST_TIME_LIMITS)
            if progress.exists:
                return MonitorProgress.model_validate(progress.to_dict() or {})
            stream = ref.get(**REQUEST_TIME_LIMITS)
        return progress_kept_in_stream(stream.to_dict() or {} if stream.exists else {}, kind)

    def record_check(self, stream_id: str, kind: MonitorKind, change: MonitorCheck) -> Stream:
        """Optimistic like ``update``: one batch writes the progress (and the stream, if it
        changed), each on the condition that nobody wrote it since it was read."""
        ref = self._streams.document(stream_id)
        progress_ref = self._progress_ref(stream_id, kind)
        for attempt in range(UPDATE_ATTEMPTS):
            with firestore_errors():
                snapshot = self._read_for_write(ref, stream_id, attempt)
                if not snapshot.exists and self._move_from_legacy(stream_id):
                    continue
                progress_snapshot = progress_ref.get(**REQUEST_TIME_LIMITS)
            if not snapshot.exists:
                raise NotFoundError("Stream not found")
            before = stream_from_snapshot(snapshot)
            progress = (
                MonitorProgress.model_validate(progress_snapshot.to_dict() or {})
                if progress_snapshot.exists
                else progress_kept_in_stream(snapshot.to_dict() or {}, kind)
            )
            changed_stream, claimed = change(before, progress)
            after = Stream.model_validate(changed_stream.model_dump())
            if claimed == progress and after == before:
                return after
            batch = self._client.batch()
            if claimed != progress and claimed is not None:
                fields = claimed.model_dump()
                if progress_snapshot.exists:
                    when = progress_snapshot.update_time
                    option = self._client.write_option(last_update_time=when)
                    batch.update(progress_ref, fields, option=option)
                else:
                    batch.create(progress_ref, fields)
            changed, _ = stream_changes(before, after, {})
            if changed:
                option = _unchanged_since(self._client, snapshot)
                batch.update(ref, changed, option=option)
            try:
                with firestore_errors():
                    batch.commit(**REQUEST_TIME_LIMITS)
                return after
            except (gexc.FailedPrecondition, gexc.AlreadyExists, ConflictError):
                # Someone wrote either document since we read it: read again and re-apply.
                time.sleep(random.uniform(0, 0.05 * (attempt + 1)))  # noqa: S311 - jitter
        raise ConflictError(
            "The stream is being changed by another request; try again", retry_after_s=1
        )

    def _progress_ref(self, stream_id: str, kind: MonitorKind) -> Any:
        return self._private(stream_id).document(monitor_progress_id(kind))

    def remember_deleted_input(self, live_input_uid: str, stream_id: str, at: datetime) -> None:
        with firestore_errors():
            self._deleted_inputs.document(live_input_uid).set(
                deleted_input_document(stream_id, at), **REQUEST_TIME_LIMITS
            )

    def deleted_stream_of_input(self, live_input_uid: str) -> str | None:
        with firestore_errors():
            snapshot = self._deleted_inputs.document(live_input_uid).get(**REQUEST_TIME_LIMITS)
        return deleted_stream_of(snapshot.to_dict()) if snapshot.exists else None

    def get_credentials(self, stream_id: str) -> StreamCredentials | None:
        with firestore_errors():
            snapshot = self._credentials_ref(stream_id).get(**REQUEST_TIME_LIMITS)
        if not snapshot.exists:
            return None
        return credentials_of(snapshot.to_dict() or {})

    def save_credentials(self, stream_id: str, credentials: StreamCredentials) -> None:
        with firestore_errors():
            self._ensure_in_primary(stream_id)
            self._credentials_ref(stream_id).set(
                credentials_document(credentials), **REQUEST_TIME_LIMITS
            )

    def _ensure_in_primary(self, stream_id: str) -> None:
        """Private documents go under the stream's current place: move a legacy one first."""
        if self._legacy and not self._streams.document(stream_id).get(**REQUEST_TIME_LIMITS).exists:
            self._move_from_legacy(stream_id)

    def set_display_orders(self, orders: dict[str, int], updated_at: datetime) -> None:
        with firestore_errors():
            for stream_id in orders:
                self._ensure_in_primary(stream_id)
        batch = self._client.batch()
        for stream_id, order in orders.items():
            batch.update(
                self._streams.document(stream_id),
                {"displayOrder": order, "updatedAt": updated_at},
            )
        try:
            with firestore_errors():
                batch.commit(**REQUEST_TIME_LIMITS)
        except gexc.NotFound as exc:  # deleted since the caller checked it; nothing written
            raise NotFoundError("A stream to reorder no longer exists") from exc

    def save_whip_session(self, stream_id: str, session: WhipSession) -> None:
        with firestore_errors():
            self._ensure_in_primary(stream_id)
            self._private(stream_id).document(whip_session_id(session.session_id)).set(
                whip_session_document(session), **REQUEST_TIME_LIMITS
            )

    def whip_session(self, stream_id: str, session_id: str) -> WhipSession | None:
        with firestore_errors():
            snapshot = (
                self._private(stream_id)
                .document(whip_session_id(session_id))
                .get(**REQUEST_TIME_LIMITS)
            )
        return whip_session_of(session_id, snapshot.to_dict() or {}) if snapshot.exists else None

    def delete_whip_session(self, stream_id: str, session_id: str) -> None:
        with firestore_errors():
            self._private(stream_id).document(whip_session_id(session_id)).delete(
                **REQUEST_TIME_LIMITS
            )

    def _private(self, stream_id: str) -> Any:
        return self._streams.document(stream_id).collection(CREDENTIALS_SUBCOLLECTION)

    def pending_migrations(self) -> list[PendingMigration]:
        pending: list[PendingMigration] = []
        with firestore_errors():
            current = {
                s.id: s for s in self._streams.order_by("__name__").stream(**SCAN_TIME_LIMITS)
            }
            for snapshot in current.values():
                actions = self._readable_actions(snapshot)
                if actions is None:
                    pending.append(_unreadable(snapshot, self._streams.id))
                elif actions:
                    pending.append(
                        PendingMigration(
                            snapshot.id, self._streams.id, tuple(actions), False, snapshot
                        )
                    )
            for collection in self._legacy:
                for snapshot in collection.order_by("__name__").stream(**SCAN_TIME_LIMITS):
                    if snapshot.id in current:
                        conflict = f"{self._streams.id}/{snapshot.id} exists: left in place"
                        pending.append(
                            PendingMigration(
                                snapshot.id, collection.id, (conflict,), True, snapshot
                            )
                        )
                        continue
                    actions = self._readable_actions(snapshot)
                    if actions is None:
                        pending.append(_unreadable(snapshot, collection.id))
                        continue
                    actions = [f"move to {self._streams.id}", *actions]
                    pending.append(
                        PendingMigration(
                            snapshot.id, collection.id, tuple(actions), False, snapshot
                        )
                    )
        return pending

    @staticmethod
    def _readable_actions(snapshot: Any) -> list[str] | None:
        try:
            return normalization_actions(snapshot)
        except (ValidationError, KeyError, ValueError, TypeError):
            return None

    def apply_migration(self, item: PendingMigration) -> None:
        if item.conflict:
            return
        with firestore_errors():
            if item.collection == self._streams.id:
                try:
                    normalize_in_place(self._client, item.handle)
                except gexc.FailedPrecondition:
                    return  # written meanwhile: the next run sees the new state
            else:
                move_to_collection(self._client, item.handle, self._streams)

    def _credentials_ref(self, stream_id: str) -> Any:
        return self._private(stream_id).document(CREDENTIALS_DOC)


def _unreadable(snapshot: Any, collection: str) -> PendingMigration:
    """A document that is no stream we can read: reported, left for a person to look at."""
    return PendingMigration(
        snapshot.id, collection, ("unreadable as a stream: left in place",), True, snapshot
    )


class FirestoreMemorialDirectory:
    """``MemorialDirectory`` over the ``memorials`` collection."""

    def __init__(self, client: firestore.Client, collection: str) -> None:
        self._client = client
        self._memorials = client.collection(collection)

    def get(self, memorial_id: str) -> Memorial | None:
        with firestore_errors():
            snapshot = self._memorials.document(memorial_id).get(**REQUEST_TIME_LIMITS)
        return _memorial_of(snapshot)

    def get_many(self, memorial_ids: Collection[str]) -> dict[str, Memorial | None]:
        if not memorial_ids:
            return {}
        unique = dict.fromkeys(memorial_ids)
        references = [self._memorials.document(memorial_id) for memorial_id in unique]
        with firestore_errors():
            snapshots = list(self._client.get_all(references, **REQUEST_TIME_LIMITS))
        found = {snapshot.id: _memorial_of(snapshot) for snapshot in snapshots}
        return {memorial_id: found.get(memorial_id) for memorial_id in unique}


def _memorial_of(snapshot: Any) -> Memorial | None:
    return memorial_of(snapshot.id, snapshot.to_dict() or {} if snapshot.exists else None)
