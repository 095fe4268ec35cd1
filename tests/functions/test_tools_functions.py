"""The managers' repair tools: ``syncrecording``, ``syncstatus``, ``getvideoid``,
``configurecors``, ``fixplaybackurl`` and ``fixstatus``. Each needs edit rights."""

from __future__ import annotations

from typing import Any

import pytest

from common.models.domain import StreamStatus, User
from common.ports import ProviderUnavailableError
from tests import people
from tests.functions.calls import bearer, client, error, ok
from tests.functions.conftest import DELIVERY_BASE, Backend, Created

# (function, method, path suffix)
TOOLS = [
    ("syncrecording", "POST", "sync-recording"),
    ("syncstatus", "POST", "sync-status"),
    ("getvideoid", "POST", "get-video-id"),
    ("getvideoid", "GET", "get-video-id"),
    ("configurecors", "PUT", "configure-cors"),
    ("configurecors", "POST", "configure-cors"),
    ("fixplaybackurl", "POST", "fix-playback-url"),
    ("fixstatus", "POST", "fix-status"),
]
TOOL_IDS = [f"{method} {suffix}" for _, method, suffix in TOOLS]
SUFFIX = {function: suffix for function, _, suffix in TOOLS}


def use_tool(
    function: str, stream_id: str, prefix: str, method: str = "POST", user: User = people.OWNER
) -> Any:
    """The tool's 2xx answer for the stream, asked by ``user``."""
    path = f"{prefix}/streams/{stream_id}/{SUFFIX[function]}"
    return ok(client(function).open(path, method=method, headers=bearer(user)))


def use_tool_on_a_recorded_stream(
    backend: Backend, function: str, prefix: str, method: str
) -> tuple[Created, Any]:
    """A new stream with one ready recording, ``video-1``, and the tool's answer for it."""
    stream = backend.create_stream()
    backend.add_recording(stream.id, "video-1")
    return stream, use_tool(function, stream.id, prefix, method)


def set_connection(backend: Backend, stream_id: str, connection: str) -> None:
    """What Cloudflare says of the stream's live input from now on."""
    uid = backend.live_input_of(stream_id)
    spec, live_input = backend.provider.inputs[uid]
    backend.provider.inputs[uid] = (spec, live_input.model_copy(update={"connection": connection}))


def test_sync_recording_attaches_the_ready_recording(backend: Backend, prefix: str) -> None:
    stream = backend.create_stream(on_memorial=people.MEMORIAL.id)
    backend.add_recording(stream.id, "video-1")

    body = use_tool("syncrecording", stream.id, prefix, user=people.FUNERAL_DIRECTOR)

    assert body["success"] is True
    assert body["streamId"] == stream.id
    assert body["status"] == "synced"
    assert body["recordingsFound"] == 1
    assert body["readyRecordings"] == 1
    assert body["videoId"] == "video-1"
    assert body["recordingUrl"] == f"{DELIVERY_BASE}/video-1/manifest/video.m3u8"
    assert body["playbackUrl"] == f"{DELIVERY_BASE}/video-1/iframe"
    assert [r["videoId"] for r in body["recordings"]] == ["video-1"]
    assert backend.stream(stream.id).recording_ready is True


def test_sync_recording_with_nothing_recorded_says_so(backend: Backend) -> None:
    stream = backend.create_stream()

    body = use_tool("syncrecording", stream.id, "/api")

    assert (body["status"], body["recordingsFound"], body["videoId"]) == ("no_recordings", 0, None)


@pytest.mark.parametrize("function", ["syncstatus", "fixstatus"])
def test_a_status_tool_aligns_the_stream_with_its_live_input(
    backend: Backend, prefix: str, function: str
) -> None:
    stream = backend.create_stream()
    set_connection(backend, stream.id, "connected")

    went_live = use_tool(function, stream.id, prefix)
    set_connection(backend, stream.id, "disconnected")
    ended = use_tool(function, stream.id, prefix)

    assert went_live["success"] is True
    assert went_live["streamId"] == stream.id
    assert went_live["status"] == "live"
    assert went_live["connected"] is True
    assert went_live["connection"] == "connected"
    assert went_live["lastChecked"]
    assert (ended["status"], ended["connected"]) == ("completed", False)
    if function == "syncstatus":  # fix-status answers with its second pass
        assert ended["previousStatus"] == "live"
    assert backend.stream(stream.id).status == StreamStatus.COMPLETED


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_get_video_id_names_the_primary_recording(
    backend: Backend, prefix: str, method: str
) -> None:
    stream, body = use_tool_on_a_recorded_stream(backend, "getvideoid", prefix, method)

    assert body["success"] is True
    assert body["streamId"] == stream.id
    assert body["cloudflareId"] == stream.cloudflareId
    assert body["videoId"] == "video-1"
    assert body["totalVideos"] == 1
    assert [r["videoId"] for r in body["recordings"]] == ["video-1"]


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_configure_cors_applies_the_site_origins_to_input_and_recordings(
    backend: Backend, prefix: str, method: str
) -> None:
    stream, body = use_tool_on_a_recorded_stream(backend, "configurecors", prefix, method)

    origins = ["tributestream.com", "*.tributestream.com", "localhost:5173", "localhost:5174"]
    assert body["success"] is True
    assert body["streamId"] == stream.id
    assert body["allowedOrigins"] == origins
    assert body["recordingsUpdated"] == 1
    assert backend.provider.origins[stream.cloudflareId or ""] == tuple(origins)
    assert backend.provider.origins["video-1"] == tuple(origins)


