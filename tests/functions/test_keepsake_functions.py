"""``downloadrecording`` (the family's MP4 of a recording), ``cliprecording`` (a manager's
trim), ``streamrecording``'s DELETE and ``runkeepsakecheck`` (the check Cloud Tasks runs)."""

from __future__ import annotations

from typing import Any

import pytest

from common.ports import ProviderUnavailableError
from common.services.keepsakes import KEEPSAKE_TASK_PATH
from tests import people
from tests.functions.calls import bearer, client, error, ok
from tests.functions.conftest import TASK_TOKEN, Backend, Created

TASK_AUTH = {"X-Task-Auth": TASK_TOKEN, "X-CloudTasks-TaskName": "test-task"}


def recorded(backend: Backend) -> Created:
    """A completed stream on the public memorial with one ready recording of 120 s."""
    stream = backend.create_stream(on_memorial=people.MEMORIAL.id)
    backend.start(stream.id)
    backend.add_recording(stream.id, "video-1")
    backend.stop(stream.id)
    backend.fetch_recordings(stream.id)
    return stream


def run_keepsake_checks(backend: Backend) -> list[Any]:
    """POST every queued keepsake check to the task function, as Cloud Tasks would."""
    tasks = [t for t in backend.tasks.tasks if t.path == KEEPSAKE_TASK_PATH]
    return [
        ok(client("runkeepsakecheck").post(t.path, json=t.payload, headers=TASK_AUTH))["outcome"]
        for t in tasks
    ]


def test_the_family_downloads_a_recording_once_it_is_ready(backend: Backend, prefix: str) -> None:
    stream = recorded(backend)
    path = f"{prefix}/streams/{stream.id}/recordings/video-1/download"
    family = bearer(people.MEMORIAL_OWNER)

    none = ok(client("downloadrecording").get(path, headers=family))
    asked = ok(client("downloadrecording").post(path, headers=family), 202)
    again = ok(client("downloadrecording").post(path, headers=family), 202)
    backend.provider.progress_download("video-1")
    outcomes = run_keepsake_checks(backend)
    response = client("downloadrecording").get(path, headers=family)
    ready = ok(response)

    assert (none["state"], none["percentComplete"], none["url"]) == ("none", 0, None)
    assert asked["state"] == again["state"] == "preparing"
    assert outcomes == ["done"]
    assert ready["state"] == "ready"
    assert ready["percentComplete"] == 100
    assert ready["url"].endswith("/video-1/downloads/default.mp4")
    assert response.headers["Cache-Control"] == "private, no-store"


def test_download_refusals(backend: Backend) -> None:
    stream = recorded(backend)
    backend.add_recording(stream.id, "video-later", ready=False, minutes=9)
    backend.fetch_recordings(stream.id)
    base = f"/api/streams/{stream.id}/recordings"
    download = client("downloadrecording")

    error(download.post(f"{base}/video-1/download"), 401, "unauthenticated")
    error(download.post(f"{base}/video-1/download", headers=bearer(people.STRANGER)), 403)
    error(download.get(f"{base}/video-1/download", headers=bearer(people.FUNERAL_DIRECTOR)), 403)
    error(
        download.post(f"{base}/video-other/download", headers=bearer(people.OWNER)),
        404,
        "not-found",
    )
    error(download.post(f"{base}/video-later/download", headers=bearer(people.OWNER)), 409)
    backend.provider.fail("create_download", ProviderUnavailableError("Cloudflare 503"))
    error(
        download.post(f"{base}/video-1/download", headers=bearer(people.OWNER)), 503, "unavailable"
    )
    assert backend.stream(stream.id).recordings[0].download is None


def test_a_trim_becomes_the_recording_the_page_shows(backend: Backend, prefix: str) -> None:
    stream = recorded(backend)
    path = f"{prefix}/streams/{stream.id}/recordings/video-1/clip"
    trim = {"startTimeSeconds": 15, "endTimeSeconds": 75}

    made = ok(
        client("cliprecording").post(path, json=trim, headers=bearer(people.FUNERAL_DIRECTOR)), 202
    )
    backend.provider.finish_clip(made["videoId"])
    outcomes = run_keepsake_checks(backend)
    shown = ok(client("streamrecordings").get(f"/api/streams/{stream.id}/recordings"))

    assert made | trim == made
    assert (made["clippedFrom"], made["state"]) == ("video-1", "processing")
    assert outcomes == ["done"]
    assert shown["recordingDuration"] == 60
    assert shown["recordingUrl"].endswith(f"/{made['videoId']}/manifest/video.m3u8")
    assert {r["id"] for r in shown["recordings"]} == {"video-1", made["videoId"]}  # both kept


