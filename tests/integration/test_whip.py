"""Browser broadcasting over WHIP: a real WebRTC publisher (aiortc, synthetic camera) through our
function to the emulator's WHIP endpoint, watched back over WHEP."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

from emulators.stack import LocalStack
from emulators.test_card import push_test_card
from emulators.webrtc_loopback import pin_ice_to_loopback
from tests.integration.conftest import Caller

pytestmark = pytest.mark.emulator
Callers = dict[str, Caller]
TIMEOUT_S = 20


async def connected(peer: RTCPeerConnection) -> None:
    for _ in range(TIMEOUT_S * 10):
        if peer.connectionState == "connected":
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"peer stuck in {peer.connectionState}")


async def offer_from(peer: RTCPeerConnection) -> str:
    await peer.setLocalDescription(await peer.createOffer())
    return str(peer.localDescription.sdp)


async def publisher() -> tuple[RTCPeerConnection, list[MediaPlayer]]:
    """What whip.ts does with a camera: a send-only peer with video and audio tracks."""
    camera = MediaPlayer("testsrc=size=320x240:rate=15", format="lavfi")
    microphone = MediaPlayer("sine=frequency=440:sample_rate=48000", format="lavfi")
    assert camera.video is not None and microphone.audio is not None
    peer = RTCPeerConnection()
    peer.addTrack(camera.video)
    peer.addTrack(microphone.audio)
    return peer, [camera, microphone]


async def hang_up(peer: RTCPeerConnection, sources: list[MediaPlayer]) -> None:
    await peer.close()
    for source in sources:
        for track in (source.audio, source.video):
            if track is not None:
                track.stop()


@contextlib.asynccontextmanager
async def browser_session(
    stack: LocalStack, caller: Caller, title: str
) -> AsyncIterator[tuple[httpx.AsyncClient, RTCPeerConnection, dict[str, Any]]]:
    """A page with a camera (the publisher, hung up at the end) and the site's API, where the
    caller has just made a stream titled ``title`` (the create reply comes third)."""
    pin_ice_to_loopback()
    peer, sources = await publisher()
    try:
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as api:
            created = await api.post("/api/streams", json={"title": title}, headers=caller.bearer)
            assert created.status_code == 200, created.text
            yield api, peer, created.json()
    finally:
        await hang_up(peer, sources)


async def watch_one_frame(whep_url: str) -> Any:
    viewer = RTCPeerConnection()
    viewer.addTransceiver("video", direction="recvonly")
    viewer.addTransceiver("audio", direction="recvonly")
    frames: asyncio.Queue[Any] = asyncio.Queue()

    @viewer.on("track")
    def _track(track: Any) -> None:
        if track.kind == "video":

            async def pull() -> None:
                await frames.put(await track.recv())

            asyncio.ensure_future(pull())

    async with httpx.AsyncClient() as client:
        answer = await client.post(
            whep_url, content=await offer_from(viewer), headers={"Content-Type": "application/sdp"}
        )
    assert answer.status_code == 201, answer.text
    await viewer.setRemoteDescription(RTCSessionDescription(sdp=answer.text, type="answer"))
    try:
        return await asyncio.wait_for(frames.get(), TIMEOUT_S)
    finally:
        await viewer.close()


async def browser_broadcast(stack: LocalStack, caller: Caller, title: str) -> dict[str, Any]:
    async with browser_session(stack, caller, title) as (api, peer, created):
        seen: dict[str, Any] = {"created": created}
        stream_id = created["id"]
        whip = f"{stack.gateway_url}/api/streams/{stream_id}/whip"
        response = await api.post(
            whip,
            content=await offer_from(peer),
            headers={"Content-Type": "application/sdp", **caller.bearer},
        )
        assert response.status_code == 201, response.text
        assert response.headers["content-type"].startswith("application/sdp")
        location = response.headers["Location"]
        assert location.startswith(f"/api/streams/{stream_id}/whip/")
        await peer.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
        await connected(peer)

        seen["live"] = (await api.get(f"/api/streams/{stream_id}")).json()
        seen["second"] = await api.post(
            whip,
            content=await offer_from(RTCPeerConnection()),
            headers={"Content-Type": "application/sdp", **caller.bearer},
        )
        frame = await watch_one_frame(seen["live"]["webRTCPlaybackUrl"])
        seen["frame"] = (frame.width, frame.height)
        seen["lifecycle"] = (
            await api.get(f"{stack.cloudflare_url}/{seen['live']['cloudflareId']}/lifecycle")
        ).json()

        seen["ended"] = await api.delete(location, headers=caller.bearer)
        seen["after"] = (await api.get(f"/api/streams/{stream_id}", headers=caller.bearer)).json()
    return seen


def test_browser_broadcast_goes_live_over_whip_and_plays_over_whep(
    callers: Callers, stack: LocalStack
) -> None:
    seen = asyncio.run(browser_broadcast(stack, callers["owner"], "From the chapel laptop"))

    stream, live = seen["created"], seen["live"]
    assert live["status"] == "live" and live["whipActive"] is True
    assert live["ingestProtocol"] == "whip"
    assert live["webRTCPlaybackUrl"].endswith(f"/{stream['cloudflareId']}/webRTC/play")
    assert live["recordingStatus"] == "unavailable" and "not recorded" in live["recordingMessage"]
    assert "streamKey" not in live and "webRTC/publish" not in str(live)
    assert seen["frame"] == (320, 240)
    assert seen["lifecycle"]["live"] is True
    assert seen["second"].status_code == 409
    assert seen["ended"].status_code == 200
    after = seen["after"]
    assert (after["status"], after["whipActive"]) == ("completed", False)
    assert after["recordingStatus"] == "unavailable"
    whip_hops = httpx.get(f"{stack.cloudflare_url}/__emulator/whip-requests").json()
    assert whip_hops and not any(hop["authorization"] for hop in whip_hops)


def test_whip_refuses_bad_bodies_and_callers(api: httpx.Client, callers: Callers) -> None:
    stream = api.post("/api/streams", json={"title": "x"}, headers=callers["owner"].bearer).json()
    whip = f"/api/livestreamMVPTwo/streams/{stream['id']}/whip"
    sdp = {"Content-Type": "application/sdp"}

    assert api.post(whip, content=b"v=0\r\n", headers=sdp).status_code == 401
    assert (
        api.post(whip, content=b"v=0\r\n", headers=sdp | callers["stranger"].bearer).status_code
        == 403
    )
    wrong_type = api.post(whip, json={"sdp": "v=0"}, headers=callers["owner"].bearer)
    assert wrong_type.status_code == 400 and "application/sdp" in wrong_type.json()["error"]
    not_sdp = api.post(whip, content=b"hello", headers=sdp | callers["owner"].bearer)
    assert not_sdp.status_code == 400
    # Passes our version-line check, so Cloudflare's WHIP endpoint is the one to refuse it.
    malformed = api.post(
        whip, content=b"v=0\r\nm=garbage\r\n", headers=sdp | callers["owner"].bearer
    )
    assert malformed.status_code == 400, malformed.text
    assert (
        api.get(f"/api/streams/{stream['id']}", headers=callers["owner"].bearer).json()["status"]
        == "scheduled"
    )
    unknown = api.delete(f"{whip}/no-such-session", headers=callers["owner"].bearer)
    assert unknown.status_code == 404


def test_whip_preflight_allows_only_configured_origins(api: httpx.Client) -> None:
    whip = "/api/streams/any-stream/whip"
    allowed = api.options(
        whip,
        headers={
            "Origin": "https://www.tributestream.com",
            "Access-Control-Request-Method": "POST",
        },
    )
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://www.tributestream.com"
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    assert "Location" in allowed.headers["Access-Control-Expose-Headers"]
    assert allowed.headers["Accept-Post"] == "application/sdp"
    foreign = api.options(whip, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in foreign.headers


async def page_goes_live_with_webcam(
    stack: LocalStack, caller: Caller, title: str
) -> dict[str, Any]:
    """UnifiedStreamControl: Start, then post the WHIP offer to the reply's ``whipEndpoint``
    with the site's cookie (as Hosting forwards it), then a second publisher tries too."""
    seen: dict[str, Any] = {}
    cookie = caller.cookie
    async with browser_session(stack, caller, title) as (api, peer, created):
        stream_id = created["id"]
        started = await api.post(f"/api/streams/{stream_id}/start", headers=cookie)
        assert started.status_code == 200, started.text
        whip_endpoint = started.json()["credentials"]["whipEndpoint"]
        seen["armed"] = (await api.get(f"/api/streams/{stream_id}", headers=cookie)).json()
        answer = await api.post(
            whip_endpoint,
            content=await offer_from(peer),
            headers={"Content-Type": "application/sdp", **cookie},
        )
        seen["answer"] = answer
        if answer.status_code == 201:
            await peer.setRemoteDescription(RTCSessionDescription(sdp=answer.text, type="answer"))
            await connected(peer)
            seen["second"] = await api.post(
                whip_endpoint,
                content=await offer_from(RTCPeerConnection()),
                headers={"Content-Type": "application/sdp", **cookie},
            )
            seen["live"] = (await api.get(f"/api/streams/{stream_id}", headers=cookie)).json()
            seen["ended"] = await api.delete(answer.headers["Location"], headers=cookie)
    return seen


