"""``startstream``, ``stopstream``, ``streamcredentials`` and ``whipstream``: going on air."""

from __future__ import annotations

import pytest

from common.models.domain import StreamStatus
from tests import people
from tests.functions.calls import bearer, client, error, ok
from tests.functions.conftest import SITE, Backend

OFFER = b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
SDP = {"Content-Type": "application/sdp"}


# --- startstream -----------------------------------------------------------------------------


def test_the_funeral_director_starts_the_stream_and_gets_the_encoder_settings(
    backend: Backend, prefix: str
) -> None:
    stream = backend.create_stream(on_memorial=people.MEMORIAL.id)
    live_input = backend.live_input_of(stream.id)

    body = ok(
        client("startstream").post(
            f"{prefix}/streams/{stream.id}/start", headers=bearer(people.FUNERAL_DIRECTOR)
        )
    )

    assert body["success"] is True
    assert body["streamId"] == stream.id
    assert body["cloudflareId"] == live_input
    assert body["status"] == "live"
    assert body["streamKey"] == stream.streamKey
    assert body["streamUrl"] == stream.streamUrl
    assert body["whipEndpoint"] == f"/api/streams/{stream.id}/whip"
    assert body["playbackUrl"] == stream.playbackUrl
    assert body["credentials"] == {
        "streamKey": stream.streamKey,
        "streamUrl": stream.streamUrl,
        "whipEndpoint": body["whipEndpoint"],
        "playbackUrl": stream.playbackUrl,
    }
    assert backend.stream(stream.id).status == StreamStatus.LIVE
    [task] = backend.tasks.tasks
    assert (task.path, task.payload["kind"], task.payload["streamId"]) == (
        "/api/tasks/monitor",
        "status",
        stream.id,
    )


def test_starting_a_live_stream_again_is_a_409(backend: Backend) -> None:
    stream = backend.create_stream()
    path = f"/api/streams/{stream.id}/start"
    ok(client("startstream").post(path, headers=bearer(people.OWNER)))

    error(client("startstream").post(path, headers=bearer(people.OWNER)), 409, "conflict")


def test_starting_needs_the_right_to_start(backend: Backend) -> None:
    stream = backend.create_stream(allowedUsers=[people.HELPER.uid])
    path = f"/api/streams/{stream.id}/start"

    error(client("startstream").post(path), 401, "unauthenticated")
    error(
        client("startstream").post(path, headers=bearer(people.STRANGER)), 403, "permission-denied"
    )
    error(client("startstream").post("/api/streams/nope/start", headers=bearer(people.OWNER)), 404)
    error(client("startstream").get(path, headers=bearer(people.OWNER)), 405)
    assert backend.stream(stream.id).status == StreamStatus.SCHEDULED
    ok(client("startstream").post(path, headers=bearer(people.HELPER)))


# --- stopstream ------------------------------------------------------------------------------


def test_stopping_completes_the_stream_and_waits_for_its_recording(
    backend: Backend, prefix: str
) -> None:
    stream = backend.create_stream()
    backend.start(stream.id)
    backend.clock.advance(600)

    body = ok(
        client("stopstream").post(
            f"{prefix}/streams/{stream.id}/stop", headers=bearer(people.OWNER)
        )
    )

    assert body["success"] is True
    assert body["streamId"] == stream.id
    assert body["status"] == "completed"
    assert body["recordingStatus"] == "processing"
    assert body["recordingReady"] is False
    assert body["recordingUrl"] is None
    assert body["message"]
    assert backend.stream(stream.id).status == StreamStatus.COMPLETED
    assert ("recording", stream.id) in {
        (t.payload["kind"], t.payload["streamId"]) for t in backend.tasks.tasks
    }


def test_stopping_after_cloudflare_made_the_recording_answers_with_it(backend: Backend) -> None:
    stream = backend.create_stream()
    backend.start(stream.id)
    recording = backend.add_recording(stream.id, "video-1")

    body = ok(
        client("stopstream").post(f"/api/streams/{stream.id}/stop", headers=bearer(people.OWNER))
    )

    assert body["recordingStatus"] == "ready"
    assert body["recordingReady"] is True
    assert body["recordingUrl"] == recording.hls_url


def test_stopping_a_stream_that_never_started_is_a_409(backend: Backend) -> None:
    stream = backend.create_stream()
    path = f"/api/streams/{stream.id}/stop"

    error(client("stopstream").post(path, headers=bearer(people.OWNER)), 409, "conflict")
    error(client("stopstream").post(path), 401)
    error(client("stopstream").post(path, headers=bearer(people.STRANGER)), 403)


# --- streamcredentials -----------------------------------------------------------------------


def test_credentials_are_handed_out_without_going_live(backend: Backend, prefix: str) -> None:
    stream = backend.create_stream()

    body = ok(
        client("streamcredentials").get(
            f"{prefix}/streams/{stream.id}/credentials", headers=bearer(people.OWNER)
        )
    )

    assert body["success"] is True
    assert body["streamId"] == stream.id
    assert body["cloudflareId"] == stream.cloudflareId
    assert body["status"] == "scheduled"
    assert body["credentials"]["streamKey"] == stream.streamKey
    assert body["credentials"]["streamUrl"] == stream.streamUrl
    assert body["credentials"]["whipEndpoint"] == f"/api/streams/{stream.id}/whip"
    assert backend.stream(stream.id).status == StreamStatus.SCHEDULED
    assert backend.tasks.tasks == []


