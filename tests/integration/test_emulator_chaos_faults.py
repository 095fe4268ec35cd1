"""The Cloudflare emulator's seeded chaos mode (`make chaos` drives it): 5xx, 429 with
Retry-After and timeouts on the API; dropped, duplicated and reordered notifications."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from emulators.cloudflare_stream.state import CHAOS_EXEMPT_HEADER
from emulators.stack import LocalStack
from tests.integration.conftest import WebhookRouting
from tests.integration.test_broadcast_e2e import Receiver, wait_for

pytestmark = pytest.mark.emulator
Chaos = Callable[..., None]


@pytest.fixture
def chaos(stack: LocalStack) -> Iterator[Chaos]:
    """Turn on chaos with the given rates (camelCase, as the control body takes them)."""

    def turn_on(**rates: Any) -> None:
        httpx.post(
            f"{stack.cloudflare_url}/__emulator/faults", json={"chaos": {"seed": 1, **rates}}
        ).raise_for_status()

    yield turn_on
    httpx.post(f"{stack.cloudflare_url}/__emulator/faults", json={}).raise_for_status()


@pytest.fixture
def receiver(webhook_routing: WebhookRouting) -> Iterator[Receiver]:
    """A local endpoint that Cloudflare's Notifications go to for the test."""
    hook = Receiver()
    webhook_routing.notifications_to(hook.url, "s")
    yield hook
    hook.server.shutdown()


def counts(stack: LocalStack) -> dict[str, int]:
    body: dict[str, Any] = httpx.get(f"{stack.cloudflare_url}/__emulator/chaos").json()
    return dict(body["counts"])


def test_a_429_rate_of_one_refuses_every_call_with_retry_after_but_not_exempt_ones(
    stack: LocalStack, cloudflare: httpx.Client, chaos: Chaos
) -> None:
    chaos(rateLimitRate=1, retryAfter=3)

    refused = [cloudflare.get("/live_inputs") for _ in range(3)]
    exempt = cloudflare.get("/live_inputs", headers={CHAOS_EXEMPT_HEADER: "1"})

    assert {r.status_code for r in refused} == {429}
    assert {r.headers["Retry-After"] for r in refused} == {"3"}
    assert refused[0].json()["errors"][0]["code"] == 10013
    assert exempt.status_code == 200
    # At least these three (the backend's monitors of earlier tests may also call meanwhile).
    assert counts(stack)["api_429"] >= 3


def test_a_5xx_rate_of_one_answers_server_errors_and_turning_chaos_off_ends_them(
    stack: LocalStack, cloudflare: httpx.Client, chaos: Chaos
) -> None:
    chaos(serverErrorRate=1)
    statuses = {cloudflare.get("/live_inputs").status_code for _ in range(12)}

    httpx.post(f"{stack.cloudflare_url}/__emulator/faults", json={}).raise_for_status()

    assert statuses <= {500, 502, 503, 504} and len(statuses) > 1
    assert cloudflare.get("/live_inputs").status_code == 200
    assert httpx.get(f"{stack.cloudflare_url}/__emulator/chaos").json()["enabled"] is False


def test_a_timeout_holds_the_call_past_the_clients_patience_and_then_carries_it_out(
    stack: LocalStack, cloudflare: httpx.Client, chaos: Chaos
) -> None:
    def inputs() -> int:
        listing = cloudflare.get("/live_inputs", headers={CHAOS_EXEMPT_HEADER: "1"}).json()
        return int(listing["result"]["total"])

    before = inputs()
    chaos(timeoutRate=1, timeoutMs=1500)

    with pytest.raises(httpx.ReadTimeout):
        cloudflare.post("/live_inputs", json={"meta": {"name": "timeout"}}, timeout=0.5)

    wait_for(lambda: inputs() == before + 1, 10, "the abandoned create to land")
    # At least this call (the backend's monitors of earlier tests may also call meanwhile).
    assert counts(stack)["api_timeout"] >= 1


def notifications_for(receiver: Receiver, input_uid: str) -> list[str]:
    events = [
        json.loads(body) for headers, body in receiver.requests if "cf-webhook-auth" in headers
    ]
    return [e["data"]["event_type"] for e in events if e["data"]["input_id"] == input_uid]


def quiet_input(cloudflare: httpx.Client) -> tuple[str, str]:
    """A live input that records nothing (no video follows its broadcasts): uid, stream key."""
    created = cloudflare.post(
        "/live_inputs",
        json={"meta": {"name": "chaos"}, "recording": {"mode": "off"}},
        headers={CHAOS_EXEMPT_HEADER: "1"},
    ).json()["result"]
    return str(created["uid"]), str(created["rtmps"]["streamKey"])


