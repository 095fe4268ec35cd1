"""Starts, then stops, webhooks, monitor checks and repair calls racing on one stream, end in
one consistent state."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from google.cloud import firestore

from common.signatures import TASK_AUTH_HEADER
from emulators.stack import NOTIFICATION_SECRET, TASK_TOKEN, LocalStack
from tests.integration.conftest import Caller, stored
from tests.integration.test_recordings_pipeline import post_video, video_payload

pytestmark = pytest.mark.emulator


def test_racing_writers_converge_without_server_errors(
    api: httpx.Client, callers: dict[str, Caller], stack: LocalStack, db: firestore.Client
) -> None:
    owner = callers["owner"]
    stream = api.post("/api/streams", json={"title": "Race"}, headers=owner.bearer).json()
    stream_id, uid = stream["id"], stream["cloudflareId"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        starts = list(
            pool.map(
                lambda _: api.post(f"/api/streams/{stream_id}/start", headers=owner.bearer),
                range(4),
            )
        )
    assert sorted(r.status_code for r in starts) == [200, 409, 409, 409]
    stream_ref = db.collection("streams").document(stream_id)
    status_monitor = stored(stream_ref)["statusMonitor"]
    # The next check due: the attempt after the last one claimed (0 when none has run yet).
    progress = stream_ref.collection("private").document("monitor-status").get().to_dict() or {}
    next_attempt = progress.get("nextAttempt", 0)
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
            if kind == "monitor":
                # Cloud Tasks delivering the status monitor's next check (at least once).
                return client.post(
                    "/api/tasks/monitor",
                    json={
                        "kind": "status",
                        "streamId": stream_id,
                        "generation": status_monitor["generation"],
                        "attempt": next_attempt,
                    },
                    headers={TASK_AUTH_HEADER: TASK_TOKEN},
                ).status_code
            if kind == "sync":
                return client.post(
                    f"/api/streams/{stream_id}/sync-recording", headers=owner.bearer
                ).status_code
            body = video_payload(f"{kind}-{stream_id[:6]}", uid, "ready", minute=1)
            return post_video(client, stack, body).status_code

    work = ["stop", "disconnected", "monitor", "video", "sync", "stop", "monitor", "video"] * 2
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
