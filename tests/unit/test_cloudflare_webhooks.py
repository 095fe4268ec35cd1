"""The Cloudflare adapter turns both webhook systems into verified domain events."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from common.adapters.cloudflare.webhooks import CloudflareWebhooks, WebhookSecrets
from common.errors import InvalidArgumentError, UnauthenticatedError
from tests.fakes import FixedClock
from tests.stream_webhooks import sign_stream_webhook

SECRETS = WebhookSecrets(stream_signing=SecretStr("sign"), notifications=SecretStr("shared"))


def signed(body: bytes, at: int, key: str = "sign") -> str:
    return sign_stream_webhook(key, body, at)


def test_a_signed_video_webhook_becomes_a_report_of_its_recording() -> None:
    clock = FixedClock()
    events = CloudflareWebhooks(SECRETS, clock)
    body = json.dumps(
        {
            "uid": "video-1",
            "liveInput": "input-1",
            "readyToStream": True,
            "status": {"state": "ready"},
            "duration": -1,
            "meta": {"streamId": "stream-1"},
            "unknownField": {"kept": "out"},
        }
    ).encode()
    now = int(clock.now().timestamp())

    report = events.video_report(signed(body, now), body)

    assert (report.recording.video_uid, report.recording.live_input_uid) == ("video-1", "input-1")
    assert report.recording.duration is None  # Cloudflare's -1 means "not known yet"
    assert report.stream_hint == "stream-1"
    with pytest.raises(UnauthenticatedError, match="Invalid"):
        events.video_report(signed(body, now, key="other"), body)
    with pytest.raises(UnauthenticatedError, match="Stale"):
        events.video_report(signed(body, now - 3600), body)
    with pytest.raises(InvalidArgumentError):
        events.video_report(signed(b"[]", now), b"[]")


def test_notifications_need_the_shared_secret_and_carry_errors_and_test_messages() -> None:
    events = CloudflareWebhooks(SECRETS, FixedClock())
    errored = json.dumps(
        {
            "data": {
                "input_id": "input-1",
                "event_type": "live_input.errored",
                "updated_at": "2026-11-24T10:00:00Z",
                "live_input_errored": {"error": {"code": "ERR_STORAGE_QUOTA_EXHAUSTED"}},
            }
        }
    ).encode()

    notice = events.live_input_notice("shared", errored)

    assert notice is not None and notice.input_uid == "input-1"
    assert notice.at == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert notice.issue is not None and notice.issue.code == "ERR_STORAGE_QUOTA_EXHAUSTED"
    assert events.live_input_notice("shared", b'{"name": "test"}') is None
    with pytest.raises(UnauthenticatedError):
        events.live_input_notice("wrong", errored)
    unconfigured = CloudflareWebhooks(WebhookSecrets(None, None), FixedClock())
    with pytest.raises(UnauthenticatedError, match="not configured"):
        unconfigured.live_input_notice("shared", errored)
