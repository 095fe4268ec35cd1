"""StreamService end to end over in-memory fakes: every use-case and its error paths."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import timedelta

import pytest

from common.errors import (
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
)
from common.models.api import (
    ReorderRequest,
    StreamCreateRequest,
    StreamOwnerView,
    StreamPublicView,
    StreamUpdateRequest,
)
from common.models.domain import LiveInput, LiveInputSpec, Recording, StreamStatus, User
from common.ports import (
    ProviderNotFoundError,
    ProviderRateLimitedError,
    ProviderUnavailableError,
    ScheduledTask,
    StreamQuery,
)
from common.services import stream_listings
from common.services.live_inputs import ORPHAN_MIN_AGE, ORPHAN_SWEEP_TASK_PATH
from tests import people
from tests.conftest import POLICY, World


def create(world: World, user: User = people.OWNER, **fields: object) -> StreamOwnerView:
    body = {"title": "Funeral service", **fields}
    return world.service.create(user, StreamCreateRequest.model_validate(body))


def test_create_makes_live_input_tagged_with_stream_id_and_stores_credentials_apart(
    world: World,
) -> None:
    view = create(world, description="Chapel")

    spec, live_input = world.provider.inputs[view.cloudflare_id or ""]
    assert spec.stream_id == view.id
    assert spec.recording_timeout_seconds == 300
    assert view.status == StreamStatus.SCHEDULED
    assert view.stream_key == live_input.stream_key.get_secret_value()
    assert view.whip_endpoint == f"/api/streams/{view.id}/whip"
    assert view.playback_url == (
        f"https://customer-test.cloudflarestream.com/{live_input.uid}/iframe"
    )
    stored = world.repo.streams[view.id]
    assert stored.created_by == people.OWNER.uid and stored.cloudflare_id == live_input.uid
    assert world.repo.credentials[view.id].stream_key == live_input.stream_key


def test_create_for_memorial_takes_its_name_and_needs_memorial_rights(world: World) -> None:
    view = create(world, people.MEMORIAL_OWNER, memorialId=people.MEMORIAL.id)
    assert view.memorial_name == "Ada Lovelace"
    assert (
        create(world, people.FUNERAL_DIRECTOR, memorialId=people.MEMORIAL.id).memorial_id
        == people.MEMORIAL.id
    )
    with pytest.raises(PermissionDeniedError):
        create(world, people.STRANGER, memorialId=people.MEMORIAL.id)
    with pytest.raises(NotFoundError):
        create(world, people.OWNER, memorialId="no-such-memorial")
    with pytest.raises(UnauthenticatedError):
        world.service.create(None, StreamCreateRequest(title="x"))


def test_create_removes_the_live_input_when_the_database_write_fails(world: World) -> None:
    world.repo.fail_next_create = UnavailableError("firestore down")

    with pytest.raises(UnavailableError):
        create(world)

    assert world.provider.inputs == {}
    assert world.repo.streams == {}


def test_create_cleans_up_an_input_made_before_an_unanswered_create(world: World) -> None:
    world.provider.create_succeeds_before_failing = True
    world.provider.fail("create_live_input", ProviderUnavailableError("timeout"))

    with pytest.raises(UnavailableError):
        create(world)

    assert world.provider.inputs == {}
    assert world.repo.streams == {}
    assert world.provider.calls.count("create_live_input") == 1


def sweeps_scheduled(world: World) -> list[ScheduledTask]:
    return [t for t in world.tasks.tasks if t.path == ORPHAN_SWEEP_TASK_PATH]


def late_input_for(world: World, stream_id: str) -> str:
    """Cloudflare carrying out a create after we stopped waiting for its answer."""
    spec = LiveInputSpec(
        stream_id=stream_id, name="late", recording_timeout_seconds=300, allowed_origins=()
    )
    return world.provider.create_live_input(spec).uid


def test_an_unanswered_create_schedules_a_sweep_that_deletes_an_input_made_later(
    world: World,
) -> None:
    world.provider.fail("create_live_input", ProviderUnavailableError("timeout"))
    with pytest.raises(UnavailableError):
        create(world)
    [sweep] = sweeps_scheduled(world)
    assert sweep.delay_s == POLICY.orphan_sweep_delay_s > 0
    stream_id = str(sweep.payload["streamId"])
    late = late_input_for(world, stream_id)
    unrelated = create(world).cloudflare_id

    assert world.live_inputs.sweep_orphaned_inputs(stream_id) == 1

    assert late not in world.provider.inputs
    assert unrelated in world.provider.inputs
    assert world.live_inputs.sweep_orphaned_inputs(stream_id) == 0


def test_a_sweep_keeps_the_input_in_use_and_waits_on_a_young_unattached_one(
    world: World,
) -> None:
    view = create(world)
    stray = late_input_for(world, view.id)

    with pytest.raises(UnavailableError) as caught:
        world.live_inputs.sweep_orphaned_inputs(view.id)
    assert caught.value.retry_after_s == ORPHAN_MIN_AGE.total_seconds()
    assert stray in world.provider.inputs

    world.clock.advance(ORPHAN_MIN_AGE.total_seconds() + 1)
    assert world.live_inputs.sweep_orphaned_inputs(view.id) == 1
    assert set(world.provider.inputs) == {view.cloudflare_id}


def test_a_live_input_that_cannot_be_discarded_is_left_to_the_sweep(world: World) -> None:
    world.repo.fail_next_create = UnavailableError("firestore down")
    world.provider.fail("delete_live_input", ProviderUnavailableError("cloudflare down"))

    with pytest.raises(UnavailableError):
        create(world)

    [sweep] = sweeps_scheduled(world)
    assert len(world.provider.inputs) == 1
    assert world.live_inputs.sweep_orphaned_inputs(str(sweep.payload["streamId"])) == 1
    assert world.provider.inputs == {}


def test_a_sweep_that_cannot_reach_cloudflare_asks_to_be_retried(world: World) -> None:
    world.provider.fail("find_live_inputs", ProviderUnavailableError("cloudflare down"))
    with pytest.raises(UnavailableError):
        world.live_inputs.sweep_orphaned_inputs("any-stream")


def test_create_reports_rate_limit_with_retry_after_and_stores_nothing(world: World) -> None:
    world.provider.fail("create_live_input", ProviderRateLimitedError("429", retry_after_s=42))

    with pytest.raises(ResourceExhaustedError) as caught:
        create(world)

    assert caught.value.retry_after_s == 42
    assert world.repo.streams == {}


def test_get_gives_credentials_only_to_those_who_may_start(world: World) -> None:
    stream_id = create(
        world, people.ADMIN, memorialId=people.MEMORIAL.id, allowedUsers=[people.HELPER.uid]
    ).id

    for user in (people.ADMIN, people.MEMORIAL_OWNER, people.FUNERAL_DIRECTOR, people.HELPER):
        view = world.listings.get(user, stream_id)
        assert isinstance(view, StreamOwnerView), user.uid
        assert view.stream_key
    for outsider in (None, people.STRANGER, people.OWNER):
        view = world.listings.get(outsider, stream_id)
        assert not isinstance(view, StreamOwnerView)
        assert "streamKey" not in view.model_dump()


def test_private_or_hidden_streams_are_refused_to_outsiders(world: World) -> None:
    private = create(world, isPublic=False).id
    hidden = create(world, isVisible=False).id
    private_memorial = create(
        world, people.MEMORIAL_OWNER, memorialId=people.PRIVATE_MEMORIAL.id
    ).id

    for stream_id in (private, hidden, private_memorial):
        with pytest.raises(UnauthenticatedError):
            world.listings.get(None, stream_id)
    with pytest.raises(PermissionDeniedError):
        world.listings.get(people.STRANGER, private)
    with pytest.raises(NotFoundError):
        world.listings.get(people.OWNER, "missing")


def test_update_changes_only_named_fields_and_guards_allowed_users(world: World) -> None:
    stream_id = create(
        world, people.ADMIN, memorialId=people.MEMORIAL.id, allowedUsers=[people.HELPER.uid]
    ).id
    world.clock.advance(60)

    view = world.service.update(
        people.FUNERAL_DIRECTOR, stream_id, StreamUpdateRequest(title="Burial", is_visible=False)
    )

    assert (view.title, view.is_visible, view.description) == ("Burial", False, "")
    assert view.updated_at == world.clock.now()
    with pytest.raises(PermissionDeniedError):
        world.service.update(
            people.HELPER, stream_id, StreamUpdateRequest(allowed_users=[people.STRANGER.uid])
        )
    with pytest.raises(PermissionDeniedError):
        world.service.update(people.STRANGER, stream_id, StreamUpdateRequest(title="x"))
    assert (
        world.service.update(
            people.MEMORIAL_OWNER, stream_id, StreamUpdateRequest(allowed_users=[])
        ).allowed_users
        == ()
    )


def test_delete_removes_stream_and_live_input_but_never_while_live(world: World) -> None:
    view = create(world, people.ADMIN, memorialId=people.MEMORIAL.id)
    world.broadcasts.start(people.FUNERAL_DIRECTOR, view.id)

    with pytest.raises(ConflictError):
        world.service.delete(people.MEMORIAL_OWNER, view.id)
    world.broadcasts.stop(people.FUNERAL_DIRECTOR, view.id)
    with pytest.raises(PermissionDeniedError):
        world.service.delete(people.FUNERAL_DIRECTOR, view.id)

    world.service.delete(people.MEMORIAL_OWNER, view.id)

    assert view.id not in world.repo.streams
    assert view.id not in world.repo.credentials
    assert view.cloudflare_id not in world.provider.inputs


def test_delete_keeps_the_stream_when_cloudflare_is_down(world: World) -> None:
    view = create(world)
    world.provider.fail("delete_live_input", ProviderUnavailableError("503"))

    with pytest.raises(UnavailableError):
        world.service.delete(people.OWNER, view.id)

    assert view.id in world.repo.streams
    assert view.cloudflare_id in world.provider.inputs


def test_delete_succeeds_when_the_live_input_is_already_gone(world: World) -> None:
    view = create(world)
    world.provider.inputs.clear()

    world.service.delete(people.OWNER, view.id)

    assert view.id not in world.repo.streams


def test_start_goes_live_with_credentials_and_refuses_a_second_start(world: World) -> None:
    view = create(world)
    world.clock.advance(5)

    started = world.broadcasts.start(people.OWNER, view.id)

    assert started.status == StreamStatus.LIVE
    assert started.credentials.streamKey == view.stream_key == started.streamKey
    assert started.credentials.streamUrl == "rtmp://ingest.test/live/"
    assert world.repo.streams[view.id].actual_start_time == world.clock.now()
    with pytest.raises(ConflictError):
        world.broadcasts.start(people.OWNER, view.id)
    with pytest.raises(PermissionDeniedError):
        world.broadcasts.start(people.STRANGER, view.id)


def test_start_creates_the_live_input_of_a_legacy_stream_without_one(world: World) -> None:
    view = create(world)
    world.repo.streams[view.id] = world.repo.streams[view.id].model_copy(
        update={"cloudflare_id": None}
    )
    del world.repo.credentials[view.id]

    started = world.broadcasts.start(people.OWNER, view.id)

    assert started.cloudflareId != view.cloudflare_id
    assert world.repo.streams[view.id].cloudflare_id == started.cloudflareId
    assert world.repo.credentials[view.id].stream_key.get_secret_value() == started.streamKey


def test_a_start_that_loses_the_race_to_attach_an_input_uses_the_winners(
    world: World,
) -> None:
    view = create(world)
    winner = view.cloudflare_id or ""
    world.repo.streams[view.id] = world.repo.streams[view.id].model_copy(
        update={"cloudflare_id": None}
    )
    create_input = world.provider.create_live_input

    def create_while_another_start_attaches(spec: LiveInputSpec) -> LiveInput:
        made = create_input(spec)
        stream = world.repo.streams[view.id]
        world.repo.streams[view.id] = stream.model_copy(update={"cloudflare_id": winner})
        return made

    world.provider.create_live_input = create_while_another_start_attaches  # type: ignore[method-assign]

    started = world.broadcasts.start(people.OWNER, view.id)

    assert started.cloudflareId == winner
    assert started.streamKey == view.stream_key
    assert set(world.provider.inputs) == {winner}


def test_stop_completes_and_attaches_a_ready_recording_of_this_broadcast(world: World) -> None:
    view = create(world)
    uid = view.cloudflare_id or ""
    world.broadcasts.start(people.OWNER, view.id)
    started_at = world.clock.now()
    world.provider.recordings[uid] = [
        recording("old", uid, started_at - timedelta(days=1)),
        recording("current", uid, started_at + timedelta(seconds=1)),
    ]
    world.clock.advance(600)

    stopped = world.broadcasts.stop(people.OWNER, view.id)

    assert stopped.status == StreamStatus.COMPLETED
    assert stopped.recordingReady and stopped.recordingStatus == "ready"
    assert stopped.recordingUrl == "https://v.test/current.m3u8"
    assert world.repo.streams[view.id].video_id == "current"
    again = world.broadcasts.stop(people.OWNER, view.id)
    assert (again.status, again.recordingReady) == (StreamStatus.COMPLETED, True)
    with pytest.raises(ConflictError):
        world.broadcasts.stop(people.OWNER, create(world).id)


def test_stop_succeeds_with_processing_recording_when_cloudflare_fails(world: World) -> None:
    view = create(world)
    world.broadcasts.start(people.OWNER, view.id)
    world.provider.fail("list_recordings", ProviderUnavailableError("503"))

    stopped = world.broadcasts.stop(people.OWNER, view.id)

    assert (stopped.status, stopped.recordingStatus) == (StreamStatus.COMPLETED, "processing")
    assert world.repo.streams[view.id].status == StreamStatus.COMPLETED


def test_reorder_sets_positions_atomically_and_checks_every_stream(world: World) -> None:
    first = create(world, people.ADMIN, memorialId=people.MEMORIAL.id).id
    second = create(world, people.ADMIN, memorialId=people.MEMORIAL.id).id
    other = create(world, people.STRANGER).id

    reply = world.service.reorder(
        people.FUNERAL_DIRECTOR,
        ReorderRequest(streamIds=[second, first], memorialId=people.MEMORIAL.id),
    )

    assert [(s.streamId, s.newOrder) for s in reply.updatedStreams] == [(second, 0), (first, 1)]
    assert world.repo.streams[first].display_order == 1
    with pytest.raises(PermissionDeniedError):
        world.service.reorder(people.FUNERAL_DIRECTOR, ReorderRequest(streamIds=[first, other]))
    assert world.repo.streams[first].display_order == 1
    with pytest.raises(NotFoundError):
        world.service.reorder(people.OWNER, ReorderRequest(streamIds=["missing"]))
    with pytest.raises(InvalidArgumentError):
        world.service.reorder(
            people.ADMIN, ReorderRequest(streamIds=[other], memorialId=people.MEMORIAL.id)
        )


def test_listings_show_outsiders_only_public_visible_streams_of_public_memorials(
    world: World,
) -> None:
    public = create(world, memorialId=people.MEMORIAL.id, user=people.MEMORIAL_OWNER).id
    create(world, isPublic=False)
    create(world, isVisible=False)
    create(world, people.MEMORIAL_OWNER, memorialId=people.PRIVATE_MEMORIAL.id)

    anonymous, _ = world.listings.list_streams(None, StreamQuery())
    owner_sees, _ = world.listings.list_streams(people.OWNER, StreamQuery())
    public_page = world.listings.list_public(None, limit=10, offset=0)

    assert [v.id for v in anonymous] == [public]
    assert [s.id for s in public_page.streams] == [public]
    assert len(owner_sees) == 3
    assert all(type(v) is StreamPublicView for v in anonymous)


def test_a_listing_cursor_never_names_a_stream_the_caller_may_not_see(world: World) -> None:
    first = create(world, people.MEMORIAL_OWNER, memorialId=people.MEMORIAL.id, displayOrder=1)
    unseen = create(
        world, people.MEMORIAL_OWNER, memorialId=people.PRIVATE_MEMORIAL.id, displayOrder=2
    )
    last = create(world, people.MEMORIAL_OWNER, memorialId=people.MEMORIAL.id, displayOrder=3)

    page = world.listings.list_public(None, limit=2, offset=0)
    # The page ends on the private memorial's stream: the cursor names the one shown before it
    assert [s.id for s in page.streams] == [first.id] and page.has_more
    assert page.next_cursor is not None and unseen.id not in cursor_text(page.next_cursor)
    following = world.listings.list_public(None, limit=2, offset=0, cursor=page.next_cursor)
    assert [s.id for s in following.streams] == [last.id] and not following.has_more

    # The same holds for the general listing a visitor reads
    query = StreamQuery(order="display", limit=2)
    views, listed = world.listings.list_streams(None, query)
    assert [v.id for v in views] == [first.id]
    assert listed.next_cursor is not None and unseen.id not in cursor_text(listed.next_cursor)
    views, _ = world.listings.list_streams(None, replace(query, cursor=listed.next_cursor))
    assert [v.id for v in views] == [last.id]


def in_display_order(world: World, count: int, *, private: set[int]) -> dict[int, str]:
    """Streams of display order 1 to ``count`` on the family's public memorial, those of
    ``private`` on its private one; their ids by display order."""
    return {
        order: create(
            world,
            people.MEMORIAL_OWNER,
            memorialId=(people.PRIVATE_MEMORIAL if order in private else people.MEMORIAL).id,
            displayOrder=order,
        ).id
        for order in range(1, count + 1)
    }


def walk_public(
    world: World, limit: int, unnamed: set[str]
) -> tuple[list[str], list[str], list[int | None]]:
    """The public listing walked ``limit`` streams a page, by cursor and by offset: the ids
    each way shows and how far each page by offset went; no cursor names one of ``unnamed``."""
    by_cursor: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        page = world.listings.list_public(None, limit=limit, offset=0, cursor=cursor)
        by_cursor += [s.id for s in page.streams]
        if page.next_cursor is not None:
            assert not {u for u in unnamed if u in cursor_text(page.next_cursor)}
        if not page.has_more:
            break
        cursor = page.next_cursor
    by_offset: list[str] = []
    passed: list[int | None] = []
    offset = 0
    for _ in range(10):
        page = world.listings.list_public(None, limit=limit, offset=offset)
        by_offset += [s.id for s in page.streams]
        passed.append(page.passed)
        if not page.has_more:
            break
        offset += page.passed or 0
    return by_cursor, by_offset, passed


def test_a_listing_walked_a_stream_at_a_time_names_no_hidden_stream(world: World) -> None:
    hidden_orders = {2, 3, 4, 6, 7}
    made = in_display_order(world, 7, private=hidden_orders)
    hidden = {made[order] for order in hidden_orders}

    by_cursor, by_offset, passed = walk_public(world, 1, hidden)

    # A page that shows nothing reads on to the next stream shown, and stops there
    assert by_cursor == by_offset == [made[1], made[5]]
    assert passed == [1, 4]


def test_a_listing_page_that_reads_on_stops_at_its_limit(world: World) -> None:
    orders = {1: people.PRIVATE_MEMORIAL, 2: people.MEMORIAL, 3: people.MEMORIAL}
    made = {
        order: create(world, people.MEMORIAL_OWNER, memorialId=m.id, displayOrder=order).id
        for order, m in orders.items()
    }

    page = world.listings.list_public(None, limit=1, offset=0)
    assert [s.id for s in page.streams] == [made[2]] and page.has_more and page.passed == 2
    following = world.listings.list_public(None, limit=1, offset=2)

    assert page.next_cursor is not None and made[1] not in cursor_text(page.next_cursor)
    after = world.listings.list_public(None, limit=1, offset=0, cursor=page.next_cursor)
    assert [s.id for s in after.streams] == [s.id for s in following.streams] == [made[3]]
    assert not after.has_more and not following.has_more


def test_a_page_that_read_on_as_far_as_it_may_shows_none_and_goes_on_later(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream_listings, "READ_ON_PAGES", 2)
    monkeypatch.setattr(stream_listings, "READ_ON_LIMIT", 2)
    made = [
        create(world, people.OWNER, isPublic=order == 9, displayOrder=order).id
        for order in range(1, 10)
    ]

    # A signed-in visitor sees only the last: the first page reads 1 + 2 + 2 and stops
    query = StreamQuery(order="display", limit=1)
    views, page = world.listings.list_streams(people.STRANGER, query)
    assert views == [] and page.has_more and page.passed == 5
    # The one residue of a run longer than the reading on: the cursor names the last read
    assert page.next_cursor is not None and made[4] in cursor_text(page.next_cursor)
    later, last = world.listings.list_streams(
        people.STRANGER, replace(query, cursor=page.next_cursor)
    )
    by_offset, _ = world.listings.list_streams(people.STRANGER, replace(query, offset=5))

    assert [v.id for v in later] == [v.id for v in by_offset] == [made[8]]
    assert not last.has_more and last.next_cursor is None


def test_documents_unreadable_as_streams_end_no_listing_and_no_cursor_names_them(
    world: World,
) -> None:
    made = in_display_order(world, 5, private={3})
    world.repo.unreadable = {made[2], made[5]}
    unnamed = {made[2], made[3], made[5]}

    by_cursor, by_offset, passed = walk_public(world, 2, unnamed)

    # An offset skips an unreadable document as it skips any: each counts where it sits
    assert by_cursor == by_offset == [made[1], made[4]]
    assert passed == [1, 3]


def test_a_page_of_documents_no_cursor_can_name_goes_on_by_offset_and_never_starts_over(
    world: World,
) -> None:
    made = [
        create(world, people.MEMORIAL_OWNER, memorialId=people.MEMORIAL.id, displayOrder=order).id
        for order in range(1, 4)
    ]
    world.repo.unreadable = world.repo.unplaceable = {made[1]}
    first = world.listings.list_public(None, limit=1, offset=0)
    assert [s.id for s in first.streams] == [made[0]] and first.next_cursor is not None

    # Its only document has no place a cursor can name: no cursor, and no reading on from
    # the start (which showed the first stream again to a caller walking by cursor)
    stuck = world.listings.list_public(None, limit=1, offset=0, cursor=first.next_cursor)
    by_offset = world.listings.list_public(None, limit=1, offset=1)

    assert stuck.streams == by_offset.streams == []
    assert stuck.has_more and stuck.next_cursor is None and by_offset.passed == 1
    last = world.listings.list_public(None, limit=1, offset=2)
    assert [s.id for s in last.streams] == [made[2]] and not last.has_more


def test_a_page_ending_on_a_stream_no_cursor_can_name_names_no_hidden_one(world: World) -> None:
    made = in_display_order(world, 4, private={2})
    # Readable, but its place is not one a cursor can name (an id of 200 characters, say)
    world.repo.unplaceable = {made[3]}

    page = world.listings.list_public(None, limit=3, offset=0)

    # It shows the third; the cursor cannot go past it, and must not name the hidden second
    assert [s.id for s in page.streams] == [made[1], made[3]] and page.has_more
    assert page.next_cursor is None and page.passed == 3
    following = world.listings.list_public(None, limit=3, offset=3)
    assert [s.id for s in following.streams] == [made[4]]


def cursor_text(cursor: str) -> str:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()


def test_memorial_status_groups_streams_by_state(world: World) -> None:
    live = create(world, people.MEMORIAL_OWNER, memorialId=people.MEMORIAL.id).id
    scheduled = create(world, people.MEMORIAL_OWNER, memorialId=people.MEMORIAL.id).id
    world.broadcasts.start(people.MEMORIAL_OWNER, live)

    status = world.listings.memorial_status(None, people.MEMORIAL.id)

    assert [v.id for v in status.liveStreams] == [live]
    assert [v.id for v in status.scheduledStreams] == [scheduled]
    assert status.completedStreams == []
    assert status.timestamp == world.clock.now()


def test_provider_not_found_on_start_credentials_is_a_404(world: World) -> None:
    view = create(world)
    del world.repo.credentials[view.id]
    world.provider.fail("get_live_input", ProviderNotFoundError("gone", status=404))

    with pytest.raises(NotFoundError):
        world.broadcasts.start(people.OWNER, view.id)
    assert world.repo.streams[view.id].status == StreamStatus.SCHEDULED


def recording(uid: str, live_input: str, created: object) -> Recording:
    return Recording.model_validate(
        {
            "video_uid": uid,
            "live_input_uid": live_input,
            "state": "ready",
            "ready_to_stream": True,
            "duration": 12.5,
            "hls_url": f"https://v.test/{uid}.m3u8",
            "created": created,
        }
    )


def test_a_whip_session_ends_by_its_delete_until_it_expires(world: World) -> None:
    first, second = create(world), create(world)
    offer = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\n"

    published = world.broadcasts.publish_whip(people.OWNER, first.id, offer)
    session_id = published.location.rsplit("/", 1)[-1]
    stored = world.repo.whip_sessions[(first.id, session_id)]
    assert stored.expires_at == world.clock.now() + timedelta(seconds=POLICY.whip_session_ttl_s)
    world.broadcasts.end_whip(people.OWNER, first.id, session_id)
    assert world.repo.streams[first.id].status == StreamStatus.COMPLETED

    stale = world.broadcasts.publish_whip(people.OWNER, second.id, offer).location.rsplit("/", 1)[
        -1
    ]
    world.clock.advance(POLICY.whip_session_ttl_s)
    with pytest.raises(NotFoundError):
        world.broadcasts.end_whip(people.OWNER, second.id, stale)