@pytest.mark.parametrize(
    ("trim", "says"),
    [
        ({"startTimeSeconds": 50, "endTimeSeconds": 50}, "after startTimeSeconds"),
        ({"startTimeSeconds": 80, "endTimeSeconds": 20}, "after startTimeSeconds"),
        ({"startTimeSeconds": -1, "endTimeSeconds": 20}, "startTimeSeconds"),
        ({"startTimeSeconds": 0, "endTimeSeconds": 121}, "past the end of the recording"),
        ({"startTimeSeconds": 1.5, "endTimeSeconds": 20}, "startTimeSeconds"),
        ({"startTimeSeconds": "1", "endTimeSeconds": 20}, "startTimeSeconds"),
        ({"endTimeSeconds": 20}, "startTimeSeconds"),
        ({"startTimeSeconds": 0, "endTimeSeconds": 20, "other": 1}, "other"),
    ],
)
def test_a_trim_outside_the_recording_is_a_clear_400(
    backend: Backend, trim: dict[str, Any], says: str
) -> None:
    stream = recorded(backend)
    path = f"/api/streams/{stream.id}/recordings/video-1/clip"

    body = error(client("cliprecording").post(path, json=trim, headers=bearer(people.OWNER)), 400)

    assert says in body["error"]
    assert "clip_recording" not in backend.provider.calls


def test_trim_refusals(backend: Backend) -> None:
    stream = recorded(backend)
    base = f"/api/streams/{stream.id}/recordings"
    trim = {"startTimeSeconds": 0, "endTimeSeconds": 30}
    clip = client("cliprecording")

    error(clip.post(f"{base}/video-1/clip", json=trim, headers=bearer(people.STRANGER)), 403)
    error(clip.post(f"{base}/nope/clip", json=trim, headers=bearer(people.OWNER)), 404, "not-found")
    ok(clip.post(f"{base}/video-1/clip", json=trim, headers=bearer(people.OWNER)), 202)
    other = {"startTimeSeconds": 5, "endTimeSeconds": 30}
    error(clip.post(f"{base}/video-1/clip", json=other, headers=bearer(people.OWNER)), 409)


def test_one_recording_is_deleted_but_never_the_last_playable(backend: Backend) -> None:
    stream = recorded(backend)
    backend.add_recording(stream.id, "video-soundcheck", minutes=9)
    backend.fetch_recordings(stream.id)
    base = f"/api/streams/{stream.id}/recordings"
    recording = client("streamrecording")

    error(recording.delete(f"{base}/video-1", headers=bearer(people.FUNERAL_DIRECTOR)), 403)
    kept = ok(recording.delete(f"{base}/video-soundcheck", headers=bearer(people.MEMORIAL_OWNER)))
    last = error(recording.delete(f"{base}/video-1", headers=bearer(people.MEMORIAL_OWNER)), 409)

    assert [r["id"] for r in kept["recordings"]] == ["video-1"]
    assert kept["videoId"] == "video-1"
    assert "only playable recording" in last["error"]
    assert [r.video_uid for r in backend.provider.recordings[stream.cloudflareId]] == ["video-1"]


def test_a_keepsake_check_for_a_deleted_stream_is_acknowledged(backend: Backend) -> None:
    payload = {
        "kind": "clip",
        "streamId": "gone-stream",
        "videoId": "v",
        "generation": 1,
        "attempt": 0,
    }
    response = client("runkeepsakecheck").post(KEEPSAKE_TASK_PATH, json=payload, headers=TASK_AUTH)
    assert ok(response) == {"outcome": "gone"}
    bad = client("runkeepsakecheck").post(
        KEEPSAKE_TASK_PATH, json=payload | {"kind": "other"}, headers=TASK_AUTH
    )
    assert ok(bad)["acknowledged"] is True
