"""``streams``, ``stream`` and ``reorderstreams``: create, list, read, edit, delete, reorder."""

from __future__ import annotations

import pytest
from werkzeug.test import TestResponse

from common.models.domain import StreamStatus
from common.ports import ProviderUnavailableError
from tests import people
from tests.functions.calls import bearer, client, error, ok
from tests.functions.conftest import DELIVERY_BASE, MVP, Backend, assert_no_secrets

LIST_PATHS = ("/api/streams", f"{MVP}/streams")


def one_path(stream_id: str) -> tuple[str, str]:
    return f"/api/streams/{stream_id}", f"{MVP}/streams/{stream_id}"


# --- streams: POST creates -------------------------------------------------------------------


@pytest.mark.parametrize("path", LIST_PATHS)
def test_a_signed_in_user_creates_a_stream_with_its_publishing_credentials(
    backend: Backend, path: str
) -> None:
    response = client("streams").post(
        path,
        json={"title": "Funeral service", "description": "Chapel"},
        headers=bearer(people.OWNER),
    )

    body = ok(response)
    live_input = backend.live_input_of(body["id"])
    credentials = backend.provider.inputs[live_input][1]
    assert body["title"] == "Funeral service"
    assert body["description"] == "Chapel"
    assert body["status"] == "scheduled"
    assert body["broadcastState"] == "idle"
    assert body["recordingStatus"] == "none"
    assert body["createdBy"] == people.OWNER.uid
    assert body["cloudflareId"] == live_input
    assert body["playbackUrl"] == f"{DELIVERY_BASE}/{live_input}/iframe"
    assert body["streamKey"] == credentials.stream_key.get_secret_value()
    assert body["streamUrl"] == credentials.rtmp_url
    assert body["whipEndpoint"] == f"/api/streams/{body['id']}/whip"
    # The provider's own WHIP publish URL never leaves the backend, not even to the owner.
    assert credentials.whip_url.get_secret_value() not in response.get_data(as_text=True)


def test_a_memorial_manager_creates_a_stream_named_after_the_loved_one(backend: Backend) -> None:
    body = ok(
        client("streams").post(
            "/api/streams",
            json={"title": "Vigil", "memorialId": people.MEMORIAL.id},
            headers=bearer(people.FUNERAL_DIRECTOR),
        )
    )

    assert body["memorialId"] == people.MEMORIAL.id
    assert body["memorialName"] == people.MEMORIAL.loved_one_name
    assert backend.stream(body["id"]).memorial_id == people.MEMORIAL.id


def test_an_outsider_cannot_create_a_stream_for_someone_elses_memorial(backend: Backend) -> None:
    response = client("streams").post(
        "/api/streams",
        json={"title": "Vigil", "memorialId": people.MEMORIAL.id},
        headers=bearer(people.STRANGER),
    )

    error(response, 403, "permission-denied")
    assert backend.repo.streams == {}
    assert backend.provider.inputs == {}


def test_an_unknown_memorial_is_a_404(backend: Backend) -> None:
    response = client("streams").post(
        "/api/streams",
        json={"title": "Vigil", "memorialId": "no-such"},
        headers=bearer(people.ADMIN),
    )

    error(response, 404, "not-found")


def test_creating_needs_a_signed_in_user(backend: Backend) -> None:
    error(client("streams").post("/api/streams", json={"title": "x"}), 401, "unauthenticated")
    invalid = {"Authorization": "Bearer not-a-token"}
    error(client("streams").post("/api/streams", json={"title": "x"}, headers=invalid), 401)
    assert backend.repo.streams == {}


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b'{"description": "no title"}', "application/json"),
        (b'{"title": ""}', "application/json"),
        (b'{"title": "x", "isPublic": "maybe"}', "application/json"),
        (b'{"title": "x", "unknownField": 1}', "application/json"),
        (b'{"title": "x", "scheduleType": "scheduled"}', "application/json"),
        (b'{"title": "x", "scheduledStartTime": "0001-01-01T00:00:00+14:00"}', "application/json"),
        (b'{"title": "x", "memorialId": "a/b"}', "application/json"),
        (b'["title"]', "application/json"),
        (b"{not json", "application/json"),
        (b'{"title": "x"}', "text/plain"),
        (b"title=x", "application/x-www-form-urlencoded"),
        (b"", None),
    ],
)
def test_a_body_the_api_cannot_take_is_a_400(
    backend: Backend, data: bytes, content_type: str | None
) -> None:
    headers = bearer(people.OWNER) | ({"Content-Type": content_type} if content_type else {})
    response = client("streams").post("/api/streams", data=data, headers=headers)

    error(response, 400, "invalid-argument")
    assert backend.repo.streams == {}


