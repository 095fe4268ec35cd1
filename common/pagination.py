"""Cursor pagination of stream listings: opaque cursors, and the order both repositories keep.

A cursor names the position just after a page's last document: its values of the listing's
sort keys as Firestore stores them (typed: a ``displayOrder`` stored as the string "3" is not
the number 3, and Firestore orders every string after every number) and its document id (the
tie-breaker), so the next page starts exactly where Firestore placed that document, whatever
was inserted or deleted meanwhile and whatever our model reads the values as, and costs no
skipped reads. It is base64url (unpadded) of compact JSON ``{"v", "k", "id", "d"}``: ``k``
holds ``[type, value]`` pairs, and ``d`` is a digest over the query's filters and order and
over the position, so a cursor of another query, a truncated one or an edited one is refused.
It is an integrity check, not a secret: a forged cursor can only place a page inside a query
its caller may run anyway.
"""

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, ValidationError

from common.errors import InvalidArgumentError
from common.models.domain import Stream
from common.ports import StreamOrder, StreamPage, StreamQuery

CURSOR_VERSION: Final = 2
# The document ids a cursor can name: those Firestore allows in a collection (no "/", not
# "." or "..", not __reserved__), but no control character and at most 128 characters.
NAMEABLE_ID: Final = re.compile(r"(?!\.\.?$)(?!__.*__$)[^/\x00-\x1f]{1,128}")
MAX_STRING_VALUE = 128
# Room for the longest cursor we make, in base64: two values of 128 characters that JSON
# escapes the most (6 bytes each) and an id of 128 characters of 4 bytes each in UTF-8.
MAX_CURSOR_CHARS = 4096
_DIGEST_CHARS = 16
_INT64 = 2**63
# A sort-key value as Firestore stores it (the types a cursor can carry).
SortValue = None | bool | int | float | str | datetime


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


SORT_KEYS: dict[StreamOrder, tuple[SortKey, ...]] = {
    "newest": (SortKey("created_at", descending=True),),
    "display": (SortKey("display_order", descending=False), SortKey("created_at", descending=True)),
}
# Ties are broken by document id in the direction of each ordering's last key: Firestore ends
# every composite index with __name__ in that direction, so firestore.indexes.json serves the
# tie-broken queries as it is, and the order is the one offsets already paged through.
ID_DESCENDING = True


# Firestore's order of value types, the ones a value of itself orders (booleans before
# numbers: a Python bool is an int).
_SCALAR_RANKS: Final = ((bool, 1), (datetime, 3), (str, 4), (bytes, 5))


def firestore_order(value: object) -> tuple[int, Any]:
    """Where ``value``, as the Firestore client gives it, sits in Firestore's order of values:
    by type first (null, booleans, numbers with NaN first, timestamps, strings, bytes,
    references, geopoints, arrays, vectors, maps), then by value (strings by their UTF-8
    bytes, which is the order of their code points)."""
    if value is None:
        return (0, 0)
    for kind, rank in _SCALAR_RANKS:
        if isinstance(value, kind):
            return (rank, value)
    if isinstance(value, int | float):
        return (2, (0, 0) if math.isnan(value) else (1, value))
    return _compound_order(value)


def _compound_order(value: Any) -> tuple[int, Any]:
    if isinstance(value, list | tuple):  # element by element
        return (8, tuple(firestore_order(item) for item in value))
    if hasattr(value, "to_map_value"):  # a vector: by its length, then element by element
        return (9, (len(value), tuple(value)))
    if isinstance(value, dict):  # key by key, each key's value after it
        return (10, tuple(sorted((str(k), firestore_order(v)) for k, v in value.items())))
    if hasattr(value, "latitude") and hasattr(value, "longitude"):
        return (7, (value.latitude, value.longitude))
    # A document reference: by its path, segment by segment.
    return (6, tuple(str(getattr(value, "path", value)).split("/")))


def is_sort_value(value: object) -> bool:
    """Whether a cursor can carry ``value`` as Firestore stores it."""
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -_INT64 <= value < _INT64
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, datetime):
        return value.tzinfo is not None
    return isinstance(value, str) and len(value) <= MAX_STRING_VALUE


@dataclass(frozen=True)
class Position:
    """Just after one document of a listing: its sort-key values and its id."""

    values: tuple[SortValue, ...]
    stream_id: str

    def precedes(self, other: "Position", order: StreamOrder) -> bool:
        """Whether ``other`` comes after this position in ``order``."""
        for key, theirs, mine in zip(SORT_KEYS[order], other.values, self.values, strict=True):
            a, b = firestore_order(theirs), firestore_order(mine)
            if a != b:
                return a < b if key.descending else a > b
        return (
            other.stream_id < self.stream_id if ID_DESCENDING else other.stream_id > self.stream_id
        )


def place_of(stream: Stream, order: StreamOrder) -> Position:
    """Where ``stream`` sits in ``order`` by the values our model holds."""
    return Position(tuple(key.of(stream) for key in SORT_KEYS[order]), stream.id)


