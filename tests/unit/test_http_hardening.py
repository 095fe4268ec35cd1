"""What the endpoint adapter refuses before any service runs: foreign origins (CORS and cookie
writes), bodies that are not JSON or nest too deeply, dates outside the calendar we store."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import cast

import flask
import pytest
from pydantic import ValidationError

from common import safe_json
from common.adapters.cloudflare.webhooks import _parse as parse_webhook
from common.adapters.cloudflare.wire import CfVideo
from common.bootstrap import Services, cloudflare_origins
from common.errors import InvalidArgumentError, PermissionDeniedError
from common.http import Ctx, csrf_refusal, origin_allowed, parse_origin
from common.models.api import StreamCreateRequest, StreamUpdateRequest
from common.models.domain import User
from common.ports import RequestCredentials
from common.settings import Settings

ALLOWED = ("https://tributestream.com", "https://*.tributestream.com", "http://localhost:5173")


@pytest.mark.parametrize(
    "origin",
    [
        "https://tributestream.com",
        "https://www.tributestream.com",
        "https://a.b.tributestream.com",
        "HTTPS://WWW.TributeStream.com",
        "https://tributestream.com:443",
        "http://localhost:5173",
    ],
)
def test_allowed_origins_match_scheme_host_and_port(origin: str) -> None:
    assert origin_allowed(origin, ALLOWED)


@pytest.mark.parametrize(
    "origin",
    [
        "http://tributestream.com",  # the scheme counts
        "http://www.tributestream.com",
        "https://tributestream.com:8443",
        "https://localhost:5173",
        "http://localhost:5174",
        "https://eviltributestream.com",
        "https://tributestream.com.evil.example",
        "https://evil.example",
        "null",
        "",
        "https://tributestream.com/path",
        "https://user@tributestream.com",
        "https://evil.example\\@tributestream.com",
        "https://*.tributestream.com",  # a pattern, never an origin
        "ftp://tributestream.com",
    ],
)
def test_other_origins_do_not_match(origin: str) -> None:
    assert not origin_allowed(origin, ALLOWED)


def test_a_bare_host_pattern_means_https() -> None:
    assert origin_allowed("https://example.com", ["example.com"])
    assert not origin_allowed("http://example.com", ["example.com"])
    assert parse_origin("http://localhost") == ("http", "localhost", 80)
    assert parse_origin("https://*.example.com") is None
    assert parse_origin("https://*.example.com", wildcard=True) == ("https", "*.example.com", 443)


def refusal(
    method: str = "POST",
    origin: str | None = None,
    site: str | None = None,
    own: str | None = "https://api.tributestream.net",
) -> str | None:
    return csrf_refusal(method, origin=origin, fetch_site=site, allowed=ALLOWED, own_origin=own)


def test_cookie_writes_from_our_own_pages_or_servers_are_allowed() -> None:
    assert refusal() is None  # no browser headers: the SvelteKit server, curl
    assert refusal(site="same-origin") is None
    assert refusal(site="same-origin", origin="https://preview.web.app") is None
    assert refusal(site="none") is None
    assert refusal(origin="https://www.tributestream.com") is None
    assert refusal(origin="https://www.tributestream.com", site="same-site") is None
    assert refusal(origin="https://tributestream.com", site="cross-site") is None
    assert refusal(origin="https://api.tributestream.net") is None  # the request's own origin
    assert refusal(origin="http://127.0.0.1:5000", own="http://127.0.0.1:5000") is None


@pytest.mark.parametrize(
    ("origin", "site"),
    [
        ("https://evil.example", "cross-site"),
        ("https://evil.example", None),
        ("http://tributestream.com", "cross-site"),
        ("http://tributestream.com", None),
        ("null", "cross-site"),
        (None, "cross-site"),
        (None, "same-site"),
        ("https://evil.tributestream.net", "same-site"),
    ],
)
def test_cookie_writes_from_other_sites_are_refused(origin: str | None, site: str | None) -> None:
    for method in ("POST", "PUT", "PATCH", "DELETE", "post"):
        assert refusal(method, origin=origin, site=site)


def test_cookie_reads_are_never_refused() -> None:
    for method in ("GET", "HEAD", "OPTIONS"):
        assert refusal(method, origin="https://evil.example", site="cross-site") is None


def test_a_get_that_writes_is_refused_across_sites_as_a_post_is() -> None:
    def get_that_writes(origin: str | None, site: str | None) -> str | None:
        return csrf_refusal("GET", origin=origin, fetch_site=site, allowed=ALLOWED, writes=True)

    assert get_that_writes(None, "cross-site")  # a link on another site: no Origin header
    assert get_that_writes("https://evil.example", None)
    assert get_that_writes(None, "same-origin") is None
    assert get_that_writes(None, None) is None  # not a browser: the SvelteKit server, curl
    assert get_that_writes("https://www.tributestream.com", "cross-site") is None


class RecordingAuth:
    def __init__(self) -> None:
        self.seen: list[RequestCredentials] = []

    def authenticate(self, credentials: RequestCredentials) -> User | None:
        self.seen.append(credentials)
        return User(uid="u")


def ctx_for(auth: RecordingAuth | None = None) -> Ctx:
    """The current test request as an endpoint sees it."""
    services = SimpleNamespace(auth=auth or RecordingAuth(), settings=Settings())
    return Ctx(flask.request, {}, cast(Services, services))


@pytest.fixture
def app() -> flask.Flask:
    return flask.Flask(__name__)


def test_the_session_cookie_cannot_be_used_by_a_cross_site_write(app: flask.Flask) -> None:
    evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    cookie = {"Cookie": "__session=abc"}
    auth = RecordingAuth()
    with app.test_request_context("/api/streams/s/start", method="POST", headers=evil | cookie):
        with pytest.raises(PermissionDeniedError) as refused:
            _ = ctx_for(auth).user
        assert "another site" in refused.value.message
        assert refused.value.http_status == 403
    assert auth.seen == []
    bearer = {"Authorization": "Bearer token"}
    with app.test_request_context("/x", method="POST", headers=evil | cookie | bearer):
        assert ctx_for(auth).user is not None  # a bearer token is no ambient credential
    with app.test_request_context("/x", method="POST", headers=evil):
        assert ctx_for(auth).user is None  # no cookie: nothing to forge (and anonymous)
    with app.test_request_context("/x", method="GET", headers=evil | cookie):
        assert ctx_for(auth).user is not None
    same = {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"}
    with app.test_request_context("/x", method="POST", headers=same | cookie):
        assert ctx_for(auth).user is not None
    # Without a credential the authenticator is not asked at all.
    assert [c.bearer_token for c in auth.seen] == ["token", None, None]


def body_of(app: flask.Flask, data: bytes, content_type: str | None) -> StreamCreateRequest:
    headers = {"Content-Type": content_type} if content_type else {}
    with app.test_request_context("/api/streams", method="POST", data=data, headers=headers):
        return ctx_for().body(StreamCreateRequest)


def test_json_bodies_need_a_json_content_type(app: flask.Flask) -> None:
    body = json.dumps({"title": "Vigil"}).encode()
    assert body_of(app, body, "application/json").title == "Vigil"
    assert body_of(app, body, "application/json; charset=utf-8").title == "Vigil"
    assert body_of(app, body, "Application/JSON").title == "Vigil"
    for form_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/plain",
        None,
    ):
        with pytest.raises(InvalidArgumentError, match="Content-Type must be application/json"):
            body_of(app, body, form_type)
    with pytest.raises(InvalidArgumentError, match="title"):  # no body at all reads as {}
        body_of(app, b"", None)


@pytest.mark.parametrize(
    "raw",
    [b"[" * 30_000 + b"]" * 30_000, b'{"a":' * 65 + b"1" + b"}" * 65, b"[" * 65 + b"]" * 65],
)
def test_deeply_nested_json_is_a_400(app: flask.Flask, raw: bytes) -> None:
    with pytest.raises(InvalidArgumentError, match="nests too deeply"):
        body_of(app, raw, "application/json")


def test_nesting_up_to_the_limit_parses() -> None:
    assert safe_json.loads(b"[" * 64 + b"]" * 64) is not None
    with pytest.raises(safe_json.JsonTooDeepError):
        safe_json.loads(b"[" * 65 + b"]" * 65)
    with pytest.raises(safe_json.JsonTooDeepError):
        safe_json.loads("[" * 200_000 + "]" * 200_000)
    assert not safe_json.depth_exceeds({"a": [1, {"b": 2}]}, 3)
    assert safe_json.depth_exceeds({"a": [1, {"b": 2}]}, 2)
    assert safe_json.loads(b'"text"') == "text"


def test_a_deeply_nested_webhook_body_is_a_400() -> None:
    with pytest.raises(InvalidArgumentError, match="not the expected JSON"):
        parse_webhook(CfVideo, b'{"uid":"v","meta":' * 5000 + b"{}" + b"}" * 5000)
    with pytest.raises(InvalidArgumentError):
        parse_webhook(CfVideo, b"\xff")


@pytest.mark.parametrize(
    "when",
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "1899-12-31T23:59:59Z",
        "2201-01-01T00:00:00Z",
    ],
)
def test_dates_at_the_calendars_edge_are_refused(when: str) -> None:
    with pytest.raises(ValidationError, match="between the years 1900 and 2200"):
        StreamCreateRequest.model_validate({"title": "x", "scheduledStartTime": when})
    with pytest.raises(ValidationError, match="between the years 1900 and 2200"):
        StreamUpdateRequest.model_validate({"scheduledDateTime": when})


def test_request_dates_are_normalised_to_utc() -> None:
    request = StreamCreateRequest.model_validate(
        {"title": "x", "scheduledStartTime": "2026-05-01T18:30:00+02:00"}
    )
    assert request.scheduled_start is not None
    assert request.scheduled_start.isoformat() == "2026-05-01T16:30:00+00:00"
    naive = StreamUpdateRequest.model_validate({"scheduledDateTime": "2026-05-01T18:30:00"})
    assert naive.scheduled_date_time is not None
    assert naive.scheduled_date_time.isoformat() == "2026-05-01T18:30:00+00:00"
    assert (
        StreamUpdateRequest.model_validate({"scheduledStartTime": None}).scheduled_start_time
        is None
    )


def test_allowed_origins_carry_a_scheme_and_localhost_only_locally() -> None:
    configured = Settings(environment="local", allowed_origins=["tributestream.com"])
    assert configured.allowed_origins == [
        "https://tributestream.com",
        "http://localhost:5173",
        "http://localhost:5174",
    ]
    defaults = Settings.model_fields["allowed_origins"].get_default(call_default_factory=True)
    assert defaults == ["https://tributestream.com", "https://*.tributestream.com"]
    with pytest.raises(ValidationError, match="scheme://host"):
        Settings(allowed_origins=["https://tributestream.com/path"])
    with pytest.raises(ValidationError, match="scheme://host"):
        Settings(allowed_origins=["ftp://tributestream.com"])


def test_cloudflare_gets_bare_hosts() -> None:
    assert cloudflare_origins(
        ["https://tributestream.com", "https://*.tributestream.com", "http://localhost:5173"]
    ) == ("tributestream.com", "*.tributestream.com", "localhost:5173")
