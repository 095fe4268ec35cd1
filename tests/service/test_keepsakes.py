"""Keepsakes over fakes: MP4 downloads for the family, trims that become the primary recording,
deleting one recording; each followed to ready by scheduled checks."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest

from common.errors import (
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from common.models.domain import Recording, Stream, User
from common.ports import ProviderRateLimitedError, ProviderUnavailableError
from common.services.keepsakes import (
    KEEPSAKE_TASK_PATH,
    ClipRequest,
    KeepsakePolicy,
    KeepsakeService,
)
from tests import people
from tests.conftest import World
from tests.fakes import local_playback_tokens

CHECKS = 4
MAX_CHECKS = 10


class Keepsakes(World):
    """The world of the other service tests, with the keepsakes service and a stream on the
    public memorial holding one ready recording (120 s) of its broadcast."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens = local_playback_tokens(self.clock)
        self.keepsakes = KeepsakeService(
            self.backends,
            policy=KeepsakePolicy(
                keepsake_checks=CHECKS, keepsake_check_interval_s=10, keepsake_max_checks=MAX_CHECKS
            ),
            allowed_origins=("example.com",),
            tokens=lambda: self.tokens,
        )
        self.stream_id, self.input_uid = self.new_memorial_stream()
        self.add_recording("video-1")
        self.delivered = 0

    def add_recording(self, uid: str, *, ready: bool = True) -> Recording:
        created = self.clock.now() + timedelta(minutes=len(self.provider.recordings) + 1)
        recording = Recording(
            video_uid=uid,
            live_input_uid=self.input_uid,
            state="ready" if ready else "inprogress",
            ready_to_stream=ready,
            duration=120.0 if ready else None,
            hls_url=f"https://delivery.test/{uid}/manifest/video.m3u8" if ready else None,
            created=created,
            modified=created,
        )
        self.provider.recordings.setdefault(self.input_uid, []).append(recording)
        self.monitors.reconcile(self.stream_id)
        return recording

    def stream(self) -> Stream:
        stored = self.repo.get(self.stream_id)
        assert stored is not None
        return stored

    def run_tasks(self, *, all_of_them: bool = False) -> list[str]:
        """Deliver the keepsake checks queued and not delivered yet, once each, as Cloud Tasks
        would; with ``all_of_them`` also those they queue, until the chains end."""
        outcomes: list[str] = []
        due = len(self.tasks.tasks)
        while self.delivered < (len(self.tasks.tasks) if all_of_them else due):
            task = self.tasks.tasks[self.delivered]
            self.delivered += 1
            if task.path != KEEPSAKE_TASK_PATH:
                continue
            payload = task.payload
            outcomes.append(
                self.keepsakes.run_check(
                    payload["kind"],  # type: ignore[arg-type]
                    str(payload["streamId"]),
                    str(payload["videoId"]),
                    int(payload["generation"]),  # type: ignore[call-overload]
                    int(payload["attempt"]),  # type: ignore[call-overload]
                )
            )
        return outcomes

    def keepsake_tasks(self) -> list[str]:
        return [t.name for t in self.tasks.tasks if t.path == KEEPSAKE_TASK_PATH]


@pytest.fixture
def ks() -> Keepsakes:
    return Keepsakes()


# Downloads.


@pytest.mark.parametrize("user", [people.OWNER, people.MEMORIAL_OWNER, people.HELPER])
def test_the_family_may_ask_for_a_download(ks: Keepsakes, user: User) -> None:
    view = ks.keepsakes.request_download(user, ks.stream_id, "video-1")
    assert (view.state, view.url) == ("preparing", None)
    assert ks.keepsakes.download(user, ks.stream_id, "video-1").state == "preparing"


@pytest.mark.parametrize(
    ("user", "refusal"),
    [
        (people.FUNERAL_DIRECTOR, PermissionDeniedError),
        (people.STRANGER, PermissionDeniedError),
        (None, UnauthenticatedError),
    ],
)
def test_viewers_and_the_funeral_director_may_not_download(
    ks: Keepsakes, user: User | None, refusal: type[Exception]
) -> None:
    with pytest.raises(refusal):
        ks.keepsakes.request_download(user, ks.stream_id, "video-1")
    with pytest.raises(refusal):
        ks.keepsakes.download(user, ks.stream_id, "video-1")
    assert "create_download" not in ks.provider.calls