def test_a_stream_without_a_live_input_gets_one_when_credentials_are_asked(
    backend: Backend,
) -> None:
    backend.add_legacy_stream("legacy-1")

    body = ok(
        client("streamcredentials").get(
            "/api/streams/legacy-1/credentials", headers=bearer(people.OWNER)
        )
    )

    assert body["cloudflareId"] == backend.live_input_of("legacy-1")
    assert body["credentials"]["streamKey"]


def test_credentials_need_the_right_to_start(backend: Backend) -> None:
    stream = backend.create_stream()
    path = f"/api/streams/{stream.id}/credentials"

    error(client("streamcredentials").get(path), 401)
    error(client("streamcredentials").get(path, headers=bearer(people.STRANGER)), 403)
    error(client("streamcredentials").post(path, headers=bearer(people.OWNER)), 405)


# --- whipstream ------------------------------------------------------------------------------


def test_a_browser_broadcast_starts_with_its_offer_and_ends_with_delete(
    backend: Backend, prefix: str
) -> None:
    stream = backend.create_stream()
    whip_url = backend.provider.inputs[backend.live_input_of(stream.id)][1].whip_url

    response = client("whipstream").post(
        f"{prefix}/streams/{stream.id}/whip", data=OFFER, headers=SDP | bearer(people.OWNER)
    )

    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.mimetype == "application/sdp"
    assert response.get_data(as_text=True).startswith("v=0")
    location = response.headers["Location"]
    assert location.startswith(f"/api/streams/{stream.id}/whip/")
    assert whip_url.get_secret_value() not in location
    assert backend.provider.whip_offers == [(whip_url.get_secret_value(), OFFER.decode())]
    live = backend.stream(stream.id)
    assert (live.status, live.whip_active, live.ingest_protocol) == (
        StreamStatus.LIVE,
        True,
        "whip",
    )

    session = location.rsplit("/", 1)[-1]
    ended = client("whipstream").delete(
        f"{prefix}/streams/{stream.id}/whip/{session}", headers=bearer(people.OWNER)
    )

    assert ok(ended)["success"] is True
    assert backend.stream(stream.id).status == StreamStatus.COMPLETED
    assert backend.stream(stream.id).whip_active is False
    assert len(backend.provider.whip_ended) == 1


def test_a_second_publisher_while_a_browser_is_on_air_is_a_409(backend: Backend) -> None:
    stream = backend.create_stream()
    path = f"/api/streams/{stream.id}/whip"
    assert (
        client("whipstream").post(path, data=OFFER, headers=SDP | bearer(people.OWNER)).status_code
        == 201
    )

    error(client("whipstream").post(path, data=OFFER, headers=SDP | bearer(people.OWNER)), 409)


@pytest.mark.parametrize(
    ("data", "headers"),
    [
        (OFFER, {"Content-Type": "application/json"}),
        (OFFER, {}),
        (b"not an offer", SDP),
        (b"", SDP),
    ],
)
def test_an_offer_that_is_not_sdp_is_a_400(
    backend: Backend, data: bytes, headers: dict[str, str]
) -> None:
    stream = backend.create_stream()

    response = client("whipstream").post(
        f"/api/streams/{stream.id}/whip", data=data, headers=headers | bearer(people.OWNER)
    )

    error(response, 400, "invalid-argument")
    assert backend.stream(stream.id).status == StreamStatus.SCHEDULED


def test_whip_needs_the_right_to_start_and_a_known_session(backend: Backend) -> None:
    stream = backend.create_stream()
    path = f"/api/streams/{stream.id}/whip"

    error(client("whipstream").post(path, data=OFFER, headers=SDP), 401)
    error(client("whipstream").post(path, data=OFFER, headers=SDP | bearer(people.STRANGER)), 403)
    error(
        client("whipstream").delete(path, headers=bearer(people.OWNER)), 400
    )  # no session in the URL
    error(client("whipstream").delete(f"{path}/no-such-session", headers=bearer(people.OWNER)), 404)
    error(client("whipstream").put(path, headers=bearer(people.OWNER)), 405)


def test_whip_answers_cors_preflights_for_allowed_origins_only(backend: Backend) -> None:
    stream = backend.create_stream()
    path = f"/api/streams/{stream.id}/whip"
    preflight = {"Access-Control-Request-Method": "POST"}

    allowed = client("whipstream").options(path, headers=preflight | {"Origin": SITE})

    assert allowed.status_code == 204
    assert allowed.headers["Accept-Post"] == "application/sdp"
    assert allowed.headers["Access-Control-Allow-Origin"] == SITE
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    foreign = client("whipstream").options(
        path, headers=preflight | {"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 204
    assert "Access-Control-Allow-Origin" not in foreign.headers

    posted = client("whipstream").post(
        path, data=OFFER, headers=SDP | bearer(people.OWNER) | {"Origin": SITE}
    )
    assert posted.status_code == 201
    assert posted.headers["Access-Control-Allow-Origin"] == SITE
    assert "Location" in posted.headers["Access-Control-Expose-Headers"]


def test_a_cross_site_write_with_the_session_cookie_is_refused(backend: Backend) -> None:
    stream = backend.create_stream()
    browser = client("whipstream")
    browser.set_cookie("session", f"token-{people.OWNER.uid}")

    response = browser.post(
        f"/api/streams/{stream.id}/whip",
        data=OFFER,
        headers=SDP | {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )

    error(response, 403, "permission-denied")
    assert backend.stream(stream.id).status == StreamStatus.SCHEDULED
