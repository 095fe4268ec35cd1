"""Audience through the whole stack: real HLS players of a real broadcast raise ``viewerCount``
on the status route once the status monitor has checked (it alone reads Cloudflare's count),
``maxViewers`` keeps the peak after they leave, and the family's analytics after the service
report the minutes they watched (Cloudflare's GraphQL Analytics, here the emulator's)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from emulators.stack import LocalStack
from emulators.test_card import push_test_card
from tests.integration import hls_viewers
from tests.integration.conftest import Caller
from tests.integration.hls_viewers import short_window  # noqa: F401 - a fixture
from tests.integration.test_broadcast_e2e import wait_for

pytestmark = pytest.mark.emulator

PLAYERS = 3


@pytest.mark.usefixtures("short_window")
def test_live_viewers_show_on_the_status_route_and_minutes_in_the_analytics(
    api: httpx.Client, callers: dict[str, Caller], stack: LocalStack
) -> None:
    owner = callers["owner"].bearer
    stream = api.post("/api/streams", json={"title": "Audience"}, headers=owner).json()
    stream_id, input_uid = stream["id"], stream["cloudflareId"]
    started = api.post(f"/api/streams/{stream_id}/start", headers=owner).json()

    def status() -> dict[str, Any]:
        response = api.get(f"/api/streams/{stream_id}/status", headers=owner)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    encoder = push_test_card(started["streamUrl"], started["streamKey"], seconds=60)
    players: list[hls_viewers.HlsViewer] = []
    try:
        manifest = f"{stack.cloudflare_url}/{input_uid}/manifest/video.m3u8"
        wait_for(lambda: ".ts" in httpx.get(manifest).text, 25, "a live playlist with segments")
        time.sleep(hls_viewers.WINDOW_S + 1)  # this probe is an HLS client too: it ages out first
        players = hls_viewers.watch(manifest, PLAYERS)
        wait_for(lambda: status()["viewerCount"] == PLAYERS, 30, "the monitor to count them")
        public = api.get(f"/api/streams/{stream_id}").json()
        assert (public["viewerCount"], public["maxViewers"]) == (PLAYERS, PLAYERS)
        time.sleep(5)
        for player in players:
            player.stop()
        left = wait_for(
            lambda: (body := status())["viewerCount"] == 0 and body, 30, "the count to fall"
        )
        assert left["maxViewers"] == PLAYERS and left["status"] == "live"
    finally:
        for player in players:
            player.stop()
        encoder.kill()
        encoder.wait()

    api.post(f"/api/streams/{stream_id}/stop", headers=owner).raise_for_status()
    ended = wait_for(
        lambda: (body := status())["recordingStatus"] == "ready" and body, 90, "the recording"
    )
    assert (ended["viewerCount"], ended["maxViewers"]) == (0, PLAYERS)

    response = api.get(f"/api/streams/{stream_id}/analytics", headers=owner)
    assert response.status_code == 200, response.text
    analytics = response.json()
    assert analytics["peakViewers"] == PLAYERS
    watched_min = sum(p.watched_s for p in players) / 60
    assert 0 < analytics["minutesViewed"] <= watched_min + PLAYERS / 60 + 0.01, analytics
    stranger = api.get(f"/api/streams/{stream_id}/analytics", headers=callers["stranger"].bearer)
    assert stranger.status_code == 403