def test_a_download_of_a_video_that_is_not_the_streams_is_not_found(ks: Keepsakes) -> None:
    with pytest.raises(NotFoundError):
        ks.keepsakes.request_download(people.OWNER, ks.stream_id, "someone-elses-video")
    with pytest.raises(NotFoundError):
        ks.keepsakes.download(people.OWNER, ks.stream_id, "someone-elses-video")


def test_a_download_of_a_recording_still_processing_is_a_conflict(ks: Keepsakes) -> None:
    ks.add_recording("video-2", ready=False)
    with pytest.raises(ConflictError):
        ks.keepsakes.request_download(people.OWNER, ks.stream_id, "video-2")
    assert "create_download" not in ks.provider.calls


def test_asking_again_starts_no_second_download_nor_second_chain(ks: Keepsakes) -> None:
    ks.keepsakes.request_download(people.OWNER, ks.stream_id, "video-1")
    again = ks.keepsakes.request_download(people.MEMORIAL_OWNER, ks.stream_id, "video-1")
    assert again.state == "preparing"
    assert ks.provider.calls.count("create_download") == 1
    assert len(ks.keepsake_tasks()) == 1


def test_the_check_follows_the_download_to_ready_and_then_the_url_is_given(
    ks: Keepsakes,
) -> None:
    ks.keepsakes.request_download(people.OWNER, ks.stream_id, "video-1")
    ks.provider.progress_download("video-1", "inprogress", 40)
    ks.run_tasks()
    progress = ks.keepsakes.download(people.OWNER, ks.stream_id, "video-1")
    assert (progress.state, progress.percentComplete, progress.url) == ("preparing", 40, None)

    ks.provider.progress_download("video-1", "ready", 100)
    assert ks.run_tasks()[-1] == "done"
    ready = ks.keepsakes.download(people.OWNER, ks.stream_id, "video-1")
    assert ready.state == "ready"
    assert ready.url == "https://delivery.test/video-1/downloads/default.mp4"
    assert ready.expiresAt is None  # a public stream's URL is not signed
    # Ready: asking again calls nothing and schedules nothing.
    tasks = ks.keepsake_tasks()
    assert ks.keepsakes.request_download(people.OWNER, ks.stream_id, "video-1").state == "ready"
    assert ks.provider.calls.count("create_download") == 1
    assert ks.keepsake_tasks() == tasks


def test_a_download_that_never_finishes_ends_in_error_after_the_last_check(
    ks: Keepsakes,
) -> None:
    ks.keepsakes.request_download(people.OWNER, ks.stream_id, "video-1")
    assert ks.run_tasks(all_of_them=True) == ["rescheduled"] * (CHECKS - 1) + ["failed"]
    assert ks.keepsakes.download(people.OWNER, ks.stream_id, "video-1").state == "error"
    # An error may be asked for again: a new chain, with new task names.
    ks.clock.advance(5)
    assert ks.keepsakes.request_download(people.OWNER, ks.stream_id, "video-1").state == "preparing"
    assert len(set(ks.keepsake_tasks())) == CHECKS + 1


def test_a_duplicate_delivery_of_a_check_does_nothing(ks: Keepsakes) -> None:
    ks.keepsakes.request_download(people.OWNER, ks.stream_id, "video-1")
    first = ks.tasks.tasks[-1].payload
    args = ("download", ks.stream_id, "video-1", first["generation"], 0)
    assert ks.keepsakes.run_check(*args) == "rescheduled"  # type: ignore[arg-type]
    calls = len(ks.provider.calls)
    assert ks.keepsakes.run_check(*args) == "stale"  # type: ignore[arg-type]
    assert len(ks.provider.calls) == calls


