"""The running stack probed as an attacker would: nothing anyone can send is a 500, no other
site can act with a visitor's session cookie, CORS checks the scheme, errors are not cached."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from emulators.stack import LocalStack
from tests.integration.conftest import Caller
from tests.stream_webhooks import sign_stream_webhook

pytestmark = pytest.mark.emulator
Callers = dict[str, Caller]
EVIL = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
EDGE_DATES = ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00")
# About 40 KB: under the body limit, far deeper than json.loads' recursion limit.
NESTED = b"[" * 20_000 + b"]" * 20_000
NESTED_OBJECT = b'{"title":' * 4_000 + b'"x"' + b"}" * 4_000


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = response.json()
    assert body["error"]
    return body


def new_stream(api: httpx.Client, owner: Caller) -> str:
    created = api.post("/api/streams", json={"title": "Probe"}, headers=owner.bearer)
    assert created.status_code == 200, created.text
    stream_id: str = created.json()["id"]
    return stream_id


def status_of(api: httpx.Client, owner: Caller, stream_id: str) -> str:
    status: str = api.get(f"/api/streams/{stream_id}", headers=owner.bearer).json()["status"]
    return status


def test_deeply_nested_json_is_a_400_on_every_json_body(
    api: httpx.Client, callers: Callers
) -> None:
    owner = callers["owner"]
    stream_id = new_stream(api, owner)
    json_type = {"Content-Type": "application/json"}

    for body in (NESTED, NESTED_OBJECT):
        for method, path in (
            ("POST", "/api/streams"),
            ("PUT", f"/api/streams/{stream_id}"),
            ("PUT", "/api/streams/reorder"),
            ("POST", "/api/memorials/some-memorial/streams"),
        ):
            response = api.request(method, path, content=body, headers=json_type | owner.bearer)
            assert "deeply" in error(response, 400)["error"], (method, path)


def test_a_deeply_nested_signed_webhook_is_a_400_and_an_unsigned_one_a_401(
    api: httpx.Client, stack: LocalStack
) -> None:
    assert stack.webhook_secret
    at = int(time.time())
    webhook = "/api/webhooks/cloudflare/recording"
    json_type = {"Content-Type": "application/json"}
    signature = sign_stream_webhook(stack.webhook_secret, NESTED, at)

    signed = api.post(webhook, content=NESTED, headers=json_type | {"Webhook-Signature": signature})
    unsigned = api.post(webhook, content=NESTED, headers=json_type)
    badly_signed = api.post(
        webhook, content=NESTED, headers=json_type | {"Webhook-Signature": f"time={at},sig1=00"}
    )

    error(signed, 400)
    error(unsigned, 401)
    error(badly_signed, 401)


@pytest.mark.parametrize("when", EDGE_DATES)
def test_dates_at_the_edge_of_the_calendar_are_a_400(
    api: httpx.Client, callers: Callers, when: str
) -> None:
    owner = callers["owner"]
    stream_id = new_stream(api, owner)

    for field in ("scheduledStartTime", "scheduledDateTime"):
        created = api.post(
            "/api/streams",
            json={"title": "Edge", "scheduleType": "scheduled", field: when},
            headers=owner.bearer,
        )
        updated = api.put(f"/api/streams/{stream_id}", json={field: when}, headers=owner.bearer)
        assert "1900" in error(created, 400)["error"]
        assert "1900" in error(updated, 400)["error"]


def test_a_form_encoded_body_is_not_json_even_with_a_valid_cookie(
    api: httpx.Client, callers: Callers
) -> None:
    owner = callers["owner"]
    listed_before = api.get("/api/streams?limit=100", headers=owner.bearer).json()["total"]

    for content_type in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data"):
        response = api.post(
            "/api/streams",
            content=b'{"title":"Forged"}',
            headers=owner.cookie | {"Content-Type": content_type},
        )
        assert "application/json" in error(response, 400)["error"]

    assert api.get("/api/streams?limit=100", headers=owner.bearer).json()["total"] == listed_before


def test_another_site_cannot_act_with_the_session_cookie(
    api: httpx.Client, callers: Callers
) -> None:
    owner = callers["owner"]
    stream_id = new_stream(api, owner)
    start = f"/api/streams/{stream_id}/start"

    for headers in (EVIL | FORM, EVIL, {"Origin": "http://tributestream.com"}):
        refused = api.post(start, content=b"x=1", headers=owner.cookie | headers)
        assert "another site" in error(refused, 403)["error"]
    cross_site = api.post(start, headers=owner.cookie | {"Sec-Fetch-Site": "cross-site"})
    error(cross_site, 403)
    for method, path in (
        ("DELETE", f"/api/streams/{stream_id}"),
        ("POST", f"/api/streams/{stream_id}/fix-status"),
        ("POST", f"/api/streams/{stream_id}/stop"),
    ):
        error(api.request(method, path, headers=owner.cookie | EVIL), 403)
    assert status_of(api, owner, stream_id) == "scheduled"

    # The site's own pages, and the SvelteKit server (no browser headers), may.
    same_origin = api.post(start, headers=owner.cookie | {"Sec-Fetch-Site": "same-origin"})
    assert same_origin.status_code == 200, same_origin.text
    assert status_of(api, owner, stream_id) == "live"
    stopped = api.post(
        f"/api/streams/{stream_id}/stop",
        headers=owner.cookie
        | {"Origin": "https://www.tributestream.com", "Sec-Fetch-Site": "same-site"},
    )
    assert stopped.status_code == 200, stopped.text
    other = new_stream(api, owner)
    from_the_server = api.post(f"/api/streams/{other}/start", headers=owner.cookie)
    assert from_the_server.status_code == 200, from_the_server.text
    # Reads with the cookie stay possible from anywhere (nothing changes).
    assert api.get(f"/api/streams/{other}", headers=owner.cookie | EVIL).status_code == 200


def test_bearer_token_calls_are_unaffected(api: httpx.Client, callers: Callers) -> None:
    """A bearer token is sent on purpose by the page's script, never attached by the browser."""
    owner = callers["owner"]
    stream_id = new_stream(api, owner)

    started = api.post(f"/api/streams/{stream_id}/start", headers=owner.bearer | EVIL)
    assert started.status_code == 200, started.text
    both = api.post(f"/api/streams/{stream_id}/stop", headers=owner.bearer | owner.cookie | EVIL)
    assert both.status_code == 200, both.text


def test_whip_cors_checks_the_scheme(api: httpx.Client) -> None:
    whip = "/api/streams/any-stream/whip"
    preflight = {"Access-Control-Request-Method": "POST"}

    plain_http = api.options(whip, headers={"Origin": "http://tributestream.com", **preflight})
    https = api.options(whip, headers={"Origin": "https://tributestream.com", **preflight})

    assert plain_http.status_code == 204
    assert "Access-Control-Allow-Origin" not in plain_http.headers
    assert "Access-Control-Allow-Credentials" not in plain_http.headers
    assert https.headers["Access-Control-Allow-Origin"] == "https://tributestream.com"
    assert https.headers["Access-Control-Allow-Credentials"] == "true"


def test_not_found_is_never_cached(api: httpx.Client) -> None:
    from_a_function = api.get("/api/streams/no-such-stream")
    from_the_gateway = api.get("/api/no-such-endpoint/at/all")
    wrong_method = api.patch("/api/streams/no-such-stream", json={})

    error(from_a_function, 404)
    assert from_the_gateway.status_code == 404
    assert from_the_gateway.headers["Cache-Control"] == "no-store"
    error(wrong_method, 405)
