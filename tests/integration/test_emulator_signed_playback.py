"""The local Cloudflare's signed URLs, MP4 downloads and clips (issue #15), on a real recording
(the test card broadcast over RTMP), driven with Cloudflare's own SDK (``cloudflare`` 5.9.0)
and checked with ffprobe."""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudflare
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from emulators.stack import API_TOKEN, LocalStack
from tests.integration.conftest import WebhookRouting
from tests.integration.test_broadcast_e2e import Receiver, push, wait_for
from tests.integration.test_emulator_schema import schema_of

pytestmark = pytest.mark.emulator
ACCOUNT = "local-account"
BROADCAST_S = 5
# ffprobe's duration of the same media served another way (HLS, MP4 remux): container
# rounding and the last AAC frame, well under one 1 s GOP.
SAME_MEDIA_S = 0.3
# A clip is re-encoded from its bounds, so it is cut on frames, not keyframes: one video
# frame (33 ms) plus AAC priming and the last audio frame; 0.5 s leaves room for both.
CLIP_S = 0.5

__all__ = ["schema_of"]  # the schema fixture, used here too


@dataclass
class Recording:
    """A finished broadcast to an input with ``recording.requireSignedURLs``."""

    input_uid: str
    video: dict[str, Any]

    @property
    def uid(self) -> str:
        return str(self.video["uid"])


@pytest.fixture(scope="module")
def sdk(stack: LocalStack) -> Iterator[cloudflare.Cloudflare]:
    client = cloudflare.Cloudflare(
        api_token=API_TOKEN, base_url=f"{stack.cloudflare_url}/client/v4", max_retries=0
    )
    yield client
    client.close()


@pytest.fixture(scope="module")
def stream_api(stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"{stack.cloudflare_url}/client/v4/accounts/{ACCOUNT}/stream",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=10,
    ) as client:
        yield client


def signed_input(stream_api: httpx.Client) -> dict[str, Any]:
    body = {"mode": "automatic", "timeoutSeconds": 1, "requireSignedURLs": True}
    created = stream_api.post("/live_inputs", json={"recording": body})
    assert created.status_code == 200, created.text
    result: dict[str, Any] = created.json()["result"]
    return result


def ready(stream_api: httpx.Client, uid: str) -> dict[str, Any] | None:
    video: dict[str, Any] = stream_api.get(f"/{uid}").json()["result"]
    return video if video["status"]["state"] in ("ready", "error") else None


@pytest.fixture(scope="module")
def recording(stack: LocalStack, stream_api: httpx.Client) -> Recording:
    live_input = signed_input(stream_api)
    assert push(stack.rtmp_url, live_input["rtmps"]["streamKey"], BROADCAST_S).wait(60) == 0
    videos = wait_for(
        lambda: [
            v
            for v in stream_api.get(f"/live_inputs/{live_input['uid']}/videos").json()["result"]
            if v["status"]["state"] == "ready"
        ],
        90,
        "the recording",
    )
    return Recording(live_input["uid"], videos[0])


def ffprobe_duration(url: str) -> float:
    """What ffprobe reads as the duration of the media at ``url`` (HLS or a file)."""
    entries = ["-show_entries", "format=duration", "-of", "csv=p=0"]
    return float(subprocess.check_output(["ffprobe", "-v", "error", *entries, url], timeout=60))


def self_signed(key_id: str, private_key: Any, claims: dict[str, Any]) -> str:
    """A token signed here, as the backend signs them: RS256, header ``{alg, kid}``."""
    payload = {"kid": key_id, "exp": int(time.time()) + 600, **claims}
    return jwt.encode(payload, private_key, algorithm="RS256", headers={"kid": key_id})


def test_recordings_of_a_signed_input_require_signed_urls(recording: Recording) -> None:
    assert recording.video["requireSignedURLs"] is True
    assert recording.video["liveInput"] == recording.input_uid