def test_a_failed_cloudflare_call_leaves_nothing_written(ks: Keepsakes) -> None:
    before = ks.stream()
    ks.provider.fail("create_download", ProviderUnavailableError("Cloudflare 503"))
    with pytest.raises(ProviderUnavailableError):
        ks.keepsakes.request_download(people.OWNER, ks.stream_id, "video-1")
    assert ks.stream() == before
    assert ks.keepsake_tasks() == []


def test_checks_cloudflare_does_not_answer_go_on_by_their_own_next_check(ks: Keepsakes) -> None:
    """An outage longer than the queue's retries must not leave the family's MP4 "preparing"
    for good: each unanswered check queues the next, and the first answer settles it."""
    ks.keepsakes.request_download(people.OWNER, ks.stream_id, "video-1")
    for _ in range(CHECKS + 1):  # past the usual budget
        ks.provider.fail("get_download", ProviderUnavailableError("Cloudflare 503"))
    ks.provider.progress_download("video-1", "ready", 100)

    assert ks.run_tasks(all_of_them=True) == ["unanswered"] * (CHECKS + 1) + ["done"]
    assert ks.keepsakes.download(people.OWNER, ks.stream_id, "video-1").state == "ready"
    assert len(set(ks.keepsake_tasks())) == CHECKS + 2  # each check queued its successor once


def test_a_rate_limited_check_waits_out_its_retry_after_before_the_next(ks: Keepsakes) -> None:
    ks.keepsakes.request_download(people.OWNER, ks.stream_id, "video-1")
    ks.provider.fail("get_download", ProviderRateLimitedError("Cloudflare 429", retry_after_s=90))
    ks.provider.fail("get_download", ProviderUnavailableError("Cloudflare 503"))

    assert ks.run_tasks() == ["unanswered"]
    assert ks.tasks.tasks[-1].delay_s == 90  # not the usual 10 s
    assert ks.run_tasks() == ["unanswered"]
    assert ks.tasks.tasks[-1].delay_s == 10


def test_checks_cloudflare_did_not_answer_do_not_count_against_the_budget(
    ks: Keepsakes,
) -> None:
    """After an outage as long as the whole budget, the first answer still "preparing" goes
    on being followed: it does not end the family's download in error."""
    ks.keepsakes.request_download(people.OWNER, ks.stream_id, "video-1")
    for _ in range(CHECKS):
        ks.provider.fail("get_download", ProviderUnavailableError("Cloudflare 503"))
    ks.provider.progress_download("video-1", "inprogress", 50)

    assert ks.run_tasks(all_of_them=True) == (
        ["unanswered"] * CHECKS + ["rescheduled"] * (CHECKS - 1) + ["failed"]
    )


def test_a_download_cloudflare_never_answers_ends_in_error_and_may_be_asked_again(
    ks: Keepsakes,
) -> None:
    ks.keepsakes.request_download(people.OWNER, ks.stream_id, "video-1")
    for _ in range(MAX_CHECKS):
        ks.provider.fail(
            "get_download", ProviderRateLimitedError("Cloudflare 429", retry_after_s=30)
        )

    assert ks.run_tasks(all_of_them=True) == ["unanswered"] * (MAX_CHECKS - 1) + ["gave_up"]
    assert ks.keepsakes.download(people.OWNER, ks.stream_id, "video-1").state == "error"
    ks.clock.advance(5)
    assert ks.keepsakes.request_download(people.OWNER, ks.stream_id, "video-1").state == "preparing"


def test_a_trim_cloudflare_does_not_answer_for_a_while_still_becomes_primary(
    ks: Keepsakes,
) -> None:
    clip_uid = ks.keepsakes.clip(people.OWNER, ks.stream_id, "video-1", trim(10, 100)).videoId
    for _ in range(2):
        ks.provider.fail("get_recording", ProviderUnavailableError("Cloudflare 503"))
    assert ks.run_tasks() == ["unanswered"]
    assert ks.run_tasks() == ["unanswered"]
    ks.provider.finish_clip(clip_uid)
    assert ks.run_tasks() == ["done"]
    assert ks.stream().video_id == clip_uid


