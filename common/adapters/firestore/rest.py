"""Reads and writes of Firestore over its REST API, on the standard library's HTTP client.

The viewer functions (listings, a stream's status, embed info, recordings) only read, and they
are the ones a funeral's audience starts cold. Importing google-cloud-firestore (gRPC,
protobuf, the async clients) is most of such a cold start, so they read through this instead;
``http.client`` is already loaded by functions-framework. The writers commit here too
(``deferred.py``, ``rest_guards.py``, ``invitations.py``, ``memorial_events.py``): an update
conditional on the update time read, a creation on there being no document, the other writes
unconditionally (``apply``); what a refused condition leaves to the client library's
repository (``streams.py``) is there.

Against the emulator (``FIRESTORE_EMULATOR_HOST``) requests carry the emulator's admin token;
in production an access token of the instance's service account from the metadata server,
the same identity the client library uses (security rules do not apply to either).
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from common.adapters.firestore.documents import (
    CREDENTIALS_DOC,
    CREDENTIALS_SUBCOLLECTION,
    DELETED_INPUTS_COLLECTION,
    DocumentQuery,
    StreamDocumentReads,
    credentials_of,
    deleted_stream_of,
    memorial_of,
)
from common.adapters.google_errors import GoogleError, google_error
from common.adapters.google_tokens import (
    AccessTokens,
    EmulatorToken,
    authorized_exchange,
    instance_tokens,
)
from common.adapters.keep_alive import KeepAliveConnections
from common.errors import UnavailableError
from common.models.domain import Memorial, StreamCredentials

PRODUCTION_ORIGIN = "https://firestore.googleapis.com"
# As the client library's calls in streams.py: one attempt at most 5 s, retried on transient
# failures for at most 6 s in all, then a 503 rather than a hung request.
ATTEMPT_TIMEOUT_S = 5.0
TOTAL_BUDGET_S = 6.0
LIST_PAGE_SIZE = 300
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
_PLAIN_FIELD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


class FirestoreRestError(RuntimeError):
    """Firestore refused a read for a reason retrying cannot change (a bad request, a missing
    permission): a fault of this deployment, not of the caller."""


@dataclass(frozen=True)
class RestReference:
    """Where a document lives, relative to the database's documents (``streams/abc``)."""

    path: str


@dataclass(frozen=True)
class RestSnapshot:
    """A document as read, shaped like the client library's snapshots where the readers of
    documents.py use them: ``id``, ``reference.path``, ``exists``, ``create_time``,
    ``to_dict()`` and ``get(field)``; and ``update_time``, as the API wrote it (RFC 3339 to
    the nanosecond), for a write that starts from this read and is conditional on it."""

    id: str
    reference: RestReference
    exists: bool
    create_time: datetime | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    update_time: str | None = None

    @classmethod
    def missing(cls, path: str) -> RestSnapshot:
        """No document at ``path``."""
        return cls(path.rsplit("/", 1)[-1], RestReference(path), exists=False)

    def written(
        self, fields: dict[str, Any], deleted: Collection[str], update_time: str
    ) -> RestSnapshot:
        """This document as a write of ``fields`` and ``deleted`` left it at ``update_time``."""
        kept = {key: value for key, value in self.fields.items() if key not in deleted}
        return replace(self, fields=kept | fields, update_time=update_time)

    def to_dict(self) -> dict[str, Any] | None:
        return dict(self.fields) if self.exists else None

    def get(self, field_path: str) -> Any:
        """The field's value (``KeyError`` if absent, as the client library raises)."""
        value: Any = self.fields
        for part in field_path.split("."):
            if not isinstance(value, dict) or part not in value:
                raise KeyError(field_path)
            value = value[part]
        return value


# Values: Firestore's JSON encoding (google.firestore.v1.Value) to and from what the client
# library gives: None, bool, int, float, str, bytes, datetime (UTC), lists and dicts.
# References come back as their path, geopoints as {"latitude", "longitude"}.


def decode_value(value: dict[str, Any]) -> Any:
    """The Python value of one Firestore JSON value."""
    for kind, item in value.items():
        decode = _DECODERS.get(kind)
        if decode is not None:
            return decode(item)
    return None


def decode_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: decode_value(item) for name, item in fields.items()}