def test_unsigned_requests_for_a_signed_recording_are_refused(
    stack: LocalStack, recording: Recording
) -> None:
    base = f"{stack.cloudflare_url}/{recording.uid}"
    for path in (
        "manifest/video.m3u8",
        "manifest/video.mpd",
        "manifest/seg_000.ts",
        "thumbnails/thumbnail.jpg",
        "iframe",
        "watch",
    ):
        assert httpx.get(f"{base}/{path}").status_code == 401, path


def test_a_token_from_the_api_plays_the_recording(
    stack: LocalStack, sdk: cloudflare.Cloudflare, recording: Recording
) -> None:
    created = sdk.stream.token.create(recording.uid, account_id=ACCOUNT)
    assert created is not None and created.token
    token = created.token
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == recording.uid
    assert int(claims["exp"]) - int(claims["nbf"]) == 7200  # 1 h ahead, 1 h back by default
    base = f"{stack.cloudflare_url}/{token}"

    duration = ffprobe_duration(f"{base}/manifest/video.m3u8")
    assert abs(duration - recording.video["duration"]) <= SAME_MEDIA_S
    assert abs(duration - BROADCAST_S) <= 1.5  # what was broadcast, give or take the GOPs
    assert httpx.get(f"{base}/manifest/seg_000.ts").content[:1] == b"G"  # an MPEG-TS packet
    assert httpx.get(f"{base}/manifest/video.mpd").status_code == 200
    thumbnail = httpx.get(f"{base}/thumbnails/thumbnail.jpg")
    assert thumbnail.status_code == 200 and thumbnail.content[:2] == b"\xff\xd8"
    player = httpx.get(f"{base}/iframe")
    assert player.status_code == 200 and f"/{token}/manifest/video.m3u8" in player.text


def test_a_token_signed_with_an_issued_key_plays_until_the_key_is_revoked(
    stack: LocalStack, sdk: cloudflare.Cloudflare, recording: Recording, schema_of: Any
) -> None:
    key = sdk.stream.keys.create(account_id=ACCOUNT)
    assert key is not None and key.id and key.pem and key.jwk
    pem = base64.b64decode(key.pem)
    assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    jwk = json.loads(base64.b64decode(key.jwk))
    assert (jwk["kty"], jwk["alg"], jwk["kid"], jwk["use"]) == ("RSA", "RS256", key.id, "sig")
    assert {k.id for k in sdk.stream.keys.get(account_id=ACCOUNT)} >= {key.id}
    # The JWK signs as well as the PEM: the same key.
    from_jwk = jwt.PyJWK.from_dict(jwk).key
    url = f"{stack.cloudflare_url}/{{}}/manifest/video.m3u8"
    for private_key in (pem, from_jwk):
        token = self_signed(key.id, private_key, {"sub": recording.uid})
        assert httpx.get(url.format(token)).status_code == 200

    assert sdk.stream.keys.delete(key.id, account_id=ACCOUNT) == "Revoked"
    assert httpx.get(url.format(token)).status_code == 401
    assert key.id not in {k.id for k in sdk.stream.keys.get(account_id=ACCOUNT)}
    with pytest.raises(cloudflare.NotFoundError):
        sdk.stream.keys.delete(key.id, account_id=ACCOUNT)


