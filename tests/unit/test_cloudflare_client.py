"""The Cloudflare client's wire handling, retries and error translation (httpx.MockTransport)."""

from __future__ import annotations

import json
import ssl

import httpx
import pytest
from pydantic import SecretStr

from common.adapters.cloudflare.client import (
    CloudflareStreamClient,
    CloudflareStreamProvider,
    RetryPolicy,
)
from common.adapters.cloudflare.wire import CfLiveInput
from common.ports import (
    ProviderNotFoundError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderUnavailableError,
)


def ok(result: object) -> httpx.Response:
    return httpx.Response(
        200, json={"success": True, "errors": [], "messages": [], "result": result}
    )


def fail(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {
        "success": False,
        "errors": [{"code": 10000, "message": "nope"}],
        "messages": [],
        "result": None,
    }
    return httpx.Response(status, json=body, headers=headers)


LIVE_INPUT = {
    "uid": "in1",
    "rtmps": {"url": "rtmps://l/live/", "streamKey": "k"},
    "webRTC": {"url": "https://c/s/webRTC/publish"},
    "meta": {"streamId": "s1"},
}


class Recorder:
    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        item = self.responses.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    def client(self, retries: int = 2) -> CloudflareStreamClient:
        return CloudflareStreamClient(
            api_base="https://api.test/client/v4",
            account_id="acc",
            api_token=SecretStr("tok"),
            retry=RetryPolicy(retries, sleep=self.sleeps.append, jitter=lambda _low, high: high),
            transport=httpx.MockTransport(self.handler),
        )


def test_get_sends_bearer_to_account_path_and_parses_envelope() -> None:
    rec = Recorder(ok(LIVE_INPUT))
    live_input = rec.client().get_live_input("in1")
    assert live_input.uid == "in1"
    request = rec.requests[0]
    assert request.url.path == "/client/v4/accounts/acc/stream/live_inputs/in1"
    assert request.headers["Authorization"] == "Bearer tok"


def test_idempotent_calls_retry_5xx_with_backoff_then_succeed() -> None:
    rec = Recorder(fail(503), fail(502), ok(LIVE_INPUT))
    assert rec.client().get_live_input("in1").uid == "in1"
    assert rec.sleeps == [0.5, 1.0]


def test_rate_limit_honours_retry_after_and_gives_up_on_long_waits() -> None:
    rec = Recorder(fail(429, {"Retry-After": "3"}), ok(LIVE_INPUT))
    rec.client().get_live_input("in1")
    assert rec.sleeps == [3]
    rec = Recorder(fail(429, {"Retry-After": "300"}))
    with pytest.raises(ProviderRateLimitedError) as caught:
        rec.client().get_live_input("in1")
    assert caught.value.retry_after_s == 300 and rec.sleeps == []


def test_create_is_never_retried_once_the_request_may_have_arrived() -> None:
    for outcome in (fail(500), httpx.ReadTimeout("slow")):
        rec = Recorder(outcome, ok(LIVE_INPUT))
        with pytest.raises(ProviderUnavailableError):
            rec.client().create_live_input({"meta": {}})
        assert len(rec.requests) == 1


def test_create_retries_a_refused_connection() -> None:
    rec = Recorder(httpx.ConnectError("refused"), ok(LIVE_INPUT))
    assert rec.client().create_live_input({}).uid == "in1"
    assert len(rec.requests) == 2


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (fail(404), ProviderNotFoundError),
        (fail(400), ProviderRejectedError),
        (httpx.Response(200, text="<html>"), ProviderRejectedError),
    ],
)
def test_errors_are_translated(response: httpx.Response, error: type[Exception]) -> None:
    with pytest.raises(error):
        Recorder(response).client(retries=0).get_live_input("x")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("connected", "connected"),
        ("reconnected", "connected"),
        ("reconnecting", "reconnecting"),
        ("client_disconnect", "disconnected"),
        ("new_configuration_accepted", "unknown"),
        (None, "disconnected"),
        ({"current": {"state": "connected"}}, "connected"),
        ({"current": {"state": "disconnected", "reason": "x"}}, "disconnected"),
        ({"current": None}, "disconnected"),
    ],
)
def test_live_status_accepts_documented_string_and_production_object(
    status: object, expected: str
) -> None:
    assert CfLiveInput.model_validate({"uid": "u", "status": status}).connection() == expected


@pytest.mark.parametrize("status", ["connected", {"current": {"state": "connected"}}])
def test_a_disabled_input_has_no_publisher_whatever_its_status_says(status: object) -> None:
    disabled = CfLiveInput.model_validate({"uid": "u", "status": status, "enabled": False})
    assert disabled.connection() == "disconnected"


def test_retry_policy_backoff_is_capped_and_jittered() -> None:
    bounds: list[tuple[float, float]] = []

    def jitter(low: float, high: float) -> float:
        bounds.append((low, high))
        return low

    policy = RetryPolicy(5, sleep=lambda _: None, jitter=jitter)
    assert [policy.delay(a, None) for a in range(6)] == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0]
    assert bounds[-1] == (4.0, 8.0)
    assert policy.delay(0, 7) == 7


def test_every_cloudflare_client_verifies_tls_with_one_shared_context() -> None:
    # Loading the CA bundle costs about 30 ms a client: a cold start builds three.
    api = CloudflareStreamClient(
        api_base="https://api.example.test/client/v4",
        account_id="acct",
        api_token=SecretStr("token"),
        retry=RetryPolicy(0),
    )
    provider = CloudflareStreamProvider(api, delivery_base="https://customer.example.test")

    def context_of(client: httpx.Client) -> object:
        transport = client._transport
        assert isinstance(transport, httpx.HTTPTransport)
        context = transport._pool._ssl_context
        assert context is not None
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        return context

    contexts = {
        id(context_of(client))
        for client in (api._http, provider._whip_http, provider._delivery_http)
    }
    assert len(contexts) == 1


def video_in(state: str) -> dict[str, object]:
    return {"uid": f"v-{state}", "liveInput": "in1", "status": {"state": state}}


@pytest.mark.parametrize(
    ("videos", "expected"),
    # None being recorded still says nothing: a browser (never recorded) may be sending.
    [([video_in("live-inprogress")], "connected"), ([video_in("ready")], "unknown")],
)
def test_a_status_saying_nothing_of_the_connection_is_read_from_the_inputs_videos(
    videos: list[dict[str, object]], expected: str
) -> None:
    after_a_settings_change = LIVE_INPUT | {"status": "new_configuration_accepted"}
    rec = Recorder(ok(after_a_settings_change), ok(videos))

    live_input = CloudflareStreamProvider(rec.client()).get_live_input("in1")

    assert live_input.connection == expected
    assert [r.url.path.rsplit("/", 1)[-1] for r in rec.requests] == ["in1", "videos"]


def test_enabling_an_input_sends_its_recording_settings_along() -> None:
    recording = {"mode": "automatic", "timeoutSeconds": 300, "requireSignedURLs": True}
    rec = Recorder(ok(LIVE_INPUT | {"recording": recording}), ok(LIVE_INPUT))

    CloudflareStreamProvider(rec.client()).set_input_enabled("in1", False)

    get, put = rec.requests
    assert (get.method, put.method) == ("GET", "PUT")
    assert json.loads(put.content) == {
        "enabled": False,
        "meta": {"streamId": "s1"},
        "recording": recording,
    }