def encode_value(value: Any) -> dict[str, Any]:
    """One Firestore JSON value (the types a filter or a cursor carries)."""
    if value is None:
        return {"nullValue": None}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"integerValue": str(value)}
    if isinstance(value, float) and math.isfinite(value):  # a cursor carries finite ones only
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, datetime):
        return {"timestampValue": format_timestamp(value)}
    raise TypeError(f"no Firestore value for {type(value).__name__}")


def encode_field(value: Any) -> dict[str, Any]:
    """One Firestore JSON value of a document field: the types ``stream_to_document`` gives
    (maps, arrays and any float besides those a filter carries)."""
    if isinstance(value, dict):
        return {"mapValue": {"fields": {key: encode_field(item) for key, item in value.items()}}}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [encode_field(item) for item in value]}}
    if isinstance(value, float) and not math.isfinite(value):
        return {
            "doubleValue": "NaN"
            if math.isnan(value)
            else ("Infinity" if value > 0 else "-Infinity")
        }
    return encode_value(value)


def parse_timestamp(text: str) -> datetime:
    """An RFC 3339 UTC timestamp as Firestore writes it (``Z``, 0 to 9 fraction digits), to
    the microsecond as the client library gives it."""
    whole, _, fraction = text.rstrip("Z").partition(".")
    moment = datetime.fromisoformat(whole).replace(tzinfo=UTC)
    return moment.replace(microsecond=int(fraction[:6].ljust(6, "0")) if fraction else 0)


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC; a naive ``moment`` is taken as UTC, as the client library takes it
    (and the year is written with four digits, which ``strftime`` does not do before 1000)."""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S.%f}Z"


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "nullValue": lambda _: None,
    "stringValue": str,
    "integerValue": int,
    "doubleValue": float,  # a number, or "NaN" / "Infinity" / "-Infinity"
    "booleanValue": bool,
    "timestampValue": parse_timestamp,
    "mapValue": lambda item: decode_fields(item.get("fields") or {}),
    "arrayValue": lambda item: [decode_value(entry) for entry in item.get("values") or []],
    "bytesValue": base64.b64decode,
    "referenceValue": lambda item: _relative(str(item)),
    "geoPointValue": lambda item: {
        "latitude": item.get("latitude", 0.0),
        "longitude": item.get("longitude", 0.0),
    },
}


def _refused_as_changed(status: int, data: bytes) -> bool:
    """Whether a conditional write was refused because its document changed since it was
    read (FAILED_PRECONDITION) or deleted since (NOT_FOUND), one it would create exists
    (ALREADY_EXISTS), or it met a concurrent transaction (ABORTED)."""
    return status in (400, 404, 409) and google_error(data).status in {
        "FAILED_PRECONDITION",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "ABORTED",
    }


# The HTTP status Google gives each canonical error (google.rpc.Code), for one that comes in
# a streamed answer's body instead; the transient ones are retried as any other, the rest
# (a bad request, a missing permission) are errors.
_STREAMED_ERROR_STATUS = {
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


def _streamed_error(body: Any) -> GoogleError | None:
    if not isinstance(body, list):
        return None
    for element in body:
        if isinstance(element, dict) and isinstance(element.get("error"), dict):
            return google_error(json.dumps(element).encode())
    return None


def _field_path(name: str) -> dict[str, str]:
    if _PLAIN_FIELD.fullmatch(name):
        return {"fieldPath": name}
    escaped = name.replace("\\", "\\\\").replace("`", "\\`")
    return {"fieldPath": f"`{escaped}`"}


def _relative(name: str) -> str:
    """A document's path below the database's documents (``streams/abc``)."""
    return name.split("/documents/", 1)[-1]


def is_document_id(text: str) -> bool:
    """Whether ``text`` names one document (the client library refuses the others too)."""
    return bool(text) and "/" not in text and text not in {".", ".."}


def _checked_id(document_id: str) -> str:
    if not is_document_id(document_id):
        raise ValueError(f"not a document id: {document_id!r}")
    return document_id


class FirestoreRest:
    """Document reads, batch reads and queries of one database, over keep-alive connections
    (one per thread: ``http.client`` connections are not thread-safe)."""

    def __init__(
        self,
        origin: str,
        project: str,
        tokens: AccessTokens,
        *,
        database: str = "(default)",
        budget_s: float = TOTAL_BUDGET_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._connections = KeepAliveConnections(origin, ATTEMPT_TIMEOUT_S)
        self._tokens = tokens
        self._budget_s = budget_s
        self._sleep = sleep
        self.documents = f"projects/{project}/databases/{database}/documents"

    @classmethod
    def from_environment(cls, project: str) -> FirestoreRest:
        """The emulator where ``FIRESTORE_EMULATOR_HOST`` names one, else production."""
        emulator = os.environ.get("FIRESTORE_EMULATOR_HOST")
        if emulator:
            return cls(f"http://{emulator}", project, EmulatorToken())
        return cls(PRODUCTION_ORIGIN, project, instance_tokens())

    def get(self, collection: str, document_id: str) -> RestSnapshot:
        """One document (``exists`` false when there is none)."""
        path = f"{collection}/{_checked_id(document_id)}"
        status, body = self._call("GET", f"/v1/{quote(f'{self.documents}/{path}')}", None)
        if status == 404:
            return RestSnapshot.missing(path)
        return self._snapshot(body)

    def get_many(self, collection: str, document_ids: Iterable[str]) -> list[RestSnapshot]:
        """The documents, in one request (missing ones with ``exists`` false)."""
        names = [f"{self.documents}/{collection}/{_checked_id(i)}" for i in document_ids]
        if not names:
            return []
        _, body = self._call("POST", f"/v1/{quote(self.documents)}:batchGet", {"documents": names})
        snapshots = []
        for result in body:
            if "found" in result:
                snapshots.append(self._snapshot(result["found"]))
            elif "missing" in result:
                snapshots.append(RestSnapshot.missing(_relative(result["missing"])))
        answered = {f"{self.documents}/{snapshot.reference.path}" for snapshot in snapshots}
        if not answered.issuperset(names):
            # A document neither found nor missing is not known to be absent (a memorial read
            # as absent would read as public): the answer is incomplete.
            raise UnavailableError("The database is temporarily unavailable", retry_after_s=2)
        return snapshots

    def update_fields(
        self,
        collection: str,
        document_id: str,
        fields: dict[str, Any],
        deleted: Collection[str],
        unchanged_since: str,
    ) -> str | None:
        """Set ``fields`` and delete ``deleted`` of an existing document, if it has not been
        written since ``unchanged_since`` (an update time as read); the new update time, or
        ``None`` when the document changed meanwhile. ``None`` may also follow an attempt that
        landed but whose answer was lost (the retry finds the document changed, by it)."""
        written = self.commit(
            [self.update_write(collection, document_id, fields, deleted, unchanged_since)]
        )
        return None if written is None else written[0]

    def update_write(
        self,
        collection: str,
        document_id: str,
        fields: dict[str, Any],
        deleted: Collection[str],
        unchanged_since: str | None,
    ) -> dict[str, Any]:
        """A write of ``commit``: ``update_fields``'s change; with no ``unchanged_since``,
        conditional only on the document existing."""
        condition = {"exists": True} if unchanged_since is None else {"updateTime": unchanged_since}
        return {
            "update": self._document(collection, document_id, fields),
            "updateMask": {
                "fieldPaths": [_field_path(key)["fieldPath"] for key in (*fields, *deleted)]
            },
            "currentDocument": condition,
        }

    def create_write(
        self, collection: str, document_id: str, fields: dict[str, Any]
    ) -> dict[str, Any]:
        """A write of ``commit`` that creates a document, refused if one exists."""
        return {
            "update": self._document(collection, document_id, fields),
            "currentDocument": {"exists": False},
        }

    def write_as_read(
        self, collection: str, document_id: str, fields: dict[str, Any], read: RestSnapshot
    ) -> dict[str, Any]:
        """A write of ``commit`` setting ``fields``, conditional on the document being as
        ``read`` found it: unchanged since, or still absent."""
        if read.exists and read.update_time:
            return self.update_write(collection, document_id, fields, (), read.update_time)
        return self.create_write(collection, document_id, fields)

    def set_write(
        self, collection: str, document_id: str, fields: dict[str, Any]
    ) -> dict[str, Any]:
        """A write of ``commit`` that makes the document exactly ``fields``, whether or not
        one exists."""
        return {"update": self._document(collection, document_id, fields)}

    def delete_write(self, collection: str, document_id: str) -> dict[str, Any]:
        """A write of ``commit`` that deletes the document if there is one."""
        return {"delete": f"{self.documents}/{collection}/{_checked_id(document_id)}"}

    def list_ids(self, collection: str) -> list[str]:
        """The ids of every document of ``collection`` (a subcollection's path too), page by
        page."""
        ids: list[str] = []
        page = ""
        while True:
            query = f"?pageSize={LIST_PAGE_SIZE}" + (f"&pageToken={quote(page)}" if page else "")
            _, body = self._call(
                "GET", f"/v1/{quote(f'{self.documents}/{collection}')}{query}", None
            )
            ids += [
                str(item["name"]).rsplit("/", 1)[-1] for item in (body or {}).get("documents", [])
            ]
            page = (body or {}).get("nextPageToken") or ""
            if not page:
                return ids

    def commit(self, writes: list[dict[str, Any]]) -> list[str] | None:
        """Apply ``writes`` atomically; each one's update time, or ``None`` when a condition
        failed (a document changed or appeared meanwhile: nothing was written). ``None`` may
        also follow an attempt that landed but whose answer was lost."""
        return self._commit(writes, conditional=True)

    def apply(self, writes: list[dict[str, Any]]) -> list[str]:
        """Apply ``writes`` that carry no condition, atomically: each one's update time. A
        refusal is an error (retried first where Google says to), never a silent no-op."""
        written = self._commit(writes, conditional=False)
        assert written is not None  # noqa: S101 - only a conditional commit answers None
        return written

    def _commit(self, writes: list[dict[str, Any]], *, conditional: bool) -> list[str] | None:
        _, body = self._call(
            "POST",
            f"/v1/{quote(self.documents)}:commit",
            {"writes": writes},
            conditional=conditional,
        )
        if body is None:
            return None
        # A delete's result carries no update time: the commit's time stands for it.
        return [
            str(result.get("updateTime") or body["commitTime"]) for result in body["writeResults"]
        ]

    def _document(self, collection: str, document_id: str, fields: dict[str, Any]) -> Any:
        return {
            "name": f"{self.documents}/{collection}/{_checked_id(document_id)}",
            "fields": {key: encode_field(value) for key, value in fields.items()},
        }

    def run_query(self, collection: str, query: DocumentQuery) -> list[RestSnapshot]:
        """The documents of ``query`` over ``collection`` (top-level, or a subcollection's
        path: ``streams/abc/private``), in order."""
        parent, _, collection_id = collection.rpartition("/")
        structured: dict[str, Any] = {"from": [{"collectionId": collection_id}]}
        filters = [
            {
                "fieldFilter": {
                    "field": _field_path(name),
                    "op": "EQUAL",
                    "value": encode_value(value),
                }
            }
            for name, value in query.filters.items()
        ]
        if len(filters) == 1:
            structured["where"] = filters[0]
        elif filters:
            structured["where"] = {"compositeFilter": {"op": "AND", "filters": filters}}
        structured["orderBy"] = [
            {"field": _field_path(name), "direction": direction}
            for name, direction in query.orderings
        ]
        if query.start_after is not None:
            structured["startAt"] = {
                "values": [
                    self._cursor_value(collection, name, value)
                    for (name, _), value in zip(query.orderings, query.start_after, strict=True)
                ],
                "before": False,
            }
        if query.offset:
            structured["offset"] = query.offset
        structured["limit"] = query.limit
        scope = f"{self.documents}/{parent}" if parent else self.documents
        _, body = self._call(
            "POST", f"/v1/{quote(scope)}:runQuery", {"structuredQuery": structured}
        )
        return [self._snapshot(item["document"]) for item in body if "document" in item]

    def _cursor_value(self, collection: str, name: str, value: Any) -> dict[str, Any]:
        if name == "__name__":
            return {"referenceValue": f"{self.documents}/{collection}/{_checked_id(str(value))}"}
        return encode_value(value)

    def _snapshot(self, document: dict[str, Any]) -> RestSnapshot:
        path = _relative(str(document["name"]))
        created = document.get("createTime")
        return RestSnapshot(
            id=path.rsplit("/", 1)[-1],
            reference=RestReference(path),
            exists=True,
            create_time=parse_timestamp(created) if created else None,
            fields=decode_fields(document.get("fields") or {}),
            update_time=document.get("updateTime"),
        )

    def _call(
        self, method: str, path: str, payload: Any, *, conditional: bool = False
    ) -> tuple[int, Any]:
        """The status and decoded body of a request (a 404 is an answer: no such document),
        retried with backoff on transient failures within the budget, then a 503. For a
        ``conditional`` write, a refused precondition or an aborted commit is an answer too
        (status 400, 404 or 409, body ``None``): the caller reads again."""
        body = None if payload is None else json.dumps(payload).encode()
        deadline = time.monotonic() + self._budget_s
        delay = 0.1
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        while True:
            status, data = authorized_exchange(
                self._connections, self._tokens, (method, path, body), headers, deadline
            )
            if status == 404 and method == "GET":
                return status, None
            decoded = json.loads(data) if status == 200 else None
            # A streamed answer (runQuery, batchGet) that failed after it began still says 200:
            # its error comes as an element of the array, and the elements before it are not
            # the whole answer.
            streamed_error = _streamed_error(decoded)
            if status == 200 and streamed_error is None:
                return status, decoded
            if streamed_error is not None:
                status = _STREAMED_ERROR_STATUS.get(streamed_error.status, 400)
            if conditional and _refused_as_changed(status, data):
                return status, None
            # An unconditional commit may be ABORTED under contention: Google says retry it.
            aborted = status == 409 and (streamed_error or google_error(data)).status == "ABORTED"
            if status and status not in TRANSIENT_STATUSES and not aborted:
                raise FirestoreRestError(
                    f"Firestore refused {method} {path}: HTTP {status} {data[:300]!r}"
                )
            if time.monotonic() + delay >= deadline:
                raise UnavailableError("The database is temporarily unavailable", retry_after_s=2)
            self._sleep(delay)
            delay = min(delay * 2, 1.0)


class RestStreamReads(StreamDocumentReads):
    """``StreamReads`` over the REST API: the primary collection, then the legacy ones."""

    def __init__(
        self, rest: FirestoreRest, collection: str, legacy_collections: Sequence[str] = ()
    ) -> None:
        self._rest = rest
        self._streams = collection
        self._legacy = tuple(legacy_collections)
        self._primary_name = collection

    def _in_primary(self, snapshot: Any) -> bool:
        return bool(snapshot.reference.path == f"{self._streams}/{snapshot.id}")

    def _locate(self, stream_id: str) -> RestSnapshot | None:
        if not is_document_id(stream_id):
            return None
        for collection in (self._streams, *self._legacy):
            snapshot = self._rest.get(collection, stream_id)
            if snapshot.exists:
                return snapshot
        return None

    def _run_query(self, collection: Any, query: DocumentQuery) -> list[Any]:
        return list(self._rest.run_query(str(collection), query))

    def deleted_stream_of_input(self, live_input_uid: str) -> str | None:
        if not is_document_id(live_input_uid):
            return None
        snapshot = self._rest.get(DELETED_INPUTS_COLLECTION, live_input_uid)
        return deleted_stream_of(snapshot.fields) if snapshot.exists else None

    def get_credentials(self, stream_id: str) -> StreamCredentials | None:
        private = f"{self._streams}/{_checked_id(stream_id)}/{CREDENTIALS_SUBCOLLECTION}"
        snapshot = self._rest.get(private, CREDENTIALS_DOC)
        return credentials_of(snapshot.fields) if snapshot.exists else None


class RestMemorialDirectory:
    """``MemorialDirectory`` over the REST API."""

    def __init__(self, rest: FirestoreRest, collection: str) -> None:
        self._rest = rest
        self._memorials = collection

    def get(self, memorial_id: str) -> Memorial | None:
        if not is_document_id(memorial_id):
            return None
        snapshot = self._rest.get(self._memorials, memorial_id)
        return memorial_of(snapshot.id, snapshot.to_dict())

    def get_many(self, memorial_ids: Collection[str]) -> dict[str, Memorial | None]:
        unique = list(dict.fromkeys(memorial_ids))
        readable = [m for m in unique if is_document_id(m)]
        found = {
            snapshot.id: memorial_of(snapshot.id, snapshot.to_dict())
            for snapshot in self._rest.get_many(self._memorials, readable)
        }
        return {memorial_id: found.get(memorial_id) for memorial_id in unique}
