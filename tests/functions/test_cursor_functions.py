"""Cursor pagination over HTTP: ``streams`` (``GET /api/streams``) and ``publicstreams``
(``GET /api/streams/public``) hand out ``nextCursor`` and take it back as ``cursor``; a cursor
they did not give is a 400 with the usual error body. Offsets work as before."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from common.models.domain import Stream
from tests import people
from tests.functions.calls import client, error, ok
from tests.functions.conftest import Backend

LISTINGS = [
    pytest.param("streams", "/api/streams", id="streams"),
    pytest.param("publicstreams", "/api/streams/public", id="public"),
]


def created(backend: Backend, count: int) -> list[str]:
    return [
        backend.create_stream(title=f"Service {n}", on_memorial=people.MEMORIAL.id).id
        for n in range(count)
    ]


@pytest.mark.parametrize(("function", "path"), LISTINGS)
def test_following_next_cursor_lists_every_stream_once(
    backend: Backend, function: str, path: str
) -> None:
    made = created(backend, 5)
    listed: list[str] = []
    cursors: list[str] = []
    query = "limit=2"
    while True:
        body = ok(client(function).get(f"{path}?{query}"))
        listed += [view["id"] for view in body["streams"]]
        if body["nextCursor"] is None:
            break
        assert body["hasMore"] is True
        cursors.append(body["nextCursor"])
        query = f"limit=2&cursor={body['nextCursor']}"

    assert sorted(listed) == sorted(made) and len(listed) == len(made)
    assert len(cursors) == 2
    assert body["hasMore"] is False
    # A page asked for by cursor has no offset to go on from.
    assert body["pagination"] == {"limit": 2, "offset": 0, "nextOffset": None}


@pytest.mark.parametrize(("function", "path"), LISTINGS)
def test_an_offset_page_also_gives_the_next_cursor_and_keeps_its_pagination_block(
    backend: Backend, function: str, path: str
) -> None:
    created(backend, 3)

    first = ok(client(function).get(f"{path}?limit=2&offset=0"))
    last = ok(client(function).get(f"{path}?limit=2&offset=2"))

    assert first["pagination"] == {"limit": 2, "offset": 0, "nextOffset": 2}
    assert isinstance(first["nextCursor"], str) and first["nextCursor"]
    assert last["pagination"] == {"limit": 2, "offset": 2, "nextOffset": None}
    assert last["nextCursor"] is None
    by_cursor = ok(client(function).get(f"{path}?limit=2&cursor={first['nextCursor']}"))
    assert by_cursor["streams"] == last["streams"]


@pytest.mark.parametrize(("function", "path"), LISTINGS)
@pytest.mark.parametrize("cursor", ["garbage", "eyJ2IjoxfQ", "A" * 600])
def test_a_cursor_it_did_not_give_is_a_400(
    backend: Backend, function: str, path: str, cursor: str
) -> None:
    created(backend, 1)

    body = error(client(function).get(f"{path}?cursor={cursor}"), 400, "invalid-argument")

    assert "cursor" in body["error"]


def test_a_cursor_of_the_other_listing_is_a_400(backend: Backend) -> None:
    created(backend, 3)
    cursor = ok(client("streams").get("/api/streams?limit=1"))["nextCursor"]

    body = error(
        client("publicstreams").get(f"/api/streams/public?cursor={cursor}"), 400, "invalid-argument"
    )

    assert "cursor" in body["error"]


@pytest.mark.parametrize(("function", "path"), LISTINGS)
def test_an_offset_with_a_cursor_is_a_400(backend: Backend, function: str, path: str) -> None:
    created(backend, 3)
    cursor = ok(client(function).get(f"{path}?limit=1"))["nextCursor"]

    body = error(client(function).get(f"{path}?offset=1&cursor={cursor}"), 400, "invalid-argument")

    assert "offset" in body["error"]


def test_a_public_page_that_went_past_a_hidden_stream_goes_on_after_it_by_offset(
    backend: Backend,
) -> None:
    hidden = backend.create_stream(title="Private", on_memorial=people.PRIVATE_MEMORIAL.id).id
    shown = created(backend, 2)
    for stream_id, order in ((hidden, 1), (shown[0], 2), (shown[1], 3)):
        backend.repo.update(stream_id, displayed_at(order))
    public = client("publicstreams")

    first = ok(public.get("/api/streams/public?limit=1"))
    second = ok(public.get("/api/streams/public?limit=1&offset=2"))

    assert [view["id"] for view in first["streams"]] == [shown[0]]
    # The first page read past the hidden stream as well: the next one starts after both
    assert first["pagination"] == {"limit": 1, "offset": 0, "nextOffset": 2}
    assert [view["id"] for view in second["streams"]] == [shown[1]]
    assert second["hasMore"] is False


def displayed_at(order: int) -> Callable[[Stream], Stream]:
    return lambda stream: stream.model_copy(update={"display_order": order})
