"""A service as the family and the funeral director see it, with real encoders: Start without an
encoder, an encoder on air, a short drop the encoder recovers from, the end, the recording."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from google.cloud import firestore

from emulators.stack import LocalStack
from tests.integration.conftest import Caller, create_memorial, stored
from tests.integration.test_broadcast_e2e import push, ready_videos, wait_for
from tests.integration.test_recordings_pipeline import post_video

pytestmark = pytest.mark.emulator
Callers = dict[str, Caller]


def seen(api: httpx.Client, stream_id: str, caller: Caller | None = None) -> dict[str, Any]:
    headers = caller.bearer if caller else {}
    body: dict[str, Any] = api.get(f"/api/streams/{stream_id}", headers=headers).json()
    return body


def test_a_reconnect_inside_the_window_ends_with_the_recording_and_no_false_error(
    api: httpx.Client, cloudflare: httpx.Client, callers: Callers, db: firestore.Client
) -> None:
    memorial = create_memorial(db, callers)
    director = callers["funeral_director"]
    stream = api.post(
        f"/api/memorials/{memorial}/streams", json={"title": "Funeral"}, headers=director.bearer
    ).json()
    started = api.post(f"/api/streams/{stream['id']}/start", headers=director.bearer).json()

    armed = seen(api, stream["id"])
    assert (armed["status"], armed["broadcastState"]) == ("live", "armed")

    # The church Wi-Fi drops for a second; locally the recording window is 3 s.
    first = push(started["streamUrl"], started["streamKey"], seconds=4)
    wait_for(lambda: seen(api, stream["id"])["broadcastState"] == "on_air", 20, "on air")
    on_air = seen(api, stream["id"])
    assert on_air["ingestProtocol"] == "rtmp" and on_air["webRTCPlaybackUrl"] is None
    assert on_air["liveHlsUrl"].endswith(f"/{stream['cloudflareId']}/manifest/video.m3u8")
    assert first.wait(timeout=60) == 0
    second = push(started["streamUrl"], started["streamKey"], seconds=3)
    # Through the drop the page keeps its live player: the status never leaves "live".
    during_drop = set()
    while second.poll() is None:
        during_drop.add(seen(api, stream["id"])["status"])
        time.sleep(0.2)
    assert second.returncode == 0 and during_drop == {"live"}
    stopped = api.post(f"/api/streams/{stream['id']}/stop", headers=director.bearer)
    assert stopped.status_code == 200, stopped.text
    family = callers["memorial_owner"]
    too_soon = api.delete(f"/api/streams/{stream['id']}", headers=family.bearer)
    assert too_soon.status_code == 409, too_soon.text
    assert int(too_soon.headers["Retry-After"]) > 0

    (video,) = wait_for(lambda: ready_videos(cloudflare, stream["cloudflareId"]), 60, "video")
    assert video["duration"] >= 5  # one recording across the drop
    ref = db.collection("streams").document(stream["id"])
    monitor = wait_for(
        lambda: (m := (stored(ref).get("recordingMonitor") or {})).get("state") != "running" and m,
        60,
        "the recording monitor to finish",
    )
    assert monitor["state"] == "done"  # the continued recording counts for the broadcast
    after = seen(api, stream["id"], director)
    assert (after["recordingStatus"], after["broadcastState"]) == ("ready", "ended")
    assert after["videoId"] == video["uid"] and after["lastError"] is None
    page = api.get(f"/api/memorials/{memorial}/streams").json()
    assert stream["id"] in {s["id"] for s in page["publicRecordedStreams"]}
    # Deleting the stream now takes its recording along: nothing is left playable but lost.
    assert api.delete(f"/api/streams/{stream['id']}", headers=family.bearer).status_code == 200
    assert cloudflare.get(f"/{video['uid']}").status_code == 404


def test_a_started_service_whose_encoder_never_came_is_not_lost_footage(
    api: httpx.Client, callers: Callers, db: firestore.Client
) -> None:
    director = callers["funeral_director"]
    stream = api.post("/api/streams", json={"title": "No encoder"}, headers=director.bearer).json()
    api.post(f"/api/streams/{stream['id']}/start", headers=director.bearer).raise_for_status()
    api.post(f"/api/streams/{stream['id']}/stop", headers=director.bearer).raise_for_status()
    ref = db.collection("streams").document(stream["id"])

    wait_for(
        lambda: (stored(ref).get("recordingMonitor") or {}).get("state") == "gave_up",
        90,
        "the recording monitor to give up",
    )

    after = seen(api, stream["id"], director)
    assert (after["recordingStatus"], after["broadcastState"]) == ("none", "ended")
    assert "never went on air" in after["recordingMessage"]
    assert after["lastError"] is None


def test_a_test_broadcast_after_the_service_does_not_replace_the_funeral(
    api: httpx.Client,
    cloudflare: httpx.Client,
    callers: Callers,
    db: firestore.Client,
    stack: LocalStack,
) -> None:
    memorial = create_memorial(db, callers)
    director, family = callers["funeral_director"], callers["memorial_owner"]
    stream = api.post(
        "/api/streams", json={"title": "Funeral", "memorialId": memorial}, headers=director.bearer
    ).json()
    key, inputs = stream["streamKey"], stream["cloudflareId"]

    assert push(stack.rtmp_url, key, seconds=3).wait(timeout=60) == 0  # the service
    (funeral,) = wait_for(lambda: ready_videos(cloudflare, inputs), 60, "the service's video")
    time.sleep(5)  # longer than the local reconnect window: the next push is a new video
    assert push(stack.rtmp_url, key, seconds=3).wait(timeout=60) == 0  # a sound check
    wait_for(
        lambda: (
            len(seen(api, stream["id"], director)["recordings"]) == 2
            and all(r["recordingReady"] for r in seen(api, stream["id"], director)["recordings"])
        ),
        90,
        "both recordings on the stream",
    )
    latest = seen(api, stream["id"])
    sound_check = latest["videoId"]
    assert sound_check != funeral["uid"]  # by default the newest is shown

    chosen = api.put(
        f"/api/streams/{stream['id']}/recordings/{funeral['uid']}",
        json={"primary": True},
        headers=director.bearer,
    )
    hidden = api.put(
        f"/api/streams/{stream['id']}/recordings/{sound_check}",
        json={"hidden": True},
        headers=director.bearer,
    )

    assert chosen.status_code == 200 and hidden.status_code == 200, hidden.text
    visitor = seen(api, stream["id"])
    assert visitor["videoId"] == funeral["uid"]
    assert [r["id"] for r in visitor["recordings"]] == [funeral["uid"]]
    listed = api.get(f"/api/streams/{stream['id']}/recordings").json()["recordings"]
    assert [r["cloudflareVideoId"] for r in listed] == [funeral["uid"]]
    page = api.get(f"/api/memorials/{memorial}/streams").json()
    (shown,) = [s for s in page["publicRecordedStreams"] if s["id"] == stream["id"]]
    assert shown["recordingUrl"] == visitor["recordingUrl"]

    # The director made the stream, but the family decides about its recorded funeral.
    refused = api.delete(f"/api/streams/{stream['id']}", headers=director.bearer)
    assert refused.status_code == 403 and "owner" in refused.json()["error"]
    assert api.delete(f"/api/streams/{stream['id']}", headers=family.bearer).status_code == 200


@pytest.mark.usefixtures("webhooks_lost")
def test_a_sound_check_nobody_reported_goes_with_its_deleted_stream_even_when_told_late(
    api: httpx.Client, cloudflare: httpx.Client, callers: Callers, stack: LocalStack
) -> None:
    director = callers["funeral_director"]
    stream = api.post("/api/streams", json={"title": "Sound check"}, headers=director.bearer).json()
    # The director tries the encoder before pressing Start, and Cloudflare's webhooks are lost.
    assert push(stack.rtmp_url, stream["streamKey"], seconds=3).wait(timeout=60) == 0
    (video,) = wait_for(
        lambda: ready_videos(cloudflare, stream["cloudflareId"]), 60, "the sound check's recording"
    )
    assert seen(api, stream["id"], director)["recordings"] == []  # nothing told the backend

    assert api.delete(f"/api/streams/{stream['id']}", headers=director.bearer).status_code == 200
    assert cloudflare.get(f"/{video['uid']}").status_code == 404  # not left playable

    # Cloudflare's webhook for that recording arrives after all: acknowledged, nothing revived.
    late = post_video(api, stack, json.dumps(video).encode())
    assert late.status_code == 200 and late.json()["streamId"] == stream["id"]
    assert "deleted" in late.json()["message"]
    assert cloudflare.get(f"/{video['uid']}").status_code == 404
    assert api.get(f"/api/streams/{stream['id']}", headers=director.bearer).status_code == 404
