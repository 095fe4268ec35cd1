"""``streamanalytics``: the family's peak viewers and minutes viewed, refused to viewers."""

from __future__ import annotations

from common.ports import ProviderUnavailableError
from tests import people
from tests.functions.calls import bearer, client, error, ok
from tests.functions.conftest import Backend, Created


def served(backend: Backend) -> Created:
    """A memorial's stream that went live, peaked at 14 viewers and ended with a recording."""
    stream = backend.create_stream(on_memorial=people.MEMORIAL.id)
    backend.start(stream.id)
    backend.add_recording(stream.id, "video-1")
    backend.repo.update(stream.id, lambda s: s.model_copy(update={"max_viewers": 14}))
    backend.stop(stream.id)
    backend.fetch_recordings(stream.id)
    backend.provider.minutes = {"video-1": 42.5}
    return stream


def test_the_family_sees_peak_viewers_and_minutes_viewed(backend: Backend, prefix: str) -> None:
    stream = served(backend)
    path = f"{prefix}/streams/{stream.id}/analytics"

    for user in (people.MEMORIAL_OWNER, people.FUNERAL_DIRECTOR):
        response = client("streamanalytics").get(path, headers=bearer(user))
        body = ok(response)
        assert response.headers["Cache-Control"] == "private, no-store"
        assert (body["peakViewers"], body["viewerCount"], body["minutesViewed"]) == (14, 0, 42.5)
        assert body["status"] == "completed" and body["videoIds"] == ["video-1"]
    uids, _, _ = backend.provider.minutes_asked[-1]
    assert "video-1" in uids


def test_analytics_are_refused_to_viewers_and_strangers(backend: Backend, prefix: str) -> None:
    stream = served(backend)
    path = f"{prefix}/streams/{stream.id}/analytics"

    error(
        client("streamanalytics").get(path, headers=bearer(people.STRANGER)),
        403,
        "permission-denied",
    )
    refused = client("streamanalytics").get(path)
    assert refused.status_code in (401, 403)
    error(client("streamanalytics").get(f"{prefix}/streams/missing/analytics"), 404, "not-found")
    assert backend.provider.minutes_asked == []


def test_a_cloudflare_failure_is_a_503_to_retry(backend: Backend) -> None:
    stream = served(backend)
    backend.provider.fail("minutes_viewed", ProviderUnavailableError("graphql down"))
    path = f"/api/streams/{stream.id}/analytics"
    error(client("streamanalytics").get(path, headers=bearer(people.MEMORIAL_OWNER)), 503)
