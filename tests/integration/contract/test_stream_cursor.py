"""Cursor pagination of ``StreamRepository.find``: the fake and Firestore page alike.

Each listing is walked page by page with ``next_cursor`` and compared with its order worked
out here, independently of common.pagination: ties on every sort key are broken by document
id, descending, so no stream is skipped or repeated at a page boundary.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from common.errors import InvalidArgumentError
from common.models.domain import Stream, StreamStatus
from common.ports import StreamQuery, StreamRepository

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
LIVE, DONE = StreamStatus.LIVE, StreamStatus.COMPLETED


def add(repo: StreamRepository, minute: int, **fields: Any) -> Stream:
    at = NOW + timedelta(minutes=minute)
    stream = Stream.model_validate(
        {
            "id": repo.new_id(),
            "title": f"Service at {minute}",
            "created_by": "a",
            "created_at": at,
            "updated_at": at,
        }
        | fields
    )
    repo.create(stream, None)
    return stream


@pytest.fixture
def streams(repo: StreamRepository) -> list[Stream]:
    """Fourteen streams with ties on every sort key (minutes 3 and 5, display orders 0-2)."""
    return [
        add(repo, 0, memorial_id="m1", display_order=1),
        add(repo, 1, memorial_id="m1", status=LIVE, display_order=2),
        add(repo, 3, memorial_id="m1", created_by="b", display_order=1),
        add(repo, 3, memorial_id="m1", status=LIVE, is_public=False),
        add(repo, 3, memorial_id="m2", display_order=1),
        add(repo, 3, memorial_id="m1", created_by="b", display_order=1),
        add(repo, 4, memorial_id="m2", status=DONE, is_visible=False, display_order=2),
        add(repo, 5, memorial_id="m1", display_order=1),
        add(repo, 5, memorial_id="m1", status=LIVE, display_order=1),
        add(repo, 5, memorial_id="m2", created_by="b"),
        add(repo, 6, status=DONE, display_order=2),
        add(repo, 7, memorial_id="m1", is_public=False, is_visible=False),
        add(repo, 8, memorial_id="m2", status=LIVE, created_by="b", display_order=1),
        add(repo, 9, memorial_id="m1", status=DONE),
    ]


def expected(streams: list[Stream], query: StreamQuery) -> list[str]:
    """The ids ``query`` lists, in its order: worked out here, not by the code under test."""
    filters = {
        "memorial_id": query.memorial_id,
        "status": query.status,
        "is_public": query.is_public,
        "is_visible": query.is_visible,
        "created_by": query.created_by,
    }
    matching = [
        s
        for s in streams
        if all(value is None or getattr(s, name) == value for name, value in filters.items())
    ]
    by_id = sorted(matching, key=lambda s: s.id, reverse=True)
    if query.order == "newest":
        ranked = sorted(by_id, key=lambda s: s.created_at, reverse=True)
    else:
        ranked = sorted(by_id, key=lambda s: (s.display_order, -s.created_at.timestamp()))
    return [s.id for s in ranked]


def walk(repo: StreamRepository, query: StreamQuery) -> list[list[str]]:
    """Every page of ``query``, following ``next_cursor`` to the end."""
    pages: list[list[str]] = []
    while True:
        page = repo.find(query)
        pages.append([s.id for s in page.streams])
        assert page.has_more is (page.next_cursor is not None)
        if page.next_cursor is None:
            return pages
        assert len(pages) < 20, "the cursor does not advance"
        query = replace(query, cursor=page.next_cursor)


LISTINGS = [
    pytest.param(StreamQuery(), id="all-newest"),
    pytest.param(StreamQuery(order="display"), id="all-display"),
    pytest.param(StreamQuery(status=LIVE), id="status"),
    pytest.param(StreamQuery(memorial_id="m1", order="display"), id="memorial-display"),
    pytest.param(StreamQuery(memorial_id="m1", is_visible=True), id="memorial-visible"),
    pytest.param(StreamQuery(is_public=True, is_visible=True, order="display"), id="public"),
    pytest.param(
        StreamQuery(is_public=True, is_visible=True, status=LIVE, order="display"),
        id="public-live",
    ),
    pytest.param(StreamQuery(created_by="b"), id="created-by"),
    pytest.param(StreamQuery(memorial_id="m1", created_by="b", order="display"), id="combined"),
]


@pytest.mark.parametrize("query", LISTINGS)
@pytest.mark.parametrize("limit", [1, 2, 3])
def test_walking_the_cursors_lists_every_match_once_in_order(
    repo: StreamRepository, streams: list[Stream], query: StreamQuery, limit: int
) -> None:
    query = replace(query, limit=limit)

    pages = walk(repo, query)

    assert [i for page in pages for i in page] == expected(streams, query)
    assert all(len(page) == limit for page in pages[:-1])
    assert 0 < len(pages[-1]) <= limit or pages == [[]]


@pytest.mark.parametrize("query", LISTINGS)
def test_offsets_page_through_the_same_order_as_cursors(
    repo: StreamRepository, streams: list[Stream], query: StreamQuery
) -> None:
    by_offset = [
        s.id
        for offset in range(0, len(streams), 2)
        for s in repo.find(replace(query, limit=2, offset=offset)).streams
    ]
    assert by_offset == expected(streams, query)


def test_the_last_page_has_no_cursor_and_an_empty_listing_none_either(
    repo: StreamRepository, streams: list[Stream]
) -> None:
    assert repo.find(StreamQuery(limit=len(streams))).next_cursor is None
    assert repo.find(StreamQuery(memorial_id="nobody")).next_cursor is None
    assert repo.find(StreamQuery(limit=len(streams) - 1)).next_cursor is not None


def test_a_cursor_goes_on_with_another_page_size(
    repo: StreamRepository, streams: list[Stream]
) -> None:
    first = repo.find(StreamQuery(order="display", limit=4))
    rest = walk(repo, StreamQuery(order="display", limit=3, cursor=first.next_cursor))
    listed = [s.id for s in first.streams] + [i for page in rest for i in page]
    assert listed == expected(streams, StreamQuery(order="display"))


def test_streams_added_and_removed_between_pages_neither_repeat_nor_hide_others(
    repo: StreamRepository, streams: list[Stream]
) -> None:
    # Given the first page of the newest-first listing
    query = StreamQuery(limit=4)
    first = repo.find(query)
    shown = [s.id for s in first.streams]
    # When, before the next page, the page's last stream (the cursor's own) and a later one are
    # deleted, and a stream newer than all and one among the later ones are created
    for gone in (first.streams[-1], streams[2]):
        repo.delete(gone.id)
    newest = add(repo, 30)
    later = add(repo, 2, memorial_id="m2")
    rest = walk(repo, replace(query, cursor=first.next_cursor))
    # Then the rest lists each remaining later stream once, the new later one in its place
    remaining = [s for s in [*streams, later] if s.id not in {*shown, streams[2].id}]
    assert [i for page in rest for i in page] == expected(remaining, query)
    assert newest.id not in {i for page in rest for i in page}


def _cursor_of(repo: StreamRepository, query: StreamQuery) -> str:
    cursor = repo.find(replace(query, limit=1)).next_cursor
    assert cursor is not None
    return cursor


@pytest.mark.parametrize(
    ("made_by", "used_with"),
    [
        (StreamQuery(), StreamQuery(order="display")),
        (StreamQuery(status=LIVE), StreamQuery(status=DONE)),
        (StreamQuery(status=LIVE), StreamQuery()),
        (StreamQuery(memorial_id="m1"), StreamQuery(memorial_id="m2")),
        (StreamQuery(is_public=True, is_visible=True), StreamQuery(is_public=True)),
        (StreamQuery(created_by="a"), StreamQuery(created_by="b")),
    ],
)
def test_a_cursor_of_another_listing_is_refused(
    repo: StreamRepository, streams: list[Stream], made_by: StreamQuery, used_with: StreamQuery
) -> None:
    cursor = _cursor_of(repo, made_by)
    with pytest.raises(InvalidArgumentError, match="cursor"):
        repo.find(replace(used_with, cursor=cursor))


def _edited(cursor: str, **changes: Any) -> str:
    payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return base64.urlsafe_b64encode(json.dumps(payload | changes).encode()).decode()


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda _: "", id="empty"),
        pytest.param(lambda _: "not a cursor!", id="not-base64"),
        pytest.param(lambda _: base64.urlsafe_b64encode(b"[1, 2]").decode(), id="not-an-object"),
        pytest.param(lambda _: base64.urlsafe_b64encode(b"\xff\xfe").decode(), id="not-json"),
        pytest.param(lambda c: c[: len(c) // 2], id="truncated"),
        pytest.param(lambda c: c + "AAAA", id="extended"),
        pytest.param(lambda c: c * 20, id="too-long"),
        pytest.param(
            lambda c: _edited(c, k=[["t", "2020-01-01T00:00:00.000000+00:00"]]),
            id="other-position",
        ),
        pytest.param(lambda c: _edited(c, id="someone-else"), id="other-stream"),
        pytest.param(lambda c: _edited(c, v=1), id="the-version-before"),
        pytest.param(lambda c: _edited(c, extra=True), id="extra-field"),
    ],
)
def test_a_malformed_or_edited_cursor_is_refused(
    repo: StreamRepository, streams: list[Stream], spoil: Any
) -> None:
    cursor = spoil(_cursor_of(repo, StreamQuery()))
    with pytest.raises(InvalidArgumentError, match="cursor"):
        repo.find(StreamQuery(cursor=cursor))


def test_an_offset_with_a_cursor_is_refused(repo: StreamRepository, streams: list[Stream]) -> None:
    cursor = _cursor_of(repo, StreamQuery())
    with pytest.raises(InvalidArgumentError, match="offset"):
        repo.find(StreamQuery(cursor=cursor, offset=2))
