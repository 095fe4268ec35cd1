"""The audience calls of the Cloudflare adapter (httpx.MockTransport): the live viewer count
on the delivery host, without our token, and GraphQL Analytics' minutes viewed, with the
API's retry policy."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from common.adapters.cloudflare.client import CloudflareStreamProvider
from common.ports import ProviderRejectedError, ProviderUnavailableError
from tests.unit.test_cloudflare_client import Recorder

SINCE = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
UNTIL = datetime(2026, 11, 24, 12, 30, tzinfo=UTC)


def provider(api: Recorder, delivery: Recorder | None = None) -> CloudflareStreamProvider:
    delivery_http = httpx.Client(transport=httpx.MockTransport((delivery or api).handler))
    return CloudflareStreamProvider(
        api.client(),
        delivery_base="https://customer-abc.cloudflarestream.com/",
        delivery_http=delivery_http,
    )


def graphql_answer(*minutes: float) -> httpx.Response:
    groups = [
        {"sum": {"minutesViewed": m}, "dimensions": {"uid": f"v{i}"}} for i, m in enumerate(minutes)
    ]
    body = {
        "data": {"viewer": {"accounts": [{"streamMinutesViewedAdaptiveGroups": groups}]}},
        "errors": None,
    }
    return httpx.Response(200, json=body)


def test_the_live_count_is_read_on_the_delivery_host_without_our_token() -> None:
    delivery = Recorder(httpx.Response(200, json={"liveViewers": 113}))
    assert provider(Recorder(), delivery).live_viewers("in1") == 113
    request = delivery.requests[0]
    assert str(request.url) == "https://customer-abc.cloudflarestream.com/in1/views"
    assert "Authorization" not in request.headers


@pytest.mark.parametrize("status", [401, 403, 404])
def test_a_count_cloudflare_will_not_give_is_none(status: int) -> None:
    delivery = Recorder(httpx.Response(status, text="no"))
    assert provider(Recorder(), delivery).live_viewers("in1") is None


def test_a_failing_count_is_unavailable_and_tried_once() -> None:
    delivery = Recorder(httpx.Response(503, text="busy"), httpx.ConnectError("down"))
    with pytest.raises(ProviderUnavailableError):
        provider(Recorder(), delivery).live_viewers("in1")
    with pytest.raises(ProviderUnavailableError):
        provider(Recorder(), delivery).live_viewers("in1")
    assert len(delivery.requests) == 2


def test_minutes_viewed_sums_the_groups_of_one_graphql_query() -> None:
    api = Recorder(graphql_answer(2.5, 4.0))
    assert provider(api).minutes_viewed(("v0", "v1"), SINCE, UNTIL) == 6.5
    request = api.requests[0]
    assert str(request.url) == "https://api.test/client/v4/graphql"
    assert request.headers["Authorization"] == "Bearer tok"
    sent = json.loads(request.content)
    assert "streamMinutesViewedAdaptiveGroups" in sent["query"]
    assert sent["variables"] == {
        "accountTag": "acc",
        "uids": ["v0", "v1"],
        "since": "2026-11-24T10:00:00Z",
        "until": "2026-11-24T12:30:00Z",
    }


def test_graphql_is_retried_like_a_get_and_its_errors_are_refusals() -> None:
    api = Recorder(httpx.Response(502, text="bad gateway"), graphql_answer(1.0))
    assert provider(api).minutes_viewed(("v0",), SINCE, UNTIL) == 1.0
    assert api.sleeps and len(api.requests) == 2
    refused = Recorder(httpx.Response(200, json={"data": None, "errors": [{"message": "bad"}]}))
    with pytest.raises(ProviderRejectedError, match="bad"):
        provider(refused).minutes_viewed(("v0",), SINCE, UNTIL)
