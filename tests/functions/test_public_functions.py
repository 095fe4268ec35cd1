"""What memorial pages read without signing in: ``publicstreams``, ``memorialstreams``,
``memorialstreamstatus``, ``streamstatus`` and ``streamembedinfo``. No reply carries a secret."""

from __future__ import annotations

from typing import Any

import pytest

from tests import people
from tests.functions.calls import bearer, client, error, ok
from tests.functions.conftest import DELIVERY_BASE, MVP, Backend, Created, assert_no_secrets

GROUPED_PUBLIC_PATHS = ("/api/streams/public", f"{MVP}/public/streams")


def recorded(backend: Backend, title: str = "Recorded service") -> Created:
    """A stream that went on air, ended, and whose recording is ready."""
    stream = backend.create_stream(title=title, on_memorial=people.MEMORIAL.id)
    backend.start(stream.id)
    backend.add_recording(stream.id, f"video-{stream.id}")
    backend.stop(stream.id)
    return stream


def ids(views: list[dict[str, Any]]) -> list[str]:
    return [str(view["id"]) for view in views]


# --- publicstreams ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", GROUPED_PUBLIC_PATHS)
def test_the_public_listing_is_grouped_for_the_memorial_page(backend: Backend, path: str) -> None:
    scheduled = backend.create_stream(title="Scheduled", on_memorial=people.MEMORIAL.id)
    live = backend.create_stream(title="Live", on_memorial=people.MEMORIAL.id)
    backend.start(live.id)
    done = recorded(backend)
    backend.create_stream(title="Private", isPublic=False)
    backend.create_stream(title="Hidden", isVisible=False)
    backend.create_stream(
        people.MEMORIAL_OWNER, title="Private memorial", memorialId=people.PRIVATE_MEMORIAL.id
    )

    response = client("publicstreams").get(path)

    body = ok(response)
    assert sorted(ids(body["streams"])) == sorted([scheduled.id, live.id, done.id])
    assert ids(body["liveStreams"]) == [live.id]
    assert ids(body["scheduledStreams"]) == [scheduled.id]
    assert ids(body["recordedStreams"]) == [done.id]
    assert body["processingStreams"] == []
    assert body["total"] == 3
    assert body["hasMore"] is False
    assert body["pagination"] == {"limit": 50, "offset": 0, "nextOffset": None}
    [playing] = body["liveStreams"]
    assert playing["liveHlsUrl"] == f"{DELIVERY_BASE}/{live.cloudflareId}/manifest/video.m3u8"
    assert playing["broadcastState"] == "armed"
    [replay] = body["recordedStreams"]
    assert replay["recordingReady"] is True
    assert replay["recordingStatus"] == "ready"
    assert replay["recordingUrl"] == f"{DELIVERY_BASE}/video-{done.id}/manifest/video.m3u8"
    assert_no_secrets(response, backend)
    assert "createdBy" not in response.get_data(as_text=True)


def test_the_mvp_two_public_streams_path_is_a_bare_array(backend: Backend) -> None:
    stream = backend.create_stream()

    response = client("publicstreams").get(f"{MVP}/public-streams")

    assert ids(ok(response)) == [stream.id]
    assert_no_secrets(response, backend)


def test_the_public_listing_filters_by_status_and_is_cacheable(backend: Backend) -> None:
    backend.create_stream(title="Scheduled")
    live = backend.create_stream(title="Live")
    backend.start(live.id)

    response = client("publicstreams").get("/api/streams/public?status=live")

    assert ids(ok(response)["streams"]) == [live.id]
    assert response.headers["Cache-Control"].startswith("public")
    etag = response.headers["ETag"]
    again = client("publicstreams").get(
        "/api/streams/public?status=live", headers={"If-None-Match": etag}
    )
    assert again.status_code == 304
    assert again.get_data() == b""


@pytest.mark.parametrize("query", ["status=bogus", "limit=0", "limit=101", "offset=x"])
def test_a_bad_public_listing_query_is_a_400_that_no_cdn_keeps(
    backend: Backend, query: str
) -> None:
    error(client("publicstreams").get(f"/api/streams/public?{query}"), 400, "invalid-argument")


# --- memorialstreams -------------------------------------------------------------------------


