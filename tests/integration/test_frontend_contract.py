"""The committed frontend's calls, replayed as it makes them (FRONTEND_CONTRACT.md §3, §7).

Every role (anonymous, a stranger, the stream's creator, the memorial's owner and funeral
director, an admin, an allowed user) on both path families, with each way the browser's
credentials reach the functions: a bearer token, the `__session` cookie through Hosting, and the
frontend's own `session` cookie through an edge proxy that forwards every cookie. Each call
checks the status the role must get and the fields the calling component reads.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from google.cloud import firestore

from tests.integration.conftest import Caller

pytestmark = pytest.mark.emulator

UNIFIED = "/api/streams"
MVP_TWO = "/api/livestreamMVPTwo/streams"
MANAGERS = {"owner", "memorial_owner", "funeral_director", "admin", "helper"}
DELETERS = {"owner", "memorial_owner", "admin"}
MEMORIAL_MANAGERS = {"memorial_owner", "funeral_director", "admin"}
SIGNED_IN = ("stranger", "owner", "memorial_owner", "funeral_director", "admin", "helper")
TRANSPORTS = ("bearer", "__session cookie via Hosting", "session cookie via edge proxy")

# What the mounted components and the MVP Two components read of a stream (§2.3, §7.2, §7.5).
STREAM_FIELDS_READ = {
    "id",
    "title",
    "description",
    "status",
    "displayOrder",
    "isVisible",
    "isPublic",
    "featured",
    "memorialId",
    "memorialName",
    "playbackUrl",
    "cloudflareId",
    "cloudflareStreamId",
    "videoId",
    "recordingReady",
    "recordingUrl",
    "recordingPlaybackUrl",
    "recordingDuration",
    "recordings",
    "scheduledStartTime",
    "scheduledDateTime",
    "actualStartTime",
    "endTime",
    "viewerCount",
    "maxViewers",
    "thumbnailUrl",
    "createdAt",
    "updatedAt",
}
CREDENTIALS_READ = {"streamKey", "streamUrl", "whipEndpoint", "playbackUrl"}
SECRET_FIELDS = {"streamKey", "streamUrl", "whipEndpoint"}

SCENARIOS = [("anonymous", "none", family) for family in (UNIFIED, MVP_TWO)] + [
    (role, transport, family)
    for role in SIGNED_IN
    for transport in TRANSPORTS
    for family in (UNIFIED, MVP_TWO)
]


@dataclass
class Browser:
    """One role's browser as the site's pages call the API."""

    role: str
    client: httpx.Client
    headers: dict[str, str]

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def expect(self, allowed: bool, response: httpx.Response) -> dict[str, Any] | None:
        """The JSON body when the role may do it; otherwise check the refusal is right."""
        assert response.headers["content-type"].startswith("application/json"), response.text
        if allowed:
            assert response.status_code == 200, (self.role, response.request.url, response.text)
            body: dict[str, Any] = response.json()
            return body
        expected = 401 if self.role == "anonymous" else 403
        assert response.status_code == expected, (self.role, response.request.url, response.text)
        assert response.json()["error"]
        return None


def browser_for(
    role: str, transport: str, callers: dict[str, Caller], api: httpx.Client, edge: httpx.Client
) -> Browser:
    if role == "anonymous":
        return Browser(role, api, {})
    caller = callers[role]
    if transport == "bearer":
        return Browser(role, api, caller.bearer)
    if transport.startswith("__session"):
        return Browser(role, api, {"Cookie": f"__session={caller.session_cookie}"})
    return Browser(role, edge, {"Cookie": f"session={caller.session_cookie}; theme=light"})


def assert_reads(stream: dict[str, Any], role: str) -> None:
    assert stream.keys() >= STREAM_FIELDS_READ, STREAM_FIELDS_READ - stream.keys()
    assert stream["cloudflareStreamId"] == stream["cloudflareId"]
    assert stream["recordingPlaybackUrl"] == stream["recordingUrl"]
    assert stream["status"] in ("scheduled", "live", "completed", "cancelled")
    if role in MANAGERS:
        assert stream["streamKey"] and stream["streamUrl"].startswith("rtmp")
    else:
        assert not SECRET_FIELDS & stream.keys(), role


def ids(items: list[dict[str, Any]]) -> set[str]:
    return {item["id"] for item in items}


@dataclass
class Replay:
    """One scenario: ``page`` acts on a stream of the shared memorial made by "owner"."""

    page: Browser
    family: str
    stream_id: str
    memorial_id: str
    anonymous: httpx.Client
    owner: Caller
    db: firestore.Client

    @property
    def one(self) -> str:
        return f"{self.family}/{self.stream_id}"

    @property
    def manager(self) -> bool:
        return self.page.role in MANAGERS

    def stream_and_listings(self) -> dict[str, Any]:
        """MVPTwoStreamPlayer, streamAPI.getStreams and the public listings."""
        page = self.page
        stream = page.expect(True, page.call("GET", self.one))
        assert stream is not None and stream["id"] == self.stream_id
        assert_reads(stream, page.role)
        for query in ("?limit=50", f"?memorialId={self.memorial_id}&limit=50"):
            listed = page.call("GET", f"{self.family}{query}")
            assert listed.status_code == 200
            items = listed.json() if self.family == MVP_TWO else listed.json()["streams"]
            assert self.stream_id in ids(items)
            assert all(item.keys() >= STREAM_FIELDS_READ for item in items)
        public_paths = (
            ("/api/livestreamMVPTwo/public-streams", "/api/livestreamMVPTwo/public/streams")
            if self.family == MVP_TWO
            else ("/api/streams/public",)
        )
        for path in public_paths:
            body = page.call("GET", f"{path}?limit=100").json()
            items = body if isinstance(body, list) else body["streams"]
            assert self.stream_id in ids(items)
            assert not any(SECRET_FIELDS & item.keys() for item in items)
        return stream

    def memorial_pages(self, stream: dict[str, Any]) -> None:
        """MemorialStreamDisplay, loadStreams and the [fullSlug] page's polls."""
        page, memorial = self.page, self.memorial_id
        grouped = page.expect(True, page.call("GET", f"/api/memorials/{memorial}/streams"))
        assert grouped is not None and self.stream_id in ids(grouped["scheduledStreams"])
        for key in ("liveStreams", "readyStreams", "recordedStreams", "publicRecordedStreams"):
            assert isinstance(grouped[key], list)
        board = page.expect(True, page.call("GET", f"/api/memorials/{memorial}/streams/status"))
        assert board is not None and self.stream_id in ids(board["scheduledStreams"])
        polled = page.expect(True, page.call("GET", f"{self.one}/status"))
        assert polled is not None and polled["status"] == "scheduled"
        recordings = page.expect(True, page.call("GET", f"{self.one}/recordings"))
        assert recordings is not None and recordings["recordings"] == []
        embed = page.expect(True, page.call("GET", f"{self.one}/embed-info"))
        assert embed is not None
        assert embed["iframeUrl"].endswith(f"/{stream['cloudflareId']}/iframe")

    def visibility_toggle(self) -> None:
        """A hidden stream stays on its managers' list (its toggle stays reachable)."""
        page = self.page
        hidden = page.expect(self.manager, page.call("PUT", self.one, json={"isVisible": False}))
        if hidden is None:
            return
        assert hidden["isVisible"] is False
        listing = f"/api/memorials/{self.memorial_id}/streams"
        assert self.stream_id in ids(page.call("GET", listing).json()["allStreams"])
        assert self.stream_id not in ids(self.anonymous.get(listing).json()["allStreams"])
        page.expect(True, page.call("PUT", self.one, json={"isVisible": True}))

    def broadcast_controls(self) -> None:
        """requestRTMPSettings, startStream (nested and flat credentials), status, stop."""
        page = self.page
        credentials = page.expect(self.manager, page.call("GET", f"{self.one}/credentials"))
        if credentials is not None:
            assert credentials["credentials"].keys() >= CREDENTIALS_READ
            assert credentials["status"] == "scheduled"
        started = page.expect(self.manager, page.call("POST", f"{self.one}/start"))
        if started is not None:
            assert (started["streamId"], started["status"]) == (self.stream_id, "live")
            assert started["credentials"].keys() >= CREDENTIALS_READ
            whip = started["credentials"]["whipEndpoint"]
            assert whip == f"/api/streams/{self.stream_id}/whip"
            assert started["streamKey"] == started["credentials"]["streamKey"]
            polled = page.call("GET", f"{self.one}/status").json()
            assert polled["status"] == "live"
        stopped = page.expect(self.manager, page.call("POST", f"{self.one}/stop"))
        if stopped is not None:
            assert stopped["status"] == "completed"
            assert isinstance(stopped["recordingReady"], bool)

    def console_tools(self) -> None:
        """Sync Recording (both routes), the repair buttons, reorder."""
        page = self.page
        synced = page.expect(self.manager, page.call("POST", f"{self.one}/recordings"))
        if synced is not None:
            assert isinstance(synced["recordingReady"], bool) and "recordingUrl" in synced
        for tool in (
            "sync-recording",
            "sync-status",
            "get-video-id",
            "fix-playback-url",
            "configure-cors",
            "fix-status",
        ):
            page.expect(self.manager, page.call("POST", f"{self.one}/{tool}"))
        order = {"streamIds": [self.stream_id], "memorialId": self.memorial_id}
        reordered = page.expect(
            self.manager, page.call("PUT", f"{self.family}/reorder", json=order)
        )
        if reordered is not None:
            assert reordered["totalUpdated"] == 1

    def admin_tools(self) -> None:
        """The migration report is the admins' (applying it is tested on its own)."""
        page = self.page
        report = page.expect(page.role == "admin", page.call("GET", f"{self.family}/migrate"))
        if report is None:
            page.expect(False, page.call("POST", f"{self.family}/migrate"))
        else:
            assert report["dryRun"] is True and isinstance(report["changes"], list)

    def creation_and_deletion(self) -> None:
        """createMemorialStream (always isPublic:false), createStream, deleteStream."""
        page = self.page
        body = {
            "title": f"Committal {uuid.uuid4().hex[:6]}",
            "description": "",
            "memorialId": self.memorial_id,
            "isVisible": True,
            "isPublic": False,
        }
        made = page.expect(
            page.role in MEMORIAL_MANAGERS,
            page.call("POST", f"/api/memorials/{self.memorial_id}/streams", json=body),
        )
        if made is not None:
            assert made["isPublic"] is True and made["memorialId"] == self.memorial_id
            assert made["memorialName"] == "Grace Hopper"
            assert_reads(made, page.role)
            assert self.db.collection("streams").document(made["id"]).get().exists
        own = page.expect(
            page.role != "anonymous",
            page.call("POST", self.family, json={"title": "Visitation", "description": ""}),
        )
        if own is not None:
            assert_reads(own, "owner")
        deleted = page.expect(page.role in DELETERS, page.call("DELETE", self.one))
        if deleted is not None:
            assert deleted["success"] is True
            assert self.anonymous.get(self.one, headers=self.owner.bearer).status_code == 404