def test_fix_playback_url_rebuilds_the_player_url(backend: Backend, prefix: str) -> None:
    stream = backend.create_stream()
    backend.repo.update(stream.id, lambda s: s.model_copy(update={"playback_url": "https://old"}))

    body = use_tool("fixplaybackurl", stream.id, prefix)

    assert body["success"] is True
    assert body["streamId"] == stream.id
    assert body["oldUrl"] == "https://old"
    assert body["newPlaybackUrl"] == f"{DELIVERY_BASE}/{stream.cloudflareId}/iframe"
    assert body["newRecordingUrl"] is None
    assert backend.stream(stream.id).playback_url == body["newPlaybackUrl"]


@pytest.mark.parametrize(("function", "method", "suffix"), TOOLS, ids=TOOL_IDS)
def test_every_tool_needs_edit_rights(
    backend: Backend, function: str, method: str, suffix: str
) -> None:
    stream = backend.create_stream(allowedUsers=[people.HELPER.uid])
    path = f"/api/streams/{stream.id}/{suffix}"

    error(client(function).open(path, method=method), 401, "unauthenticated")
    error(client(function).open(path, method=method, headers=bearer(people.STRANGER)), 403)
    error(
        client(function).open(
            "/api/streams/missing/" + suffix, method=method, headers=bearer(people.OWNER)
        ),
        404,
    )
    error(client(function).open(path, method="DELETE", headers=bearer(people.OWNER)), 405)
    ok(client(function).open(path, method=method, headers=bearer(people.HELPER)))


@pytest.mark.parametrize(
    ("function", "method", "suffix"),
    [t for t in TOOLS if t[0] != "syncrecording"],
    ids=[i for t, i in zip(TOOLS, TOOL_IDS, strict=True) if t[0] != "syncrecording"],
)
def test_a_tool_that_needs_a_live_input_refuses_a_stream_without_one(
    backend: Backend, function: str, method: str, suffix: str
) -> None:
    backend.add_legacy_stream("no-input")

    response = client(function).open(
        f"/api/streams/no-input/{suffix}", method=method, headers=bearer(people.OWNER)
    )

    error(response, 400, "failed-precondition")


@pytest.mark.parametrize(("function", "method", "suffix"), TOOLS, ids=TOOL_IDS)
def test_cloudflare_down_during_a_tool_is_a_retryable_503(
    backend: Backend, function: str, method: str, suffix: str
) -> None:
    stream = backend.create_stream()
    for operation in ("get_live_input", "list_recordings", "set_input_allowed_origins"):
        backend.provider.fail(operation, ProviderUnavailableError("timeout"))

    response = client(function).open(
        f"/api/streams/{stream.id}/{suffix}", method=method, headers=bearer(people.OWNER)
    )

    error(response, 503, "unavailable")
    assert int(response.headers["Retry-After"]) > 0


def test_a_get_that_attaches_recordings_is_refused_across_sites_with_the_session_cookie(
    backend: Backend,
) -> None:
    """``GET get-video-id`` writes what it finds, so a page on another site may not make a
    signed-in browser send it (a top-level navigation carries the cookie, and no Origin)."""
    stream = backend.create_stream()
    backend.add_recording(stream.id, "video-1")
    path = f"/api/streams/{stream.id}/get-video-id"
    browser = client("getvideoid")
    browser.set_cookie("__session", f"token-{people.OWNER.uid}")

    refused = browser.get(path, headers={"Sec-Fetch-Site": "cross-site"})

    assert refused.status_code == 403, refused.get_json()
    assert refused.get_json()["reason"] == "cross-site"
    assert backend.stream(stream.id).video_id is None  # nothing attached
    assert ok(browser.get(path, headers={"Sec-Fetch-Site": "same-origin"}))["videoId"] == "video-1"
    assert backend.stream(stream.id).video_id == "video-1"
