"""Recordings never get lost: webhooks, the Cloud Tasks monitor, the Firestore trigger and the
repair tools, against the real local stack (Cloudflare, Cloud Tasks and Firestore emulators)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from google.cloud import firestore

from emulators.stack import NOTIFICATION_SECRET, TASK_TOKEN, LocalStack
from tests.integration.conftest import Caller, stored
from tests.integration.test_broadcast_e2e import push, ready_videos, wait_for
from tests.stream_webhooks import sign_stream_webhook, video_webhook_body

pytestmark = pytest.mark.emulator
Callers = dict[str, Caller]


def stream_of(api: httpx.Client, caller: Caller, stream_id: str) -> dict[str, Any]:
    body: dict[str, Any] = api.get(f"/api/streams/{stream_id}", headers=caller.bearer).json()
    return body


def new_stream(api: httpx.Client, caller: Caller, title: str) -> dict[str, Any]:
    body: dict[str, Any] = api.post(
        "/api/streams", json={"title": title}, headers=caller.bearer
    ).json()
    return body


def video_payload(uid: str, live_input: str, state: str, minute: int) -> bytes:
    created = datetime(2026, 11, 24, 10, 0, tzinfo=UTC) + timedelta(minutes=minute)
    return video_webhook_body(uid, live_input, state, created, "https://v.test")


def post_video(api: httpx.Client, stack: LocalStack, body: bytes) -> httpx.Response:
    assert stack.webhook_secret
    headers = {
        "Webhook-Signature": sign_stream_webhook(stack.webhook_secret, body, int(time.time())),
        "Content-Type": "application/json",
    }
    return api.post("/api/webhooks/cloudflare/recording", content=body, headers=headers)


@pytest.mark.usefixtures("webhooks_lost")
def test_a_dropped_webhook_still_delivers_the_recording_through_the_monitor(
    api: httpx.Client, cloudflare: httpx.Client, callers: Callers, stack: LocalStack
) -> None:
    owner = callers["owner"]
    stream = new_stream(api, owner, "Dropped webhooks")
    api.post(f"/api/streams/{stream['id']}/start", headers=owner.bearer)

    assert push(stack.rtmp_url, stream["streamKey"], seconds=3).wait(timeout=60) == 0
    stopped = api.post(f"/api/streams/{stream['id']}/stop", headers=owner.bearer).json()
    assert stopped["recordingStatus"] == "processing"

    final = wait_for(
        lambda: (s := stream_of(api, owner, stream["id"]))["recordingReady"] and s,
        90,
        "the monitor to attach the recording",
    )
    video = ready_videos(cloudflare, stream["cloudflareId"])[0]
    assert final["videoId"] == video["uid"] and final["recordingStatus"] == "ready"
    assert final["recordingUrl"] == video["playback"]["hls"]
    dropped = httpx.get(f"{stack.cloudflare_url}/__emulator/webhooks").json()
    assert any(d.get("dropped") and d["kind"] == "stream" for d in dropped)


def test_webhooks_alone_take_a_stream_live_then_to_its_recording(
    api: httpx.Client, callers: Callers, stack: LocalStack
) -> None:
    owner = callers["owner"]
    stream = new_stream(api, owner, "Webhook driven")

    encoder = push(stack.rtmp_url, stream["streamKey"], seconds=5)
    live = wait_for(
        lambda: (s := stream_of(api, owner, stream["id"]))["status"] == "live" and s,
        30,
        "the connected notification",
    )
    assert live["actualStartTime"]
    assert encoder.wait(timeout=60) == 0

    final = wait_for(
        lambda: (s := stream_of(api, owner, stream["id"]))["recordingReady"] and s,
        60,
        "the video webhook",
    )
    # A ready recording of the broadcast means Cloudflare's reconnect window is over.
    assert final["status"] == "completed" and final["endTime"]
    assert [r["recordingReady"] for r in final["recordings"]] == [True]


def test_reconnect_after_the_timeout_keeps_both_recordings_on_the_stream(
    api: httpx.Client, callers: Callers, stack: LocalStack
) -> None:
    owner = callers["owner"]
    stream = new_stream(api, owner, "Funeral then burial")

    assert push(stack.rtmp_url, stream["streamKey"], seconds=3).wait(timeout=60) == 0
    time.sleep(6)  # longer than the local recording.timeoutSeconds (3 s)
    assert push(stack.rtmp_url, stream["streamKey"], seconds=3).wait(timeout=60) == 0

    def both_ready() -> dict[str, Any] | None:
        current = stream_of(api, owner, stream["id"])
        ready = [r for r in current["recordings"] if r["recordingReady"]]
        return current if len(ready) == 2 else None

    final = wait_for(both_ready, 90, "two recordings")
    first, second = final["recordings"]
    assert (first["sequenceNumber"], second["sequenceNumber"]) == (1, 2)
    assert first["createdAt"] < second["createdAt"]
    assert final["videoId"] == second["id"]


ORDERS = {
    "in order": ["a:inprogress", "a:ready", "b:inprogress", "b:ready"],
    "reordered with duplicates": [
        "b:ready",
        "a:ready",
        "a:inprogress",
        "b:inprogress",
        "a:ready",
        "b:ready",
    ],
}


def test_duplicated_and_reordered_webhooks_leave_the_same_final_state(
    api: httpx.Client, callers: Callers, stack: LocalStack
) -> None:
    owner = callers["owner"]
    finals = []
    for order in ORDERS.values():
        stream = new_stream(api, owner, "Ordering")
        suffix = stream["id"][:6]
        for event in order:
            name, state = event.split(":")
            body = video_payload(
                f"{name}-{suffix}", stream["cloudflareId"], state, minute=0 if name == "a" else 30
            )
            response = post_video(api, stack, body)
            assert response.status_code == 200, response.text
            assert response.json()["streamId"] == stream["id"]
        final = stream_of(api, owner, stream["id"])
        finals.append(
            (
                final["videoId"].split("-")[0],
                [
                    (r["id"].split("-")[0], r["state"], r["recordingReady"])
                    for r in final["recordings"]
                ],
                final["recordingUrl"].replace(suffix, ""),
            )
        )

    assert finals[0] == finals[1]
    assert finals[0][0] == "b"
    assert finals[0][1] == [("a", "ready", True), ("b", "ready", True)]


def test_forged_stale_or_missing_signatures_get_401_and_change_nothing(
    api: httpx.Client, callers: Callers, stack: LocalStack
) -> None:
    owner = callers["owner"]
    stream = new_stream(api, owner, "Forgery")
    before = stream_of(api, owner, stream["id"])
    body = video_payload("forged", stream["cloudflareId"], "ready", minute=0)
    assert stack.webhook_secret
    attempts = {
        "forged": sign_stream_webhook("not-the-secret", body, int(time.time())),
        "stale": sign_stream_webhook(stack.webhook_secret, body, int(time.time()) - 3600),
        "tampered": sign_stream_webhook(stack.webhook_secret, body + b" ", int(time.time())),
        "garbage": "nonsense",
    }
    for label, header in attempts.items():
        response = api.post(
            "/api/webhooks/cloudflare/recording",
            content=body,
            headers={"Webhook-Signature": header},
        )
        assert response.status_code == 401, label
        assert response.json()["error"]
    assert api.post("/api/webhooks/cloudflare/recording", content=body).status_code == 401
    live = json.dumps(
        {"data": {"input_id": stream["cloudflareId"], "event_type": "live_input.connected"}}
    ).encode()
    for secret in ("wrong", None):
        headers = {"cf-webhook-auth": secret} if secret else {}
        assert (
            api.post(
                "/api/webhooks/cloudflare/live-input", content=live, headers=headers
            ).status_code
            == 401
        )

    after = stream_of(api, owner, stream["id"])
    assert after == before
    assert after["recordings"] == [] and after["status"] == "scheduled"


def test_live_input_errors_are_recorded_on_the_stream(api: httpx.Client, callers: Callers) -> None:
    owner = callers["owner"]
    stream = new_stream(api, owner, "Quota")
    event = {
        "name": "x",
        "data": {
            "input_id": stream["cloudflareId"],
            "event_type": "live_input.errored",
            "updated_at": datetime.now(UTC).isoformat(),
            "live_input_errored": {
                "error": {
                    "code": "ERR_STORAGE_QUOTA_EXHAUSTED",
                    "message": "Storage quota exhausted",
                }
            },
        },
    }

    response = api.post(
        "/api/webhooks/cloudflare/live-input",
        content=json.dumps(event),
        headers={"cf-webhook-auth": NOTIFICATION_SECRET},
    )

    assert response.status_code == 200
    error = stream_of(api, owner, stream["id"])["lastError"]
    assert error["code"] == "ERR_STORAGE_QUOTA_EXHAUSTED"
    assert "lastError" not in api.get(f"/api/streams/{stream['id']}").json()


def test_the_trigger_removes_the_live_input_of_a_stream_deleted_in_firestore(
    api: httpx.Client, cloudflare: httpx.Client, callers: Callers, db: firestore.Client
) -> None:
    stream = new_stream(api, callers["owner"], "Deleted from the console")
    assert cloudflare.get(f"/live_inputs/{stream['cloudflareId']}").status_code == 200

    db.collection("streams").document(stream["id"]).delete()

    wait_for(
        lambda: cloudflare.get(f"/live_inputs/{stream['cloudflareId']}").status_code == 404,
        60,  # triggers are asynchronous and at least once, with no latency promise
        "the trigger to delete the live input",
    )


def test_the_trigger_starts_the_recording_monitor_when_a_stream_completes(
    api: httpx.Client, callers: Callers, db: firestore.Client
) -> None:
    stream = new_stream(api, callers["owner"], "Completed elsewhere")
    ref = db.collection("streams").document(stream["id"])

    ref.update({"status": "completed", "endTime": datetime.now(UTC)})

    monitor = wait_for(
        lambda: (ref.get().to_dict() or {}).get("recordingMonitor"), 30, "the recording monitor"
    )
    assert monitor["state"] in ("running", "gave_up", "done")
    # Each check claims its attempt beside the stream, in private/monitor-recording.
    progress = ref.collection("private").document("monitor-recording")
    wait_for(
        lambda: (progress.get().to_dict() or {}).get("nextAttempt", 0) >= 1,
        60,
        "a scheduled check to run",
    )


def test_task_endpoint_needs_the_task_token_and_acknowledges_stale_or_bad_tasks(
    api: httpx.Client, callers: Callers
) -> None:
    stream = new_stream(api, callers["owner"], "Tasks")
    payload = {"kind": "recording", "streamId": stream["id"], "generation": 1, "attempt": 0}

    assert api.post("/api/tasks/monitor", json=payload).status_code == 401
    assert (
        api.post("/api/tasks/monitor", json=payload, headers={"X-Task-Auth": "guess"}).status_code
        == 401
    )
    headers = {"X-Task-Auth": TASK_TOKEN}
    stale = api.post("/api/tasks/monitor", json=payload, headers=headers)
    assert stale.status_code == 200 and stale.json()["outcome"] == "stale"
    gone = api.post("/api/tasks/monitor", json=payload | {"streamId": "nope"}, headers=headers)
    assert gone.json()["outcome"] == "gone"
    bad = api.post("/api/tasks/monitor", json={"kind": "other"}, headers=headers)
    assert bad.status_code == 200 and bad.json()["acknowledged"] is True


@pytest.mark.usefixtures("webhooks_lost")
def test_repair_tools_reconcile_a_stuck_stream(
    api: httpx.Client,
    cloudflare: httpx.Client,
    callers: Callers,
    stack: LocalStack,
    db: firestore.Client,
) -> None:
    owner = callers["owner"]
    stream = new_stream(api, owner, "Stuck")
    stream_id, uid = stream["id"], stream["cloudflareId"]
    api.post(f"/api/streams/{stream_id}/start", headers=owner.bearer)
    assert push(stack.rtmp_url, stream["streamKey"], seconds=3).wait(timeout=60) == 0
    video = wait_for(lambda: ready_videos(cloudflare, uid), 60, "the recording")[0]
    # Stuck: "live" although the encoder left, with no monitor left to notice (the situation
    # the old backend got into when webhooks were lost).
    ref = db.collection("streams").document(stream_id)
    started = stored(ref)["actualStartTime"]
    ref.update(
        {
            "status": "live",
            "endTime": None,
            "recordings": [],
            "recordingReady": False,
            "videoId": None,
            "recordingUrl": None,
            "statusMonitor": {"generation": int(started.timestamp()), "state": "done"},
            "recordingMonitor": None,
        }
    )
    time.sleep(1)

    for tool in (
        "sync-recording",
        "sync-status",
        "fix-status",
        "get-video-id",
        "fix-playback-url",
        "configure-cors",
    ):
        assert api.post(f"/api/streams/{stream_id}/{tool}").status_code == 401, tool
        denied = api.post(f"/api/streams/{stream_id}/{tool}", headers=callers["stranger"].bearer)
        assert denied.status_code == 403, tool

    status = api.post(
        f"/api/livestreamMVPTwo/streams/{stream_id}/sync-status", headers=owner.bearer
    ).json()
    assert (status["previousStatus"], status["status"]) == ("live", "completed")
    synced = api.post(f"/api/streams/{stream_id}/sync-recording", headers=owner.bearer).json()
    assert synced["status"] == "synced" and synced["videoId"] == video["uid"]
    assert synced["recordingUrl"] == video["playback"]["hls"]
    found = api.post(f"/api/streams/{stream_id}/get-video-id", headers=owner.bearer).json()
    assert found["videoId"] == video["uid"] and found["totalVideos"] == 1
    fixed = api.post(f"/api/streams/{stream_id}/fix-playback-url", headers=owner.bearer).json()
    assert fixed["newPlaybackUrl"] == f"{stack.cloudflare_url}/{uid}/iframe"
    assert fixed["newRecordingUrl"] == video["playback"]["hls"]
    cors = api.put(f"/api/streams/{stream_id}/configure-cors", headers=owner.bearer).json()
    assert cors["recordingsUpdated"] == 1 and "tributestream.com" in cors["allowedOrigins"]
    live_input = cloudflare.get(f"/live_inputs/{uid}").json()["result"]
    assert live_input["recording"]["allowedOrigins"] == cors["allowedOrigins"]
    assert live_input["recording"]["mode"] == "automatic"
    assert (
        cloudflare.get(f"/{video['uid']}").json()["result"]["allowedOrigins"]
        == cors["allowedOrigins"]
    )
    final = api.post(f"/api/streams/{stream_id}/fix-status", headers=owner.bearer).json()
    assert final["status"] == "completed" and final["recordingReady"] is True
