"""Stream and memorial documents as Firestore stores them, and the reads of streams over
them whichever client reads Firestore: the full client library (``streams.py``, which writes
too) or the REST reader (``rest.py``), which the viewer functions use so their cold start does
not import gRPC and the client library. Nothing here imports a Google client.
"""

from __future__ import annotations

import logging
import secrets
import string
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, get_args

from pydantic import SecretStr, ValidationError

from common.models.domain import (
    Memorial,
    MonitorKind,
    MonitorProgress,
    RecordingDownload,
    RecordingEntry,
    Stream,
    StreamCredentials,
    StreamStatus,
)
from common.pagination import (
    ID_DESCENDING,
    NAMEABLE_ID,
    SORT_KEYS,
    Listed,
    Position,
    in_order,
    is_sort_value,
    page_of,
    position_of,
)
from common.ports import StreamOrder, StreamPage, StreamQuery, WhipSession
from common.request_scope import remember

log = logging.getLogger(__name__)
CREDENTIALS_SUBCOLLECTION = "private"
CREDENTIALS_DOC = "credentials"
# The field Firestore's TTL policies delete documents by once it has passed
# (firestore.indexes.json): WHIP sessions, deleted-input notes, the creation guards' records.
# A stream's credentials never carry it.
EXPIRES_AT_FIELD = "expiresAt"
# Cloudflare may finish a recording long after its stream was deleted (a slow transcode, a
# retried webhook); a month covers it, then Firestore's TTL policy removes the note.
DELETED_INPUT_RETENTION = timedelta(days=30)
BATCH_WRITES = 400  # below Firestore's 500 writes per commit
# Which stream a deleted live input served, kept for recordings Cloudflare sends late.
DELETED_INPUTS_COLLECTION = "deleted_live_inputs"
MEMORIAL_STREAM_LIMIT = 200


def monitor_progress_id(kind: MonitorKind) -> str:
    """The private document (beside the credentials) of a monitor's progress."""
    return f"monitor-{kind}"


def progress_kept_in_stream(document: dict[str, Any], kind: MonitorKind) -> MonitorProgress | None:
    """Progress that documents written before it moved out of the stream still hold in their
    monitor map (so a chain of checks running during the deploy goes on where it was)."""
    monitor = document.get(f"{kind}Monitor")
    if not isinstance(monitor, dict) or "nextAttempt" not in monitor:
        return None
    return MonitorProgress.model_validate(monitor)


# A listing queries the legacy collections while the request's own thread queries the primary
# one. Threads start on first use (as many as the instance has listings in flight, up to its
# concurrency); both clients are thread-safe.
_LEGACY_QUERIES = ThreadPoolExecutor(max_workers=80, thread_name_prefix="legacy-query")

# Equality filters and orderings `find` can combine; firestore.indexes.json must cover each
# (filter, ordering) pair so Firestore can merge them for multi-filter queries.
FILTER_FIELDS = ("memorialId", "status", "isPublic", "isVisible", "createdBy")
ORDERINGS: dict[str, tuple[tuple[str, str], ...]] = {
    order: tuple((key.field, "DESCENDING" if key.descending else "ASCENDING") for key in keys)
    for order, keys in SORT_KEYS.items()
}
# The tie-breaker every listing query ends with: the direction each index ends __name__ with.
ID_ORDER = ("__name__", "DESCENDING" if ID_DESCENDING else "ASCENDING")

# Legacy statuses found in old documents, mapped the way the frontend's migration did.
_LEGACY_STATUS = {"ended": StreamStatus.COMPLETED, "failed": StreamStatus.ERROR}


# Names the earlier backends wrote beside ours (FRONTEND_CONTRACT.md §2.3): both are written,
# and the legacy one is read where ours is missing.
LEGACY_NAMES = {
    "scheduledDateTime": "scheduledStartTime",
    "actualEndTime": "endTime",
    "cloudflareStreamId": "cloudflareId",
    "recordingPlaybackUrl": "recordingUrl",
}


def _accepts_none(annotation: Any) -> bool:
    return annotation is None or type(None) in get_args(annotation)


# Fields that hold a value in our documents but may hold null in legacy ones: a null there
# reads as the field's default (absent visibility means visible, as the old UI did).
_NEVER_NULL = frozenset(
    info.alias or name
    for name, info in Stream.model_fields.items()
    if not _accepts_none(info.annotation)
)


