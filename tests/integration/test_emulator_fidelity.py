"""The local Cloudflare behaves like the real one where our backend and pages depend on it:
DASH for recordings, JSON errors for unknown routes, input validation, notification policies,
the recording's real resolution and CORS on playback."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from emulators.stack import API_TOKEN, LocalStack
from tests.integration.conftest import live_input_policy
from tests.integration.test_broadcast_e2e import Receiver, push, ready_videos, wait_for

pytestmark = pytest.mark.emulator
MPD_NS = {"mpd": "urn:mpeg:dash:schema:mpd:2011"}
ALLOWED = "*.memorial.example"


@dataclass
class Broadcast:
    """One real broadcast (the 640x360 test card) to a fresh input that allows only
    ``*.memorial.example``, watched by two notification receivers: one behind a destination
    no policy names, one behind a ``stream_live_notifications`` policy for this input."""

    input_uid: str
    video: dict[str, Any]
    unrouted: Receiver
    routed: Receiver


@pytest.fixture(scope="module")
def broadcast(stack: LocalStack) -> Iterator[Broadcast]:
    unrouted, routed = Receiver(), Receiver()
    account = f"{stack.cloudflare_url}/client/v4/accounts/local-account"
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    with httpx.Client(base_url=account, headers=headers, timeout=10) as client:
        created = client.post(
            "/stream/live_inputs",
            json={
                "meta": {"name": "fidelity"},
                "recording": {
                    "mode": "automatic",
                    "timeoutSeconds": 1,
                    "allowedOrigins": [ALLOWED],
                },
            },
        ).json()["result"]
        uid = created["uid"]
        destinations = "/alerting/v3/destinations/webhooks"
        client.post(
            destinations, json={"name": "no-policy", "url": unrouted.url, "secret": "u"}
        ).raise_for_status()
        routed_id = client.post(
            destinations, json={"name": "with-policy", "url": routed.url, "secret": "r"}
        ).json()["result"]["id"]
        policy = live_input_policy("fidelity live input", routed_id)
        client.post(
            "/alerting/v3/policies", json=policy | {"filters": {"input_id": [uid]}}
        ).raise_for_status()

        assert push(stack.rtmp_url, created["rtmps"]["streamKey"], 3).wait(timeout=60) == 0
        with httpx.Client(base_url=f"{account}/stream", headers=headers, timeout=10) as stream:
            video = wait_for(lambda: ready_videos(stream, uid), 60, "the recording")[0]
    try:
        yield Broadcast(uid, video, unrouted, routed)
    finally:
        unrouted.server.shutdown()
        routed.server.shutdown()


def test_recordings_serve_a_real_dash_manifest(stack: LocalStack, broadcast: Broadcast) -> None:
    mpd_url = broadcast.video["playback"]["dash"]
    assert mpd_url == f"{stack.cloudflare_url}/{broadcast.video['uid']}/manifest/video.mpd"
    response = httpx.get(mpd_url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/dash+xml")

    mpd = ET.fromstring(response.content)  # noqa: S314 - our own emulator's answer
    assert mpd.tag == "{urn:mpeg:dash:schema:mpd:2011}MPD" and mpd.get("type") == "static"
    representations = mpd.findall(".//mpd:Representation", MPD_NS)
    assert {r.get("mimeType") for r in representations} == {"video/mp4", "audio/mp4"}
    video_rep = next(r for r in representations if r.get("mimeType") == "video/mp4")
    assert (video_rep.get("width"), video_rep.get("height")) == ("640", "360")
    for representation in representations:
        template = representation.find("mpd:SegmentTemplate", MPD_NS)
        assert template is not None
        rep_id = representation.get("id", "")
        first = int(template.get("startNumber", "1"))
        names = [
            template.get("initialization", "").replace("$RepresentationID$", rep_id),
            template.get("media", "")
            .replace("$RepresentationID$", rep_id)
            .replace("$Number%05d$", f"{first:05d}"),
        ]
        for name in names:
            segment = httpx.get(httpx.URL(mpd_url).join(name))
            assert segment.status_code == 200, name
            assert segment.content[4:8] in (b"ftyp", b"styp", b"moof"), name

    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", mpd_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert {"h264", "aac"} <= set(probe.stdout.split())


def test_recording_reports_the_resolution_that_was_broadcast(broadcast: Broadcast) -> None:
    assert broadcast.video["input"] == {"width": 640, "height": 360}


def test_live_input_notifications_need_a_policy(broadcast: Broadcast) -> None:
    wait_for(lambda: len(broadcast.routed.requests) >= 2, 20, "the live-input notifications")
    events = [json.loads(body) for _, body in broadcast.routed.requests]
    assert [e["data"]["event_type"] for e in events] == [
        "live_input.connected",
        "live_input.disconnected",
    ]
    assert {e["data"]["input_id"] for e in events} == {broadcast.input_uid}
    assert all(h["cf-webhook-auth"] == "r" for h, _ in broadcast.routed.requests)
    assert broadcast.unrouted.requests == []


def test_notification_policies_validate_and_list(stack: LocalStack, alerting: httpx.Client) -> None:
    unknown = alerting.post("/policies", json=live_input_policy("dangling", "no-such-destination"))
    assert unknown.status_code == 400 and unknown.json()["success"] is False
    missing = alerting.post("/policies", json={"name": "incomplete"})
    assert missing.status_code == 400
    # The local stack routes live-input events to the gateway through a policy, as production.
    policies = alerting.get("/policies").json()["result"]
    destinations = alerting.get("/destinations/webhooks").json()["result"]
    gateway = next(d for d in destinations if d["name"] == "live-input")
    assert gateway["url"] == f"{stack.gateway_url}/api/webhooks/cloudflare/live-input"
    assert "secret" not in gateway
    assert any(
        p["alert_type"] == "stream_live_notifications"
        and p["enabled"]
        and {"id": gateway["id"]} in p["mechanisms"]["webhooks"]
        for p in policies
    )


def test_playback_answers_cors_per_allowed_origins(
    stack: LocalStack, cloudflare: httpx.Client, broadcast: Broadcast
) -> None:
    uid = broadcast.video["uid"]
    base = f"{stack.cloudflare_url}/{uid}"
    assert broadcast.video["allowedOrigins"] == [ALLOWED]
    manifests = [f"{base}/manifest/video.m3u8", f"{base}/manifest/video.mpd"]
    playlist = httpx.get(manifests[0]).text
    segment = next(line for line in playlist.splitlines() if line.endswith(".ts"))
    urls = [*manifests, f"{base}/manifest/{segment}", f"{base}/thumbnails/thumbnail.jpg"]

    allowed = "https://www.memorial.example"
    for url in urls:
        answer = httpx.get(url, headers={"Origin": allowed})
        assert answer.status_code == 200, url
        assert answer.headers.get("access-control-allow-origin") == allowed, url
        assert "origin" in answer.headers.get("vary", "").lower()
    for stranger in ("https://evil.example", "https://memorial.example"):  # apex not covered
        answer = httpx.get(manifests[0], headers={"Origin": stranger})
        assert "access-control-allow-origin" not in answer.headers
    preflight = httpx.options(
        manifests[0],
        headers={
            "Origin": allowed,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "range",
        },
    )
    assert preflight.status_code in (200, 204)
    assert preflight.headers["access-control-allow-origin"] == allowed
    assert "GET" in preflight.headers["access-control-allow-methods"]
    assert "range" in preflight.headers["access-control-allow-headers"].lower()
    refused = httpx.options(
        manifests[0],
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in refused.headers

    # By input ID the input's own recording settings govern.
    by_input = httpx.get(
        f"{stack.cloudflare_url}/{broadcast.input_uid}/manifest/video.m3u8",
        headers={"Origin": "https://evil.example"},
    )
    assert "access-control-allow-origin" not in by_input.headers

    assert cloudflare.post(f"/{uid}", json={"allowedOrigins": []}).status_code == 200
    try:
        for url in urls:
            answer = httpx.get(url, headers={"Origin": "https://anyone.example"})
            assert answer.headers.get("access-control-allow-origin") == "*", url
    finally:
        cloudflare.post(f"/{uid}", json={"allowedOrigins": [ALLOWED]})


def test_unknown_api_routes_answer_cloudflares_json_error(
    stack: LocalStack, cloudflare: httpx.Client
) -> None:
    for path in ("/client/v4/accounts/local-account/stream/live_inputs/x/nope", "/client/v4/nope"):
        response = httpx.get(f"{stack.cloudflare_url}{path}", headers=cloudflare.headers)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert body["success"] is False and body["result"] is None and body["messages"] == []
        route = path.removeprefix("/client/v4")
        assert body["errors"][0] == {
            "code": 7003,
            "message": f"Could not route to {route}, perhaps your object identifier is invalid?",
        }


def test_delete_recording_after_days_must_be_30_to_1096(cloudflare: httpx.Client) -> None:
    for days in (29, 1097, 0, "45"):
        refused = cloudflare.post("/live_inputs", json={"deleteRecordingAfterDays": days})
        assert refused.status_code == 400, days
        body = refused.json()
        assert body["success"] is False and body["result"] is None
        assert body["errors"] and body["errors"][0]["code"] >= 1000
    accepted = cloudflare.post("/live_inputs", json={"deleteRecordingAfterDays": 30})
    assert accepted.status_code == 200
    uid = accepted.json()["result"]["uid"]
    assert accepted.json()["result"]["deleteRecordingAfterDays"] == 30
    assert (
        cloudflare.put(f"/live_inputs/{uid}", json={"deleteRecordingAfterDays": 29}).status_code
        == 400
    )
    updated = cloudflare.put(f"/live_inputs/{uid}", json={"deleteRecordingAfterDays": 1096})
    assert (
        updated.status_code == 200 and updated.json()["result"]["deleteRecordingAfterDays"] == 1096
    )
    cleared = cloudflare.put(f"/live_inputs/{uid}", json={"deleteRecordingAfterDays": None})
    assert "deleteRecordingAfterDays" not in cleared.json()["result"]


def test_prefer_low_latency_round_trips(cloudflare: httpx.Client) -> None:
    default = cloudflare.post("/live_inputs", json={"meta": {"name": "ll"}}).json()["result"]
    assert default["preferLowLatency"] is False
    created = cloudflare.post(
        "/live_inputs", json={"recording": {"mode": "automatic"}, "preferLowLatency": True}
    ).json()["result"]
    assert created["preferLowLatency"] is True
    uid = created["uid"]
    assert cloudflare.get(f"/live_inputs/{uid}").json()["result"]["preferLowLatency"] is True
    updated = cloudflare.put(f"/live_inputs/{uid}", json={"preferLowLatency": False})
    assert updated.json()["result"]["preferLowLatency"] is False
    assert (
        cloudflare.put(f"/live_inputs/{uid}", json={"preferLowLatency": "yes"}).status_code == 400
    )
