"""The REST reader against the Firestore emulator: what the client library writes reads back
the same through it (every value type), batch reads, and the viewer functions reading over it
(the repository contract runs over it too: tests/integration/contract)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from google.cloud import firestore
from pydantic import SecretStr

from benchmarks.firestore_costs import FirestoreCounter
from common.adapters.firestore import rest as rest_module
from common.adapters.firestore.documents import DocumentQuery
from common.adapters.firestore.rest import FirestoreRest, RestStreamReads
from common.adapters.firestore.rest_guards import RestCreateQuota
from common.adapters.firestore.streams import FirestoreStreamRepository
from common.bootstrap import Services
from common.errors import ConflictError, NotFoundError
from common.models.api import StreamUpdateRequest
from common.models.domain import (
    LiveInputSpec,
    MonitorProgress,
    Recording,
    Stream,
    StreamCredentials,
    User,
)
from common.models.events import MemorialEvent
from common.ports import Invitation, MonitorCheck, StreamAndProgress, WhipSession
from common.request_scope import request_scope
from common.services.create_guards import CreateGuards, CreateLimits
from common.services.provider_events import ProviderEventService
from common.settings import Settings, get_settings
from emulators.stack import PROJECT_ID, LocalStack
from tests.fakes import FixedClock
from tests.integration.test_adapters import make_stream


def stored_stream(
    db: firestore.Client,
) -> tuple[Settings, FirestoreStreamRepository, Stream, Services]:
    """The settings, the client library's repository, a stream stored with it, and services
    wired as deployed."""
    settings = get_settings()
    repo = FirestoreStreamRepository(db, settings.streams_collection)
    stream = make_stream(repo)
    repo.create(stream, None)
    return settings, repo, stream, Services(settings)


def _comparable(value: Any) -> Any:
    """A value the client library gave, in the shapes the REST reader gives."""
    if isinstance(value, dict):
        return {key: _comparable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_comparable(item) for item in value]
    if isinstance(value, firestore.GeoPoint):
        return {"latitude": value.latitude, "longitude": value.longitude}
    if isinstance(value, firestore.DocumentReference):
        return value.path
    if isinstance(value, datetime):
        return datetime(*value.timetuple()[:6], value.microsecond, tzinfo=UTC)
    return value


def test_every_value_the_client_library_writes_reads_back_the_same(db: firestore.Client) -> None:
    collection = f"rest_values_{uuid.uuid4().hex[:8]}"
    fields: dict[str, Any] = {
        "text": "Ünïcode ✓",
        "empty": "",
        "count": 2**62,
        "negative": -7,
        "ratio": 0.25,
        "flag": True,
        "nothing": None,
        "at": datetime(2026, 12, 1, 10, 30, 15, 123456, tzinfo=UTC),
        "server": firestore.SERVER_TIMESTAMP,
        "blob": b"\x00\xff",
        "where": firestore.GeoPoint(51.5, -0.12),
        "points_to": db.collection(collection).document("other"),
        "list": [1, "two", {"three": 3.0, "in_map": [4]}],
        "empty_list": [],
        "map": {"nested": {"deep": [True, None]}, "empty": {}},
    }
    db.collection(collection).document("every").set(fields)
    stored = db.collection(collection).document("every").get()

    rest = FirestoreRest.from_environment(PROJECT_ID)
    read = rest.get(collection, "every")

    assert read.exists and read.id == "every"
    assert read.to_dict() == _comparable(stored.to_dict())
    assert read.create_time is not None
    assert abs((read.create_time - stored.create_time).total_seconds()) < 1e-3
    assert read.get("map.nested.deep") == [True, None]


def test_batch_reads_and_queries_give_what_the_client_library_gives(db: firestore.Client) -> None:
    collection = f"rest_reads_{uuid.uuid4().hex[:8]}"
    for number in range(5):
        db.collection(collection).document(f"d{number}").set(
            {"group": "a" if number % 2 else "b", "rank": number}
        )
    rest = FirestoreRest.from_environment(PROJECT_ID)

    many = rest.get_many(collection, ["d1", "missing", "d3"])
    assert sorted((s.id, s.exists) for s in many) == [
        ("d1", True),
        ("d3", True),
        ("missing", False),
    ]

    query = DocumentQuery(
        filters={"group": "a"},
        orderings=(("rank", "DESCENDING"), ("__name__", "DESCENDING")),
        start_after=(3, "d3"),
        offset=0,
        limit=5,
    )
    found = rest.run_query(collection, query)
    expected = (
        db.collection(collection)
        .where(filter=firestore.FieldFilter("group", "==", "a"))
        .order_by("rank", direction="DESCENDING")
        .order_by("__name__", direction="DESCENDING")
        .start_after([3, "d3"])
        .limit(5)
        .stream()
    )
    assert [(s.id, s.to_dict()) for s in found] == [(s.id, s.to_dict()) for s in expected]
    assert [s.id for s in found] == ["d1"]


def test_the_viewer_services_read_over_rest_and_build_no_grpc_client() -> None:
    services = Services(get_settings())

    services.listings.list_public(None, limit=5, offset=0)
    services.info  # noqa: B018 - building it builds its reads

    assert "firestore_client" not in services.__dict__  # nothing built the gRPC client
    assert "firestore_rest" in services.__dict__


def test_a_write_starts_from_the_rest_read_of_its_request(db: firestore.Client) -> None:
    # The services read the stream over REST, then write with the client library: the write
    # is conditional on the REST read's update time (to the nanosecond), so it costs no read.
    collection = f"streams_rest_{uuid.uuid4().hex[:8]}"
    repo = FirestoreStreamRepository(db, collection)
    reads = RestStreamReads(FirestoreRest.from_environment(PROJECT_ID), collection)
    stream = make_stream(repo)
    repo.create(stream, None)
    counter = FirestoreCounter()

    def read_then_write() -> None:
        assert reads.get(stream.id) is not None
        repo.update(stream.id, lambda s: s.model_copy(update={"viewer_count": 7}))

    with counter.installed():
        tally = counter.measure(read_then_write)

    assert (tally.reads, tally.writes) == (1, 1)  # the REST read, then the write: no re-read
    stored = repo.get(stream.id)
    assert stored is not None and stored.viewer_count == 7


def test_an_edit_the_owners_credentials_an_idle_sync_status_and_no_new_video_build_no_grpc(
    db: firestore.Client,
) -> None:
    # Requests that only read or update a stream go over REST: their cold start loads no gRPC.
    settings = get_settings()
    owner = User(uid=f"owner-{uuid.uuid4().hex[:8]}")
    live_input = Services(settings).provider.create_live_input(
        LiveInputSpec(
            stream_id="rest-no-grpc", name="n", recording_timeout_seconds=60, allowed_origins=()
        )
    )
    repo = FirestoreStreamRepository(db, settings.streams_collection)
    stream = make_stream(repo, created_by=owner.uid, cloudflare_id=live_input.uid)
    repo.create(stream, live_input.credentials())
    services = Services(settings)

    with request_scope():
        edited = services.streams.update(owner, stream.id, StreamUpdateRequest(title="Edited"))
    with request_scope():
        given = services.broadcasts.credentials(owner, stream.id)
    with request_scope():
        synced = services.repair_tools.sync_status(owner, stream.id)
    with request_scope():
        videos = services.repair_tools.get_video_id(owner, stream.id)

    assert edited.title == "Edited"  # an edit is written over REST
    key = live_input.credentials().stream_key.get_secret_value()
    assert given.cloudflareId == live_input.uid and given.credentials.streamKey == key
    assert (synced.connection, synced.status) == ("disconnected", stream.status)
    assert (videos.cloudflareId, videos.totalVideos) == (live_input.uid, 0)
    assert "firestore_client" not in services.__dict__


def test_a_recording_of_an_unknown_or_deleted_input_builds_no_grpc_client(
    db: firestore.Client,
) -> None:
    # The recording webhook's checks (a stream of the input? a stream deleted with it?) read
    # over REST: a late recording of a deleted stream is purged without the client library.
    settings = get_settings()
    deleted_input, unknown_input = (f"input-{uuid.uuid4().hex[:12]}" for _ in range(2))
    FirestoreStreamRepository(db, settings.streams_collection).remember_deleted_input(
        deleted_input, "gone-stream", datetime.now(UTC)
    )
    services = Services(settings)
    events = ProviderEventService(services, monitors=services.monitors)

    def recording_of(live_input_uid: str) -> Recording:
        return Recording(
            video_uid=f"video-{uuid.uuid4().hex[:12]}",
            live_input_uid=live_input_uid,
            state="ready",
            ready_to_stream=True,
        )

    with request_scope():
        late = events.apply_video_event(recording_of(deleted_input), None)
    with request_scope():
        stray = events.apply_video_event(recording_of(unknown_input), None)

    assert (late.stream_id, late.purged) == ("gone-stream", True)
    assert (stray.stream_id, stray.purged) == (None, False)
    assert "firestore_client" not in services.__dict__


def test_updates_go_over_rest_and_one_that_changes_nothing_writes_nothing(
    db: firestore.Client,
) -> None:
    settings, repo, stream, services = stored_stream(db)
    counter = FirestoreCounter()

    def unchanged() -> Stream:
        return services.repo.update(stream.id, lambda s: s.model_copy())

    def read_then_edit_twice() -> None:
        services.reads.get(stream.id)
        services.repo.update(stream.id, lambda s: s.model_copy(update={"title": "New"}))
        services.repo.update(stream.id, lambda s: s.model_copy(update={"viewer_count": 3}))

    with counter.installed():
        nothing = counter.measure(unchanged)
        edits = counter.measure(read_then_edit_twice)

    assert (nothing.reads, nothing.writes) == (1, 0)
    # One read, then each write conditional on the one before it: no read in between.
    assert (edits.reads, edits.writes, edits.stream_writes) == (1, 2, 2)
    stored = repo.get(stream.id)
    assert stored is not None and (stored.title, stored.viewer_count) == ("New", 3)
    assert "firestore_client" not in services.__dict__  # no client library, no gRPC


def test_a_rest_update_of_a_document_written_meanwhile_is_retried_on_the_fresh_document(
    db: firestore.Client,
) -> None:
    settings, repo, stream, services = stored_stream(db)
    refusals: list[str | None] = []
    commit = FirestoreRest.update_fields

    def counted(rest: FirestoreRest, *args: Any, **kwargs: Any) -> str | None:
        written = commit(rest, *args, **kwargs)
        refusals.append(written)
        return written

    with request_scope(), patched(FirestoreRest, "update_fields", counted):
        services.reads.get(stream.id)
        # Another request writes between this one's read and its write.
        db.collection(settings.streams_collection).document(stream.id).update({"viewerCount": 9})
        services.repo.update(stream.id, lambda s: s.model_copy(update={"title": "Mine"}))

    assert refusals == [None]  # the REST commit was refused: the document had changed
    stored = repo.get(stream.id)
    assert stored is not None and (stored.title, stored.viewer_count) == ("Mine", 9)


def test_a_write_whose_answer_was_lost_is_not_applied_twice(db: firestore.Client) -> None:
    # The commit landed but its answer was lost, so its retry is refused (the document
    # changed: by that very commit). Applying the change again would count twice.
    settings, repo, stream, services = stored_stream(db)
    commit = FirestoreRest.update_fields

    def landed_then_lost(rest: FirestoreRest, *args: Any, **kwargs: Any) -> str | None:
        commit(rest, *args, **kwargs)  # it lands...
        return commit(rest, *args, **kwargs)  # ...and the retry is refused

    with request_scope(), patched(FirestoreRest, "update_fields", landed_then_lost):
        services.reads.get(stream.id)
        services.repo.update(
            stream.id, lambda s: s.model_copy(update={"viewer_count": s.viewer_count + 1})
        )

    stored = repo.get(stream.id)
    assert stored is not None and stored.viewer_count == stream.viewer_count + 1


@contextmanager
def patched(owner: Any, name: str, replacement: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


@contextmanager
def commits_landed_then_lost() -> Iterator[list[list[str] | None]]:
    """Every REST commit lands, but its answer is lost: what the retry of each answered (a
    conditional one is refused: its document changed, by that very commit)."""
    commit = FirestoreRest.commit
    attempts: list[list[str] | None] = []

    def landed_then_lost(rest: FirestoreRest, writes: list[dict[str, Any]]) -> list[str] | None:
        commit(rest, writes)  # it lands...
        attempts.append(commit(rest, writes))  # ...and the retry is answered
        return attempts[-1]

    with patched(FirestoreRest, "commit", landed_then_lost):
        yield attempts


def test_a_rest_update_removes_the_publishing_secrets_an_earlier_backend_left(
    db: firestore.Client,
) -> None:
    settings, repo, stream, _ = stored_stream(db)
    document = db.collection(settings.streams_collection).document(stream.id)
    document.update({"streamKey": "legacy-secret", "rtmps": {"streamKey": "legacy-secret"}})

    Services(settings).repo.update(stream.id, lambda s: s.model_copy(update={"title": "Edited"}))

    stored = document.get().to_dict() or {}
    assert stored["title"] == "Edited"
    assert "streamKey" not in stored and "rtmps" not in stored


def claiming(attempt: int, effect: dict[str, Any]) -> MonitorCheck:
    """A status check that claims ``attempt`` and has ``effect`` on the stream, or does
    nothing when that attempt was claimed already (a duplicate delivery)."""

    def change(current: Stream, progress: MonitorProgress | None) -> StreamAndProgress:
        if (progress.next_attempt if progress else 0) != attempt:
            return current, progress
        claimed = MonitorProgress(generation=1, next_attempt=attempt + 1, checked_at=CHECKED_AT)
        update = {
            key: value(current) if callable(value) else value for key, value in effect.items()
        }
        return current.model_copy(update=update), claimed

    return change


CHECKED_AT = datetime(2026, 12, 3, 18, 0, 0, 123456, tzinfo=UTC)


def test_a_monitor_check_is_one_rest_commit_and_builds_no_grpc(db: firestore.Client) -> None:
    settings, repo, stream, services = stored_stream(db)
    counter = FirestoreCounter()

    def check(attempt: int, effect: dict[str, Any]) -> Callable[[], None]:
        def run() -> None:
            services.reads.get(stream.id)  # the task function reads the stream first
            services.repo.record_check(stream.id, "status", claiming(attempt, effect))

        return run

    with counter.installed():
        effect = counter.measure(check(0, {"viewer_count": 5}))
        duplicate = counter.measure(check(0, {"viewer_count": 6}))
        quiet = counter.measure(check(1, {}))

    # The stream (read once, remembered) and the progress; both written in one commit.
    assert (effect.reads, effect.writes, effect.stream_writes) == (2, 2, 1)
    assert (duplicate.reads, duplicate.writes) == (2, 0)
    assert (quiet.reads, quiet.writes, quiet.stream_writes) == (2, 1, 0)
    stored = repo.get(stream.id)
    assert stored is not None and stored.viewer_count == 5
    expected = MonitorProgress(generation=1, next_attempt=2, checked_at=CHECKED_AT)
    assert repo.monitor_progress(stream.id, "status") == expected  # the client library's read
    assert services.repo.monitor_progress(stream.id, "status") == expected  # REST's
    assert services.repo.monitor_progress(stream.id, "recording") is None
    assert "firestore_client" not in services.__dict__  # no client library, no gRPC


def test_a_check_of_a_stream_written_meanwhile_is_retried_on_the_fresh_document(
    db: firestore.Client,
) -> None:
    settings, repo, stream, services = stored_stream(db)
    counted = {"viewer_count": lambda s: s.viewer_count + 1}
    with request_scope():
        services.reads.get(stream.id)
        db.collection(settings.streams_collection).document(stream.id).update({"viewerCount": 9})
        services.repo.record_check(stream.id, "status", claiming(0, counted))

    stored = repo.get(stream.id)
    assert stored is not None and stored.viewer_count == 10  # applied to the fresh document
    assert "firestore_client" in services.__dict__  # the refused commit went to the repository
    assert repo.monitor_progress(stream.id, "status") == MonitorProgress(
        generation=1, next_attempt=1, checked_at=CHECKED_AT
    )


def test_a_check_whose_commit_answer_was_lost_is_not_applied_twice(db: firestore.Client) -> None:
    settings, repo, stream, services = stored_stream(db)

    def once_more(current: Stream, progress: MonitorProgress | None) -> StreamAndProgress:
        # Not idempotent by itself: only the claimed progress keeps it from counting twice.
        return claiming(0, {"viewer_count": lambda s: s.viewer_count + 1})(current, None)

    with request_scope(), commits_landed_then_lost() as attempts:
        services.reads.get(stream.id)
        services.repo.record_check(stream.id, "status", once_more)

    assert attempts == [None]  # the retry was refused: the document had changed, by it
    stored = repo.get(stream.id)
    assert stored is not None and stored.viewer_count == stream.viewer_count + 1
    assert "firestore_client" not in services.__dict__  # recognised as landed: no re-apply


CREDENTIALS = StreamCredentials(
    rtmp_url="rtmps://live.example/live/",
    stream_key=SecretStr("key-created-over-rest"),
    whip_url=SecretStr("https://live.example/whip/created-over-rest"),
)


def test_a_stream_created_over_rest_reads_back_through_the_client_library(
    db: firestore.Client,
) -> None:
    settings = get_settings()
    services = Services(settings)
    stream = make_stream(services.repo)
    services.repo.create(stream, CREDENTIALS)

    repo = FirestoreStreamRepository(db, settings.streams_collection)
    assert repo.get(stream.id) == stream
    assert repo.get_credentials(stream.id) == CREDENTIALS
    assert "firestore_client" not in services.__dict__  # no client library built


def test_a_creation_whose_answer_was_lost_is_not_a_conflict(db: firestore.Client) -> None:
    settings = get_settings()
    services = Services(settings)
    stream = make_stream(services.repo)

    with commits_landed_then_lost() as attempts:
        services.repo.create(stream, CREDENTIALS)

    assert attempts == [None]
    repo = FirestoreStreamRepository(db, settings.streams_collection)
    assert repo.get(stream.id) == stream
    assert repo.get_credentials(stream.id) == CREDENTIALS


def test_a_creation_over_an_existing_stream_is_a_conflict_and_changes_nothing(
    db: firestore.Client,
) -> None:
    settings, repo, stream, services = stored_stream(db)
    with pytest.raises(ConflictError):
        services.repo.create(stream.model_copy(update={"title": "Another"}), CREDENTIALS)
    assert repo.get(stream.id) == stream
    assert repo.get_credentials(stream.id) is None


def test_a_reorder_of_a_stream_deleted_since_it_was_read_changes_nothing(
    db: firestore.Client,
) -> None:
    settings, repo, kept, services = stored_stream(db)
    gone = make_stream(repo)
    repo.create(gone, None)
    with request_scope():
        services.reads.get(kept.id)
        services.reads.get(gone.id)
        db.collection(settings.streams_collection).document(gone.id).delete()  # meanwhile
        with pytest.raises(NotFoundError):
            services.repo.set_display_orders({kept.id: 7, gone.id: 8}, NOW_LATER)

    assert repo.get(kept.id) == kept  # nothing written
    assert "firestore_client" not in services.__dict__


NOW_LATER = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def test_a_deletion_removes_private_documents_over_many_pages(
    db: firestore.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, repo, stream, services = stored_stream(db)
    later = datetime(2030, 1, 1, tzinfo=UTC)
    for number in range(5):
        repo.save_whip_session(stream.id, WhipSession(f"w{number}", None, later))
    repo.save_credentials(stream.id, CREDENTIALS)
    monkeypatch.setattr(rest_module, "LIST_PAGE_SIZE", 2)  # six documents: three pages

    services.repo.delete(stream.id)

    document = db.collection(settings.streams_collection).document(stream.id)
    assert not document.get().exists
    assert list(document.collection("private").list_documents()) == []


def test_a_creation_counted_whose_answer_was_lost_counts_once(db: firestore.Client) -> None:
    rest = FirestoreRest.from_environment(PROJECT_ID)
    quota = RestCreateQuota(rest, f"rest_quota_{uuid.uuid4().hex[:8]}")
    clock = FixedClock(NOW_LATER)
    guards = CreateGuards(
        quota=quota, keys=None, clock=clock, limits=CreateLimits(create_rate_limit=1)
    )

    user = User(uid="counted-once")
    with commits_landed_then_lost() as attempts:
        guards.count(user)  # neither counted twice nor refused as over the limit of one

    assert attempts == [None]
    assert quota.update(user.uid, lambda usage: usage).creations == (NOW_LATER,)


def test_the_cost_counter_counts_rest_deletions_and_their_listing(db: firestore.Client) -> None:
    # make bench's reads and writes per operation see the writes apply() sends too.
    settings, repo, stream, services = stored_stream(db)
    repo.save_credentials(stream.id, CREDENTIALS)
    counter = FirestoreCounter()

    with counter.installed():
        tally = counter.measure(lambda: services.repo.delete(stream.id))

    # The private documents listed (one read each), then the credentials and the stream
    # deleted in one commit; in each legacy collection the same (nothing there: a listing
    # bills one read, the stream's delete one write).
    legacy = len(settings.legacy_streams_collections)
    assert (tally.reads, tally.writes, tally.stream_writes) == (1 + legacy, 2 + legacy, 1)
    assert not db.collection(settings.streams_collection).document(stream.id).get().exists


def test_an_invitation_whose_answer_was_lost_is_stored_once_and_listed_alone(
    db: firestore.Client,
) -> None:
    """Over REST the code's document is created once; the retry that finds it is not a
    conflict, and the listing holds the invitations of the ``private`` subcollection only
    (not the stream's credentials beside them)."""
    settings, repo, stream, services = stored_stream(db)
    repo.save_credentials(stream.id, CREDENTIALS)
    invitation = Invitation(
        code=uuid.uuid4().hex, stream_id=stream.id, created_by="owner", created_at=NOW_LATER
    )

    with commits_landed_then_lost() as attempts:
        services.invitations.add(invitation)

    assert attempts == [None]
    assert services.invitations.get(stream.id, invitation.code) == invitation
    assert services.invitations.list(stream.id) == [invitation]
    taken = replace(invitation, created_by="someone else")
    with pytest.raises(ConflictError):
        services.invitations.add(taken)
    assert services.invitations.get(stream.id, invitation.code) == invitation
    assert "firestore_client" not in services.__dict__  # no client library built


def test_an_event_whose_creation_answer_was_lost_is_not_a_conflict(stack: LocalStack) -> None:
    services = Services(get_settings())
    event = MemorialEvent(
        id=services.event_store.new_id(),
        memorial_id=f"m-{uuid.uuid4().hex[:8]}",
        title="Celebration of life",
        created_by="owner",
        created_at=NOW_LATER,
        updated_at=NOW_LATER,
    )

    with commits_landed_then_lost() as attempts:
        services.event_store.create(event)

    assert attempts == [None]
    assert services.event_store.get(event.id) == event
    assert services.event_store.list_by_memorial(event.memorial_id) == [event]
    assert "firestore_client" not in services.__dict__
