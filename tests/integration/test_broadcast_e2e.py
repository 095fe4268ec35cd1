"""Real broadcasts: ffmpeg pushes RTMP into the media server behind the Cloudflare emulator."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from emulators.stack import LocalStack
from emulators.test_card import push_test_card
from tests.integration.conftest import Caller, WebhookRouting

pytestmark = pytest.mark.emulator


def push(rtmp_url: str, stream_key: str, seconds: float) -> subprocess.Popen[bytes]:
    return push_test_card(rtmp_url, stream_key, seconds)


def wait_for(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def videos_of(cloudflare: httpx.Client, input_uid: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = cloudflare.get(f"/live_inputs/{input_uid}/videos").json()[
        "result"
    ]
    return result


def ready_videos(cloudflare: httpx.Client, input_uid: str) -> list[dict[str, Any]]:
    return [v for v in videos_of(cloudflare, input_uid) if v["status"]["state"] == "ready"]


def started_stream(
    api: httpx.Client, owner: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A stream made and started by its owner: it, and Start's answer."""
    stream: dict[str, Any] = api.post(
        "/api/streams", json={"title": "Service"}, headers=owner
    ).json()
    started: dict[str, Any] = api.post(f"/api/streams/{stream['id']}/start", headers=owner).json()
    return stream, started


def test_broadcast_goes_live_over_hls_then_becomes_the_streams_recording(
    api: httpx.Client, cloudflare: httpx.Client, callers: dict[str, Caller], stack: LocalStack
) -> None:
    owner = callers["owner"].bearer
    stream, started = started_stream(api, owner)
    input_uid = stream["cloudflareId"]
    assert started["streamUrl"] == stack.rtmp_url

    encoder = push(started["streamUrl"], started["streamKey"], seconds=8)
    try:
        lifecycle = wait_for(
            lambda: (
                (body := httpx.get(f"{stack.cloudflare_url}/{input_uid}/lifecycle").json())["live"]
                and body
            ),
            20,
            "the input to go live",
        )
        assert lifecycle["isInput"] is True and lifecycle["videoUID"]
        live_input = cloudflare.get(f"/live_inputs/{input_uid}").json()["result"]
        assert live_input["status"] == "connected"
        assert videos_of(cloudflare, input_uid)[0]["status"]["state"] == "live-inprogress"
        manifest_url = f"{stack.cloudflare_url}/{input_uid}/manifest/video.m3u8"
        playlist = wait_for(
            lambda: (
                (r := httpx.get(manifest_url)).status_code == 200 and ".ts" in r.text and r.text
            ),
            20,
            "a live HLS playlist with segments",
        )
        segment = next(line for line in playlist.splitlines() if line.endswith(".ts"))
        probe = subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-show_entries",
                "stream=codec_name",
                "-of",
                "csv=p=0",
                f"{stack.cloudflare_url}/{input_uid}/manifest/{segment}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert {"h264", "aac"} <= set(probe.stdout.split())
    finally:
        assert encoder.wait(timeout=60) == 0

    # The media server reports the disconnect a moment after the encoder exits, as Cloudflare does.
    wait_for(
        lambda: (
            cloudflare.get(f"/live_inputs/{input_uid}").json()["result"]["status"]
            == "client_disconnect"
        ),
        20,
        "the input to report the encoder's disconnect",
    )
    video = wait_for(lambda: ready_videos(cloudflare, input_uid), 60, "the recording")[0]
    assert video["readyToStream"] is True and video["liveInput"] == input_uid
    assert 6 <= video["duration"] <= 10 and video["size"] > 0

    stopped = api.post(f"/api/streams/{stream['id']}/stop", headers=owner).json()

    assert stopped["recordingReady"] is True
    assert stopped["recordingUrl"] == video["playback"]["hls"]
    vod = httpx.get(stopped["recordingUrl"])
    assert vod.status_code == 200 and "#EXT-X-ENDLIST" in vod.text
    public = api.get(f"/api/streams/{stream['id']}").json()
    assert public["videoId"] == video["uid"] and public["recordingThumbnail"]
    assert httpx.get(public["recordingThumbnail"]).headers["content-type"] == "image/jpeg"


def test_reconnect_within_timeout_continues_and_after_it_starts_a_new_video(
    api: httpx.Client, cloudflare: httpx.Client, callers: dict[str, Caller], stack: LocalStack
) -> None:
    owner = callers["owner"].bearer
    stream = api.post("/api/streams", json={"title": "Flaky wifi"}, headers=owner).json()
    input_uid = stream["cloudflareId"]

    for gap_s in (1.0, 6.0):  # timeoutSeconds is 3 on the local stack
        assert push(stack.rtmp_url, stream["streamKey"], seconds=3).wait(timeout=60) == 0
        time.sleep(gap_s)
    assert push(stack.rtmp_url, stream["streamKey"], seconds=3).wait(timeout=60) == 0

    videos = wait_for(
        lambda: len(r := ready_videos(cloudflare, input_uid)) == 2 and r, 60, "two recordings"
    )
    durations = sorted(v["duration"] for v in videos)
    assert durations[0] >= 2.5 and durations[1] >= 5  # the first two pushes form one recording