def test_visitors_see_a_memorials_visible_streams_grouped(backend: Backend) -> None:
    scheduled = backend.create_stream(title="Scheduled", on_memorial=people.MEMORIAL.id)
    hidden = backend.create_stream(title="Hidden", on_memorial=people.MEMORIAL.id, isVisible=False)
    done = recorded(backend)
    path = f"/api/memorials/{people.MEMORIAL.id}/streams"

    response = client("memorialstreams").get(path)

    body = ok(response)
    assert body["memorialId"] == people.MEMORIAL.id
    assert sorted(ids(body["allStreams"])) == sorted([scheduled.id, done.id])
    assert body["totalStreams"] == 2
    assert ids(body["scheduledStreams"]) == [scheduled.id]
    assert ids(body["recordedStreams"]) == [done.id]
    assert ids(body["publicRecordedStreams"]) == [done.id]
    assert body["liveStreams"] == []
    assert body["readyStreams"] == []
    assert body["processingStreams"] == []
    assert_no_secrets(response, backend)
    managers = ok(client("memorialstreams").get(path, headers=bearer(people.MEMORIAL_OWNER)))
    assert hidden.id in ids(managers["allStreams"])


def test_a_private_memorials_streams_are_not_listed_to_visitors(backend: Backend) -> None:
    backend.create_stream(people.MEMORIAL_OWNER, memorialId=people.PRIVATE_MEMORIAL.id)
    path = f"/api/memorials/{people.PRIVATE_MEMORIAL.id}/streams"

    for headers in ({}, bearer(people.STRANGER)):
        body = ok(client("memorialstreams").get(path, headers=headers))
        assert body["allStreams"] == []
        assert body["totalStreams"] == 0
    assert ok(client("memorialstreams").get(path, headers=bearer(people.MEMORIAL_OWNER)))[
        "totalStreams"
    ]


def test_a_memorial_manager_creates_a_stream_as_public_as_the_memorial(backend: Backend) -> None:
    public = ok(
        client("memorialstreams").post(
            f"/api/memorials/{people.MEMORIAL.id}/streams",
            json={"title": "Funeral service", "isPublic": False},
            headers=bearer(people.FUNERAL_DIRECTOR),
        )
    )
    private = ok(
        client("memorialstreams").post(
            f"/api/memorials/{people.PRIVATE_MEMORIAL.id}/streams",
            json={"title": "Family only"},
            headers=bearer(people.MEMORIAL_OWNER),
        )
    )

    assert public["memorialId"] == people.MEMORIAL.id
    assert public["memorialName"] == people.MEMORIAL.loved_one_name
    assert public["isPublic"] is True
    assert public["status"] == "scheduled"
    assert (
        public["streamKey"]
        == backend.provider.inputs[public["cloudflareId"]][1].stream_key.get_secret_value()
    )
    assert private["isPublic"] is False


def test_creating_a_memorial_stream_needs_memorial_rights_and_a_valid_body(
    backend: Backend,
) -> None:
    path = f"/api/memorials/{people.MEMORIAL.id}/streams"
    body = {"title": "Funeral service"}

    error(client("memorialstreams").post(path, json=body), 401)
    error(client("memorialstreams").post(path, json=body, headers=bearer(people.STRANGER)), 403)
    error(client("memorialstreams").post(path, json=body, headers=bearer(people.OWNER)), 403)
    unknown = "/api/memorials/no-such-memorial/streams"
    error(client("memorialstreams").post(unknown, json=body, headers=bearer(people.OWNER)), 404)
    error(client("memorialstreams").post(path, json={}, headers=bearer(people.MEMORIAL_OWNER)), 400)
    error(client("memorialstreams").get("/api/memorials/bad.id/streams"), 404)
    error(client("memorialstreams").delete(path, headers=bearer(people.MEMORIAL_OWNER)), 405)
    assert backend.repo.streams == {}


# --- memorialstreamstatus --------------------------------------------------------------------


def test_the_memorial_status_board_groups_streams_with_the_server_time(backend: Backend) -> None:
    scheduled = backend.create_stream(title="Scheduled", on_memorial=people.MEMORIAL.id)
    live = backend.create_stream(title="Live", on_memorial=people.MEMORIAL.id)
    backend.start(live.id)
    done = recorded(backend)

    response = client("memorialstreamstatus").get(
        f"/api/memorials/{people.MEMORIAL.id}/streams/status"
    )

    body = ok(response)
    assert ids(body["liveStreams"]) == [live.id]
    assert ids(body["scheduledStreams"]) == [scheduled.id]
    assert ids(body["completedStreams"]) == [done.id]
    assert ids(body["recordedStreams"]) == [done.id]
    assert body["processingStreams"] == []
    assert body["timestamp"] == "2026-11-24T10:00:00Z"
    assert_no_secrets(response, backend)


