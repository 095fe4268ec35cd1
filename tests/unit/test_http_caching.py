"""How ``http_endpoint(cache=...)`` lets shared caches keep answers: "public" for all of them,
"anonymous" only for answers to requests that carry no credentials."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import cast

import flask
import pytest
from pydantic import BaseModel

from common.bootstrap import Services, override
from common.errors import NotFoundError
from common.http import (
    ENDPOINTS,
    PRIVATE_CACHE_CONTROL,
    PUBLIC_CACHE_CONTROL,
    CacheScope,
    Ctx,
    Op,
    Reply,
    http_endpoint,
)
from common.settings import Settings

app = flask.Flask(__name__)
Function = Callable[[flask.Request], flask.Response]


class Board(BaseModel):
    live: int


def endpoint(scope: CacheScope | None, name: str) -> Function:
    def handler(ctx: Ctx) -> Reply:
        if ctx.param("memorialId") == "gone":
            raise NotFoundError("No such memorial")
        return Board(live=1)

    handler.__name__ = name
    function = http_endpoint(
        ("/api/memorials/{memorialId}/board",), {"GET": Op("Board", {200: Board})}, cache=scope
    )(handler)
    ENDPOINTS.pop(name)  # not one of ours: kept out of the OpenAPI document
    return function


ANONYMOUS = endpoint("anonymous", "cachingtestanonymous")
PUBLIC = endpoint("public", "cachingtestpublic")
UNCACHED = endpoint(None, "cachingtestuncached")


@pytest.fixture(autouse=True)
def services() -> Iterator[None]:
    stub = SimpleNamespace(settings=Settings(environment="local"))
    with override(cast(Services, stub)):
        yield


def call(
    function: Function, path: str = "/api/memorials/m1/board", **headers: str
) -> flask.Response:
    with app.test_request_context(path, headers=headers):
        return function(flask.request)


CREDENTIALS = [
    {"Authorization": "Bearer some-token"},
    {"Authorization": "Basic dXNlcjpwYXNz"},  # not one we accept, still not anonymous
    {"Cookie": "__session=cookie-value"},
    {"Cookie": "session=cookie-value"},  # what an edge proxy forwarding all cookies passes
]


def test_an_anonymous_answer_is_shared_with_an_etag_and_varies_on_authorization() -> None:
    response = call(ANONYMOUS)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == PUBLIC_CACHE_CONTROL
    assert response.headers["ETag"].startswith('"')
    assert response.headers["Vary"] == "Authorization"


@pytest.mark.parametrize("headers", CREDENTIALS)
def test_a_credentialed_answer_is_private_and_never_stored(headers: dict[str, str]) -> None:
    response = call(ANONYMOUS, **headers)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == PRIVATE_CACHE_CONTROL
    assert "ETag" not in response.headers
    assert "Authorization" in response.headers["Vary"]


def test_a_cookie_other_than_the_session_leaves_the_answer_anonymous() -> None:
    response = call(ANONYMOUS, Cookie="_ga=GA1.1.123; theme=dark")
    assert response.headers["Cache-Control"] == PUBLIC_CACHE_CONTROL


def test_an_anonymous_revalidation_gets_304_with_the_same_vary() -> None:
    etag = call(ANONYMOUS).headers["ETag"]
    response = call(ANONYMOUS, **{"If-None-Match": etag})
    assert response.status_code == 304
    assert response.headers["ETag"] == etag
    assert response.headers["Cache-Control"] == PUBLIC_CACHE_CONTROL
    assert response.headers["Vary"] == "Authorization"


def test_a_credentialed_request_never_gets_304_from_the_shared_etag() -> None:
    etag = call(ANONYMOUS).headers["ETag"]
    response = call(ANONYMOUS, **{"If-None-Match": etag, "Authorization": "Bearer t"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == PRIVATE_CACHE_CONTROL


@pytest.mark.parametrize("headers", [{}, *CREDENTIALS])
def test_errors_are_never_stored(headers: dict[str, str]) -> None:
    response = call(ANONYMOUS, "/api/memorials/gone/board", **headers)
    assert response.status_code == 404
    assert response.headers["Cache-Control"] == "no-store"
    assert "ETag" not in response.headers


@pytest.mark.parametrize("headers", [{}, *CREDENTIALS])
def test_a_public_answer_is_shared_whoever_asks(headers: dict[str, str]) -> None:
    response = call(PUBLIC, **headers)
    assert response.headers["Cache-Control"] == PUBLIC_CACHE_CONTROL
    assert "Vary" not in response.headers


def test_an_endpoint_without_a_cache_scope_is_never_stored_on_success() -> None:
    # Its answer may be one caller's (an owner's stream key): no CDN default may keep it.
    response = call(UNCACHED)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == PRIVATE_CACHE_CONTROL
    assert "ETag" not in response.headers
