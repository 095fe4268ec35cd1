"""The memorial page's polls through the local stand-in for Hosting's CDN (nginx
``proxy_cache``, ``LocalStack.cdn_url``): anonymous viewers share one cached answer, a manager
never gets it and never leaves an answer of theirs in the cache."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from google.cloud import firestore

from common.http import PRIVATE_CACHE_CONTROL, PUBLIC_CACHE_CONTROL
from emulators.cdn_cache import CACHE_STATUS_HEADER
from emulators.stack import LocalStack
from tests.integration.conftest import Caller, create_memorial


@pytest.fixture
def cdn(stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.cdn_url, timeout=30) as client:
        yield client


def cache_status(response: httpx.Response) -> str:
    return response.headers[CACHE_STATUS_HEADER]


def new_stream(api: httpx.Client, owner: Caller, memorial: str, **fields: object) -> str:
    response = api.post(
        f"/api/memorials/{memorial}/streams",
        json={"title": "Funeral service", **fields},
        headers=owner.bearer,
    )
    assert response.status_code == 200, response.text
    stream_id: str = response.json()["id"]
    return stream_id


def ids(board: dict[str, list[dict[str, object]]]) -> set[object]:
    return {s["id"] for key, streams in board.items() if key.endswith("Streams") for s in streams}


@pytest.fixture
def memorial(db: firestore.Client, callers: dict[str, Caller], api: httpx.Client) -> str:
    """A public memorial of its own (so nothing is cached for it yet) with one visible and one
    hidden stream: visitors see the first, its managers both."""
    memorial = create_memorial(db, callers)
    owner = callers["memorial_owner"]
    new_stream(api, owner, memorial)
    new_stream(api, owner, memorial, isVisible=False)
    return memorial


@pytest.mark.parametrize("route", ["memorial status", "stream status"])
def test_a_second_anonymous_poll_is_a_hit_with_the_same_answer(
    cdn: httpx.Client, api: httpx.Client, memorial: str, route: str
) -> None:
    path = f"/api/memorials/{memorial}/streams/status"
    if route == "stream status":
        visible = api.get(f"/api/memorials/{memorial}/streams").json()["allStreams"][0]["id"]
        path = f"/api/streams/{visible}/status"
    first, second = cdn.get(path), cdn.get(path)
    assert (first.status_code, second.status_code) == (200, 200)
    assert (cache_status(first), cache_status(second)) == ("MISS", "HIT")
    assert second.content == first.content
    assert second.headers["Cache-Control"] == PUBLIC_CACHE_CONTROL
    assert second.headers["ETag"] == first.headers["ETag"]


@pytest.mark.parametrize("credential", ["bearer", "cookie"])
def test_a_manager_never_gets_the_cached_anonymous_answer_nor_fills_the_cache(
    cdn: httpx.Client, callers: dict[str, Caller], memorial: str, credential: str
) -> None:
    path = f"/api/memorials/{memorial}/streams/status"
    cdn.get(path)
    anonymous = cdn.get(path)
    assert cache_status(anonymous) == "HIT"
    owner = callers["memorial_owner"]
    headers = owner.bearer if credential == "bearer" else owner.cookie
    managed = [cdn.get(path, headers=headers) for _ in range(2)]
    for response in managed:
        assert response.status_code == 200
        assert cache_status(response) == "BYPASS"
        assert response.headers["Cache-Control"] == PRIVATE_CACHE_CONTROL
        assert len(ids(response.json())) == 2  # the hidden stream too
    assert len(ids(anonymous.json())) == 1
    after = cdn.get(path)
    assert cache_status(after) == "HIT"
    assert after.content == anonymous.content  # the manager's answer was not stored


def test_a_manager_answer_is_never_stored_even_where_the_cache_is_not_bypassed(
    api: httpx.Client, callers: dict[str, Caller], memorial: str
) -> None:
    """The functions' own headers keep it out of any shared cache: Hosting's CDN, unlike the
    local one, does not pass credentialed requests by."""
    response = api.get(
        f"/api/memorials/{memorial}/streams/status", headers=callers["memorial_owner"].bearer
    )
    assert response.headers["Cache-Control"] == PRIVATE_CACHE_CONTROL
    assert "Authorization" in response.headers["Vary"]
    assert "ETag" not in response.headers
    anonymous = api.get(f"/api/memorials/{memorial}/streams/status")
    assert anonymous.headers["Vary"] == "Authorization"


def test_a_private_memorials_streams_never_reach_the_shared_cache(
    cdn: httpx.Client, api: httpx.Client, db: firestore.Client, callers: dict[str, Caller]
) -> None:
    private = create_memorial(db, callers, public=False)
    owner = callers["memorial_owner"]
    stream_id = new_stream(api, owner, private)
    board = f"/api/memorials/{private}/streams/status"
    status = f"/api/streams/{stream_id}/status"
    for path in (board, status):
        managed = cdn.get(path, headers=owner.bearer)
        assert managed.status_code == 200
        assert cache_status(managed) == "BYPASS"
        assert managed.headers["Cache-Control"] == PRIVATE_CACHE_CONTROL
    assert stream_id in ids(cdn.get(board, headers=owner.bearer).json())
    # Visitors' board of a private memorial is empty, the same for every visitor: that is all
    # the cache may hold of it.
    visitors = [cdn.get(board) for _ in range(2)]
    assert [cache_status(r) for r in visitors] == ["MISS", "HIT"]
    assert all(ids(r.json()) == set() for r in visitors)
    # The stream's own status is refused to visitors, and a refusal is never kept.
    refused = [cdn.get(status) for _ in range(2)]
    assert {r.status_code for r in refused} <= {401, 403, 404}
    assert [cache_status(r) for r in refused] == ["MISS", "MISS"]
    assert all("no-store" in r.headers["Cache-Control"] for r in refused)