def test_an_idempotency_key_replays_the_first_creation(backend: Backend) -> None:
    headers = bearer(people.OWNER) | {"Idempotency-Key": "create-1"}
    first = ok(client("streams").post("/api/streams", json={"title": "x"}, headers=headers))
    again = ok(client("streams").post("/api/streams", json={"title": "x"}, headers=headers))

    assert again["id"] == first["id"]
    assert again["streamKey"] == first["streamKey"]
    assert len(backend.provider.inputs) == 1
    malformed = bearer(people.OWNER) | {"Idempotency-Key": "k" * 300}
    response = client("streams").post("/api/streams", json={"title": "x"}, headers=malformed)
    error(response, 400, "invalid-argument")


def test_cloudflare_down_during_a_create_is_a_retryable_503(backend: Backend) -> None:
    backend.provider.fail("create_live_input", ProviderUnavailableError("timeout"))

    response = client("streams").post(
        "/api/streams", json={"title": "x"}, headers=bearer(people.OWNER)
    )

    error(response, 503, "unavailable")
    assert int(response.headers["Retry-After"]) > 0
    assert backend.repo.streams == {}


# --- streams: GET lists ----------------------------------------------------------------------


def test_anonymous_visitors_list_public_streams_only_and_see_no_credentials(
    backend: Backend,
) -> None:
    public = backend.create_stream(title="Public service")
    backend.create_stream(title="Private service", isPublic=False)
    backend.create_stream(title="Hidden service", isVisible=False)

    response = client("streams").get("/api/streams")

    body = ok(response)
    assert [s["id"] for s in body["streams"]] == [public.id]
    assert body["total"] == 1
    assert body["hasMore"] is False
    assert body["pagination"] == {"limit": 20, "offset": 0, "nextOffset": None}
    assert_no_secrets(response, backend)
    assert "createdBy" not in body["streams"][0]


def test_the_owner_lists_their_own_private_streams_without_credentials(backend: Backend) -> None:
    private = backend.create_stream(title="Private service", isPublic=False)
    backend.create_stream(people.STRANGER, title="Someone else's", isPublic=False)

    response = client("streams").get("/api/streams?isPublic=false", headers=bearer(people.OWNER))

    body = ok(response)
    assert [s["id"] for s in body["streams"]] == [private.id]
    assert_no_secrets(response, backend)


def test_the_mvp_two_listing_is_a_bare_array(backend: Backend) -> None:
    stream = backend.create_stream()

    response = client("streams").get(f"{MVP}/streams?limit=5")

    body = ok(response)
    assert isinstance(body, list)
    assert [s["id"] for s in body] == [stream.id]
    assert_no_secrets(response, backend)


def test_listing_pages_through_with_limit_and_offset(backend: Backend) -> None:
    for n in range(3):
        backend.create_stream(title=f"Service {n}")

    body = ok(client("streams").get("/api/streams?limit=2&offset=0"))

    assert len(body["streams"]) == 2
    assert body["hasMore"] is True
    assert body["pagination"] == {"limit": 2, "offset": 0, "nextOffset": 2}


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=101", "limit=ten", "offset=-1", "status=bogus", "isPublic=yes"],
)
def test_a_bad_query_parameter_is_a_400(backend: Backend, query: str) -> None:
    error(client("streams").get(f"/api/streams?{query}"), 400, "invalid-argument")