def test_stop_ends_an_encoder_left_on_and_the_next_start_lets_it_back(
    api: httpx.Client, cloudflare: httpx.Client, callers: dict[str, Caller], stack: LocalStack
) -> None:
    owner = callers["owner"].bearer
    stream, started = started_stream(api, owner)
    input_uid = stream["cloudflareId"]
    encoder = push(started["streamUrl"], started["streamKey"], seconds=120)  # left running
    try:
        wait_for(
            lambda: (
                cloudflare.get(f"/live_inputs/{input_uid}").json()["result"]["status"]
                == "connected"
            ),
            20,
            "the encoder on air",
        )
        time.sleep(3)

        assert api.post(f"/api/streams/{stream['id']}/stop", headers=owner).status_code == 200

        # Cloudflare ends the broadcast: the encoder is cut off, and its video is finished.
        assert encoder.wait(timeout=30) != 0
    finally:
        if encoder.poll() is None:
            encoder.kill()
    video = wait_for(lambda: ready_videos(cloudflare, input_uid), 60, "the recording")[0]
    assert video["duration"] < 30
    assert cloudflare.get(f"/live_inputs/{input_uid}").json()["result"]["enabled"] is False
    # Stopped means over: an encoder coming back is refused until the next Start.
    assert push(stack.rtmp_url, started["streamKey"], seconds=2).wait(timeout=60) != 0

    again = api.post(f"/api/streams/{stream['id']}/start", headers=owner)

    assert again.status_code == 200
    assert push(stack.rtmp_url, started["streamKey"], seconds=2).wait(timeout=60) == 0
    # Its recording (and the webhook about it) comes before the next test's broadcasts.
    wait_for(lambda: len(ready_videos(cloudflare, input_uid)) == 2, 60, "the second recording")


def test_unknown_stream_key_is_refused_by_the_media_server(stack: LocalStack) -> None:
    assert push(stack.rtmp_url, "not-a-key", seconds=2).wait(timeout=60) != 0


class Receiver:
    """A local HTTP endpoint standing in for our webhook URL."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.server.shutdown()


def test_webhooks_are_signed_like_cloudflares(
    api: httpx.Client,
    cloudflare: httpx.Client,
    callers: dict[str, Caller],
    stack: LocalStack,
    receiver: Receiver,
    webhook_routing: WebhookRouting,
) -> None:
    secret = webhook_routing.stream_webhook_to(receiver.url)
    # The destination our stream_live_notifications policy sends to (Cloudflare sends live
    # notifications only through a policy).
    webhook_routing.notifications_to(receiver.url, "shared-secret")
    stream = api.post(
        "/api/streams", json={"title": "Hooks"}, headers=callers["owner"].bearer
    ).json()

    assert push(stack.rtmp_url, stream["streamKey"], seconds=3).wait(timeout=60) == 0
    wait_for(lambda: ready_videos(cloudflare, stream["cloudflareId"]), 60, "the recording")
    wait_for(
        lambda: any(b"readyToStream" in body for _, body in receiver.requests),
        20,
        "the video webhook",
    )

    events = [
        event
        for headers, body in receiver.requests
        if "cf-webhook-auth" in headers
        and (event := json.loads(body))["data"]["input_id"] == stream["cloudflareId"]
    ]
    assert [e["data"]["event_type"] for e in events] == [
        "live_input.connected",
        "live_input.disconnected",
    ]
    assert all(
        h["cf-webhook-auth"] == "shared-secret"
        for h, _ in receiver.requests
        if "cf-webhook-auth" in h
    )
    headers, body = next((h, b) for h, b in receiver.requests if "webhook-signature" in h)
    fields = dict(part.split("=", 1) for part in headers["webhook-signature"].split(","))
    expected = hmac.new(secret.encode(), f"{fields['time']}.".encode() + body, hashlib.sha256)
    assert hmac.compare_digest(fields["sig1"], expected.hexdigest())
    video = json.loads(body)
    assert video["status"]["state"] == "ready" and video["liveInput"] == stream["cloudflareId"]


def test_injected_webhook_faults_drop_and_duplicate_deliveries(
    api: httpx.Client,
    cloudflare: httpx.Client,
    callers: dict[str, Caller],
    stack: LocalStack,
    receiver: Receiver,
    inject_faults: Any,
    webhook_routing: WebhookRouting,
) -> None:
    webhook_routing.stream_webhook_to(receiver.url)
    webhook_routing.notifications_to(receiver.url, "s")
    inject_faults(drop_webhooks=1, duplicate_webhooks=True)
    stream = api.post(
        "/api/streams", json={"title": "Faults"}, headers=callers["owner"].bearer
    ).json()

    assert push(stack.rtmp_url, stream["streamKey"], seconds=2).wait(timeout=60) == 0
    wait_for(
        lambda: sum(b"readyToStream" in body for _, body in receiver.requests) == 2,
        60,
        "the duplicated video webhook",
    )

    events = [
        json.loads(b)["data"]["event_type"] for h, b in receiver.requests if "cf-webhook-auth" in h
    ]
    assert events == ["live_input.disconnected", "live_input.disconnected"]
    videos = [b for h, b in receiver.requests if "webhook-signature" in h]
    assert len(videos) == 2 and videos[0] == videos[1]