def test_start_then_whip_broadcasts_from_the_management_page(
    callers: Callers, stack: LocalStack
) -> None:
    seen = asyncio.run(page_goes_live_with_webcam(stack, callers["owner"], "Webcam service"))

    assert seen["armed"]["status"] == "live" and seen["armed"]["whipActive"] is False
    assert seen["answer"].status_code == 201, seen["answer"].text
    assert seen["answer"].text.startswith("v=0")
    assert seen["second"].status_code == 409
    assert seen["live"]["whipActive"] is True and seen["live"]["ingestProtocol"] == "whip"
    assert seen["ended"].status_code == 200


def test_whip_is_refused_while_an_rtmp_encoder_is_on_air(
    api: httpx.Client, callers: Callers, stack: LocalStack
) -> None:
    owner = callers["owner"]
    stream = api.post("/api/streams", json={"title": "OBS first"}, headers=owner.bearer).json()
    started = api.post(f"/api/streams/{stream['id']}/start", headers=owner.bearer).json()
    encoder = push_test_card(started["streamUrl"], started["streamKey"], seconds=30)
    try:
        lifecycle = f"{stack.cloudflare_url}/{stream['cloudflareId']}/lifecycle"
        for _ in range(100):
            if httpx.get(lifecycle).json().get("live"):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the encoder never went live")
        refused = api.post(
            started["whipEndpoint"],
            content=b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\n",
            headers={"Content-Type": "application/sdp", **owner.bearer},
        )
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"] == "Stream is already live"
    finally:
        encoder.terminate()
        encoder.wait(10)
