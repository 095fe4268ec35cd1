"""Start, stop, webhooks and repair calls racing on one stream end in one consistent state."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from emulators.stack import NOTIFICATION_SECRET, LocalStack
from tests.integration.conftest import Caller
from tests.integration.test_recordings_pipeline import post_video, video_payload

pytestmark = pytest.mark.emulator


def test_racing_writers_converge_without_server_errors(
    api: httpx.Client, callers: dict[str, Caller], stack: LocalStack
) -> None:
    owner = callers["owner"]
    stream = api.post("/api/streams", json={"title": "Race"}, headers=owner.bearer).json()
    stream_id, uid = stream["id"], stream["cloudflareId"]
    assert api.post(f"/api/streams/{stream_id}/start", headers=owner.bearer).status_code == 200
    ended_at = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
    disconnected = json.dumps(
        {"data": {"input_id": uid, "event_type": "live_input.disconnected", "updated_at": ended_at}}
    )

    def call(kind: str) -> int:
        with httpx.Client(base_url=stack.gateway_url, timeout=60) as client:
            if kind == "stop":
                return client.post(
                    f"/api/streams/{stream_id}/stop", headers=owner.bearer
                ).status_code
            if kind == "disconnected":
                return client.post(
                    "/api/webhooks/cloudflare/live-input",
                    content=disconnected,
                    headers={"cf-webhook-auth": NOTIFICATION_SECRET},
                ).status_code
            if kind == "sync":
                return client.post(
                    f"/api/streams/{stream_id}/sync-recording", headers=owner.bearer
                ).status_code
            body = video_payload(f"{kind}-{stream_id[:6]}", uid, "ready", minute=1)
            return post_video(client, stack, body).status_code

    work = ["stop", "stop", "disconnected", "disconnected", "video", "video", "sync", "stop"] * 2
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(call, work))

    assert all(status < 500 for status in statuses), statuses
    assert all(status in (200, 409) for status in statuses), statuses
    final = api.get(f"/api/streams/{stream_id}", headers=owner.bearer).json()
    assert final["status"] == "completed" and final["endTime"]
    assert [(r["id"], r["recordingReady"]) for r in final["recordings"]] == [
        (f"video-{stream_id[:6]}", True)
    ]
    assert final["videoId"] == f"video-{stream_id[:6]}" and final["recordingReady"] is True