def test_expired_early_foreign_or_misaddressed_tokens_are_refused(
    stack: LocalStack, sdk: cloudflare.Cloudflare, recording: Recording
) -> None:
    key = sdk.stream.keys.create(account_id=ACCOUNT)
    other = sdk.stream.keys.create(account_id=ACCOUNT)
    assert key is not None and other is not None and key.id and key.pem and other.pem
    pem, other_pem = base64.b64decode(key.pem), base64.b64decode(other.pem)
    now, uid = int(time.time()), recording.uid
    never_issued = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = {
        "expired": self_signed(key.id, pem, {"sub": uid, "exp": now - 5}),
        "not yet valid": self_signed(key.id, pem, {"sub": uid, "nbf": now + 600}),
        "no exp": jwt.encode({"sub": uid, "kid": key.id}, pem, "RS256", {"kid": key.id}),
        "exp over 24 h": self_signed(key.id, pem, {"sub": uid, "exp": now + 90_000}),
        "signed by another key": self_signed(key.id, other_pem, {"sub": uid}),
        "a key never issued": self_signed(secrets.token_hex(16), never_issued, {"sub": uid}),
        "tampered": self_signed(key.id, pem, {"sub": uid})[:-4] + "AAAA",
    }
    url = f"{stack.cloudflare_url}/{{}}/manifest/video.m3u8"
    for why, token in refused.items():
        assert httpx.get(url.format(token)).status_code == 401, why
    # A token opens only its sub: one for a uid that is not this video's serves nothing.
    misaddressed = self_signed(key.id, pem, {"sub": secrets.token_hex(16)})
    answer = httpx.get(url.format(misaddressed))
    assert answer.status_code == 404 and "#EXTM3U" not in answer.text
    assert httpx.get(url.format(self_signed(key.id, pem, {"sub": uid}))).status_code == 200


@pytest.mark.parametrize(
    ("rules", "status"),
    [
        ([{"type": "ip.src", "ip": ["127.0.0.1/32"], "action": "block"}], 403),
        (
            [
                {"type": "ip.src", "ip": ["127.0.0.0/8"], "action": "allow"},
                {"type": "any", "action": "block"},
            ],
            200,
        ),
        (
            [
                {"type": "ip.src", "ip": ["10.0.0.0/8"], "action": "allow"},
                {"type": "any", "action": "block"},
            ],
            403,
        ),
        ([{"type": "ip.geoip.country", "country": ["GB"], "action": "block"}], 200),
    ],
)
def test_access_rules_allow_or_block_by_source_ip(
    stack: LocalStack,
    sdk: cloudflare.Cloudflare,
    recording: Recording,
    rules: list[Any],
    status: int,
) -> None:
    created = sdk.stream.token.create(recording.uid, account_id=ACCOUNT, access_rules=rules)
    assert created is not None and created.token
    answer = httpx.get(f"{stack.cloudflare_url}/{created.token}/manifest/video.m3u8")
    assert answer.status_code == status