def media_hook(stack: LocalStack, hook: str, key: str) -> None:
    """What nginx-rtmp reports of a publish (no encoder needed)."""
    assert httpx.post(f"{stack.cloudflare_url}/__media/{hook}", data={"name": key}).is_success


def on_air_and_off(stack: LocalStack, cloudflare: httpx.Client) -> str:
    """A publish and its end: the live input's connected and disconnected notifications."""
    uid, key = quiet_input(cloudflare)
    media_hook(stack, "on_publish", key)
    media_hook(stack, "on_publish_done", key)
    return uid


@pytest.mark.parametrize(
    ("rates", "expected"),
    [
        ({"webhookReorderRate": 1}, ["live_input.disconnected", "live_input.connected"]),
        (
            {"webhookDuplicateRate": 1},
            ["live_input.connected"] * 2 + ["live_input.disconnected"] * 2,
        ),
    ],
    ids=["reordered", "duplicated"],
)
def test_notifications_are_reordered_or_duplicated(
    stack: LocalStack,
    cloudflare: httpx.Client,
    chaos: Chaos,
    receiver: Receiver,
    rates: dict[str, float],
    expected: list[str],
) -> None:
    # The hold only has to outlast the gap between the two publish hooks, which a loaded
    # machine has stretched past 5 s (the held "connected" then went out first).
    chaos(reorderMaxMs=30000, **rates)

    uid = on_air_and_off(stack, cloudflare)

    wait_for(lambda: len(notifications_for(receiver, uid)) == len(expected), 10, "deliveries")
    received = notifications_for(receiver, uid)
    if "webhookReorderRate" in rates:
        assert received == expected  # the held "connected" follows the "disconnected"
    else:
        # Each delivery goes out on its own thread: copies arrive in no fixed order.
        assert sorted(received) == sorted(expected)


def test_dropped_notifications_never_arrive_and_are_logged_as_dropped(
    stack: LocalStack,
    cloudflare: httpx.Client,
    chaos: Chaos,
    receiver: Receiver,
) -> None:
    logged_before = len(httpx.get(f"{stack.cloudflare_url}/__emulator/webhooks").json())
    chaos(webhookDropRate=1)

    uid = on_air_and_off(stack, cloudflare)

    logged = httpx.get(f"{stack.cloudflare_url}/__emulator/webhooks").json()[logged_before:]
    # Only this input's: videos of earlier tests may still be announced meanwhile.
    assert [e.get("dropped") for e in logged if e["subject"] == uid] == [True, True]
    assert counts(stack)["webhook_drop"] >= 2
    assert notifications_for(receiver, uid) == []


def test_a_held_notification_is_overtaken_by_its_own_inputs_next_one_only(
    stack: LocalStack, cloudflare: httpx.Client, chaos: Chaos, receiver: Receiver
) -> None:
    chaos(webhookReorderRate=1, reorderMaxMs=30000)
    (first, first_key), (second, second_key) = quiet_input(cloudflare), quiet_input(cloudflare)

    # Two broadcasts overlap: each input's notifications are held and overtaken in turn
    for hook, key in (
        ("on_publish", first_key),
        ("on_publish", second_key),
        ("on_publish_done", first_key),
        ("on_publish_done", second_key),
    ):
        media_hook(stack, hook, key)

    def both_delivered() -> bool:
        return all(len(notifications_for(receiver, uid)) == 2 for uid in (first, second))

    wait_for(both_delivered, 10, "deliveries")
    reversed_pair = ["live_input.disconnected", "live_input.connected"]
    assert notifications_for(receiver, first) == reversed_pair
    assert notifications_for(receiver, second) == reversed_pair


def test_a_held_delivery_goes_out_when_nothing_overtakes_it(
    stack: LocalStack,
    cloudflare: httpx.Client,
    chaos: Chaos,
    receiver: Receiver,
) -> None:
    chaos(webhookReorderRate=1, reorderMaxMs=300)
    created = cloudflare.post(
        "/live_inputs", json={"recording": {"mode": "off"}}, headers={CHAOS_EXEMPT_HEADER: "1"}
    ).json()["result"]

    httpx.post(
        f"{stack.cloudflare_url}/__media/on_publish", data={"name": created["rtmps"]["streamKey"]}
    )

    wait_for(
        lambda: notifications_for(receiver, created["uid"]) == ["live_input.connected"],
        5,
        "the held notification",
    )
