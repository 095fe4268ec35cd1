"""The ``StreamRepository`` contract: the in-memory fake and Firestore behave alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from common.errors import ConflictError, NotFoundError
from common.models.api import is_document_id
from common.models.domain import (
    MonitorProgress,
    MonitorState,
    RecordingEntry,
    Stream,
    StreamCredentials,
    StreamIssue,
    StreamStatus,
)
from common.ports import StreamAndProgress, StreamQuery, StreamRepository, WhipSession
from tests.fakes import MEMORIAL_STREAM_LIMIT, InMemoryStreamRepository

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
CREDS = StreamCredentials(
    rtmp_url="rtmp://ingest.test/live/",
    stream_key=SecretStr("key-1"),
    whip_url=SecretStr("https://ingest.test/secret-1/webRTC/publish"),
)
OTHER_CREDS = StreamCredentials(
    rtmp_url="rtmp://ingest.test/live/",
    stream_key=SecretStr("key-2"),
    whip_url=SecretStr("https://ingest.test/secret-2/webRTC/publish"),
)


def make_stream(repo: StreamRepository, minute: int = 0, **fields: Any) -> Stream:
    at = NOW + timedelta(minutes=minute)
    base: dict[str, Any] = {
        "id": repo.new_id(),
        "title": "Funeral service",
        "created_by": "owner-uid",
        "created_at": at,
        "updated_at": at,
    }
    return Stream.model_validate(base | fields)


def created(repo: StreamRepository, minute: int = 0, **fields: Any) -> Stream:
    stream = make_stream(repo, minute, **fields)
    repo.create(stream, None)
    return stream


def ids(streams: list[Stream]) -> list[str]:
    return [s.id for s in streams]


# --- ids, create, get -----------------------------------------------------------------------


def test_new_ids_are_fresh_unused_document_ids(repo: StreamRepository) -> None:
    fresh = [repo.new_id() for _ in range(20)]

    assert len(set(fresh)) == 20
    assert all(is_document_id(i) for i in fresh)
    assert repo.get(fresh[0]) is None


def test_a_created_stream_reads_back_equal_every_field_included(repo: StreamRepository) -> None:
    entry = RecordingEntry(
        video_uid="video-1",
        state="ready",
        ready=True,
        hls_url="https://cdn.test/video-1/manifest/video.m3u8",
        dash_url="https://cdn.test/video-1/manifest/video.mpd",
        thumbnail_url="https://cdn.test/video-1/thumbnails/thumbnail.jpg",
        duration=61.5,
        size=1024,
        created=NOW,
        modified=NOW + timedelta(minutes=1),
        hidden=True,
    )
    stream = make_stream(
        repo,
        description="Chapel",
        memorial_id="memorial-1",
        memorial_name="Ada Lovelace",
        allowed_users=("helper-uid",),
        status=StreamStatus.COMPLETED,
        is_visible=False,
        is_public=False,
        display_order=3,
        featured=True,
        scheduled_start_time=NOW + timedelta(hours=1),
        actual_start_time=NOW + timedelta(hours=1, minutes=2),
        end_time=NOW + timedelta(hours=2),
        cloudflare_id="input-1",
        playback_url="https://cdn.test/input-1/manifest/video.m3u8",
        whip_active=False,
        recording_ready=True,
        video_id="video-1",
        recording_url="https://cdn.test/video-1/manifest/video.m3u8",
        recording_dash_url="https://cdn.test/video-1/manifest/video.mpd",
        recording_thumbnail="https://cdn.test/video-1/thumbnails/thumbnail.jpg",
        recording_duration=61.5,
        recording_size=1024,
        recording_updated_at=NOW + timedelta(hours=3),
        viewer_count=7,
        max_viewers=9,
        duration=61.5,
        thumbnail_url="https://cdn.test/input-1/thumbnails/thumbnail.jpg",
        recordings=(entry, entry.model_copy(update={"video_uid": "video-2", "hidden": False})),
        primary_video_id="video-2",
        deleted_video_ids=("video-0",),
        ingest_protocol="whip",
        webrtc_playback_url="https://cdn.test/input-1/webRTC/play",
        recording_monitor=MonitorState(generation=2, next_attempt=1, state="done"),
        status_monitor=MonitorState(
            generation=1, state="gave_up", checked_at=NOW, seen_connected=True
        ),
        last_error=StreamIssue(code="recording_missing", message="No recording", at=NOW),
        live_event_at=NOW + timedelta(hours=1, minutes=3),
        on_air=False,
        went_on_air=True,
    )

    repo.create(stream, CREDS)

    assert repo.get(stream.id) == stream
    assert repo.get_credentials(stream.id) == CREDS


def test_a_stream_created_without_credentials_has_none(repo: StreamRepository) -> None:
    stream = created(repo)
    assert repo.get(stream.id) == stream
    assert repo.get_credentials(stream.id) is None


def test_create_refuses_an_existing_id_with_conflict_and_changes_nothing(
    repo: StreamRepository,
) -> None:
    stream = make_stream(repo)
    repo.create(stream, CREDS)

    with pytest.raises(ConflictError):
        repo.create(stream.model_copy(update={"title": "Other"}), OTHER_CREDS)

    assert repo.get(stream.id) == stream
    assert repo.get_credentials(stream.id) == CREDS


# --- update ---------------------------------------------------------------------------------


def test_update_applies_the_change_and_returns_what_is_stored(repo: StreamRepository) -> None:
    stream = created(repo)

    updated = repo.update(
        stream.id,
        lambda s: s.model_copy(update={"status": StreamStatus.LIVE, "viewer_count": 3}),
    )

    assert updated.status == StreamStatus.LIVE and updated.viewer_count == 3
    assert repo.get(stream.id) == updated
    # A change that changes nothing returns the stream as it is.
    assert repo.update(stream.id, lambda s: s) == updated


def test_update_of_a_missing_stream_is_not_found_and_runs_no_change(
    repo: StreamRepository,
) -> None:
    seen: list[Stream] = []

    def change(stream: Stream) -> Stream:
        seen.append(stream)
        return stream

    with pytest.raises(NotFoundError):
        repo.update(repo.new_id(), change)
    assert seen == []


def test_a_concurrent_write_makes_update_rerun_the_change_on_the_fresh_stream(
    repo: StreamRepository,
) -> None:
    """The change may run more than once: another write between the read and the write is
    never lost, the change runs again on what that write left."""
    stream = created(repo)
    seen: list[Stream] = []

    def bump(current: Stream) -> Stream:
        seen.append(current)
        if len(seen) == 1:  # someone else writes while this change is being applied
            repo.update(stream.id, lambda s: s.model_copy(update={"title": "Renamed"}))
        return current.model_copy(update={"viewer_count": current.viewer_count + 1})

    result = repo.update(stream.id, bump)

    assert len(seen) >= 2
    assert seen[-1].title == "Renamed"
    assert result.title == "Renamed" and result.viewer_count == 1
    assert repo.get(stream.id) == result


def test_a_change_that_raises_writes_nothing(repo: StreamRepository) -> None:
    stream = created(repo)

    def refuse(current: Stream) -> Stream:
        raise ConflictError("Stream is already live")

    with pytest.raises(ConflictError, match="already live"):
        repo.update(stream.id, refuse)
    assert repo.get(stream.id) == stream


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")
def test_update_never_stores_an_invalid_stream(repo: StreamRepository) -> None:
    stream = created(repo)

    with pytest.raises(ValidationError):
        # model_copy does not validate: the repository must.
        repo.update(stream.id, lambda s: s.model_copy(update={"status": "exploded"}))
    assert repo.get(stream.id) == stream


def test_the_fake_replays_each_change_as_a_retried_transaction_would() -> None:
    """Not a contract test: the fake's own promise that a change with side effects shows up
    in the service tests (Firestore re-runs a change whenever a write lands in between)."""
    repo = InMemoryStreamRepository()
    stream = created(repo)
    calls: list[int] = []

    def change(current: Stream) -> Stream:
        calls.append(current.viewer_count)
        return current.model_copy(update={"viewer_count": current.viewer_count + 1})

    assert repo.update(stream.id, change).viewer_count == 1
    assert calls == [0, 0]
    calls.clear()
    quiet = InMemoryStreamRepository(replay_changes=False)
    quiet.update(created(quiet).id, change)
    assert calls == [0]


# --- delete, credentials, WHIP sessions, deleted inputs -------------------------------------


def test_a_check_claims_its_progress_and_writes_the_stream_only_with_an_effect(
    repo: StreamRepository,
) -> None:
    running = MonitorState(generation=7)
    stream = created(repo, recording_monitor=running)
    assert repo.monitor_progress(stream.id, "recording") is None

    def claim(attempt: int, effect: dict[str, Any]) -> Stream:
        def change(current: Stream, progress: MonitorProgress | None) -> StreamAndProgress:
            done = progress.next_attempt if progress else 0
            if done != attempt:
                return current, progress  # a duplicate delivery: nothing to claim
            claimed = MonitorProgress(generation=7, next_attempt=attempt + 1, checked_at=NOW)
            return current.model_copy(update=effect), claimed

        return repo.record_check(stream.id, "recording", change)

    assert claim(0, {}) == stream  # nothing a viewer sees: only the progress is written
    assert repo.get(stream.id) == stream
    assert repo.monitor_progress(stream.id, "recording") == MonitorProgress(
        generation=7, next_attempt=1, checked_at=NOW
    )
    assert claim(0, {"viewer_count": 99}) == stream  # already claimed: no effect either
    finished = {"recording_monitor": MonitorState(generation=7, state="done")}
    assert claim(1, finished).recording_monitor == finished["recording_monitor"]
    assert repo.get(stream.id) == stream.model_copy(update=finished)
    progress = repo.monitor_progress(stream.id, "recording")
    assert progress is not None and progress.next_attempt == 2
    assert repo.monitor_progress(stream.id, "status") is None


def test_concurrent_deliveries_of_one_check_claim_it_once(repo: StreamRepository) -> None:
    stream = created(repo, status_monitor=MonitorState(generation=3))
    effects: list[int] = []
    inner: list[bool] = []

    def check(current: Stream, progress: MonitorProgress | None) -> StreamAndProgress:
        if progress is not None:
            return current, progress  # claimed by the other delivery
        if not effects:  # the other delivery claims the check while this one runs
            effects.append(0)
            inner.append(True)
            repo.record_check(stream.id, "status", check)
            inner.pop()
        # Each delivery's claim is its own (it carries the time of its check).
        claimed = MonitorProgress(
            generation=3,
            next_attempt=1,
            seen_connected=True,
            checked_at=NOW + timedelta(seconds=len(inner)),
        )
        return current.model_copy(update={"viewer_count": current.viewer_count + 1}), claimed

    result = repo.record_check(stream.id, "status", check)

    assert result.viewer_count == 1  # one effect, not two
    assert repo.get(stream.id) == result
    assert repo.monitor_progress(stream.id, "status") == MonitorProgress(
        generation=3, next_attempt=1, seen_connected=True, checked_at=NOW + timedelta(seconds=1)
    )  # the inner delivery's claim: the outer one's was refused, then found claimed


def test_a_check_of_a_missing_stream_is_not_found(repo: StreamRepository) -> None:
    def never(current: Stream, progress: MonitorProgress | None) -> StreamAndProgress:
        raise AssertionError("the change must not run")

    with pytest.raises(NotFoundError):
        repo.record_check(repo.new_id(), "recording", never)


def test_delete_removes_the_stream_its_credentials_and_whip_sessions(
    repo: StreamRepository,
) -> None:
    stream = make_stream(repo)
    kept = created(repo, 1)
    repo.create(stream, CREDS)
    repo.save_whip_session(stream.id, WhipSession("w1", "https://ingest.test/s/1", NOW))
    repo.save_whip_session(kept.id, WhipSession("w1", "https://ingest.test/s/2", NOW))

    repo.delete(stream.id)

    assert repo.get(stream.id) is None
    assert repo.get_credentials(stream.id) is None
    assert repo.whip_session(stream.id, "w1") is None
    assert repo.get(kept.id) == kept
    assert repo.whip_session(kept.id, "w1") is not None
    repo.delete(stream.id)  # deleting again is harmless
    with pytest.raises(NotFoundError):
        repo.update(stream.id, lambda s: s)


def test_credentials_are_saved_and_replaced(repo: StreamRepository) -> None:
    stream = make_stream(repo)
    repo.create(stream, CREDS)

    repo.save_credentials(stream.id, OTHER_CREDS)

    assert repo.get_credentials(stream.id) == OTHER_CREDS
    assert repo.get(stream.id) == stream


def test_whip_sessions_are_kept_per_stream_and_forgotten(repo: StreamRepository) -> None:
    stream, other = created(repo), created(repo, 1)
    session = WhipSession("session-1", "https://ingest.test/s/1", NOW + timedelta(hours=1))
    unresourced = WhipSession("session-2", None, NOW + timedelta(hours=2))

    repo.save_whip_session(stream.id, session)
    repo.save_whip_session(stream.id, unresourced)

    assert repo.whip_session(stream.id, "session-1") == session
    assert repo.whip_session(stream.id, "session-2") == unresourced
    assert repo.whip_session(other.id, "session-1") is None
    assert repo.whip_session(stream.id, "no-such-session") is None
    repo.delete_whip_session(stream.id, "session-1")
    assert repo.whip_session(stream.id, "session-1") is None
    assert repo.whip_session(stream.id, "session-2") == unresourced
    repo.delete_whip_session(stream.id, "session-1")  # forgetting again is harmless


def test_the_input_of_a_deleted_stream_is_remembered(repo: StreamRepository) -> None:
    input_uid = f"input-{repo.new_id()}"
    assert repo.deleted_stream_of_input(input_uid) is None

    repo.remember_deleted_input(input_uid, "gone-stream", NOW)

    assert repo.deleted_stream_of_input(input_uid) == "gone-stream"
    assert repo.deleted_stream_of_input(f"{input_uid}-other") is None


# --- queries --------------------------------------------------------------------------------


# Five streams, oldest first, that differ in every field ``find`` filters on.
FIVE_FIELDS = ("memorial_id", "created_by", "status", "is_public", "is_visible", "display_order")
FIVE_ROWS = [
    ("m1", "a", StreamStatus.SCHEDULED, True, True, 2),
    ("m1", "b", StreamStatus.LIVE, True, False, 1),
    ("m1", "a", StreamStatus.COMPLETED, False, True, 1),
    ("m2", "a", StreamStatus.LIVE, True, True, 0),
    (None, "b", StreamStatus.SCHEDULED, True, True, 3),
]


@pytest.fixture
def five(repo: StreamRepository) -> list[Stream]:
    """The five streams of ``FIVE_ROWS``, created a minute apart."""
    return [
        created(repo, minute, **dict(zip(FIVE_FIELDS, row, strict=True)))
        for minute, row in enumerate(FIVE_ROWS)
    ]


def test_find_filters_on_each_field_and_their_combination_newest_first(
    repo: StreamRepository, five: list[Stream]
) -> None:
    s0, s1, s2, s3, s4 = five

    def found(**filters: Any) -> list[str]:
        return ids(repo.find(StreamQuery(**filters)).streams)

    assert found() == ids([s4, s3, s2, s1, s0])
    assert found(memorial_id="m1") == ids([s2, s1, s0])
    assert found(status=StreamStatus.LIVE) == ids([s3, s1])
    assert found(is_public=False) == ids([s2])
    assert found(is_visible=False) == ids([s1])
    assert found(created_by="a") == ids([s3, s2, s0])
    assert found(memorial_id="m1", is_visible=True, created_by="a") == ids([s2, s0])
    assert found(memorial_id="m1", status=StreamStatus.CANCELLED) == []
    assert repo.find(StreamQuery(memorial_id="m1")).streams == [s2, s1, s0]


def test_find_in_display_order_breaks_ties_newest_first(
    repo: StreamRepository, five: list[Stream]
) -> None:
    s0, s1, s2, s3, s4 = five
    page = repo.find(StreamQuery(order="display"))
    assert ids(page.streams) == ids([s3, s2, s1, s0, s4])


@pytest.mark.parametrize(
    ("order", "limit", "offset", "expected", "has_more"),
    [
        ("newest", 2, 0, [4, 3], True),
        ("newest", 2, 2, [2, 1], True),
        ("newest", 2, 3, [1, 0], False),
        ("newest", 2, 4, [0], False),
        ("newest", 5, 0, [4, 3, 2, 1, 0], False),
        ("newest", 3, 5, [], False),
        ("display", 2, 1, [2, 1], True),
        ("display", 3, 2, [1, 0, 4], False),
    ],
)
def test_find_pages_with_limit_offset_and_has_more(
    repo: StreamRepository,
    five: list[Stream],
    order: str,
    limit: int,
    offset: int,
    expected: list[int],
    has_more: bool,
) -> None:
    page = repo.find(StreamQuery(order=order, limit=limit, offset=offset))  # type: ignore[arg-type]
    assert ids(page.streams) == [five[i].id for i in expected]
    assert page.has_more is has_more


def test_find_by_live_input(repo: StreamRepository) -> None:
    created(repo, 0)
    stream = created(repo, 1, cloudflare_id="input-42")

    assert repo.find_by_live_input("input-42") == stream
    assert repo.find_by_live_input("input-43") is None


def test_a_memorial_lists_its_streams_newest_first_visible_only_on_request(
    repo: StreamRepository,
) -> None:
    old = created(repo, 0, memorial_id="m1")
    hidden = created(repo, 1, memorial_id="m1", is_visible=False)
    private = created(repo, 2, memorial_id="m1", is_public=False)
    created(repo, 3, memorial_id="m2")

    assert repo.list_by_memorial("m1", visible_only=False) == [private, hidden, old]
    assert repo.list_by_memorial("m1", visible_only=True) == [private, old]
    assert repo.list_by_memorial("m3", visible_only=False) == []


def test_a_memorial_lists_up_to_200_streams(repo: StreamRepository) -> None:
    streams = [created(repo, minute, memorial_id="m1") for minute in range(201)]

    listed = repo.list_by_memorial("m1", visible_only=False)

    assert MEMORIAL_STREAM_LIMIT == 200
    assert ids(listed) == ids(streams[:0:-1])  # the 200 newest; the oldest is left out


def test_display_orders_are_set_together(repo: StreamRepository) -> None:
    a, b, c = created(repo, 0), created(repo, 1), created(repo, 2)
    later = NOW + timedelta(hours=1)

    repo.set_display_orders({a.id: 1, b.id: 0}, later)

    assert repo.get(a.id) == a.model_copy(update={"display_order": 1, "updated_at": later})
    assert repo.get(b.id) == b.model_copy(update={"display_order": 0, "updated_at": later})
    assert repo.get(c.id) == c


def test_display_orders_naming_a_missing_stream_change_nothing(repo: StreamRepository) -> None:
    a = created(repo, 0)

    with pytest.raises(NotFoundError):
        repo.set_display_orders({a.id: 5, repo.new_id(): 6}, NOW + timedelta(hours=1))
    assert repo.get(a.id) == a