def test_a_trim_cloudflare_never_answers_is_dropped_and_the_family_told(ks: Keepsakes) -> None:
    ks.keepsakes.clip(people.OWNER, ks.stream_id, "video-1", trim(10, 100))
    for _ in range(MAX_CHECKS):
        ks.provider.fail("get_recording", ProviderUnavailableError("Cloudflare 503"))

    assert ks.run_tasks(all_of_them=True) == ["unanswered"] * (MAX_CHECKS - 1) + ["gave_up"]
    dropped = ks.stream()
    assert (dropped.video_id, dropped.pending_clip) == ("video-1", None)
    assert dropped.last_error is not None and dropped.last_error.code == "CLIP_NOT_READY"


def test_a_private_streams_download_url_is_signed_and_downloadable(ks: Keepsakes) -> None:
    ks.repo.update(ks.stream_id, lambda s: s.model_copy(update={"is_public": False}))
    ks.keepsakes.request_download(people.OWNER, ks.stream_id, "video-1")
    ks.provider.progress_download("video-1")
    ks.run_tasks()
    ready = ks.keepsakes.download(people.OWNER, ks.stream_id, "video-1")
    assert ready.url is not None
    assert "/video-1/" not in ready.url
    token = ready.url.split("/")[-3]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "video-1"
    assert claims["downloadable"] is True
    assert ready.expiresAt is not None
    assert ready.expiresAt > ks.clock.now()


# Trims.


def trim(start: int, end: int) -> ClipRequest:
    return ClipRequest(startTimeSeconds=start, endTimeSeconds=end)


@pytest.mark.parametrize(
    "user", [people.OWNER, people.MEMORIAL_OWNER, people.FUNERAL_DIRECTOR, people.HELPER]
)
def test_managers_may_trim(ks: Keepsakes, user: User) -> None:
    view = ks.keepsakes.clip(user, ks.stream_id, "video-1", trim(10, 100))
    assert (view.clippedFrom, view.state) == ("video-1", "processing")


def test_a_viewer_may_not_trim(ks: Keepsakes) -> None:
    with pytest.raises(PermissionDeniedError):
        ks.keepsakes.clip(people.STRANGER, ks.stream_id, "video-1", trim(10, 100))


def test_a_trim_past_the_recordings_end_is_refused_before_cloudflare_is_asked(
    ks: Keepsakes,
) -> None:
    with pytest.raises(InvalidArgumentError, match="past the end of the recording"):
        ks.keepsakes.clip(people.OWNER, ks.stream_id, "video-1", trim(10, 121))
    assert "clip_recording" not in ks.provider.calls
    with pytest.raises(NotFoundError):
        ks.keepsakes.clip(people.OWNER, ks.stream_id, "no-such-video", trim(0, 10))


def test_inverted_bounds_are_refused_by_the_request_model() -> None:
    with pytest.raises(ValueError, match="after startTimeSeconds"):
        trim(50, 50)


def test_a_trim_is_a_new_recording_that_becomes_primary_by_its_webhook(ks: Keepsakes) -> None:
    clip_uid = ks.keepsakes.clip(people.OWNER, ks.stream_id, "video-1", trim(10, 100)).videoId
    pending = ks.stream()
    assert pending.video_id == "video-1"  # until the trim is ready the page keeps the original
    assert pending.pending_clip is not None
    assert pending.pending_clip.video_uid == clip_uid

    ks.events.apply_video_event(ks.provider.finish_clip(clip_uid), ks.stream_id)

    done = ks.stream()
    assert (done.video_id, done.primary_video_id, done.pending_clip) == (clip_uid, clip_uid, None)
    assert done.recording_duration == 90
    uids = {e.video_uid: e.clipped_from for e in done.recordings}
    assert uids == {"video-1": None, clip_uid: "video-1"}  # the original is kept


def test_a_trim_whose_webhook_is_lost_becomes_primary_by_the_check(ks: Keepsakes) -> None:
    clip_uid = ks.keepsakes.clip(people.OWNER, ks.stream_id, "video-1", trim(10, 100)).videoId
    assert ks.run_tasks() == ["rescheduled"]
    ks.provider.finish_clip(clip_uid)
    assert ks.run_tasks() == ["done"]
    assert ks.stream().video_id == clip_uid
    assert ks.stream().pending_clip is None


