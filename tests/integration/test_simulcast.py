"""Simulcast with real media, through the HTTP API: a manager adds two outputs pointing at RTMP
servers of the test's own (ffmpeg listening), one broadcast goes out, and the emulator relays it
to the enabled output only until the other is enabled mid-broadcast. ffprobe then reads what
each destination received."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from emulators.free_ports import free_ports
from emulators.stack import LocalStack
from tests.integration.conftest import Caller
from tests.integration.test_broadcast_e2e import push, wait_for

pytestmark = pytest.mark.emulator

# Long enough for every step below to happen while it is on air, on a loaded machine too.
BROADCAST_S = 30


class RelayTarget:
    """An RTMP server standing in for YouTube: one ffmpeg listening on a free loopback port,
    writing what it receives to ``relay.flv``."""

    def __init__(self, workdir: Path, name: str) -> None:
        (port,) = free_ports(1)
        self.url = f"rtmp://127.0.0.1:{port}/app"
        self.key = f"{name}-key-0123456789"
        self.file = workdir / f"{name}.flv"
        self.process = subprocess.Popen(  # noqa: S603 - our own argv
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-listen", "1"]
            + [
                "-analyzeduration",
                "1000000",
                "-i",
                f"{self.url}/{self.key}",
                "-c",
                "copy",
                "-f",
                "flv",
                str(self.file),
            ],
            stdin=subprocess.DEVNULL,
        )

    def received(self) -> bool:
        return self.file.exists() and self.file.stat().st_size > 0

    def probe(self) -> dict[str, object]:
        result = subprocess.run(
            ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json"]
            + [str(self.file)],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        probed: dict[str, object] = json.loads(result.stdout)
        return probed

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def targets(tmp_path: Path) -> Iterator[tuple[RelayTarget, RelayTarget]]:
    first, second = RelayTarget(tmp_path, "first"), RelayTarget(tmp_path, "second")
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def relaying(stack: LocalStack, input_uid: str) -> list[str]:
    answer: list[str] = httpx.get(f"{stack.cloudflare_url}/__emulator/relays/{input_uid}").json()[
        "relaying"
    ]
    return answer


def test_a_broadcast_reaches_enabled_outputs_only_and_keys_are_never_returned(
    api: httpx.Client,
    cloudflare: httpx.Client,
    callers: dict[str, Caller],
    stack: LocalStack,
    targets: tuple[RelayTarget, RelayTarget],
) -> None:
    owner, stranger = callers["owner"].bearer, callers["stranger"].bearer
    first, second = targets
    stream = api.post("/api/streams", json={"title": "Simulcast service"}, headers=owner).json()
    input_uid = stream["cloudflareId"]
    outputs = f"/api/streams/{stream['id']}/outputs"

    # Given one enabled and one disabled output (their keys answered only as a hint)
    one = api.post(outputs, json={"url": first.url, "streamKey": first.key}, headers=owner)
    assert one.status_code == 201, one.text
    body = {"url": second.url, "streamKey": second.key, "enabled": False}
    two = api.post(outputs, json=body, headers=owner)
    assert two.status_code == 201, two.text
    one_id, two_id = one.json()["id"], two.json()["id"]
    assert one.json()["streamKeyHint"] == f"…{first.key[-4:]}"
    listed = api.get(outputs, headers=owner)
    assert [o["id"] for o in listed.json()["outputs"]] == [one_id, two_id]
    for reply in (one, two, listed):
        assert first.key not in reply.text and second.key not in reply.text
    assert first.key not in api.get(f"/api/streams/{stream['id']}").text
    # Cloudflare (the emulator) holds the whole key, as the relay needs it
    at_cloudflare = cloudflare.get(f"/live_inputs/{input_uid}/outputs").json()["result"]
    assert [o["streamKey"] for o in at_cloudflare] == [first.key, second.key]

    # And what others and bad input get
    bad = api.post(
        outputs, json={"url": "https://youtube.com/live", "streamKey": "k"}, headers=owner
    )
    assert bad.status_code == 400 and "rtmp://" in bad.json()["error"]
    assert api.get(outputs, headers=stranger).status_code == 403
    assert api.post(outputs, json=body, headers=stranger).status_code == 403
    put_two = f"{outputs}/{two_id}"
    assert api.put(put_two, json={"enabled": True}, headers=stranger).status_code == 403
    assert api.get(outputs).status_code == 401

    # When the stream goes out over RTMP
    started = api.post(f"/api/streams/{stream['id']}/start", headers=owner).json()
    encoder = push(started["streamUrl"], started["streamKey"], BROADCAST_S)
    try:
        wait_for(lambda: relaying(stack, input_uid) == [one_id], 20, "the enabled output's relay")
        wait_for(first.received, 20, "the enabled output to receive the broadcast")
        # Then the disabled output receives nothing
        assert not second.received()

        # When it is enabled mid-broadcast, it receives the broadcast too
        enabled = api.put(put_two, json={"enabled": True}, headers=owner)
        assert enabled.status_code == 200 and enabled.json()["enabled"] is True
        wait_for(second.received, 20, "the output enabled mid-broadcast to receive it")
        assert sorted(relaying(stack, input_uid)) == sorted([one_id, two_id])

        # When it is deleted, its relay stops (its destination sees the end of the stream)
        deleted = api.delete(put_two, headers=owner)
        assert deleted.status_code == 200 and deleted.json()["deleted"] is True
        assert relaying(stack, input_uid) == [one_id]
        assert second.process.wait(timeout=15) == 0
    finally:
        assert encoder.wait(timeout=60) == 0

    # The broadcast's end stops every relay
    wait_for(lambda: relaying(stack, input_uid) == [], 15, "the relays to stop")
    assert first.process.wait(timeout=15) == 0
    for target, least_s in ((first, BROADCAST_S / 2), (second, 1.0)):
        probed = target.probe()
        streams = probed["streams"]
        assert isinstance(streams, list)
        assert {s["codec_type"] for s in streams} >= {"video", "audio"}
        video = next(s for s in streams if s["codec_type"] == "video")
        assert video["codec_name"] == "h264" and video["width"] == 640
        fmt = probed["format"]
        assert isinstance(fmt, dict)
        assert float(fmt["duration"]) >= least_s, (target.file.name, fmt["duration"])
    listed_after = api.get(outputs, headers=owner).json()["outputs"]
    assert [o["id"] for o in listed_after] == [one_id]


def test_an_add_releases_its_claim_in_firestore_so_the_next_add_is_judged_by_cloudflare(
    api: httpx.Client, callers: dict[str, Caller]
) -> None:
    owner = callers["owner"].bearer
    stream = api.post("/api/streams", json={"title": "Claimed service"}, headers=owner).json()
    outputs = f"/api/streams/{stream['id']}/outputs"
    destination = {"url": "rtmp://a.rtmp.youtube.com/live2", "streamKey": "claim-test-key-0001"}

    added = api.post(outputs, json=destination, headers=owner)
    assert added.status_code == 201, added.text
    again = api.post(outputs, json=destination, headers=owner)
    # The usual conflict, naming the output: not "being added", the claim was released.
    assert again.status_code == 409 and again.json()["outputId"] == added.json()["id"]
    assert "already an output" in again.json()["error"]
    assert api.delete(f"{outputs}/{added.json()['id']}", headers=owner).status_code == 200
    readded = api.post(outputs, json=destination, headers=owner)
    assert readded.status_code == 201, readded.text
