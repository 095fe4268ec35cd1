"""What the memorial page and the manager are told: who may delete a recorded service, and
which player URLs a stream's views offer for the way it is broadcast."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from common.errors import ConflictError, PermissionDeniedError, UnavailableError
from common.models.api import (
    MemorialStreamsResponse,
    PublicListResponse,
    RecordingChoiceRequest,
    StreamCreateRequest,
    StreamPublicView,
)
from common.models.domain import (
    MonitorState,
    Recording,
    RecordingEntry,
    Stream,
    StreamCredentials,
)
from common.models.recording_rules import with_recordings
from common.services.live_inputs import LiveInputProvisioner
from common.services.repair_tools import RepairTools
from common.services.streams import StreamService
from tests import people
from tests.conftest import POLICY, World
from tests.fakes import InMemoryStreamRepository

RECORDED = (
    RecordingEntry(
        video_uid="funeral-video",
        state="ready",
        ready=True,
        hls_url="https://customer-test.cloudflarestream.com/funeral-video/manifest/video.m3u8",
        created=datetime(2026, 11, 24, 11, 0, tzinfo=UTC),
    ),
)


def directors_memorial_stream(world: World, *, recorded: bool) -> str:
    view = world.service.create(
        people.FUNERAL_DIRECTOR,
        StreamCreateRequest(title="Funeral", memorial_id=people.MEMORIAL.id),
    )
    if recorded:
        world.repo.update(
            view.id,
            lambda s: s.model_copy(update={"recordings": RECORDED, "recording_ready": True}),
        )
    return view.id


def test_a_funeral_director_cannot_delete_the_familys_recorded_service(world: World) -> None:
    stream_id = directors_memorial_stream(world, recorded=True)

    with pytest.raises(PermissionDeniedError, match="memorial's owner"):
        world.service.delete(people.FUNERAL_DIRECTOR, stream_id)
    assert stream_id in world.repo.streams

    world.service.delete(people.MEMORIAL_OWNER, stream_id)
    assert stream_id not in world.repo.streams


def test_a_stream_without_recordings_can_still_be_deleted_by_its_creator(world: World) -> None:
    stream_id = directors_memorial_stream(world, recorded=False)
    world.service.delete(people.FUNERAL_DIRECTOR, stream_id)
    assert stream_id not in world.repo.streams


def test_an_administrator_may_delete_a_recorded_service(world: World) -> None:
    stream_id = directors_memorial_stream(world, recorded=True)
    world.service.delete(people.ADMIN, stream_id)
    assert stream_id not in world.repo.streams


def test_an_rtmp_broadcast_offers_hls_and_no_whep(world: World) -> None:
    view = world.service.create(people.FUNERAL_DIRECTOR, StreamCreateRequest(title="Funeral"))
    world.broadcasts.start(people.FUNERAL_DIRECTOR, view.id)
    uid = view.cloudflare_id or ""

    world.events.apply_live_event(
        uid, "live_input.connected", datetime(2026, 11, 24, 10, 1, tzinfo=UTC), None
    )

    seen = StreamPublicView.of(world.repo.streams[view.id])
    assert seen.ingest_protocol == "rtmp"
    assert seen.webrtc_playback_url is None
    assert (
        seen.live_hls_url == f"https://customer-test.cloudflarestream.com/{uid}/manifest/video.m3u8"
    )


def test_a_browser_broadcast_offers_whep_and_no_hls(world: World) -> None:
    view = world.service.create(people.FUNERAL_DIRECTOR, StreamCreateRequest(title="Webcam"))
    world.repo.update(
        view.id, lambda s: s.model_copy(update={"ingest_protocol": "whip", "whip_active": True})
    )

    seen = StreamPublicView.of(world.repo.streams[view.id])
    assert seen.webrtc_playback_url is not None and seen.webrtc_playback_url.endswith(
        "/webRTC/play"
    )
    assert seen.live_hls_url is None


def tools_of(world: World) -> RepairTools:
    return RepairTools(world.backends, monitors=world.monitors, policy=POLICY)


class CommitLandsThenTimesOut(InMemoryStreamRepository):
    """A database whose create commit lands but whose answer never arrives."""

    def create(self, stream: Stream, credentials: StreamCredentials | None) -> None:
        super().create(stream, credentials)
        raise UnavailableError("The database is temporarily unavailable")


def test_a_create_that_landed_despite_its_error_keeps_its_live_input(world: World) -> None:
    repo = CommitLandsThenTimesOut()
    backends = replace(world.backends, repo=repo)
    service = StreamService(
        backends, policy=POLICY, live_inputs=LiveInputProvisioner(backends, policy=POLICY)
    )

    view = service.create(people.FUNERAL_DIRECTOR, StreamCreateRequest(title="Funeral"))

    stored = repo.streams[view.id]
    assert stored.cloudflare_id == view.cloudflare_id
    assert view.cloudflare_id in world.provider.inputs  # not deleted from under the stream


def test_managers_keep_the_funeral_first_and_hide_a_test_broadcast(world: World) -> None:
    view = world.service.create(
        people.FUNERAL_DIRECTOR,
        StreamCreateRequest(title="Funeral", memorial_id=people.MEMORIAL.id),
    )
    funeral, test = (
        RecordingEntry(video_uid=uid, state="ready", ready=True, hls_url=f"https://h/{uid}.m3u8")
        for uid in ("funeral", "sound-check")
    )
    world.repo.update(
        view.id,
        lambda s: with_recordings(s, (funeral, test), world.clock.now()),
    )
    assert world.listings.get(None, view.id).video_id == "sound-check"  # the latest, by default

    tools_of(world).choose_recording(
        people.FUNERAL_DIRECTOR, view.id, "funeral", RecordingChoiceRequest(primary=True)
    )
    tools_of(world).choose_recording(
        people.FUNERAL_DIRECTOR, view.id, "sound-check", RecordingChoiceRequest(hidden=True)
    )

    public = world.listings.get(None, view.id)
    assert (public.video_id, public.recording_url) == ("funeral", "https://h/funeral.m3u8")
    assert [r.id for r in public.recordings] == ["funeral"]
    manager = world.listings.get(people.FUNERAL_DIRECTOR, view.id)
    assert {(r.id, r.primary, r.hidden) for r in manager.recordings} == {
        ("funeral", True, False),
        ("sound-check", False, True),
    }
    with pytest.raises(PermissionDeniedError):
        tools_of(world).choose_recording(
            people.STRANGER, view.id, "funeral", RecordingChoiceRequest(hidden=True)
        )


def test_hiding_every_recording_leaves_the_page_without_one(world: World) -> None:
    view = world.service.create(people.FUNERAL_DIRECTOR, StreamCreateRequest(title="Funeral"))
    only = RecordingEntry(video_uid="v", state="ready", ready=True, hls_url="https://h/v.m3u8")
    world.repo.update(view.id, lambda s: with_recordings(s, (only,), world.clock.now()))

    tools_of(world).choose_recording(
        people.FUNERAL_DIRECTOR, view.id, "v", RecordingChoiceRequest(hidden=True)
    )

    public = world.listings.get(None, view.id)
    assert (public.recording_ready, public.video_id, public.recordings) == (False, None, [])


def test_delete_waits_for_the_recording_and_takes_it_along(world: World) -> None:
    view = world.service.create(
        people.FUNERAL_DIRECTOR,
        StreamCreateRequest(title="Funeral", memorial_id=people.MEMORIAL.id),
    )
    uid = view.cloudflare_id or ""
    world.broadcasts.start(people.FUNERAL_DIRECTOR, view.id)
    world.events.apply_live_event(uid, "live_input.connected", world.clock.now(), None)
    world.clock.advance(60)
    world.broadcasts.stop(people.FUNERAL_DIRECTOR, view.id)

    with pytest.raises(ConflictError, match="still being processed") as refused:
        world.service.delete(people.MEMORIAL_OWNER, view.id)  # right after Stop
    assert refused.value.retry_after_s

    world.provider.recordings[uid] = [
        Recording(
            video_uid="funeral-video",
            live_input_uid=uid,
            state="ready",
            ready_to_stream=True,
            duration=60.0,
            hls_url="https://h/funeral.m3u8",
            created=world.clock.now(),
        )
    ]
    world.monitors.reconcile(view.id)
    world.service.delete(people.MEMORIAL_OWNER, view.id)

    assert view.id not in world.repo.streams
    assert world.provider.recordings[uid] == []  # not left playable and unfindable


def test_recorded_means_the_same_in_every_listing(world: World) -> None:
    """Over with a playable recording is "recorded"; over with one still coming is "processing";
    over with none to come is neither. The memorial listing, the public listing and the memorial
    status board all group by that one definition, and nothing vanishes from ``allStreams``."""

    def service(title: str) -> str:
        view = world.service.create(
            people.FUNERAL_DIRECTOR,
            StreamCreateRequest(title=title, memorial_id=people.MEMORIAL.id),
        )
        world.broadcasts.start(people.FUNERAL_DIRECTOR, view.id)
        world.events.apply_live_event(
            view.cloudflare_id or "", "live_input.connected", world.clock.now(), None
        )
        world.broadcasts.stop(people.FUNERAL_DIRECTOR, view.id)
        return view.id

    recorded, processing = service("Funeral"), service("Committal")
    world.repo.update(recorded, lambda s: with_recordings(s, RECORDED, world.clock.now()))
    never_on_air = world.service.create(
        people.FUNERAL_DIRECTOR,
        StreamCreateRequest(title="Sound check", memorial_id=people.MEMORIAL.id),
    ).id
    world.broadcasts.start(people.FUNERAL_DIRECTOR, never_on_air)
    world.broadcasts.stop(people.FUNERAL_DIRECTOR, never_on_air)
    world.repo.update(
        never_on_air,
        lambda s: s.model_copy(
            update={"recording_monitor": MonitorState(generation=1, state="gave_up")}
        ),
    )

    views = world.listings.memorial_streams(None, people.MEMORIAL.id)
    memorial = MemorialStreamsResponse.grouped(people.MEMORIAL.id, views)
    public = PublicListResponse.grouped(views, limit=50, offset=0, has_more=False)
    board = world.listings.memorial_status(None, people.MEMORIAL.id)

    def ids(group: list[StreamPublicView]) -> set[str]:
        return {view.id for view in group}

    for listing in (memorial, public, board):
        assert ids(listing.recordedStreams) == {recorded}
        assert ids(listing.processingStreams) == {processing}
    assert ids(memorial.publicRecordedStreams) == {recorded}
    assert ids(board.completedStreams) == {recorded, processing, never_on_air}
    assert ids(memorial.allStreams) == {recorded, processing, never_on_air}
    shown = {view.id: view for view in views}
    assert [shown[recorded].recording_status, shown[processing].recording_status] == [
        "ready",
        "processing",
    ]
    assert shown[never_on_air].recording_status == "none"
    assert world.repo.streams[recorded].is_recorded()
    assert not world.repo.streams[processing].is_recorded()


def a_recording_of(uid: str, video_uid: str, at: datetime) -> Recording:
    return Recording(
        video_uid=video_uid,
        live_input_uid=uid,
        state="ready",
        ready_to_stream=True,
        duration=30.0,
        hls_url=f"https://h/{video_uid}.m3u8",
        created=at,
    )


def test_delete_takes_along_recordings_cloudflare_made_but_never_reported(world: World) -> None:
    view, uid = world.new_stream(people.FUNERAL_DIRECTOR, "Sound check")
    # An encoder tried the input before Start; its webhook never came.
    world.provider.recordings[uid] = [a_recording_of(uid, "unreported", world.clock.now())]

    world.service.delete(people.FUNERAL_DIRECTOR, view.id)

    assert world.provider.recordings[uid] == []
    assert world.repo.deleted_stream_of_input(uid) == view.id


def test_a_recording_that_arrives_after_its_stream_was_deleted_is_deleted_too(
    world: World,
) -> None:
    view, uid = world.new_stream(people.FUNERAL_DIRECTOR, "Sound check")
    world.service.delete(people.FUNERAL_DIRECTOR, view.id)
    late = a_recording_of(uid, "late", world.clock.now())
    world.provider.recordings[uid] = [late]
    stranger = a_recording_of("someone-elses-input", "theirs", world.clock.now())
    world.provider.recordings["someone-elses-input"] = [stranger]

    outcome = world.events.apply_video_event(late, None)
    again = world.events.apply_video_event(late, None)  # a retried delivery
    unknown = world.events.apply_video_event(stranger, None)

    assert (outcome.stream_id, outcome.purged) == (view.id, True)
    assert (again.stream_id, again.purged) == (view.id, True)
    assert world.provider.recordings[uid] == []
    assert (unknown.stream_id, unknown.purged) == (None, False)
    assert world.provider.recordings["someone-elses-input"] == [stranger]  # not ours to delete
    assert view.id not in world.repo.streams