def test_a_clips_webhook_matches_only_the_stream_that_noted_its_uid(ks: Keepsakes) -> None:
    clip_uid = ks.keepsakes.clip(people.OWNER, ks.stream_id, "video-1", trim(10, 100)).videoId
    other, _ = ks.new_stream(people.OWNER)
    stray = ks.provider.finish_clip(clip_uid).model_copy(update={"video_uid": "stray"})
    assert ks.events.apply_video_event(stray, ks.stream_id).stream_id is None
    assert ks.events.apply_video_event(ks.provider.clips[clip_uid], other.id).stream_id is None
    assert ks.stream().video_id == "video-1"


def test_a_trim_cloudflare_fails_is_dropped_and_the_family_told(ks: Keepsakes) -> None:
    clip_uid = ks.keepsakes.clip(people.OWNER, ks.stream_id, "video-1", trim(10, 100)).videoId
    ks.provider.finish_clip(clip_uid, state="error")
    assert ks.run_tasks() == ["failed"]
    failed = ks.stream()
    assert (failed.video_id, failed.pending_clip) == ("video-1", None)
    assert failed.last_error is not None
    assert failed.last_error.code == "CLIP_FAILED"


def test_asking_again_resumes_a_download_whose_next_check_could_not_be_queued(
    ks: Keepsakes,
) -> None:
    ks.keepsakes.request_download(people.OWNER, ks.stream_id, "video-1")
    ks.tasks.unavailable_for = 1  # the first check runs, but its successor is not queued
    assert ks.run_tasks(all_of_them=True) == ["rescheduled"]
    ks.provider.progress_download("video-1", "ready", 100)

    again = ks.keepsakes.request_download(people.MEMORIAL_OWNER, ks.stream_id, "video-1")

    assert again.state == "preparing"
    assert ks.provider.calls.count("create_download") == 1  # the same download, followed on
    assert ks.run_tasks(all_of_them=True) == ["done"]
    assert ks.keepsakes.download(people.OWNER, ks.stream_id, "video-1").state == "ready"


def test_asking_again_resumes_a_trim_whose_next_check_could_not_be_queued(ks: Keepsakes) -> None:
    clip_uid = ks.keepsakes.clip(people.OWNER, ks.stream_id, "video-1", trim(10, 100)).videoId
    ks.tasks.unavailable_for = 1
    assert ks.run_tasks(all_of_them=True) == ["rescheduled"]
    ks.provider.finish_clip(clip_uid)  # its webhook lost too

    ks.keepsakes.clip(people.OWNER, ks.stream_id, "video-1", trim(10, 100))

    assert ks.run_tasks(all_of_them=True) == ["done"]
    assert ks.stream().video_id == clip_uid


def lose_next_check(ks: Keepsakes) -> dict[str, object]:
    """The next queued check is delivered and fails for good (its name is spent)."""
    task = ks.tasks.tasks[ks.delivered]
    ks.delivered += 1
    return dict(task.payload)


def test_asking_again_resumes_a_stalled_download_past_its_lost_check(ks: Keepsakes) -> None:
    ks.keepsakes.request_download(people.OWNER, ks.stream_id, "video-1")
    lost = lose_next_check(ks)
    ks.provider.progress_download("video-1", "ready", 100)
    # Not stalled yet: asking again queues that check again, which the queue already holds.
    ks.keepsakes.request_download(people.OWNER, ks.stream_id, "video-1")
    assert ks.run_tasks() == []

    ks.clock.advance(11 * 60)
    ks.keepsakes.request_download(people.OWNER, ks.stream_id, "video-1")

    assert ks.run_tasks() == ["done"]
    assert ks.keepsakes.download(people.OWNER, ks.stream_id, "video-1").state == "ready"
    args = (lost["kind"], ks.stream_id, "video-1", lost["generation"], lost["attempt"])
    assert ks.keepsakes.run_check(*args) == "stale"  # type: ignore[arg-type]


