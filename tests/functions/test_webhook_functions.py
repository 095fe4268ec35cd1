"""Cloudflare's two webhooks: ``cloudflarerecordingwebhook`` (signed Stream webhook) and
``cloudflareliveinputwebhook`` (Notifications, shared secret). Unauthenticated → 401."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from common.bootstrap import override
from common.models.domain import StreamStatus
from tests import people
from tests.functions.calls import bearer, client, error, ok
from tests.functions.conftest import (
    NOTIFICATION_SECRET,
    Backend,
    local_settings,
    stream_signature,
    video_payload,
)

RECORDING = "/api/webhooks/cloudflare/recording"
LIVE_INPUT = "/api/webhooks/cloudflare/live-input"


def notification(input_id: str, event: str, at: str, **extra: object) -> bytes:
    return json.dumps(
        {
            "name": "Live input event",
            "text": "",
            "data": {
                "notification_name": "Stream Live Input",
                "input_id": input_id,
                "event_type": event,
                "updated_at": at,
                **extra,
            },
            "ts": 1795600000,
        }
    ).encode()


# --- cloudflarerecordingwebhook --------------------------------------------------------------


def test_a_signed_ready_video_is_attached_to_its_stream(backend: Backend) -> None:
    stream = backend.create_stream()
    backend.start(stream.id)
    created = backend.clock.now() + timedelta(minutes=1)
    body = video_payload("video-1", backend.live_input_of(stream.id), "ready", created)
    at = int(backend.clock.now().timestamp())

    response = client("cloudflarerecordingwebhook").post(
        RECORDING,
        data=body,
        headers={
            "Webhook-Signature": stream_signature(body, at),
            "Content-Type": "application/json",
        },
    )

    reply = ok(response)
    assert reply["success"] is True
    assert reply["streamId"] == stream.id
    stored = backend.stream(stream.id)
    assert stored.recording_ready is True
    assert stored.video_id == "video-1"
    assert [e.video_uid for e in stored.recordings] == ["video-1"]


def test_a_video_of_no_known_live_input_is_acknowledged_and_ignored(backend: Backend) -> None:
    body = video_payload("video-x", "unknown-input", "ready", backend.clock.now())
    at = int(backend.clock.now().timestamp())

    reply = ok(
        client("cloudflarerecordingwebhook").post(
            RECORDING, data=body, headers={"Webhook-Signature": stream_signature(body, at)}
        )
    )

    assert reply["streamId"] is None
    assert "ignored" in reply["message"]


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "wrong secret",
        "stale",
        "future",
        "tampered",
        "malformed",
        "no sig1",
        "not ascii digits",
        "too many digits",
    ],
)
def test_a_video_without_a_valid_signature_is_a_401(backend: Backend, case: str) -> None:
    stream = backend.create_stream()
    body = video_payload("video-1", backend.live_input_of(stream.id), "ready", backend.clock.now())
    now = int(backend.clock.now().timestamp())
    headers = {
        "missing": {},
        "wrong secret": {"Webhook-Signature": stream_signature(body, now, "not-the-secret")},
        "stale": {"Webhook-Signature": stream_signature(body, now - 3600)},
        "future": {"Webhook-Signature": stream_signature(body, now + 3600)},
        "tampered": {"Webhook-Signature": stream_signature(body + b" ", now)},
        "malformed": {"Webhook-Signature": "garbage"},
        "no sig1": {"Webhook-Signature": f"time={now}"},
        # "²".isdigit() holds but int() refuses it; int() refuses over 4300 digits too.
        "not ascii digits": {"Webhook-Signature": "time=\u00b2,sig1=x"},
        "too many digits": {"Webhook-Signature": f"time={'1' * 5000},sig1=x"},
    }[case]

    response = client("cloudflarerecordingwebhook").post(RECORDING, data=body, headers=headers)

    error(response, 401, "unauthenticated")
    assert backend.stream(stream.id).recordings == ()


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"no": "uid"}', b"\xff\xfe"])
def test_a_signed_body_that_is_not_a_video_is_a_400(backend: Backend, body: bytes) -> None:
    at = int(backend.clock.now().timestamp())

    response = client("cloudflarerecordingwebhook").post(
        RECORDING, data=body, headers={"Webhook-Signature": stream_signature(body, at)}
    )

    error(response, 400, "invalid-argument")


def test_without_a_configured_secret_every_video_is_refused(backend: Backend) -> None:
    body = video_payload("video-1", "input-1", "ready", backend.clock.now())
    at = int(backend.clock.now().timestamp())
    unconfigured = Backend(local_settings(cloudflare_webhook_secret=None))

    with override(unconfigured.services):
        response = client("cloudflarerecordingwebhook").post(
            RECORDING, data=body, headers={"Webhook-Signature": stream_signature(body, at)}
        )

    error(response, 401)
    error(client("cloudflarerecordingwebhook").get(RECORDING), 405)


# --- cloudflareliveinputwebhook --------------------------------------------------------------


def test_an_encoder_connecting_puts_a_started_stream_on_air(backend: Backend) -> None:
    stream = backend.create_stream()
    backend.start(stream.id)
    body = notification(
        backend.live_input_of(stream.id), "live_input.connected", "2026-11-24T10:01:00Z"
    )

    reply = ok(
        client("cloudflareliveinputwebhook").post(
            LIVE_INPUT, data=body, headers={"cf-webhook-auth": NOTIFICATION_SECRET}
        )
    )

    assert reply["success"] is True
    assert reply["streamId"] == stream.id
    stored = backend.stream(stream.id)
    assert (stored.status, stored.on_air, stored.ingest_protocol) == (
        StreamStatus.LIVE,
        True,
        "rtmp",
    )
    status = ok(client("streamstatus").get(f"/api/streams/{stream.id}/status"))
    assert status["cloudflare"]["connected"] is True


def test_an_errored_input_is_reported_on_the_stream(backend: Backend) -> None:
    stream = backend.create_stream()
    body = notification(
        backend.live_input_of(stream.id),
        "live_input.errored",
        "2026-11-24T10:01:00Z",
        live_input_errored={"error": {"code": "ERR_STORAGE_QUOTA_EXHAUSTED", "message": "Full"}},
    )

    ok(
        client("cloudflareliveinputwebhook").post(
            LIVE_INPUT, data=body, headers={"cf-webhook-auth": NOTIFICATION_SECRET}
        )
    )

    view = ok(client("stream").get(f"/api/streams/{stream.id}", headers=bearer(people.OWNER)))
    assert view["lastError"]["code"] == "ERR_STORAGE_QUOTA_EXHAUSTED"


def test_the_destinations_test_message_and_unknown_inputs_are_acknowledged(
    backend: Backend,
) -> None:
    headers = {"cf-webhook-auth": NOTIFICATION_SECRET}
    test_message = json.dumps({"name": "Test", "text": "Hello"}).encode()

    first = ok(
        client("cloudflareliveinputwebhook").post(LIVE_INPUT, data=test_message, headers=headers)
    )
    unknown = ok(
        client("cloudflareliveinputwebhook").post(
            LIVE_INPUT,
            data=notification("no-such-input", "live_input.connected", "2026-11-24T10:01:00Z"),
            headers=headers,
        )
    )

    assert first["message"] == "Test notification received"
    assert unknown["streamId"] is None


@pytest.mark.parametrize("secret", [None, "", "wrong", NOTIFICATION_SECRET + "x"])
def test_a_notification_without_the_shared_secret_is_a_401(
    backend: Backend, secret: str | None
) -> None:
    stream = backend.create_stream()
    body = notification(
        backend.live_input_of(stream.id), "live_input.connected", "2026-11-24T10:01:00Z"
    )
    headers = {} if secret is None else {"cf-webhook-auth": secret}

    response = client("cloudflareliveinputwebhook").post(LIVE_INPUT, data=body, headers=headers)

    error(response, 401, "unauthenticated")
    assert backend.stream(stream.id).status == StreamStatus.SCHEDULED


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"data": {"event_type": 1}}'])
def test_an_authenticated_notification_that_cannot_be_read_is_a_400(
    backend: Backend, body: bytes
) -> None:
    response = client("cloudflareliveinputwebhook").post(
        LIVE_INPUT, data=body, headers={"cf-webhook-auth": NOTIFICATION_SECRET}
    )

    error(response, 400, "invalid-argument")