def stream_from_fields(
    stream_id: str, data: dict[str, Any], *, created_fallback: datetime | None = None
) -> Stream:
    """The stream a stored document describes, whichever backend wrote it."""
    fields = {k: v for k, v in data.items() if v is not None or k not in _NEVER_NULL}
    for legacy, ours in LEGACY_NAMES.items():
        if fields.get(ours) is None and fields.get(legacy) is not None:
            fields[ours] = fields[legacy]
    fields["status"] = _known_status(fields.get("status"))
    fields.setdefault("title", "")
    fields.setdefault("createdBy", "")
    fields.setdefault("createdAt", created_fallback)
    fields.setdefault("updatedAt", fields["createdAt"])
    fields["recordings"] = tuple(
        _entry_from_map(item)
        for item in data.get("recordings") or ()
        if isinstance(item, dict) and _video_uid_of(item)
    )
    fields["id"] = stream_id
    return Stream.model_validate(fields)


def _known_status(value: object) -> StreamStatus:
    text = str(value or StreamStatus.SCHEDULED)
    if text in StreamStatus.__members__.values():
        return StreamStatus(text)
    return _LEGACY_STATUS.get(text, StreamStatus.READY)


def stream_to_document(stream: Stream) -> dict[str, Any]:
    """The Firestore fields of ``stream``, with legacy and unified names kept equal."""
    document: dict[str, Any] = _storable(stream.model_dump(exclude={"id", "recordings"}))
    document |= {legacy: document[ours] for legacy, ours in LEGACY_NAMES.items()}
    document["recordings"] = [
        _entry_to_map(entry, number) for number, entry in enumerate(stream.recordings, start=1)
    ]
    return document


# Publishing secrets the earlier backends stored on the stream document itself, where client
# SDK readers would see them. They never stay there: the live input gives them back on demand.
LEGACY_SECRET_FIELDS = (
    "streamKey",
    "streamUrl",
    "rtmpUrl",
    "rtmpStreamKey",
    "whipUrl",
    # Whole live-input objects (rtmps.streamKey, srt.passphrase, webRTC.url are credentials).
    "rtmps",
    "srt",
    "webRTC",
    "liveInput",
)