def test_asking_again_resumes_a_stalled_trim_past_its_lost_check(ks: Keepsakes) -> None:
    clip_uid = ks.keepsakes.clip(people.OWNER, ks.stream_id, "video-1", trim(10, 100)).videoId
    lose_next_check(ks)
    ks.provider.finish_clip(clip_uid)  # its webhook lost too
    ks.clock.advance(11 * 60)

    ks.keepsakes.clip(people.OWNER, ks.stream_id, "video-1", trim(10, 100))

    assert ks.run_tasks() == ["done"]
    assert ks.stream().video_id == clip_uid


def test_asking_again_for_the_same_trim_answers_it_and_another_trim_waits(
    ks: Keepsakes,
) -> None:
    first = ks.keepsakes.clip(people.OWNER, ks.stream_id, "video-1", trim(10, 100))
    assert ks.keepsakes.clip(people.OWNER, ks.stream_id, "video-1", trim(10, 100)) == first
    with pytest.raises(ConflictError):
        ks.keepsakes.clip(people.OWNER, ks.stream_id, "video-1", trim(0, 50))
    assert ks.provider.calls.count("clip_recording") == 1


def test_a_private_streams_trim_requires_signed_urls_at_cloudflare(ks: Keepsakes) -> None:
    ks.repo.update(ks.stream_id, lambda s: s.model_copy(update={"is_public": False}))
    clip_uid = ks.keepsakes.clip(people.OWNER, ks.stream_id, "video-1", trim(10, 100)).videoId
    spec = ks.provider.clip_specs[clip_uid]
    assert (spec.require_signed_urls, spec.allowed_origins) == (True, ("example.com",))


def test_deleting_the_stream_deletes_its_trims_at_cloudflare(ks: Keepsakes) -> None:
    clip_uid = ks.keepsakes.clip(people.OWNER, ks.stream_id, "video-1", trim(10, 100)).videoId
    ks.service.delete(people.MEMORIAL_OWNER, ks.stream_id)
    assert clip_uid not in ks.provider.clips
    assert ks.provider.recordings[ks.input_uid] == []


# Deleting one recording.


def test_the_last_playable_recording_cannot_be_deleted(ks: Keepsakes) -> None:
    with pytest.raises(ConflictError, match="only playable recording"):
        ks.keepsakes.delete_recording(people.MEMORIAL_OWNER, ks.stream_id, "video-1")
    assert "delete_recording" not in ks.provider.calls


def test_the_original_can_be_deleted_once_the_trim_plays(ks: Keepsakes) -> None:
    clip_uid = ks.keepsakes.clip(people.OWNER, ks.stream_id, "video-1", trim(10, 100)).videoId
    ks.provider.finish_clip(clip_uid)
    ks.run_tasks()
    view = ks.keepsakes.delete_recording(people.MEMORIAL_OWNER, ks.stream_id, "video-1")
    assert view.video_id == clip_uid
    assert [e.video_uid for e in ks.stream().recordings] == [clip_uid]
    assert ks.provider.recordings[ks.input_uid] == []


def test_a_deleted_recording_reported_late_stays_deleted(ks: Keepsakes) -> None:
    later = ks.add_recording("video-2")
    assert ks.stream().video_id == "video-2"
    ks.keepsakes.delete_recording(people.MEMORIAL_OWNER, ks.stream_id, "video-2")

    # Its ready webhook retried after the delete, and a check that listed it just before.
    ks.events.apply_video_event(later, ks.stream_id)
    ks.provider.recordings[ks.input_uid].append(later)
    ks.monitors.reconcile(ks.stream_id)

    stream = ks.stream()
    assert [e.video_uid for e in stream.recordings] == ["video-1"]
    assert (stream.video_id, stream.deleted_video_ids) == ("video-1", ("video-2",))
    assert stream.recording_url == "https://delivery.test/video-1/manifest/video.m3u8"


def test_the_funeral_director_may_not_delete_the_familys_recordings(ks: Keepsakes) -> None:
    ks.add_recording("video-2")
    with pytest.raises(PermissionDeniedError):
        ks.keepsakes.delete_recording(people.FUNERAL_DIRECTOR, ks.stream_id, "video-1")
    deleted = ks.keepsakes.delete_recording(people.MEMORIAL_OWNER, ks.stream_id, "video-2")
    assert deleted.video_id == "video-1"
