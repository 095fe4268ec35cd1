"""Cursor pagination of stream listings: opaque cursors, and the order both repositories keep.

A cursor names the position just after a page's last stream: that stream's values of the
listing's sort keys and its document id (the tie-breaker), so the next page starts there
whatever was inserted or deleted meanwhile, and costs no skipped reads. It is base64url
(unpadded) of compact JSON ``{"v", "k", "id", "d"}``: ``d`` is a digest over the query's
filters and order and over the position, so a cursor of another query, a truncated one or an
edited one is refused. It is an integrity check, not a secret: a forged cursor can only place
a page inside a query its caller may run anyway.
"""

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from common.errors import InvalidArgumentError
from common.models.domain import Stream
from common.ports import StreamOrder, StreamPage, StreamQuery

CURSOR_VERSION: Final = 1
# The document ids a cursor can name: those we take from a URL.
NAMEABLE_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
MAX_CURSOR_CHARS = 512
_DIGEST_CHARS = 16
SortValue = int | datetime


@dataclass(frozen=True)
class SortKey:
    """One key a listing sorts by: a ``Stream`` attribute, stored under its alias."""

    attribute: str
    descending: bool

    @property
    def field(self) -> str:
        """The Firestore field holding it."""
        return Stream.model_fields[self.attribute].alias or self.attribute

    def of(self, stream: Stream) -> Any:
        """The stream's value of this key."""
        return getattr(stream, self.attribute)

    @property
    def values(self) -> TypeAdapter[Any]:
        """Reads and writes the key's values in a cursor's JSON."""
        return _ADAPTERS[self.attribute]


SORT_KEYS: dict[StreamOrder, tuple[SortKey, ...]] = {
    "newest": (SortKey("created_at", descending=True),),
    "display": (SortKey("display_order", descending=False), SortKey("created_at", descending=True)),
}
# Ties are broken by document id in the direction of each ordering's last key: Firestore ends
# every composite index with __name__ in that direction, so firestore.indexes.json serves the
# tie-broken queries as it is, and the order is the one offsets already paged through.
ID_DESCENDING = True
_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    key.attribute: TypeAdapter(Stream.model_fields[key.attribute].annotation or Any)
    for keys in SORT_KEYS.values()
    for key in keys
}


@dataclass(frozen=True)
class Position:
    """Just after one stream of a listing: its sort-key values and its id."""

    values: tuple[SortValue, ...]
    stream_id: str

    def precedes(self, stream: Stream, order: StreamOrder) -> bool:
        """Whether ``stream`` comes after this position in ``order``."""
        for key, value in zip(SORT_KEYS[order], self.values, strict=True):
            mine = key.of(stream)
            if mine != value:
                return bool(mine < value if key.descending else mine > value)
        return stream.id < self.stream_id if ID_DESCENDING else stream.id > self.stream_id


# A document as a listing query read it: the stream, or, unreadable as one, where it sits in
# the listing's order.
ListedDocument = Stream | Position
Listed = TypeVar("Listed", Stream, ListedDocument)


# Firestore's integers are 64-bit and our document ids are like every other id we take from
# a URL: a forged cursor holding anything else is a 400, never a query the client refuses.
_Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1]
    k: list[_Int64 | Annotated[str, Field(max_length=64)]]
    id: str = Field(pattern=NAMEABLE_ID.pattern)
    d: str


def in_order(documents: Sequence[Listed], order: StreamOrder) -> list[Listed]:
    """``documents`` sorted as the listing in ``order`` is (ties by id, as in Firestore)."""
    keys = SORT_KEYS[order]
    by_id = sorted(documents, key=id_of, reverse=ID_DESCENDING)
    ranked = [(_values_of(document, keys), document) for document in by_id]
    for index in reversed(range(len(keys))):  # stable sorts, least significant key first
        ranked.sort(key=partial(_value_at, index), reverse=keys[index].descending)
    return [document for _, document in ranked]


def _value_at(index: int, ranked: tuple[tuple[Any, ...], object]) -> Any:
    return ranked[0][index]


def id_of(document: ListedDocument) -> str:
    """The id of the document (the stream's, or the unreadable one's)."""
    return document.id if isinstance(document, Stream) else document.stream_id