def test_the_status_board_of_a_bad_memorial_id_is_a_404(backend: Backend) -> None:
    error(client("memorialstreamstatus").get("/api/memorials/a.b/streams/status"), 404)
    error(
        client("memorialstreamstatus").post(f"/api/memorials/{people.MEMORIAL.id}/streams/status"),
        405,
    )


# --- streamstatus ----------------------------------------------------------------------------


def test_pages_poll_a_streams_status(backend: Backend, prefix: str) -> None:
    stream = backend.create_stream(title="Service")
    path = f"{prefix}/streams/{stream.id}/status"

    before = ok(client("streamstatus").get(path))
    backend.start(stream.id)
    response = client("streamstatus").get(path)

    after = ok(response)
    assert before["streamId"] == stream.id
    assert before["status"] == "scheduled"
    assert before["title"] == "Service"
    assert before["recordingStatus"] == "none"
    assert before["cloudflare"] == {"uid": stream.cloudflareId, "connected": False}
    assert after["status"] == "live"
    assert after["actualStartTime"] == "2026-11-24T10:00:00Z"
    assert after["cloudflare"]["connected"] is False  # armed: no encoder yet
    assert after["lastChecked"] == "2026-11-24T10:00:00Z"
    assert_no_secrets(response, backend)
    assert backend.provider.calls == ["create_live_input"]  # polling never calls Cloudflare


def test_the_status_of_a_private_or_missing_stream_is_refused(backend: Backend) -> None:
    path = f"/api/streams/{backend.create_stream(isPublic=False).id}/status"
    status = client("streamstatus")

    error(status.get(path), 401)
    error(status.get(path, headers=bearer(people.STRANGER)), 403)
    error(status.get("/api/streams/missing/status"), 404)
    assert ok(status.get(path, headers=bearer(people.OWNER)))


# --- streamembedinfo -------------------------------------------------------------------------


def test_embed_info_gives_player_urls_and_no_publish_urls(backend: Backend, prefix: str) -> None:
    stream = backend.create_stream()
    media = f"{DELIVERY_BASE}/{stream.cloudflareId}"

    response = client("streamembedinfo").get(f"{prefix}/streams/{stream.id}/embed-info")

    body = ok(response)
    assert body["streamId"] == stream.id
    assert body["cloudflareId"] == stream.cloudflareId
    assert body["status"] == "scheduled"
    assert body["iframeUrl"] == f"{media}/iframe"
    assert body["hlsManifest"] == f"{media}/manifest/video.m3u8"
    assert body["dashManifest"] == f"{media}/manifest/video.mpd"
    assert body["thumbnails"]["default"] == f"{media}/thumbnails/thumbnail.jpg"
    assert body["liveInput"] == {"status": "idle", "isConnected": False}
    assert body["video"] is None
    assert body["recommendedEmbed"]["url"] == body["iframeUrl"]
    assert body["recommendedEmbed"]["html"].startswith("<iframe")
    assert_no_secrets(response, backend)


def test_embed_info_of_a_recorded_stream_plays_the_recording(backend: Backend) -> None:
    stream = recorded(backend)

    body = ok(client("streamembedinfo").get(f"/api/streams/{stream.id}/embed-info"))

    assert body["status"] == "completed"
    assert body["iframeUrl"] == f"{DELIVERY_BASE}/video-{stream.id}/iframe"
    assert body["video"]["isReady"] is True


def test_embed_info_refusals(backend: Backend) -> None:
    private = backend.create_stream(isPublic=False)
    backend.add_legacy_stream("no-input")

    error(client("streamembedinfo").get(f"/api/streams/{private.id}/embed-info"), 401)
    error(client("streamembedinfo").get("/api/streams/no-input/embed-info"), 404)
    error(client("streamembedinfo").get("/api/streams/missing/embed-info"), 404)


def test_an_anonymous_poll_never_asks_the_authenticator(backend: Backend) -> None:
    stream = backend.create_stream(title="Funeral", on_memorial=people.MEMORIAL.id)
    asked_before = len(backend.auth.seen)

    ok(client("streamstatus").get(f"/api/streams/{stream.id}/status"))
    ok(client("memorialstreamstatus").get(f"/api/memorials/{people.MEMORIAL.id}/streams/status"))
    assert len(backend.auth.seen) == asked_before
    # Signed in, the same poll is authenticated.
    ok(client("streamstatus").get(f"/api/streams/{stream.id}/status", headers=bearer(people.OWNER)))
    assert len(backend.auth.seen) == asked_before + 1
