"""Private services on real media, through the local stack: a private stream's live and
recorded HLS are refused by the Cloudflare emulator without a token and play (ffprobe) with
the URLs ``GET /playback`` signs; an invited guest's code plays until it is revoked; wrong
codes are limited per stream and client."""

from __future__ import annotations

import subprocess
import uuid
from typing import Any

import httpx
import pytest

from emulators.stack import LocalStack
from tests.integration.conftest import Caller
from tests.integration.test_broadcast_e2e import push, wait_for
from tests.integration.test_keepsakes import recorded_stream, recording_ready

pytestmark = pytest.mark.emulator

BROADCAST_S = 8
# The recording holds what was sent; ffprobe's duration differs by how the last audio and
# video packets end and by the reconnect window's cut: a second covers both.
TOLERANCE_S = 1.0


def probe(url: str) -> dict[str, str]:
    """ffprobe's reading of an HLS URL: its duration (N/A while live) and first codec."""
    output = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "format=duration:stream=codec_name",
            "-of",
            "default=noprint_wrappers=1",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert output.returncode == 0, output.stderr
    fields: dict[str, str] = {}
    for line in output.stdout.splitlines():
        key, _, value = line.partition("=")
        fields.setdefault(key, value)
    return fields


def unsigned_status(url: str) -> int:
    return httpx.get(url, timeout=30).status_code


def playback(api: httpx.Client, stream_id: str, caller: Caller) -> dict[str, Any]:
    response = api.get(f"/api/streams/{stream_id}/playback", headers=caller.bearer)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_a_private_stream_plays_only_through_signed_urls_live_and_recorded(
    api: httpx.Client, callers: dict[str, Caller], stack: LocalStack
) -> None:
    owner = callers["owner"]
    made = api.post(
        "/api/streams", json={"title": "Family only", "isPublic": False}, headers=owner.bearer
    )
    assert made.status_code == 200, made.text
    stream = made.json()
    assert stream["requiresToken"] is True
    api.post(f"/api/streams/{stream['id']}/start", headers=owner.bearer).raise_for_status()
    encoder = push(stack.rtmp_url, stream["streamKey"], BROADCAST_S)
    try:
        live = wait_for(
            lambda: (p := playback(api, stream["id"], owner))["source"] == "live" and p,
            60,
            "live playback",
        )
        plain_live = f"{stack.cloudflare_url}/{stream['cloudflareId']}/manifest/video.m3u8"
        wait_for(lambda: httpx.get(live["hlsUrl"], timeout=30).status_code == 200, 60, "HLS")
        assert live["requiresToken"] is True and live["expiresAt"] is not None
        assert stream["cloudflareId"] not in live["hlsUrl"]
        assert unsigned_status(plain_live) == 401
        assert probe(live["hlsUrl"])["codec_name"] == "h264"
    finally:
        assert encoder.wait(timeout=60) == 0
    api.post(f"/api/streams/{stream['id']}/stop", headers=owner.bearer).raise_for_status()

    recorded = recording_ready(api, owner, stream["id"])
    signed = playback(api, stream["id"], owner)
    assert signed["source"] == "recording"
    assert unsigned_status(recorded["recordingUrl"]) == 401
    plain_thumbnail = f"{stack.cloudflare_url}/{recorded['videoId']}/thumbnails/thumbnail.jpg"
    assert unsigned_status(plain_thumbnail) == 401
    assert httpx.get(signed["thumbnailUrl"], timeout=30).status_code == 200
    duration = float(probe(signed["hlsUrl"])["duration"])
    assert abs(duration - recorded["recordingDuration"]) <= TOLERANCE_S
    # Anyone else is refused a token: strangers 403, visitors 401.
    stranger = api.get(f"/api/streams/{stream['id']}/playback", headers=callers["stranger"].bearer)
    assert stranger.status_code == 403
    assert api.get(f"/api/streams/{stream['id']}/playback").status_code == 401


def test_an_invited_guest_watches_until_the_code_is_revoked(
    api: httpx.Client, callers: dict[str, Caller], stack: LocalStack
) -> None:
    owner = callers["owner"]
    stream = recorded_stream(api, owner, stack, {"title": "Guests", "isPublic": False}, 4)
    invited = api.post(
        f"/api/streams/{stream['id']}/invitations",
        json={"label": "Aunt Ada"},
        headers=owner.bearer,
    )
    assert invited.status_code == 201, invited.text
    code = invited.json()["code"]
    guest = {"X-Forwarded-For": f"203.0.113.{uuid.uuid4().int % 250}"}

    redeemed = api.post(f"/api/streams/{stream['id']}/access", json={"code": code}, headers=guest)
    assert redeemed.status_code == 200, redeemed.text
    assert float(probe(redeemed.json()["hlsUrl"])["duration"]) > 0

    revoked = api.delete(f"/api/streams/{stream['id']}/invitations/{code}", headers=owner.bearer)
    assert revoked.status_code == 200, revoked.text
    refused = api.post(f"/api/streams/{stream['id']}/access", json={"code": code}, headers=guest)
    assert refused.status_code == 403
    assert "hlsUrl" not in refused.json()

    # Wrong codes: refused, then limited for that client on that stream (Retry-After).
    guesser = {"X-Forwarded-For": "198.51.100.7"}
    answers = [
        api.post(f"/api/streams/{stream['id']}/access", json={"code": "0" * 32}, headers=guesser)
        for _ in range(11)
    ]
    assert {a.status_code for a in answers[:10]} == {403}
    assert answers[10].status_code == 429
    assert int(answers[10].headers["Retry-After"]) > 0
