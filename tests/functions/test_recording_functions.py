"""``streamrecordings`` (the playable recordings; POST fetches them first) and
``streamrecording`` (a manager's choice of the recording shown, or hidden)."""

from __future__ import annotations

import pytest
from werkzeug.test import TestResponse

from common.ports import ProviderUnavailableError
from tests import people
from tests.functions.calls import bearer, client, error, ok
from tests.functions.conftest import DELIVERY_BASE, Backend, Created, assert_no_secrets


def broadcast_with_two_recordings(backend: Backend) -> Created:
    """A completed stream holding two ready recordings (the service, then a sound check)."""
    stream = backend.create_stream(title="Funeral service", on_memorial=people.MEMORIAL.id)
    backend.start(stream.id)
    backend.add_recording(stream.id, "video-service", minutes=1)
    backend.add_recording(stream.id, "video-soundcheck", minutes=5)
    backend.stop(stream.id)
    return stream


# --- streamrecordings ------------------------------------------------------------------------


def test_visitors_get_the_playable_recordings_oldest_first(backend: Backend, prefix: str) -> None:
    stream = broadcast_with_two_recordings(backend)

    response = client("streamrecordings").get(f"{prefix}/streams/{stream.id}/recordings")

    body = ok(response)
    assert body["streamId"] == stream.id
    assert body["totalRecordings"] == 2
    assert [r["id"] for r in body["recordings"]] == ["video-service", "video-soundcheck"]
    first = body["recordings"][0]
    assert first["recordingUrl"] == f"{DELIVERY_BASE}/video-service/manifest/video.m3u8"
    assert first["playbackUrl"] == f"{DELIVERY_BASE}/video-service/iframe"
    assert first["title"] == "Funeral service"
    assert first["sequenceNumber"] == 1
    assert first["recordingReady"] is True
    assert body["recordingReady"] is True
    assert body["recordingUrl"] == f"{DELIVERY_BASE}/video-soundcheck/manifest/video.m3u8"
    assert body["cloudflareId"] == stream.cloudflareId
    assert_no_secrets(response, backend)


def test_an_editor_fetches_recordings_from_cloudflare(backend: Backend, prefix: str) -> None:
    stream = backend.create_stream(on_memorial=people.MEMORIAL.id)
    backend.add_recording(stream.id, "video-1")
    path = f"{prefix}/streams/{stream.id}/recordings"

    first = ok(client("streamrecordings").post(path, headers=bearer(people.FUNERAL_DIRECTOR)))
    again = ok(client("streamrecordings").post(path, headers=bearer(people.FUNERAL_DIRECTOR)))

    assert first["streamId"] == stream.id
    assert first["recordingsFound"] == 1
    assert first["newRecordingsAdded"] == 1
    assert first["totalRecordings"] == 1
    assert first["recordingReady"] is True
    assert first["recordingUrl"] == f"{DELIVERY_BASE}/video-1/manifest/video.m3u8"
    assert [r["videoId"] for r in first["recordings"]] == ["video-1"]
    assert first["syncedAt"]
    assert again["newRecordingsAdded"] == 0
    assert backend.stream(stream.id).video_id == "video-1"


def test_recordings_refusals(backend: Backend) -> None:
    public = f"/api/streams/{backend.create_stream().id}/recordings"
    private = f"/api/streams/{backend.create_stream(isPublic=False).id}/recordings"
    recordings = client("streamrecordings")

    error(recordings.post(public), 401)
    error(recordings.post(public, headers=bearer(people.STRANGER)), 403)
    error(recordings.get(private), 401)
    error(recordings.get("/api/streams/missing/recordings"), 404)
    error(recordings.put(public), 405)


def test_cloudflare_down_while_fetching_recordings_is_a_retryable_503(backend: Backend) -> None:
    stream = backend.create_stream()
    backend.provider.fail("list_recordings", ProviderUnavailableError("timeout"))

    response = client("streamrecordings").post(
        f"/api/streams/{stream.id}/recordings", headers=bearer(people.OWNER)
    )

    error(response, 503, "unavailable")
    assert int(response.headers["Retry-After"]) > 0


# --- streamrecording -------------------------------------------------------------------------


def test_a_manager_shows_the_service_first_and_hides_the_sound_check(
    backend: Backend, prefix: str
) -> None:
    stream = broadcast_with_two_recordings(backend)
    base = f"{prefix}/streams/{stream.id}/recordings"

    chosen = ok(
        client("streamrecording").put(
            f"{base}/video-service", json={"primary": True}, headers=bearer(people.FUNERAL_DIRECTOR)
        )
    )
    hidden = ok(
        client("streamrecording").put(
            f"{base}/video-soundcheck",
            json={"hidden": True},
            headers=bearer(people.FUNERAL_DIRECTOR),
        )
    )

    assert chosen["videoId"] == "video-service"
    assert [(r["id"], r["primary"]) for r in chosen["recordings"]] == [
        ("video-service", True),
        ("video-soundcheck", False),
    ]
    assert [(r["id"], r["hidden"]) for r in hidden["recordings"]] == [
        ("video-service", False),
        ("video-soundcheck", True),
    ]
    public = ok(client("streamrecordings").get(f"/api/streams/{stream.id}/recordings"))
    assert [r["id"] for r in public["recordings"]] == ["video-service"]
    assert public["recordingUrl"] == f"{DELIVERY_BASE}/video-service/manifest/video.m3u8"


@pytest.mark.parametrize(
    "payload", [{}, {"primary": True, "hidden": True}, {"primary": "sure"}, {"other": 1}]
)
def test_a_recording_choice_the_api_cannot_take_is_a_400(backend: Backend, payload: object) -> None:
    stream = broadcast_with_two_recordings(backend)

    response = client("streamrecording").put(
        f"/api/streams/{stream.id}/recordings/video-service",
        json=payload,
        headers=bearer(people.OWNER),
    )

    error(response, 400, "invalid-argument")


def test_a_recording_choice_refusals(backend: Backend) -> None:
    stream = broadcast_with_two_recordings(backend)
    base = f"/api/streams/{stream.id}/recordings"
    backend.add_recording(stream.id, "video-processing", ready=False, minutes=9)
    backend.fetch_recordings(stream.id)
    primary = {"primary": True}

    def choose(video: str, headers: dict[str, str]) -> TestResponse:
        return client("streamrecording").put(f"{base}/{video}", json=primary, headers=headers)

    error(choose("no-such-video", bearer(people.OWNER)), 404)
    error(choose("video-processing", bearer(people.OWNER)), 409, "conflict")
    error(choose("video-service", bearer(people.STRANGER)), 403)
    error(choose("video-service", {}), 401)
    error(client("streamrecording").get(f"{base}/video-service", headers=bearer(people.OWNER)), 405)
