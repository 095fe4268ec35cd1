"""Every stream endpoint over HTTP, through the gateway, against the real local stack."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
from google.cloud import firestore

from emulators.stack import CLOUDFLARE_READ_TIMEOUT_S, LocalStack
from tests.integration.conftest import Caller, stored
from tests.integration.test_broadcast_e2e import wait_for

pytestmark = pytest.mark.emulator
Callers = dict[str, Caller]


def create_stream(api: httpx.Client, caller: Caller, **fields: Any) -> dict[str, Any]:
    response = api.post("/api/streams", json={"title": "Funeral", **fields}, headers=caller.bearer)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    message: str = response.json()["error"]
    assert message
    return message


def test_create_makes_live_input_and_stores_credentials_out_of_the_public_document(
    api: httpx.Client, cloudflare: httpx.Client, db: firestore.Client, callers: Callers
) -> None:
    created = create_stream(api, callers["owner"], description="Chapel", isPublic=True)

    live_input = cloudflare.get(f"/live_inputs/{created['cloudflareId']}").json()["result"]
    assert live_input["meta"]["streamId"] == created["id"]
    assert live_input["recording"]["mode"] == "automatic"
    assert live_input["recording"]["timeoutSeconds"] == int(
        os.environ["LS_RECORDING_TIMEOUT_SECONDS"]
    )
    assert created["streamKey"] == live_input["rtmps"]["streamKey"]
    assert created["status"] == "scheduled"
    document = stored(db.collection("streams").document(created["id"]))
    assert document["cloudflareId"] == document["cloudflareStreamId"] == created["cloudflareId"]
    assert not {"streamKey", "whipUrl", "streamUrl"} & set(document)
    private = (
        db.collection("streams")
        .document(created["id"])
        .collection("private")
        .document("credentials")
        .get()
        .to_dict()
    )
    assert private["streamKey"] == created["streamKey"]
    assert private["whipUrl"] == live_input["webRTC"]["url"]


def test_session_cookies_authenticate_like_bearer_tokens(
    api: httpx.Client, edge_api: httpx.Client, callers: Callers
) -> None:
    owner = callers["owner"]
    # Hosting (api) forwards only __session; an edge proxy forwards the frontend's session too.
    for client, cookie_name in ((api, "__session"), (edge_api, "session"), (edge_api, "__session")):
        response = client.post(
            "/api/livestreamMVPTwo/streams",
            json={"title": "Burial"},
            cookies={cookie_name: owner.session_cookie},
        )
        assert response.status_code == 200, response.text
    stripped = api.post(
        "/api/livestreamMVPTwo/streams",
        json={"title": "Burial"},
        cookies={"session": owner.session_cookie},
    )
    assert stripped.status_code == 401, stripped.text
    stale = api.get("/api/streams/public", cookies={"__session": "expired-garbage"})
    assert stale.status_code == 200


@pytest.mark.parametrize(
    ("role", "sees_credentials", "can_edit"),
    [
        (None, False, False),
        ("stranger", False, False),
        ("owner", True, True),
        ("memorial_owner", True, True),
        ("funeral_director", True, True),
        ("admin", True, True),
        ("helper", True, True),
    ],
)
def test_get_stream_by_role(
    api: httpx.Client,
    callers: Callers,
    memorial_id: str,
    role: str | None,
    sees_credentials: bool,
    can_edit: bool,
) -> None:
    stream = create_stream(
        api, callers["admin"], memorialId=memorial_id, allowedUsers=[callers["helper"].uid]
    )
    stream_id = stream["id"]
    # The admin created it; "owner" here is a user with no relation to it, like a stranger.
    if role == "owner":
        stream_id = create_stream(api, callers["owner"])["id"]
    headers = callers[role].bearer if role else {}

    response = api.get(f"/api/streams/{stream_id}", headers=headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert ("streamKey" in body) is sees_credentials
    assert ("allowedUsers" in body) is can_edit
    update = api.put(f"/api/streams/{stream_id}", json={"title": "New"}, headers=headers)
    assert update.status_code == (200 if can_edit else 401 if role is None else 403)


def test_private_stream_is_401_for_anonymous_and_403_for_strangers(
    api: httpx.Client, callers: Callers
) -> None:
    stream = create_stream(api, callers["owner"], isPublic=False)
    error_of(api.get(f"/api/streams/{stream['id']}"), 401)
    error_of(api.get(f"/api/streams/{stream['id']}", headers=callers["stranger"].bearer), 403)


def test_caller_mistakes_get_clear_json_errors(api: httpx.Client, callers: Callers) -> None:
    owner = callers["owner"].bearer
    assert error_of(api.post("/api/streams", json={"title": "x"}), 401)
    assert "token" in error_of(
        api.post("/api/streams", json={"title": "x"}, headers={"Authorization": "Bearer bad"}), 401
    )
    unknown = api.post("/api/streams", json={"title": "x", "rtmpUrl": "y"}, headers=owner)
    assert "rtmpUrl" in error_of(unknown, 400)
    assert unknown.json()["fields"][0]["type"] == "extra_forbidden"
    assert "title" in error_of(api.post("/api/streams", json={}, headers=owner), 400)
    assert error_of(api.post("/api/streams", content=b"{not json", headers=owner), 400)
    assert error_of(api.post("/api/streams", json=["title"], headers=owner), 400)
    assert error_of(api.get("/api/streams?limit=0"), 400)
    assert error_of(api.get("/api/streams?status=bogus"), 400)
    assert error_of(api.get("/api/streams/does-not-exist"), 404)
    assert error_of(api.patch("/api/streams/does-not-exist", json={}), 405)
    assert error_of(api.put("/api/streams/reorder", json={"streamIds": []}, headers=owner), 400)


def test_start_stop_lifecycle_on_mvp_two_and_unified_paths(
    api: httpx.Client, callers: Callers, db: firestore.Client
) -> None:
    owner = callers["owner"].bearer
    stream = create_stream(api, callers["owner"])
    stream_id = stream["id"]

    error_of(api.post(f"/api/streams/{stream_id}/start", headers=callers["stranger"].bearer), 403)
    started = api.post(f"/api/livestreamMVPTwo/streams/{stream_id}/start", headers=owner)
    assert started.status_code == 200, started.text
    body = started.json()
    assert body["status"] == "live" and body["success"] is True
    assert body["credentials"]["streamKey"] == body["streamKey"] == stream["streamKey"]
    assert body["credentials"]["whipEndpoint"].endswith(f"/streams/{stream_id}/whip")
    error_of(api.post(f"/api/streams/{stream_id}/start", headers=owner), 409)

    stopped = api.post(f"/api/streams/{stream_id}/stop", headers=owner)
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "completed"
    assert stopped.json()["recordingStatus"] == "processing"
    again = api.post(f"/api/streams/{stream_id}/stop", headers=owner)
    assert again.status_code == 200 and again.json()["status"] == "completed"
    never_started = create_stream(api, callers["owner"])["id"]
    error_of(api.post(f"/api/streams/{never_started}/stop", headers=owner), 409)
    document = stored(db.collection("streams").document(stream_id))
    assert document["status"] == "completed"
    assert document["endTime"] == document["actualEndTime"] is not None


def test_delete_removes_live_input_and_refuses_while_live(
    api: httpx.Client, cloudflare: httpx.Client, callers: Callers, memorial_id: str
) -> None:
    stream = create_stream(api, callers["funeral_director"], memorialId=memorial_id)
    stream_id, input_uid = stream["id"], stream["cloudflareId"]
    api.post(f"/api/streams/{stream_id}/start", headers=callers["memorial_owner"].bearer)

    error_of(api.delete(f"/api/streams/{stream_id}", headers=callers["memorial_owner"].bearer), 409)
    api.post(f"/api/streams/{stream_id}/stop", headers=callers["memorial_owner"].bearer)
    error_of(api.delete(f"/api/streams/{stream_id}", headers=callers["stranger"].bearer), 403)
    error_of(api.delete(f"/api/streams/{stream_id}"), 401)

    deleted = api.delete(f"/api/streams/{stream_id}", headers=callers["memorial_owner"].bearer)

    assert deleted.status_code == 200 and deleted.json()["success"] is True
    assert cloudflare.get(f"/live_inputs/{input_uid}").status_code == 404
    error_of(api.get(f"/api/streams/{stream_id}", headers=callers["admin"].bearer), 404)


def test_cloudflare_outage_on_create_is_503_and_leaves_nothing_behind(
    api: httpx.Client, cloudflare: httpx.Client, callers: Callers, inject_faults: Any
) -> None:
    before = cloudflare.get("/live_inputs").json()["result"]["total"]
    inject_faults(500, method="POST", path="/live_inputs")

    response = api.post("/api/streams", json={"title": "x"}, headers=callers["owner"].bearer)

    error_of(response, 503)
    assert int(response.headers["Retry-After"]) > 0
    assert cloudflare.get("/live_inputs").json()["result"]["total"] == before


def test_a_create_cloudflare_carries_out_after_we_gave_up_is_swept_away(
    api: httpx.Client,
    cloudflare: httpx.Client,
    callers: Callers,
    inject_faults: Any,
    stack: LocalStack,
) -> None:
    def live_inputs() -> set[str]:
        rows = cloudflare.get("/live_inputs").json()["result"]["liveInputs"]
        return {row["uid"] for row in rows}

    def emulator_stats() -> dict[str, int]:
        stats: dict[str, int] = httpx.get(f"{stack.cloudflare_url}/__emulator/stats").json()
        return stats

    before = live_inputs()
    # The create lands 2 s after we stop waiting; the sweep task is due 8 s after that.
    landing_delay_ms = (CLOUDFLARE_READ_TIMEOUT_S + 2) * 1000
    inject_faults(None, delay_ms=landing_delay_ms, method="POST", path="/live_inputs")

    response = api.post("/api/streams", json={"title": "x"}, headers=callers["owner"].bearer)

    error_of(response, 503)
    assert int(response.headers["Retry-After"]) > 0
    wait_for(lambda: live_inputs() - before, 30, "Cloudflare to carry out the create")
    # The sweep's first attempt is refused; Cloud Tasks must retry it.
    inject_faults(429, retry_after=30, method="GET", path="/live_inputs")
    wait_for(
        lambda: emulator_stats()["liveInputs"] == len(before),
        60,
        "the retried sweep to delete the orphaned input",
    )
    assert emulator_stats()["pendingFaults"] == 0
    assert live_inputs() == before


def test_cloudflare_rate_limit_is_passed_on_as_429_with_retry_after(
    api: httpx.Client, callers: Callers, inject_faults: Any
) -> None:
    inject_faults(429, retry_after=120, method="POST", path="/live_inputs")
    response = api.post("/api/streams", json={"title": "x"}, headers=callers["owner"].bearer)
    error_of(response, 429)
    assert response.headers["Retry-After"] == "120"


def test_reorder_sets_display_order(api: httpx.Client, callers: Callers) -> None:
    owner = callers["owner"].bearer
    first, second = (create_stream(api, callers["owner"])["id"] for _ in range(2))

    response = api.put(
        "/api/livestreamMVPTwo/streams/reorder", json={"streamIds": [second, first]}, headers=owner
    )

    assert response.status_code == 200, response.text
    assert response.json()["totalUpdated"] == 2
    assert api.get(f"/api/streams/{first}", headers=owner).json()["displayOrder"] == 1
    error_of(
        api.put(
            "/api/streams/reorder", json={"streamIds": [first]}, headers=callers["stranger"].bearer
        ),
        403,
    )


def test_listings_and_memorial_views_never_carry_credentials(
    api: httpx.Client, callers: Callers, memorial_id: str
) -> None:
    public = create_stream(api, callers["memorial_owner"], memorialId=memorial_id)
    private = create_stream(api, callers["memorial_owner"], memorialId=memorial_id, isPublic=False)
    hidden = create_stream(api, callers["memorial_owner"], memorialId=memorial_id, isVisible=False)
    api.post(f"/api/streams/{public['id']}/start", headers=callers["memorial_owner"].bearer)
    secrets = [s["streamKey"] for s in (public, private, hidden)]

    responses = {
        path: api.get(path)
        for path in (
            "/api/streams?limit=100",
            "/api/livestreamMVPTwo/streams?limit=100",
            "/api/streams/public?limit=100",
            "/api/livestreamMVPTwo/public/streams?limit=100",
            "/api/livestreamMVPTwo/public-streams?limit=100",
            f"/api/memorials/{memorial_id}/streams",
            f"/api/memorials/{memorial_id}/streams/status",
            f"/api/streams/{public['id']}",
        )
    }

    for path, response in responses.items():
        assert response.status_code == 200, (path, response.text)
        for secret in secrets:
            assert secret not in response.text, path
        assert "webRTC/publish" not in response.text, path
        assert "streamKey" not in response.text, path
    listing = responses["/api/streams/public?limit=100"].json()
    ids = {s["id"] for s in listing["streams"]}
    assert public["id"] in ids and not {private["id"], hidden["id"]} & ids
    assert public["id"] in {s["id"] for s in listing["liveStreams"]}
    assert isinstance(responses["/api/livestreamMVPTwo/public-streams?limit=100"].json(), list)
    assert isinstance(responses["/api/livestreamMVPTwo/streams?limit=100"].json(), list)
    status = responses[f"/api/memorials/{memorial_id}/streams/status"].json()
    assert [s["id"] for s in status["liveStreams"]] == [public["id"]]


def test_memorial_manager_sees_private_streams_in_memorial_view(
    api: httpx.Client, callers: Callers, memorial_id: str
) -> None:
    private = create_stream(api, callers["memorial_owner"], memorialId=memorial_id, isPublic=False)
    director = callers["funeral_director"].bearer

    view = api.get(f"/api/memorials/{memorial_id}/streams", headers=director).json()

    assert private["id"] in {s["id"] for s in view["allStreams"]}
    created = api.post(
        f"/api/memorials/{memorial_id}/streams", json={"title": "Wake"}, headers=director
    )
    assert created.status_code == 200 and created.json()["memorialName"] == "Grace Hopper"
    error_of(
        api.post(
            f"/api/memorials/{memorial_id}/streams",
            json={"title": "x"},
            headers=callers["stranger"].bearer,
        ),
        403,
    )


def test_public_listing_is_cacheable_with_etag_and_304(api: httpx.Client, callers: Callers) -> None:
    first = api.get("/api/streams/public?limit=5")
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"].startswith("public, max-age=")

    again = api.get("/api/streams/public?limit=5", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag

    create_stream(api, callers["owner"], title="Changes the listing", displayOrder=0)
    changed = api.get("/api/streams/public?limit=5", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    # A listing for one caller is never kept by a shared cache.
    assert api.get("/api/streams?limit=5").headers["Cache-Control"] == "private, no-store"


def test_nulls_and_impossible_ids_are_refused_and_corrupt_nothing(
    api: httpx.Client, callers: Callers
) -> None:
    owner = callers["owner"].bearer
    stream = create_stream(api, callers["owner"])
    nulls = {"isVisible": None, "title": None, "scheduledStartTime": None}

    refused = api.put(f"/api/streams/{stream['id']}", json=nulls, headers=owner)

    assert "isVisible, title cannot be null" in error_of(refused, 400)
    cleared = api.put(
        f"/api/streams/{stream['id']}", json={"scheduledStartTime": None}, headers=owner
    )
    assert cleared.status_code == 200 and cleared.json()["scheduledStartTime"] is None
    assert api.get(f"/api/streams/{stream['id']}", headers=owner).json()["isVisible"] is True
    assert error_of(api.put("/api/streams/reorder", json={"streamIds": [""]}, headers=owner), 400)
    assert error_of(api.post("/api/streams/__x__/stop", headers=owner), 404)
    assert error_of(api.post("/api/streams/%0A/stop", headers=owner), 404)