def test_an_unsupported_method_is_a_405_naming_the_allowed_ones(backend: Backend) -> None:
    response = client("streams").patch("/api/streams", json={}, headers=bearer(people.OWNER))

    error(response, 405)
    assert response.headers["Allow"] == "GET, POST"


# --- stream: GET / PUT / DELETE one ----------------------------------------------------------


@pytest.mark.parametrize("which", [0, 1])
def test_those_who_may_start_it_read_the_stream_with_its_credentials(
    backend: Backend, which: int
) -> None:
    stream = backend.create_stream(on_memorial=people.MEMORIAL.id)

    for user in (people.OWNER, people.MEMORIAL_OWNER, people.FUNERAL_DIRECTOR, people.ADMIN):
        body = ok(client("stream").get(one_path(stream.id)[which], headers=bearer(user)))
        assert body["id"] == stream.id
        assert body["streamKey"] == stream.streamKey
        assert body["streamUrl"] == stream.streamUrl
        assert body["whipEndpoint"] == f"/api/streams/{stream.id}/whip"


def test_visitors_read_a_public_stream_without_credentials(backend: Backend) -> None:
    stream = backend.create_stream(on_memorial=people.MEMORIAL.id)

    for headers in ({}, bearer(people.STRANGER)):
        response = client("stream").get(f"/api/streams/{stream.id}", headers=headers)
        body = ok(response)
        assert body["id"] == stream.id
        assert body["title"] == "Funeral service"
        assert body["status"] == "scheduled"
        assert "createdBy" not in body
        assert_no_secrets(response, backend)


def test_a_private_stream_is_refused_to_visitors(backend: Backend) -> None:
    stream = backend.create_stream(isPublic=False)
    on_private_memorial = backend.create_stream(
        people.MEMORIAL_OWNER, memorialId=people.PRIVATE_MEMORIAL.id
    )

    for stream_id in (stream.id, on_private_memorial.id):
        error(client("stream").get(f"/api/streams/{stream_id}"), 401, "unauthenticated")
        response = client("stream").get(
            f"/api/streams/{stream_id}", headers=bearer(people.STRANGER)
        )
        error(response, 403, "permission-denied")


@pytest.mark.parametrize("stream_id", ["no-such-stream", "__reserved__", "a.b", "x" * 200])
def test_a_stream_that_does_not_exist_is_a_404(backend: Backend, stream_id: str) -> None:
    error(client("stream").get(f"/api/streams/{stream_id}", headers=bearer(people.ADMIN)), 404)


@pytest.mark.parametrize("which", [0, 1])
def test_an_editor_changes_the_editable_fields(backend: Backend, which: int) -> None:
    stream = backend.create_stream(on_memorial=people.MEMORIAL.id)

    response = client("stream").put(
        one_path(stream.id)[which],
        json={"title": "Renamed", "isVisible": False, "displayOrder": 3},
        headers=bearer(people.FUNERAL_DIRECTOR),
    )

    body = ok(response)
    assert body["title"] == "Renamed"
    assert body["isVisible"] is False
    assert body["displayOrder"] == 3
    assert body["createdBy"] == people.OWNER.uid
    assert "streamKey" not in body
    assert backend.stream(stream.id).title == "Renamed"


@pytest.mark.parametrize(
    "payload",
    [{}, {"title": ""}, {"title": None}, {"bogus": 1}, {"displayOrder": -1}, {"isPublic": "maybe"}],
)
def test_an_edit_the_api_cannot_take_is_a_400(backend: Backend, payload: object) -> None:
    stream = backend.create_stream()

    response = client("stream").put(
        f"/api/streams/{stream.id}", json=payload, headers=bearer(people.OWNER)
    )

    error(response, 400, "invalid-argument")
    assert backend.stream(stream.id).title == "Funeral service"