@pytest.mark.parametrize(
    ("role", "transport", "family"), SCENARIOS, ids=[" | ".join(s) for s in SCENARIOS]
)
def test_replay_of_the_frontends_calls(
    api: httpx.Client,
    edge_api: httpx.Client,
    callers: dict[str, Caller],
    db: firestore.Client,
    memorial_id: str,
    role: str,
    transport: str,
    family: str,
) -> None:
    owner = callers["owner"]
    created = api.post(
        UNIFIED,
        json={"title": "Funeral service", "allowedUsers": [callers["helper"].uid]},
        headers=owner.bearer,
    ).json()
    # The creator is not a manager of the memorial; the stream is attached to it here.
    db.collection("streams").document(created["id"]).update({"memorialId": memorial_id})
    replay = Replay(
        page=browser_for(role, transport, callers, api, edge_api),
        family=family,
        stream_id=created["id"],
        memorial_id=memorial_id,
        anonymous=api,
        owner=owner,
        db=db,
    )

    stream = replay.stream_and_listings()
    replay.memorial_pages(stream)
    replay.visibility_toggle()
    replay.broadcast_controls()
    replay.console_tools()
    replay.admin_tools()
    replay.creation_and_deletion()
    # Ends the scenario's monitors at once rather than letting them run on beside later tests.
    api.delete(f"{UNIFIED}/{created['id']}", headers=owner.bearer)
