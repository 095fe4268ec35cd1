"""Cursor encoding (common.pagination) and the Firestore indexes the cursor queries need."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.cloud.firestore import GeoPoint
from google.cloud.firestore_v1.vector import Vector

from common.adapters.firestore.documents import ID_ORDER, ORDERINGS
from common.errors import InvalidArgumentError
from common.models.domain import Stream
from common.pagination import (
    MAX_CURSOR_CHARS,
    Position,
    _digest,
    cursor_at,
    firestore_order,
    place_of,
    position_of,
)
from common.ports import StreamQuery

ROOT = Path(__file__).resolve().parents[2]
AT = datetime(2026, 11, 24, 9, 0, 0, 123456, tzinfo=UTC)


def test_the_id_tie_breaker_runs_the_way_every_listing_index_ends() -> None:
    # Firestore appends __name__ to a composite index in its last field's direction: queries
    # ending with that tie-breaker are served by firestore.indexes.json as it is.
    indexes = json.loads((ROOT / "firestore.indexes.json").read_text())["indexes"]
    for ordering in ORDERINGS.values():
        assert ordering[-1][1] == ID_ORDER[1]
        assert not any(f["fieldPath"] == "__name__" for i in indexes for f in i["fields"])


def test_a_cursor_is_url_safe_and_gives_back_the_position_of_its_stream() -> None:
    stream = Stream(
        id="abc123", title="", created_by="u", created_at=AT, updated_at=AT, display_order=7
    )
    query = StreamQuery(memorial_id="m1", order="display")

    cursor = cursor_at(query, place_of(stream, query.order))
    position = position_of(StreamQuery(memorial_id="m1", order="display", cursor=cursor))

    assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor)
    assert position is not None
    assert position.values == (7, AT) and position.stream_id == "abc123"


def forged(query: StreamQuery, values: list[list[object]], stream_id: str) -> str:
    """A cursor an attacker builds: the digest has no key, so it can be made to match."""
    digest = _digest(query, values, stream_id)
    raw = json.dumps({"v": 2, "k": values, "id": stream_id, "d": digest}).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


TIME: list[object] = ["t", "2026-11-24T10:00:00.000000+00:00"]


@pytest.mark.parametrize(
    ("values", "stream_id"),
    [
        ([["i", 0], TIME], "a/b"),  # a path, not a document id
        ([["i", 0], TIME], "streams/x/private"),
        ([["i", 0], TIME], ".."),
        ([["i", 0], TIME], "__reserved__"),
        ([["i", 10**30], TIME], "s1"),  # beyond Firestore's 64-bit integers
        ([["i", True], TIME], "s1"),  # a boolean is not a number
        ([["t", "2026-11-24T10:00:00"], TIME], "s1"),  # a time with no zone
        ([["s", "x" * 257], TIME], "s1"),
        ([["x", 0], TIME], "s1"),  # no such type
        ([["i", 0]], "s1"),  # one value short
        ([["i", 0], ["t", "0001-01-01T00:00:00+14:00"]], "s1"),  # before year 1 in UTC
    ],
)
def test_a_forged_cursor_is_refused_before_any_query(
    values: list[list[object]], stream_id: str
) -> None:
    query = StreamQuery(is_public=True, is_visible=True, order="display")
    with pytest.raises(InvalidArgumentError):
        position_of(replace(query, cursor=forged(query, values, stream_id)))


@pytest.mark.parametrize(
    ("value", "read"),
    [(["i", 5], 5), (["s", "3"], "3"), (["f", 1.5], 1.5), (["n", None], None)],
)
def test_the_forger_above_makes_cursors_the_listing_accepts_when_they_hold_valid_values(
    value: list[object], read: object
) -> None:
    query = StreamQuery(is_public=True, is_visible=True, order="display")
    cursor = forged(query, [value, TIME], "old.stream-1")
    position = position_of(replace(query, cursor=cursor))
    # A value keeps the type Firestore stored it with: the string "3" is not the number 3
    assert position is not None and position.stream_id == "old.stream-1"
    assert position.values[0] == read and type(position.values[0]) is type(read)


def test_the_longest_cursor_we_make_is_one_we_take_back() -> None:
    # Two values of text that JSON escapes the most, and an id of 4-byte characters
    query = StreamQuery(order="display")
    position = Position(("\x01" * 128, '"' * 128), "\U0001f56f" * 128)

    cursor = cursor_at(query, position)

    assert len(cursor) <= MAX_CURSOR_CHARS
    assert position_of(replace(query, cursor=cursor)) == position


@dataclass(frozen=True)
class Reference:
    """What the client gives for a reference value, as far as ordering goes: its path."""

    path: str


def test_values_sort_as_firestore_orders_them_whatever_their_type() -> None:
    at = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    firestore_sorted: list[object] = [
        None,
        False,
        True,
        float("nan"),
        -1,
        0,
        1.5,
        2,
        at,
        "",
        "10",
        "9",
        b"\x00",
        Reference("streams/x"),
        Reference("streams-old/y"),  # by segment: "streams" before "streams-old"
        GeoPoint(1.0, 2.0),
        [1, "a"],
        [2],
        Vector([2.0]),
        Vector([1.0, 1.0]),  # by length first
        {"a": 1},
    ]

    shuffled = firestore_sorted[::2] + firestore_sorted[1::2]

    # (The one NaN is the same object in both lists, which list equality takes as equal.)
    assert sorted(shuffled, key=firestore_order) == firestore_sorted
    assert firestore_order(1) == firestore_order(1.0)
    assert firestore_order(True) != firestore_order(1)