def stream_changes(
    before: Stream, after: Stream, stored: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The fields a write from ``before`` to ``after`` sets, and the publishing secrets an
    earlier backend left in the ``stored`` document that the same write removes (none when
    nothing else changes: no write goes out for them alone)."""
    old_fields, new_fields = stream_to_document(before), stream_to_document(after)
    changed = {key: value for key, value in new_fields.items() if old_fields[key] != value}
    if not changed:
        return {}, []
    return changed, [name for name in LEGACY_SECRET_FIELDS if name in stored]


def _storable(value: Any) -> Any:
    """``value`` in the types Firestore stores (plain strings for enums, lists for tuples)."""
    if isinstance(value, dict):
        return {key: _storable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_storable(item) for item in value]
    if isinstance(value, StrEnum):
        return str(value)
    return value


def _entry_to_map(entry: RecordingEntry, sequence: int) -> dict[str, Any]:
    # Field names of the unified frontend's `recordings[]` (FRONTEND_CONTRACT.md §2.2).
    return {
        "id": entry.video_uid,
        "cloudflareVideoId": entry.video_uid,
        "state": entry.state,
        "recordingReady": entry.ready,
        "recordingUrl": entry.hls_url,
        "dashUrl": entry.dash_url,
        "thumbnailUrl": entry.thumbnail_url,
        "duration": entry.duration,
        "size": entry.size,
        "createdAt": entry.created,
        "modifiedAt": entry.modified,
        "sequenceNumber": sequence,
        "hidden": entry.hidden,
        "clippedFrom": entry.clipped_from,
        "download": entry.download.model_dump() if entry.download else None,
    }


def _video_uid_of(item: dict[str, Any]) -> str | None:
    # The SvelteKit server keyed entries by its own `recording_<ts>` id and kept the video's
    # uid in `cloudflareVideoId`; ours carry the uid under both names.
    uid = item.get("cloudflareVideoId") or item.get("videoId") or item.get("id")
    return str(uid) if uid else None


def _entry_from_map(item: dict[str, Any]) -> RecordingEntry:
    return RecordingEntry(
        video_uid=str(_video_uid_of(item)),
        state=str(item.get("state") or ("ready" if item.get("recordingReady") else "unknown")),
        ready=bool(item.get("recordingReady")),
        hls_url=item.get("recordingUrl"),
        dash_url=item.get("dashUrl"),
        thumbnail_url=item.get("thumbnailUrl"),
        duration=item.get("duration"),
        size=item.get("size"),
        created=item.get("createdAt"),
        modified=item.get("modifiedAt"),
        hidden=item.get("hidden") is True,
        clipped_from=item.get("clippedFrom"),
        download=(
            RecordingDownload.model_validate(item["download"])
            if isinstance(item.get("download"), dict)
            else None
        ),
    )


def _listed(snapshot: Any, stream: Stream | None, order: StreamOrder) -> Listed:
    """The document as the listing in ``order`` read it: where it sits by its values as
    stored, and whether a cursor can carry them and its id."""
    values = tuple(snapshot.get(key.field) for key in SORT_KEYS[order])
    nameable = bool(NAMEABLE_ID.fullmatch(snapshot.id)) and all(map(is_sort_value, values))
    return Listed(Position(values, snapshot.id), stream, nameable)


def stream_from_snapshot(snapshot: Any) -> Stream:
    """Parse a document snapshot into a ``Stream`` (documents written by the earlier backend
    may lack ``createdAt``: the document's own creation time stands in)."""
    return stream_from_fields(
        snapshot.id, snapshot.to_dict() or {}, created_fallback=snapshot.create_time
    )


def memorial_of(memorial_id: str, data: dict[str, Any] | None) -> Memorial | None:
    """The memorial a stored document describes (``None``: no document)."""
    if data is None:
        return None
    return Memorial(
        id=memorial_id,
        owner_uid=data.get("ownerUid") or data.get("creatorUid"),
        funeral_director_uid=data.get("funeralDirectorUid"),
        is_public=data.get("isPublic") is not False,
        loved_one_name=data.get("lovedOneName"),
        full_slug=data.get("fullSlug") or data.get("slug"),
    )


def deleted_stream_of(data: dict[str, Any] | None) -> str | None:
    """The stream a note of ``DELETED_INPUTS_COLLECTION`` names, if any."""
    return str((data or {}).get("streamId") or "") or None


def credentials_of(data: dict[str, Any]) -> StreamCredentials:
    """The publishing credentials a stream's private credentials document holds."""
    return StreamCredentials(
        rtmp_url=data["streamUrl"],
        stream_key=SecretStr(data["streamKey"]),
        whip_url=SecretStr(data["whipUrl"]),
    )


def deleted_input_document(stream_id: str, at: datetime) -> dict[str, Any]:
    """The note of ``DELETED_INPUTS_COLLECTION`` that a deleted live input served
    ``stream_id``, kept for recordings Cloudflare sends late."""
    return {"streamId": stream_id, "deletedAt": at, EXPIRES_AT_FIELD: at + DELETED_INPUT_RETENTION}


def whip_session_id(session_id: str) -> str:
    """The private document of a browser broadcast's session."""
    return f"whip-{session_id}"


def whip_session_document(session: WhipSession) -> dict[str, Any]:
    return {"resourceUrl": session.resource_url, EXPIRES_AT_FIELD: session.expires_at}


def whip_session_of(session_id: str, data: dict[str, Any]) -> WhipSession:
    # Sessions stored before expiry existed keep their old behaviour: no expiry.
    expires_at = data.get(EXPIRES_AT_FIELD) or datetime.max.replace(tzinfo=UTC)
    return WhipSession(session_id, data.get("resourceUrl"), expires_at)


def credentials_document(credentials: StreamCredentials) -> dict[str, str]:
    """The private credentials document of a stream's publishing credentials."""
    return {
        "streamUrl": credentials.rtmp_url,
        "streamKey": credentials.stream_key.get_secret_value(),
        "whipUrl": credentials.whip_url.get_secret_value(),
    }


def new_document_id() -> str:
    """A fresh document id as the client library makes them: 20 random letters and digits."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(20))


_ID_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class DocumentQuery:
    """Equality filters, orderings (the last one by ``__name__``, whose cursor value is the
    document id), where to start (just after these values of the orderings), how many
    documents to skip, then at most how many to give."""

    filters: dict[str, Any]
    orderings: tuple[tuple[str, str], ...]
    start_after: tuple[Any, ...] | None
    offset: int
    limit: int


# Where a stream names its Cloudflare live input: our field, then the earlier backends' name.
LIVE_INPUT_FIELDS = (
    "cloudflareId",
    *(legacy for legacy, ours in LEGACY_NAMES.items() if ours == "cloudflareId"),
)


def snapshot_key(collection: str, stream_id: str) -> str:
    """Under which key a request remembers the snapshot of a stream it read."""
    return f"{collection}/{stream_id}"


class StreamDocumentReads(ABC):
    """``StreamReads`` over a primary collection of stream documents and the legacy ones an
    earlier backend wrote (served from there until moved): subclasses say how one document is
    fetched and one query runs. ``_streams`` and ``_legacy`` are their collection handles."""

    _streams: Any
    _legacy: Sequence[Any]
    _primary_name: str  # the primary collection's name

    @abstractmethod
    def _in_primary(self, snapshot: Any) -> bool:
        """Whether ``snapshot`` is of the primary collection (not a legacy one)."""

    @abstractmethod
    def _locate(self, stream_id: str) -> Any | None:
        """The stream's snapshot in the primary collection or, failing that, a legacy one."""

    @abstractmethod
    def _run_query(self, collection: Any, query: DocumentQuery) -> list[Any]:
        """The snapshots ``query`` finds in ``collection``."""

    def get(self, stream_id: str) -> Stream | None:
        snapshot = self._locate(stream_id)
        return None if snapshot is None else self._remembered(snapshot)

    def find_by_live_input(self, live_input_uid: str) -> Stream | None:
        for collection in (self._streams, *self._legacy):
            for field in LIVE_INPUT_FIELDS:
                found = self._run_query(
                    collection, DocumentQuery({field: live_input_uid}, (), None, 0, 1)
                )
                if found:
                    return self._remembered(found[0])
        return None

    def _remembered(self, snapshot: Any) -> Stream:
        """The stream of ``snapshot``, remembered for a write later in this request, which
        starts from this read whichever client made it (conditional on its update time)."""
        if self._in_primary(snapshot):
            remember(snapshot_key(self._primary_name, snapshot.id), snapshot)
        return stream_from_snapshot(snapshot)

    def find(self, query: StreamQuery) -> StreamPage:
        after = position_of(query)
        wanted = query.limit + 1
        if not self._legacy:
            rows = self._query(self._streams, query, after, query.offset, wanted)
            return page_of(query, rows)
        # Merging collections: each gives its first offset+limit+1 after the cursor's position,
        # in Firestore's order, which the merge keeps (by the values as stored), cut after.
        wanted += query.offset
        legacy = [
            # In the request's context: what they log carries the request's trace.
            _LEGACY_QUERIES.submit(
                copy_context().run, self._query, collection, query, after, 0, wanted
            )
            for collection in self._legacy
        ]
        primary = self._query(self._streams, query, after, 0, wanted)
        seen: dict[str, Listed] = {}
        # The primary collection's first: its copy of a stream wins, even one unreadable.
        # (A share that came back full holds more than offset + limit documents by itself,
        # so the merged page then says more follow.)
        for rows in (primary, *(pending.result() for pending in legacy)):
            for row in rows:
                seen.setdefault(row.place.stream_id, row)
        return page_of(query, in_order(list(seen.values()), query.order)[query.offset :])

    def _query(
        self, collection: Any, query: StreamQuery, after: Position | None, offset: int, limit: int
    ) -> list[Listed]:
        """The documents of ``query`` in ``collection``, in order, each with its place and its
        stream (``None`` where unreadable as one)."""
        values = (
            query.memorial_id,
            str(query.status) if query.status else None,
            query.is_public,
            query.is_visible,
            query.created_by,
        )
        request = DocumentQuery(
            filters={
                field: value
                for field, value in zip(FILTER_FIELDS, values, strict=True)
                if value is not None
            },
            orderings=(*ORDERINGS[query.order], ID_ORDER),
            # Values, not a snapshot: the page goes on even if that stream was deleted since.
            start_after=None if after is None else (*after.values, after.stream_id),
            offset=offset,
            limit=limit,
        )
        snapshots = self._run_query(collection, request)
        rows = []
        for snapshot in snapshots:
            stream: Stream | None = None
            try:
                stream = stream_from_snapshot(snapshot)
            except (ValidationError, KeyError, ValueError, TypeError):
                log.warning("skipping unreadable stream document %s", snapshot.reference.path)
            rows.append(_listed(snapshot, stream, query.order))
        return rows

    def list_by_memorial(self, memorial_id: str, *, visible_only: bool) -> list[Stream]:
        page = self.find(
            StreamQuery(
                memorial_id=memorial_id,
                is_visible=True if visible_only else None,
                limit=MEMORIAL_STREAM_LIMIT,
            )
        )
        return page.streams
