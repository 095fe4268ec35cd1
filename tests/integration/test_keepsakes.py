"""Keepsakes on real media, through the API of the local stack: a broadcast of the test card
over RTMP, its recording downloaded as an MP4 (ffprobe agrees on its duration), then trimmed
into a new recording that becomes the one the stream shows (ffprobe agrees on its bounds).
The Cloud Tasks emulator delivers the checks that follow both to ready."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulators.stack import LocalStack
from tests.integration.conftest import Caller
from tests.integration.test_broadcast_e2e import push, wait_for

pytestmark = pytest.mark.emulator

BROADCAST_S = 8
# The MP4 is a remux of the same frames, the clip a frame-accurate re-encode; what ffprobe
# reads still differs from the recorded duration by how the last audio and video packets end
# (AAC frames of ~21 ms, 33 ms video frames) and by the whole seconds Cloudflare's duration is
# rounded to in places: half a second covers both and fails any cut at a wrong keyframe (2 s).
TOLERANCE_S = 0.5


def ffprobe_duration(target: str) -> float:
    entries = ["-show_entries", "format=duration", "-of", "csv=p=0"]
    return float(subprocess.check_output(["ffprobe", "-v", "error", *entries, target], timeout=60))


def recording_ready(api: httpx.Client, owner: Caller, stream_id: str) -> dict[str, Any]:
    """The owner's view of the stream once its recording is ready."""
    ready: dict[str, Any] = wait_for(
        lambda: (
            (s := api.get(f"/api/streams/{stream_id}", headers=owner.bearer).json())[
                "recordingReady"
            ]
            and s
        ),
        120,
        "the recording",
    )
    return ready


def recorded_stream(
    api: httpx.Client,
    owner: Caller,
    stack: LocalStack,
    body: dict[str, Any] | None = None,
    seconds: float = BROADCAST_S,
) -> dict[str, Any]:
    """A stream (made with ``body``) the owner broadcast the test card to, once its recording
    is ready."""
    made = api.post("/api/streams", json=body or {"title": "Keepsakes"}, headers=owner.bearer)
    stream = made.raise_for_status().json()
    api.post(f"/api/streams/{stream['id']}/start", headers=owner.bearer)
    assert push(stack.rtmp_url, stream["streamKey"], seconds).wait(timeout=60) == 0
    api.post(f"/api/streams/{stream['id']}/stop", headers=owner.bearer)
    return recording_ready(api, owner, stream["id"])


def test_a_recording_is_downloaded_as_an_mp4_and_trimmed_into_the_primary_recording(
    api: httpx.Client, callers: dict[str, Caller], stack: LocalStack, tmp_path: Path
) -> None:
    owner = callers["owner"]
    stream = recorded_stream(api, owner, stack)
    video_id, duration = stream["videoId"], stream["recordingDuration"]
    base = f"/api/streams/{stream['id']}/recordings/{video_id}"

    # The family asks for the MP4; the checks Cloud Tasks delivers follow it to ready.
    asked = api.post(f"{base}/download", headers=owner.bearer)
    assert asked.status_code == 202, asked.text
    assert asked.json()["state"] in ("preparing", "ready")
    ready = wait_for(
        lambda: (
            (d := api.get(f"{base}/download", headers=owner.bearer).json())["state"]
            in ("ready", "error")
            and d
        ),
        120,
        "the download",
    )
    assert ready["state"] == "ready", ready
    mp4 = tmp_path / "recording.mp4"
    mp4.write_bytes(httpx.get(ready["url"], timeout=60).raise_for_status().content)
    assert abs(ffprobe_duration(str(mp4)) - duration) <= TOLERANCE_S

    # A manager trims it: a new recording, which becomes the stream's primary one.
    bounds = {"startTimeSeconds": 2, "endTimeSeconds": 6}
    trimmed = api.post(f"{base}/clip", json=bounds, headers=owner.bearer)
    assert trimmed.status_code == 202, trimmed.text
    clip_id = trimmed.json()["videoId"]
    shown = wait_for(
        lambda: (
            (s := api.get(f"/api/streams/{stream['id']}", headers=owner.bearer).json())["videoId"]
            == clip_id
            and s
        ),
        120,
        "the trim to become the primary recording",
    )
    assert abs(ffprobe_duration(shown["recordingUrl"]) - 4) <= TOLERANCE_S
    assert {r["id"] for r in shown["recordings"]} == {video_id, clip_id}  # the original is kept
    out_of_range = api.post(
        f"{base}/clip", json={"startTimeSeconds": 0, "endTimeSeconds": 600}, headers=owner.bearer
    )
    assert out_of_range.status_code == 400, out_of_range.text