@dataclass(frozen=True)
class Listed:
    """A document as a listing query read it: where it sits, the stream it holds (``None``:
    it is unreadable as one) and whether a cursor can name its place (not where a sort value
    or its id is one a cursor cannot carry)."""

    place: Position
    stream: Stream | None
    nameable: bool = True


_Value = (
    tuple[Literal["n"], None]
    | tuple[Literal["b"], StrictBool]
    | tuple[Literal["i"], Annotated[int, Field(strict=True, ge=-_INT64, lt=_INT64)]]
    | tuple[Literal["f"], Annotated[float, Field(allow_inf_nan=False)]]
    | tuple[Literal["t"], AwareDatetime]
    | tuple[Literal["s"], Annotated[str, Field(max_length=MAX_STRING_VALUE)]]
)


class _Payload(BaseModel):
    # Our id pattern has look-aheads, which pydantic's default regex engine lacks.
    model_config = ConfigDict(
        extra="forbid", frozen=True, regex_engine="python-re", defer_build=True
    )

    v: Literal[2]
    k: list[_Value]
    id: str = Field(pattern=rf"^{NAMEABLE_ID.pattern}\Z")
    d: str


def _tagged(value: SortValue) -> list[Any]:
    """``value`` as a cursor's JSON holds it: ``[type, value]``, one way only per value."""
    if value is None:
        return ["n", None]
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, int):
        return ["i", value]
    if isinstance(value, float):
        return ["f", value]
    if isinstance(value, datetime):
        return ["t", value.astimezone(UTC).isoformat(timespec="microseconds")]
    return ["s", value]


def in_order(rows: Sequence[Listed], order: StreamOrder) -> list[Listed]:
    """``rows`` sorted as Firestore orders the listing (ties by id)."""
    ranked = sorted(rows, key=lambda row: row.place.stream_id, reverse=ID_DESCENDING)
    for index, key in reversed(list(enumerate(SORT_KEYS[order]))):
        # Stable sorts, least significant key first.
        ranked.sort(
            key=lambda row: firestore_order(row.place.values[index]), reverse=key.descending
        )
    return ranked


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
        values = tuple(value for _, value in payload.k)
        tagged = [_tagged(value) for value in values]
        if len(values) != len(SORT_KEYS[query.order]) or payload.d != _digest(
            query, tagged, payload.id
        ):
            raise ValueError("not this query's cursor")
    except (ValueError, OverflowError, binascii.Error, ValidationError) as exc:
        message = "not the nextCursor of an earlier page of this listing"
        raise _invalid_cursor(message, "invalid_cursor") from exc
    return Position(values, payload.id)


def cursor_at(query: StreamQuery, position: Position) -> str:
    """The cursor of the page of ``query`` that starts just after ``position``."""
    tagged = [_tagged(value) for value in position.values]
    stream_id = position.stream_id
    payload = {"v": CURSOR_VERSION, "k": tagged, "id": stream_id}
    payload["d"] = _digest(query, tagged, stream_id)
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    encoded = base64.urlsafe_b64encode(text.encode())
    return encoded.rstrip(b"=").decode()


def page_of(query: StreamQuery, rows: Sequence[Listed]) -> StreamPage:
    """The page ``query`` asks for out of ``rows``: the matching documents in order, from its
    start (after the offset or the cursor's position), at least ``limit + 1`` of them if so
    many follow.

    A document unreadable as a stream keeps its place: it counts against the limit and in
    ``passed`` (an offset skips it like any other), the cursor goes past it, and it never
    ends the listing early. One whose place no cursor can name counts too, but a page that
    ends on such documents stops before them (``passed`` and the cursor alike), so the next
    page reads them again (a readable stream among them is shown again); a page made of
    nothing else has no cursor."""
    window = rows[: query.limit]
    has_more = len(rows) > query.limit
    named = [index for index, row in enumerate(window) if row.nameable]
    passed, next_cursor = len(window), None
    last = window[named[-1]].place if named else None
    if has_more and last is not None:
        passed, next_cursor = named[-1] + 1, cursor_at(query, last)
    shown = [(index, row) for index, row in enumerate(window) if row.stream is not None]
    shown_rows = [row for _, row in shown]

    def cursor_after(index: int) -> str | None:
        row = shown_rows[index]
        return cursor_at(query, row.place) if row.nameable else None

    return StreamPage(
        [row.stream for row in shown_rows if row.stream is not None],
        has_more,
        next_cursor,
        passed=passed,
        positions=tuple(index for index, _ in shown),
        cursor_after=cursor_after,
    )


def _digest(query: StreamQuery, tagged: Sequence[object], stream_id: str) -> str:
    scope = [
        query.order,
        query.memorial_id,
        query.status and str(query.status),
        query.is_public,
        query.is_visible,
        query.created_by,
    ]
    material = json.dumps([CURSOR_VERSION, scope, list(tagged), stream_id], separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()[:_DIGEST_CHARS]


def _invalid_cursor(message: str, kind: str) -> InvalidArgumentError:
    """A 400 shaped as the query-parameter validation errors are (common.http)."""
    return InvalidArgumentError(
        f"Invalid query parameter (cursor: {message})",
        details={"fields": [{"field": "cursor", "type": kind, "message": message}]},
    )