def test_allowed_origins_still_answer_cors_through_a_token(
    stack: LocalStack, stream_api: httpx.Client, sdk: cloudflare.Cloudflare
) -> None:
    live_input = signed_input(stream_api)
    uid = live_input["uid"]
    stream_api.put(f"/live_inputs/{uid}", json={"recording": {"allowedOrigins": ["*.m.example"]}})
    created = sdk.stream.token.create(uid, account_id=ACCOUNT)
    assert created is not None and created.token
    url = f"{stack.cloudflare_url}/{created.token}/manifest/video.m3u8"
    allowed = httpx.get(url, headers={"Origin": "https://a.m.example"})
    assert allowed.headers.get("access-control-allow-origin") == "https://a.m.example"
    other = httpx.get(url, headers={"Origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in other.headers


def test_live_playback_by_input_id_needs_a_token_and_downloads_wait_for_ready(
    stack: LocalStack, stream_api: httpx.Client, sdk: cloudflare.Cloudflare
) -> None:
    live_input = signed_input(stream_api)
    uid = live_input["uid"]
    encoder = push(stack.rtmp_url, live_input["rtmps"]["streamKey"], 20)
    try:
        live_url = f"{stack.cloudflare_url}/{uid}/manifest/video.m3u8"
        created = sdk.stream.token.create(uid, account_id=ACCOUNT)
        assert created is not None and created.token
        signed_url = f"{stack.cloudflare_url}/{created.token}/manifest/video.m3u8"
        playlist = wait_for(
            lambda: (r := httpx.get(signed_url)).status_code == 200 and ".ts" in r.text and r.text,
            30,
            "a live playlist through the token",
        )
        assert httpx.get(live_url).status_code == 401
        segment = next(line for line in playlist.splitlines() if line.endswith(".ts"))
        assert httpx.get(httpx.URL(signed_url).join(segment)).status_code == 200
        assert httpx.get(httpx.URL(live_url).join(segment)).status_code == 401

        video = stream_api.get(f"/live_inputs/{uid}/videos").json()["result"][0]
        assert video["status"]["state"] == "live-inprogress"
        with pytest.raises(cloudflare.BadRequestError):
            sdk.stream.downloads.create(video["uid"], account_id=ACCOUNT)
        with pytest.raises(cloudflare.BadRequestError):
            sdk.stream.clip.create(
                account_id=ACCOUNT,
                clipped_from_video_uid=video["uid"],
                start_time_seconds=0,
                end_time_seconds=1,
            )
    finally:
        encoder.terminate()
        encoder.wait(30)


def test_an_mp4_download_of_a_signed_recording_needs_a_downloadable_token(
    stack: LocalStack,
    sdk: cloudflare.Cloudflare,
    stream_api: httpx.Client,
    recording: Recording,
    tmp_path: Path,
    schema_of: Any,
) -> None:
    created = sdk.stream.downloads.create(recording.uid, account_id=ACCOUNT)
    assert created is not None and created.default is not None
    url = f"{stack.cloudflare_url}/{recording.uid}/downloads/default.mp4"
    assert created.default.url == url
    assert created.default.status in ("inprogress", "ready")
    progress: list[float] = []

    def finished() -> bool:
        listed = sdk.stream.downloads.get(recording.uid, account_id=ACCOUNT)
        assert listed is not None and listed.default is not None
        progress.append(listed.default.percent_complete)
        return listed.default.status == "ready"

    wait_for(finished, 60, "the MP4 download")
    assert progress == sorted(progress) and progress[-1] == 100
    schema_of("stream_downloads_response", stream_api.get(f"/{recording.uid}/downloads").json())

    assert httpx.get(url).status_code == 401
    plain = sdk.stream.token.create(recording.uid, account_id=ACCOUNT)
    assert plain is not None and plain.token
    assert httpx.get(url.replace(recording.uid, plain.token)).status_code == 403
    downloadable = sdk.stream.token.create(recording.uid, account_id=ACCOUNT, downloadable=True)
    assert downloadable is not None and downloadable.token
    response = httpx.get(url.replace(recording.uid, downloadable.token) + "?filename=service")
    assert response.status_code == 200
    assert "filename=service.mp4" in response.headers["content-disposition"]
    mp4 = tmp_path / "download.mp4"
    mp4.write_bytes(response.content)
    assert response.content[4:8] == b"ftyp"
    assert abs(ffprobe_duration(str(mp4)) - recording.video["duration"]) <= SAME_MEDIA_S

    assert sdk.stream.downloads.delete(recording.uid, account_id=ACCOUNT) == "ok"
    listed = sdk.stream.downloads.get(recording.uid, account_id=ACCOUNT)
    assert listed is not None and listed.default is None
    assert httpx.get(url.replace(recording.uid, downloadable.token)).status_code == 404


def test_a_clip_is_a_new_video_cut_to_its_bounds(
    stack: LocalStack,
    sdk: cloudflare.Cloudflare,
    stream_api: httpx.Client,
    recording: Recording,
    webhook_routing: WebhookRouting,
    schema_of: Any,
) -> None:
    receiver = Receiver()
    webhook_routing.stream_webhook_to(receiver.url)
    try:
        clip = sdk.stream.clip.create(
            account_id=ACCOUNT,
            clipped_from_video_uid=recording.uid,
            start_time_seconds=1,
            end_time_seconds=3,
            meta={"name": "trimmed"},
        )
        assert clip is not None and clip.uid and clip.uid != recording.uid
        assert clip.clipped_from == recording.uid and clip.live_input is None
        assert clip.status is not None and clip.status.state == "queued"
        assert clip.meta == {"name": "trimmed"} and clip.require_signed_urls is False
        done = wait_for(lambda: ready(stream_api, str(clip.uid)), 90, "the clip")
        assert done["status"]["state"] == "ready" and done["clippedFrom"] == recording.uid
        schema_of("stream_video_response_single", stream_api.get(f"/{clip.uid}").json())
        assert abs(done["duration"] - 2) <= CLIP_S
        hls = f"{stack.cloudflare_url}/{clip.uid}/manifest/video.m3u8"
        assert abs(ffprobe_duration(hls) - 2) <= CLIP_S
        events = wait_for(
            lambda: [
                event
                for _, body in receiver.requests
                if (event := json.loads(body)).get("uid") == clip.uid
            ],
            20,
            "the clip's Stream webhook",
        )
        assert events[0]["status"]["state"] == "ready"
    finally:
        receiver.server.shutdown()


def test_a_clip_can_require_signed_urls(
    stack: LocalStack, sdk: cloudflare.Cloudflare, stream_api: httpx.Client, recording: Recording
) -> None:
    clip = sdk.stream.clip.create(
        account_id=ACCOUNT,
        clipped_from_video_uid=recording.uid,
        start_time_seconds=0,
        end_time_seconds=2,
        require_signed_urls=True,
    )
    assert clip is not None and clip.uid
    wait_for(lambda: ready(stream_api, str(clip.uid)), 90, "the clip")
    assert httpx.get(f"{stack.cloudflare_url}/{clip.uid}/manifest/video.m3u8").status_code == 401
    token = sdk.stream.token.create(clip.uid, account_id=ACCOUNT)
    assert token is not None and token.token
    assert (
        abs(ffprobe_duration(f"{stack.cloudflare_url}/{token.token}/manifest/video.m3u8") - 2)
        <= CLIP_S
    )


@pytest.mark.parametrize(
    "bounds",
    [
        {"startTimeSeconds": 3, "endTimeSeconds": 1},
        {"startTimeSeconds": 2, "endTimeSeconds": 2},
        {"startTimeSeconds": -1, "endTimeSeconds": 2},
        {"startTimeSeconds": 0, "endTimeSeconds": 600},
        {"startTimeSeconds": 0},
        {"startTimeSeconds": "0", "endTimeSeconds": 2},
    ],
)
def test_bad_clip_bounds_get_cloudflares_400(
    stream_api: httpx.Client, recording: Recording, bounds: dict[str, Any], schema_of: Any
) -> None:
    before = len(stream_api.get("").json()["result"])
    answer = stream_api.post("/clip", json={"clippedFromVideoUID": recording.uid, **bounds})
    assert answer.status_code == 400
    schema_of("stream_api-response-common-failure", answer.json())
    assert len(stream_api.get("").json()["result"]) == before


def test_signing_and_token_answers_match_the_schema(
    stream_api: httpx.Client, recording: Recording, schema_of: Any
) -> None:
    created = stream_api.post("/keys", json={})
    schema_of("stream_key_generation_response", created.json())
    schema_of("stream_key_response_collection", stream_api.get("/keys").json())
    deleted = stream_api.delete(f"/keys/{created.json()['result']['id']}")
    schema_of("stream_deleted_response", deleted.json())
    token = stream_api.post(f"/{recording.uid}/token", json={"downloadable": True})
    schema_of("stream_signed_token_response", token.json())
    too_long = stream_api.post(f"/{recording.uid}/token", json={"exp": int(time.time()) + 90_000})
    assert too_long.status_code == 400
    schema_of("stream_api-response-common-failure", too_long.json())
    assert stream_api.post(f"/{secrets.token_hex(16)}/token", json={}).status_code == 404
