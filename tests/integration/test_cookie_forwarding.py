"""Which credentials reach the functions in each supported way of putting them behind the site
(README, "Putting the functions behind the site"): Hosting rewrites (``api``), an edge proxy
forwarding every cookie (``edge_api``), and the SvelteKit server forwarding its own calls."""

from __future__ import annotations

import httpx
import pytest

from emulators.hosting_gateway import CookiePolicy, forward_cookies
from emulators.stack import LocalStack
from tests.integration.conftest import Caller

Callers = dict[str, Caller]
ALLOWED_ORIGIN = "https://www.tributestream.com"  # in the default LS_ALLOWED_ORIGINS
FOREIGN_ORIGIN = "https://evil.example"


def frontend_cookies(owner: Caller) -> dict[str, str]:
    """The cookies as the frontend sets them: its session cookie is ``session``, not
    ``__session``, and others ride along."""
    return {"session": owner.session_cookie, "theme": "dark"}


def assert_recognised_as_the_owner(
    client: httpx.Client,
    private_stream: str,
    *,
    cookies: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    """With these credentials the owner reads their private stream (the owner's view, the only
    one that carries the stream key) and creates a stream."""
    read = client.get(f"/api/streams/{private_stream}", cookies=cookies, headers=headers)
    assert read.status_code == 200, read.text
    assert read.json()["streamKey"], "only the owner's view carries the stream key"
    created = client.post("/api/streams", json={"title": "Vigil"}, cookies=cookies, headers=headers)
    assert created.status_code == 200, created.text


def test_the_hosting_gateway_hands_functions_only_the___session_cookie() -> None:
    browser = {
        "PATH_INFO": "/api/streams",
        "HTTP_COOKIE": "session=frontend; theme=dark; __session=kept; __sessionx=other",
    }

    assert forward_cookies(browser, CookiePolicy.HOSTING) == {
        "PATH_INFO": "/api/streams",
        "HTTP_COOKIE": "__session=kept",
    }
    without_session = forward_cookies(
        {"HTTP_COOKIE": "session=frontend; _ga=1"}, CookiePolicy.HOSTING
    )
    assert "HTTP_COOKIE" not in without_session
    assert forward_cookies(browser, CookiePolicy.EDGE) == browser


@pytest.mark.emulator
def test_behind_hosting_the_frontends_session_cookie_does_not_authenticate(
    api: httpx.Client, callers: Callers, private_stream: str
) -> None:
    owner = callers["owner"]
    as_the_frontend_sets_it = frontend_cookies(owner)

    read = api.get(f"/api/streams/{private_stream}", cookies=as_the_frontend_sets_it)
    create = api.post("/api/streams", json={"title": "Vigil"}, cookies=as_the_frontend_sets_it)

    assert read.status_code == 401, read.text
    assert create.status_code == 401, create.text
    renamed = {"__session": owner.session_cookie}
    assert_recognised_as_the_owner(api, private_stream, cookies=renamed)


@pytest.mark.emulator
def test_an_edge_proxy_forwarding_every_cookie_lets_the_session_cookie_through(
    edge_api: httpx.Client, callers: Callers, private_stream: str
) -> None:
    as_the_frontend_sets_it = frontend_cookies(callers["owner"])

    assert_recognised_as_the_owner(edge_api, private_stream, cookies=as_the_frontend_sets_it)


@pytest.mark.emulator
def test_the_sveltekit_server_forwarding_its_own_calls_authenticates_behind_hosting(
    api: httpx.Client, callers: Callers, private_stream: str
) -> None:
    """A server-side fetch (no Origin) that passes the user's credential on explicitly."""
    owner = callers["owner"]
    cookie_renamed = {"Cookie": f"__session={owner.session_cookie}"}

    for forwarded in (cookie_renamed, owner.bearer):
        assert_recognised_as_the_owner(api, private_stream, headers=forwarded)
    # Passing the browser's Cookie header on unchanged is not enough behind Hosting.
    as_received = {"Cookie": f"session={owner.session_cookie}; theme=dark"}
    assert api.get(f"/api/streams/{private_stream}", headers=as_received).status_code == 401


@pytest.mark.emulator
def test_same_origin_calls_need_no_cors(
    api: httpx.Client, stack: LocalStack, callers: Callers
) -> None:
    """Browsers send Origin on a same-origin POST and check no CORS headers on the answer."""
    session = {"__session": callers["owner"].session_cookie}

    same_origin = api.post(
        "/api/streams",
        json={"title": "Vigil"},
        cookies=session,
        headers={"Origin": stack.gateway_url},
    )

    assert same_origin.status_code == 200, same_origin.text
    assert "Access-Control-Allow-Origin" not in same_origin.headers
    # Only WHIP answers cross-origin pages; the rest of the API is for same-origin callers.
    cross_origin = api.get("/api/streams/public", headers={"Origin": ALLOWED_ORIGIN})
    assert cross_origin.status_code == 200
    assert "Access-Control-Allow-Origin" not in cross_origin.headers


@pytest.mark.emulator
def test_cross_origin_whip_allows_configured_origins_with_credentials(
    api: httpx.Client, private_stream: str
) -> None:
    whip = f"/api/streams/{private_stream}/whip"
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }

    allowed = api.options(whip, headers={"Origin": ALLOWED_ORIGIN, **preflight})
    foreign = api.options(whip, headers={"Origin": FOREIGN_ORIGIN, **preflight})

    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Authorization" in allowed.headers["Access-Control-Allow-Headers"]
    assert "Origin" in allowed.headers["Vary"]
    assert "Access-Control-Allow-Origin" not in foreign.headers
    assert "Access-Control-Allow-Credentials" not in foreign.headers
    # The answer itself carries them too, so the page can read an error.
    anonymous = api.post(
        whip,
        content=b"v=0\r\n",
        headers={"Origin": ALLOWED_ORIGIN, "Content-Type": "application/sdp"},
    )
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert anonymous.headers["Access-Control-Allow-Credentials"] == "true"
