"""The Cloudflare emulator counts real HLS clients: ``/<input>/views`` rises to the players
watching a real ffmpeg broadcast and falls once they stop, and its GraphQL Analytics answer
books the minutes they watched to the broadcast's video."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from emulators.stack import API_TOKEN, LocalStack
from emulators.test_card import push_test_card
from tests.integration.hls_viewers import (  # noqa: F401 - short_window is a fixture
    MINUTES_QUERY,
    WINDOW_S,
    HlsViewer,
    short_window,
    watch,
)
from tests.integration.test_broadcast_e2e import wait_for

pytestmark = pytest.mark.emulator

PLAYERS = 3


def views(stack: LocalStack, uid: str) -> int:
    response = httpx.get(f"{stack.cloudflare_url}/{uid}/views")
    assert response.status_code == 200, response.text
    count: int = response.json()["liveViewers"]
    return count


def graphql(stack: LocalStack, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{stack.cloudflare_url}/client/v4/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.usefixtures("short_window")
def test_views_follow_real_players_and_minutes_follow_what_they_watched(
    stack: LocalStack, cloudflare: httpx.Client
) -> None:
    body = {"meta": {"name": "audience"}, "recording": {"mode": "automatic", "timeoutSeconds": 2}}
    live_input = cloudflare.post("/live_inputs", json=body).json()["result"]
    uid = live_input["uid"]
    since = datetime.now(UTC) - timedelta(minutes=1)
    encoder = push_test_card(stack.rtmp_url, live_input["rtmps"]["streamKey"], seconds=40)
    players: list[HlsViewer] = []
    try:
        manifest = f"{stack.cloudflare_url}/{uid}/manifest/video.m3u8"
        wait_for(lambda: ".ts" in httpx.get(manifest).text, 20, "a live playlist with segments")
        time.sleep(WINDOW_S + 1)  # the probes above (a client too) age out of the window
        assert views(stack, uid) == 0
        players = watch(manifest, PLAYERS)
        wait_for(lambda: views(stack, uid) == PLAYERS, 20, f"{PLAYERS} live viewers")
        time.sleep(6)
        assert views(stack, uid) == PLAYERS, "still watching, still counted (no double count)"
        for player in players:
            player.stop()
        wait_for(lambda: views(stack, uid) == 0, WINDOW_S + 10, "the viewers to age out")
        video_uid = httpx.get(f"{stack.cloudflare_url}/{uid}/lifecycle").json()["videoUID"]
    finally:
        for player in players:
            player.stop()
        encoder.kill()
        encoder.wait()

    until = datetime.now(UTC) + timedelta(minutes=1)
    variables = {
        "accountTag": "local-account",
        "uids": [video_uid],
        "since": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "until": until.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    answer = graphql(stack, MINUTES_QUERY, variables)
    assert answer["errors"] is None
    groups = answer["data"]["viewer"]["accounts"][0]["streamMinutesViewedAdaptiveGroups"]
    assert [g["dimensions"]["uid"] for g in groups] == [video_uid]
    minutes = groups[0]["sum"]["minutesViewed"]
    # Each player watched from its first served fetch to its last; the emulator books the gaps
    # between fetches, seen server-side: within 1 s per player (and its 3-decimal rounding).
    watched_min = sum(p.watched_s for p in players) / 60
    assert all(p.segments >= 5 for p in players)
    assert abs(minutes - watched_min) <= PLAYERS * 1 / 60 + 0.001, (minutes, watched_min)
    peaks = httpx.get(f"{stack.cloudflare_url}/__emulator/audience").json()["peaks"]
    assert peaks[uid] == PLAYERS


def test_the_count_of_a_signed_input_needs_no_token_and_unknown_inputs_are_404(
    stack: LocalStack, cloudflare: httpx.Client
) -> None:
    recording = {"mode": "automatic", "requireSignedURLs": True}
    uid = cloudflare.post("/live_inputs", json={"recording": recording}).json()["result"]["uid"]
    assert views(stack, uid) == 0
    assert httpx.get(f"{stack.cloudflare_url}/{uid}/manifest/video.m3u8").status_code == 401
    assert httpx.get(f"{stack.cloudflare_url}/{'0' * 32}/views").status_code == 404


def test_graphql_refuses_what_cloudflare_would(stack: LocalStack) -> None:
    unauthorized = httpx.post(f"{stack.cloudflare_url}/client/v4/graphql", json={"query": "{}"})
    assert unauthorized.status_code == 401
    query = (
        "{ viewer { accounts(filter: {accountTag: ACCOUNT}) {"
        " streamMinutesViewedAdaptiveGroups(FILTER limit: 1) { sum { minutesViewed } } } } }"
    )
    other = graphql(stack, query.replace("ACCOUNT", '"someone-else"').replace("FILTER", ""), {})
    assert other["data"] is None and other["errors"]
    unknown = query.replace("ACCOUNT", '"local-account"').replace(
        "FILTER", 'filter: {videoId: "x"}'
    )
    refused = graphql(stack, unknown, {})
    assert refused["data"] is None and "videoId" in refused["errors"][0]["message"]
