"""Cursor encoding (common.pagination) and the Firestore indexes the cursor queries need."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from common.adapters.firestore.streams import ID_ORDER, ORDERINGS
from common.errors import InvalidArgumentError
from common.models.domain import Stream
from common.pagination import _digest, cursor_after, position_of
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

    cursor = cursor_after(query, stream)
    position = position_of(StreamQuery(memorial_id="m1", order="display", cursor=cursor))

    assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor)
    assert position is not None
    assert position.values == (7, AT) and position.stream_id == "abc123"


def forged(query: StreamQuery, values: list[object], stream_id: str) -> str:
    """A cursor an attacker builds: the digest has no key, so it can be made to match."""
    digest = _digest(query, values, stream_id)
    raw = json.dumps({"v": 1, "k": values, "id": stream_id, "d": digest}).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("values", "stream_id"),
    [
        ([0, "2026-11-24T10:00:00Z"], "a/b"),  # a path, not a document id
        ([0, "2026-11-24T10:00:00Z"], "streams/x/private"),
        ([10**30, "2026-11-24T10:00:00Z"], "s1"),  # beyond Firestore's 64-bit integers
    ],
)
def test_a_forged_cursor_is_refused_before_any_query(values: list[object], stream_id: str) -> None:
    query = StreamQuery(is_public=True, is_visible=True, order="display")
    with pytest.raises(InvalidArgumentError):
        position_of(replace(query, cursor=forged(query, values, stream_id)))


def test_the_forger_above_makes_cursors_the_listing_accepts_when_they_hold_valid_values() -> None:
    query = StreamQuery(is_public=True, is_visible=True, order="display")
    cursor = forged(query, [5, "2026-11-24T10:00:00Z"], "s1")
    position = position_of(replace(query, cursor=cursor))
    assert position is not None and position.stream_id == "s1"