def _values_of(document: ListedDocument, keys: Sequence[SortKey]) -> tuple[Any, ...]:
    if isinstance(document, Stream):
        return tuple(key.of(document) for key in keys)
    return document.values


def position_of(query: StreamQuery) -> Position | None:
    """Where ``query``'s cursor says the page starts (``None``: no cursor).

    Raises:
        InvalidArgumentError: the cursor is malformed, altered, of another query, or comes with
            an offset.
    """
    if query.cursor is None:
        return None
    if query.offset:
        raise _invalid_cursor("give either offset or cursor, not both", "cursor_with_offset")
    try:
        if len(query.cursor) > MAX_CURSOR_CHARS:
            raise ValueError("too long")
        padded = query.cursor + "=" * (-len(query.cursor) % 4)
        raw = base64.b64decode(padded, altchars=b"-_", validate=True)
        payload = _Payload.model_validate_json(raw)
        keys = SORT_KEYS[query.order]
        if len(payload.k) != len(keys) or payload.d != _digest(query, payload.k, payload.id):
            raise ValueError("not this query's cursor")
        values = tuple(
            key.values.validate_python(v) for key, v in zip(keys, payload.k, strict=True)
        )
    except (ValueError, binascii.Error, ValidationError) as exc:
        message = "not the nextCursor of an earlier page of this listing"
        raise _invalid_cursor(message, "invalid_cursor") from exc
    return Position(values, payload.id)


def cursor_after(query: StreamQuery, stream: Stream) -> str:
    """The cursor of the page of ``query`` that follows ``stream``."""
    values = tuple(key.of(stream) for key in SORT_KEYS[query.order])
    return cursor_at(query, Position(values, stream.id))


def cursor_at(query: StreamQuery, position: Position) -> str:
    """The cursor of the page of ``query`` that starts just after ``position``."""
    keys = SORT_KEYS[query.order]
    values = [
        key.values.dump_python(value, mode="json")
        for key, value in zip(keys, position.values, strict=True)
    ]
    stream_id = position.stream_id
    payload = _Payload.model_construct(
        v=CURSOR_VERSION, k=values, id=stream_id, d=_digest(query, values, stream_id)
    )
    encoded = base64.urlsafe_b64encode(payload.model_dump_json().encode())
    return encoded.rstrip(b"=").decode()


def page_of(
    query: StreamQuery, ranked: Sequence[ListedDocument | None], *, more_follow: bool = False
) -> StreamPage:
    """The page ``query`` asks for out of ``ranked``: the matching documents in order, from its
    start (after the offset or the cursor's position), at least ``limit + 1`` of them if so
    many follow (``more_follow``: more were read than ``ranked`` holds, so more follow
    however many it holds).

    A document unreadable as a stream keeps its place: it counts against the limit and in
    ``passed`` (an offset skips it like any other), the cursor goes past it, and it never
    ends the listing early. One whose place no cursor can name (``None``) counts too, but a
    page that ends on such documents stops before them (``passed`` and the cursor alike), so
    the next page reads them again; one made of nothing else has no cursor."""
    window = ranked[: query.limit]
    has_more = bool(window) and (more_follow or len(ranked) > query.limit)
    named = [place for place, document in enumerate(window) if document is not None]
    positions = tuple(place for place in named if isinstance(window[place], Stream))
    passed, next_cursor = len(window), None
    last = window[named[-1]] if named else None
    if has_more and last is not None:
        passed = named[-1] + 1
        next_cursor = (
            cursor_after(query, last) if isinstance(last, Stream) else cursor_at(query, last)
        )
    streams = [document for document in window if isinstance(document, Stream)]
    return StreamPage(streams, has_more, next_cursor, passed=passed, positions=positions)


def _digest(query: StreamQuery, values: Sequence[object], stream_id: str) -> str:
    scope = [
        query.order,
        query.memorial_id,
        query.status and str(query.status),
        query.is_public,
        query.is_visible,
        query.created_by,
    ]
    material = json.dumps([CURSOR_VERSION, scope, list(values), stream_id], separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()[:_DIGEST_CHARS]


def _invalid_cursor(message: str, kind: str) -> InvalidArgumentError:
    """A 400 shaped as the query-parameter validation errors are (common.http)."""
    return InvalidArgumentError(
        f"Invalid query parameter (cursor: {message})",
        details={"fields": [{"field": "cursor", "type": kind, "message": message}]},
    )