def test_only_the_owner_changes_who_manages_a_stream(backend: Backend) -> None:
    stream = backend.create_stream(on_memorial=people.MEMORIAL.id)
    path = f"/api/streams/{stream.id}"
    change = {"allowedUsers": [people.STRANGER.uid]}

    error(client("stream").put(path, json=change, headers=bearer(people.FUNERAL_DIRECTOR)), 403)
    error(client("stream").put(path, json={"title": "x"}, headers=bearer(people.STRANGER)), 403)
    error(client("stream").put(path, json={"title": "x"}), 401)
    assert ok(client("stream").put(path, json=change, headers=bearer(people.OWNER)))[
        "allowedUsers"
    ] == [people.STRANGER.uid]


@pytest.mark.parametrize("which", [0, 1])
def test_the_owner_deletes_a_stream_with_its_live_input(backend: Backend, which: int) -> None:
    stream = backend.create_stream()
    live_input = backend.live_input_of(stream.id)

    body = ok(client("stream").delete(one_path(stream.id)[which], headers=bearer(people.OWNER)))

    assert body["success"] is True
    assert backend.repo.get(stream.id) is None
    assert live_input not in backend.provider.inputs
    error(client("stream").get(f"/api/streams/{stream.id}", headers=bearer(people.OWNER)), 404)


def test_deleting_is_refused_while_live_and_to_those_who_may_only_manage(backend: Backend) -> None:
    stream = backend.create_stream(on_memorial=people.MEMORIAL.id)
    path = f"/api/streams/{stream.id}"

    error(client("stream").delete(path, headers=bearer(people.FUNERAL_DIRECTOR)), 403)
    error(client("stream").delete(path), 401)
    backend.start(stream.id)
    error(client("stream").delete(path, headers=bearer(people.OWNER)), 409, "conflict")
    assert backend.stream(stream.id).status == StreamStatus.LIVE


# --- reorderstreams --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/streams/reorder", f"{MVP}/streams/reorder"])
def test_an_editor_reorders_streams(backend: Backend, path: str) -> None:
    first = backend.create_stream(title="First", on_memorial=people.MEMORIAL.id)
    second = backend.create_stream(title="Second", on_memorial=people.MEMORIAL.id)

    body = ok(
        client("reorderstreams").put(
            path,
            json={"streamIds": [second.id, first.id], "memorialId": people.MEMORIAL.id},
            headers=bearer(people.MEMORIAL_OWNER),
        )
    )

    assert body["success"] is True
    assert body["totalUpdated"] == 2
    assert [(s["streamId"], s["newOrder"]) for s in body["updatedStreams"]] == [
        (second.id, 0),
        (first.id, 1),
    ]
    assert backend.stream(first.id).display_order == 1


@pytest.mark.parametrize(
    "payload",
    [{}, {"streamIds": []}, {"streamIds": ["a", "a"]}, {"streamIds": ["a/b"]}, {"streamIds": "a"}],
)
def test_a_reorder_the_api_cannot_take_is_a_400(backend: Backend, payload: object) -> None:
    response = client("reorderstreams").put(
        "/api/streams/reorder", json=payload, headers=bearer(people.OWNER)
    )

    error(response, 400, "invalid-argument")


def test_reorder_refuses_unknown_foreign_or_misplaced_streams(backend: Backend) -> None:
    mine = backend.create_stream()
    elsewhere = backend.create_stream(on_memorial=people.MEMORIAL.id)
    path = "/api/streams/reorder"

    def reorder(payload: dict[str, object], headers: dict[str, str]) -> TestResponse:
        return client("reorderstreams").put(path, json=payload, headers=headers)

    error(reorder({"streamIds": [mine.id, "no-such"]}, bearer(people.OWNER)), 404)
    error(reorder({"streamIds": [mine.id]}, bearer(people.STRANGER)), 403)
    error(reorder({"streamIds": [mine.id]}, {}), 401)
    misplaced: dict[str, object] = {
        "streamIds": [mine.id, elsewhere.id],
        "memorialId": people.MEMORIAL.id,
    }
    error(reorder(misplaced, bearer(people.OWNER)), 400)
    assert backend.stream(mine.id).display_order == 0
