"""The Firestore repository and the Cloudflare client against the real emulators."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import flask
import pytest
from google.cloud import firestore
from pydantic import SecretStr

from benchmarks.firestore_costs import FirestoreCounter, Tally
from common.adapters.cloudflare.client import (
    CloudflareStreamClient,
    CloudflareStreamProvider,
    RetryPolicy,
)
from common.adapters.firestore.documents import (
    CREDENTIALS_SUBCOLLECTION,
    DELETED_INPUTS_COLLECTION,
    EXPIRES_AT_FIELD,
)
from common.adapters.firestore.guard_documents import Codec
from common.adapters.firestore.rest import FirestoreRest, RestStreamReads
from common.adapters.firestore.rest_guards import RestDocuments
from common.adapters.firestore.streams import FirestoreStreamRepository
from common.errors import ConflictError, NotFoundError
from common.logging import TRACE_FIELD, TRACE_HEADER, JsonFormatter
from common.models.domain import LiveInputSpec, Stream, StreamCredentials, StreamStatus
from common.ports import (
    ProviderNotFoundError,
    ProviderUnavailableError,
    StreamQuery,
    StreamReads,
    StreamRepository,
    WhipSession,
)
from common.request_scope import request_scope
from emulators.stack import API_TOKEN, PROJECT_ID, LocalStack
from tests.integration.conftest import WebhookRouting, stored

pytestmark = pytest.mark.emulator
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture
def repo(db: firestore.Client) -> FirestoreStreamRepository:
    return FirestoreStreamRepository(db, f"streams_test_{uuid.uuid4().hex[:8]}")


def make_stream(repo: StreamRepository, **fields: Any) -> Stream:
    base: dict[str, Any] = {
        "id": repo.new_id(),
        "title": "t",
        "created_by": "u",
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Stream.model_validate(base | fields)


CREDS = StreamCredentials(
    rtmp_url="rtmp://x/live/",
    stream_key=SecretStr("k"),
    whip_url=SecretStr("https://x/s/webRTC/publish"),
)


def test_create_is_atomic_and_refuses_an_existing_id(repo: FirestoreStreamRepository) -> None:
    stream = make_stream(repo)
    repo.create(stream, CREDS)

    assert repo.get(stream.id) == stream
    assert repo.get_credentials(stream.id) == CREDS
    with pytest.raises(ConflictError):
        repo.create(stream.model_copy(update={"title": "other"}), None)
    assert repo.get(stream.id) == stream


def test_transactions_lose_no_update_under_concurrency(repo: FirestoreStreamRepository) -> None:
    stream = make_stream(repo, viewer_count=0)
    repo.create(stream, None)

    outcomes: list[str] = []

    def bump() -> None:
        try:
            repo.update(
                stream.id, lambda s: s.model_copy(update={"viewer_count": s.viewer_count + 1})
            )
            outcomes.append("applied")
        except ConflictError:
            outcomes.append("conflict")

    workers = [threading.Thread(target=bump) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    # Every update either landed or was refused with a retryable 409: none was silently lost.
    stored = repo.get(stream.id)
    assert stored is not None and stored.viewer_count == outcomes.count("applied")
    assert len(outcomes) == 6 and outcomes.count("applied") >= 1
    with pytest.raises(NotFoundError):
        repo.update("missing", lambda s: s)


def test_update_writes_only_changed_fields_and_keeps_unknown_legacy_ones(
    repo: FirestoreStreamRepository, db: firestore.Client
) -> None:
    stream = make_stream(repo)
    repo.create(stream, None)
    ref = db.collection(repo._streams.id).document(stream.id)  # noqa: SLF001
    ref.update({"recordingSessions": [{"sessionId": "legacy"}]})

    repo.update(stream.id, lambda s: s.model_copy(update={"status": StreamStatus.LIVE}))

    data = stored(ref)
    assert data["status"] == "live"
    assert data["recordingSessions"] == [{"sessionId": "legacy"}]


def test_composite_queries_filter_order_and_paginate(repo: FirestoreStreamRepository) -> None:
    streams = [
        make_stream(
            repo,
            display_order=order,
            is_public=public,
            created_at=NOW + timedelta(minutes=i),
            status=StreamStatus.LIVE if i % 2 else StreamStatus.SCHEDULED,
        )
        for i, (order, public) in enumerate(
            [(2, True), (1, True), (1, True), (0, False), (3, True)]
        )
    ]
    for stream in streams:
        repo.create(stream, None)

    shown = repo.find(StreamQuery(is_public=True, is_visible=True, order="display", limit=3))
    assert [s.id for s in shown.streams] == [streams[2].id, streams[1].id, streams[0].id]
    assert shown.has_more
    rest = repo.find(
        StreamQuery(is_public=True, is_visible=True, order="display", limit=3, offset=3)
    )
    assert [s.id for s in rest.streams] == [streams[4].id] and not rest.has_more
    live = repo.find(StreamQuery(is_public=True, status=StreamStatus.LIVE))
    assert [s.id for s in live.streams] == [streams[1].id]


def walk(repo: FirestoreStreamRepository, query: StreamQuery, *, by_cursor: bool) -> list[str]:
    """Every stream id of ``query``'s listing, a page at a time by cursor or by offset."""
    seen: list[str] = []
    for _ in range(20):
        page = repo.find(query)
        seen += [stream.id for stream in page.streams]
        if not page.has_more:
            return seen
        if by_cursor:
            assert page.next_cursor is not None
            query = replace(query, cursor=page.next_cursor)
        else:
            assert page.passed is not None
            query = replace(query, offset=query.offset + page.passed)
    raise AssertionError(f"the listing did not end: {seen}")


# Listings over documents unreadable as streams, newest first: the documents, each a kind and
# the minute of its createdAt, and the page size. Kinds: S a stream, L a stream in the legacy
# collection, R a stream whose createdAt is stored as text (read as a time, but Firestore
# sorts every string after every timestamp), U unreadable as a stream (a malformed monitor),
# T unreadable and its createdAt text, O unreadable with an id the first cursors could not
# hold, N unreadable with a createdAt no cursor can carry (a map, which Firestore sorts
# after every other type).
UNREADABLE_LISTINGS = {
    "between streams": ("S0 U1 S2 U3 S4", 2),
    # The primary's share of the merge is padded with unreadable ones, and one of its streams
    # sorts among the legacy collection's.
    "beside legacy streams": ("S10 U9 U8 S7.5 L7 L6 L5", 2),
    "a page of unreadable ones": ("S10 U9 U8 S7", 1),
    "a sort field unreadable too": ("T0 S3 S2 S1", 2),
    "an odd id": ("S10 O9 O8 S7 S6", 1),
    "a time stored as text": ("S4 R5 S3 R2 S1", 2),
    "beside legacy, one no cursor can name": ("S11 N10 S9 S8 L8.5 L7", 2),
}


@pytest.mark.parametrize(
    ("scenario", "legacy"),
    [
        pytest.param(name, legacy, id=f"{name}, {'with a legacy one' if legacy else 'alone'}")
        for name, (layout, _) in UNREADABLE_LISTINGS.items()
        for legacy in ([True] if "L" in layout else [False, True])
    ],
)
@pytest.mark.parametrize("by_cursor", [False, True], ids=["by offset", "by cursor"])
def test_a_document_unreadable_as_a_stream_ends_no_listing_early(
    db: firestore.Client, scenario: str, legacy: bool, by_cursor: bool
) -> None:
    layout, limit = UNREADABLE_LISTINGS[scenario]
    primary = f"streams_test_{uuid.uuid4().hex[:8]}"
    repo = FirestoreStreamRepository(db, primary, [f"{primary}_legacy"] if legacy else [])
    # Each readable stream with where Firestore sorts it: text after every time.
    readable: list[tuple[tuple[int, str], str]] = []
    for document in layout.split():
        kind, at = document[0], NOW + timedelta(minutes=float(document[1:]))
        stream = make_stream(repo, memorial_id="m-walk", created_at=at)
        if kind in "SLR":
            collection = f"{primary}_legacy" if kind == "L" else primary
            FirestoreStreamRepository(db, collection).create(stream, None)
            if kind == "R":
                db.collection(primary).document(stream.id).update({"createdAt": at.isoformat()})
            readable.append(((int(kind == "R"), at.isoformat()), stream.id))
            continue
        fields: dict[str, Any] = {"memorialId": "m-walk", "title": "t", "recordingMonitor": 1}
        fields["createdAt"] = {"T": at.isoformat(), "N": {"at": at}}.get(kind, at)
        name = f"old.{stream.id}" if kind == "O" else stream.id
        db.collection(primary).document(name).set(fields)

    walked = walk(repo, StreamQuery(memorial_id="m-walk", limit=limit), by_cursor=by_cursor)

    # Every readable stream once, newest first: before, a page with an unreadable document
    # among its reads said no more followed (or, beside the legacy one, skipped a stream),
    # and a time stored as text sent the next page's cursor past newer streams.
    assert walked == [stream_id for _, stream_id in sorted(readable, reverse=True)]


@pytest.mark.parametrize("legacy", [False, True], ids=["alone", "with a legacy one"])
@pytest.mark.parametrize("by_cursor", [False, True], ids=["by offset", "by cursor"])
def test_display_orders_stored_as_other_types_page_in_firestores_order(
    db: firestore.Client, legacy: bool, by_cursor: bool
) -> None:
    primary = f"streams_test_{uuid.uuid4().hex[:8]}"
    repo = FirestoreStreamRepository(db, primary, [f"{primary}_legacy"] if legacy else [])
    # As an earlier backend stored them: a null and a text display order read as 0, a
    # fraction makes the document unreadable; Firestore orders null, numbers, then text.
    stored: list[object] = [1, "0", None, 1.5, 0]
    made = {}
    for minute, display_order in enumerate(stored):
        stream = make_stream(
            repo, memorial_id="m-order", created_at=NOW + timedelta(minutes=minute)
        )
        repo.create(stream, None)
        db.collection(primary).document(stream.id).update({"displayOrder": display_order})
        made[repr(display_order)] = stream.id

    query = StreamQuery(memorial_id="m-order", order="display", limit=1)
    walked = walk(repo, query, by_cursor=by_cursor)

    # Before, a text "0" read as 0 sent the cursor back among the numbers, round and round.
    assert walked == [made[repr(value)] for value in (None, 0, 1, "0")]


def test_a_write_right_after_a_read_in_one_request_reads_the_stream_once(
    repo: FirestoreStreamRepository,
) -> None:
    stream = make_stream(repo)
    repo.create(stream, None)
    counter = FirestoreCounter()

    def read_then_write() -> None:
        found = repo.get(stream.id)
        assert found is not None
        repo.update(stream.id, lambda s: s.model_copy(update={"viewer_count": 7}))

    with counter.installed():
        in_a_request = counter.measure(read_then_write)
        counter.current = alone = Tally()
        read_then_write()  # outside a request nothing is remembered

    assert (in_a_request.reads, in_a_request.writes) == (1, 1)
    assert (alone.reads, alone.writes) == (2, 0)  # the second write changes nothing
    stored = repo.get(stream.id)
    assert stored is not None and stored.viewer_count == 7


@pytest.mark.parametrize("reader", ["client library", "REST"])
def test_a_remembered_read_that_went_stale_only_costs_a_retry(
    db: firestore.Client, reader: str
) -> None:
    collection = f"streams_test_{uuid.uuid4().hex[:8]}"
    repo = FirestoreStreamRepository(db, collection)
    # The services read over REST where deployed; the write starts from either read.
    reads: StreamReads = (
        repo
        if reader == "client library"
        else RestStreamReads(FirestoreRest.from_environment(PROJECT_ID), collection)
    )
    stream = make_stream(repo)
    repo.create(stream, None)
    seen: list[str] = []

    def rename(current: Stream) -> Stream:
        seen.append(current.title)
        return current.model_copy(update={"viewer_count": current.viewer_count + 1})

    with request_scope():
        assert reads.get(stream.id) is not None
        # Another writer changes the stream between this request's read and its write.
        db.collection(collection).document(stream.id).update({"title": "Renamed"})
        updated = repo.update(stream.id, rename)

    assert seen == [stream.title, "Renamed"]  # the write on the stale read was refused
    assert (updated.title, updated.viewer_count) == ("Renamed", 1)
    assert repo.get(stream.id) == updated


def test_what_a_legacy_collections_query_logs_carries_the_requests_trace(
    db: firestore.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LS_GCP_PROJECT", "memorials-prod")
    collection = f"streams_test_{uuid.uuid4().hex[:8]}"
    legacy = f"{collection}_legacy"
    unreadable = {"memorialId": "m-trace", "title": "t", "createdAt": NOW, "recordingMonitor": 1}
    db.collection(legacy).document("unreadable").set(unreadable)
    repo = FirestoreStreamRepository(db, collection, [legacy])
    logged: list[tuple[str, dict[str, Any]]] = []

    class FormattedWhereLogged(logging.Handler):
        """Formats each line in the thread that logs it, as Cloud Run's stdout handler does."""

        def emit(self, record: logging.LogRecord) -> None:
            line = json.loads(JsonFormatter().format(record))
            logged.append((threading.current_thread().name, line))

    handler = FormattedWhereLogged()
    adapter_log = logging.getLogger("common.adapters.firestore.documents")
    adapter_log.addHandler(handler)
    trace_id = "105445aa7843bc8bf206b12000100000"
    try:
        with flask.Flask(__name__).test_request_context(headers={TRACE_HEADER: f"{trace_id}/1"}):
            page = repo.find(StreamQuery(memorial_id="m-trace"))
    finally:
        adapter_log.removeHandler(handler)

    assert page.streams == []
    ((thread, line),) = logged
    assert thread.startswith("legacy-query") and "unreadable" in line["message"]
    assert line[TRACE_FIELD] == f"projects/memorials-prod/traces/{trace_id}"


def test_delete_removes_credentials_too(repo: FirestoreStreamRepository) -> None:
    stream = make_stream(repo)
    repo.create(stream, CREDS)
    repo.save_whip_session(stream.id, WhipSession("w1", "https://x/1", NOW))
    repo.delete(stream.id)
    assert repo.get(stream.id) is None and repo.get_credentials(stream.id) is None
    assert repo.whip_session(stream.id, "w1") is None


def test_a_deleted_streams_input_is_remembered_for_a_month(
    repo: FirestoreStreamRepository, db: firestore.Client
) -> None:
    input_uid = f"input-{uuid.uuid4().hex}"
    assert repo.deleted_stream_of_input(input_uid) is None

    repo.remember_deleted_input(input_uid, "gone-stream", NOW)

    assert repo.deleted_stream_of_input(input_uid) == "gone-stream"
    note = db.collection(DELETED_INPUTS_COLLECTION).document(input_uid).get().to_dict() or {}
    assert note[EXPIRES_AT_FIELD] == NOW + timedelta(days=30)  # the TTL policy's field


def test_whip_sessions_carry_the_ttl_field_and_credentials_do_not(db: firestore.Client) -> None:
    collection = f"streams_test_{uuid.uuid4().hex[:8]}"
    repo = FirestoreStreamRepository(db, collection)
    stream = make_stream(repo)
    repo.create(stream, CREDS)
    expires = NOW + timedelta(days=1)
    repo.save_whip_session(stream.id, WhipSession("w1", "https://x/1", expires))

    assert repo.whip_session(stream.id, "w1") == WhipSession("w1", "https://x/1", expires)
    private = {
        doc.id: doc.to_dict() or {}
        for doc in db.collection(collection, stream.id, CREDENTIALS_SUBCOLLECTION).stream()
    }
    assert private["whip-w1"][EXPIRES_AT_FIELD] == expires
    assert EXPIRES_AT_FIELD not in private["credentials"]


def provider(stack: LocalStack, sleeps: list[float]) -> CloudflareStreamProvider:
    client = CloudflareStreamClient(
        api_base=f"{stack.cloudflare_url}/client/v4",
        account_id="local-account",
        api_token=SecretStr(API_TOKEN),
        retry=RetryPolicy(2, sleep=sleeps.append),
    )
    return CloudflareStreamProvider(client)


def test_provider_round_trip_against_the_emulator(stack: LocalStack) -> None:
    cf = provider(stack, [])
    spec = LiveInputSpec(
        stream_id=f"s-{uuid.uuid4().hex}",
        name="n",
        recording_timeout_seconds=60,
        allowed_origins=("example.com",),
    )

    created = cf.create_live_input(spec)

    assert created.rtmp_url.startswith("rtmp://127.0.0.1:")
    assert created.whip_url.get_secret_value().endswith("/webRTC/publish")
    assert cf.get_live_input(created.uid).stream_id == spec.stream_id
    assert cf.get_live_input(created.uid).connection == "disconnected"
    [tagged] = cf.find_live_inputs(spec.stream_id)
    assert tagged.uid == created.uid and tagged.created is not None
    assert cf.list_recordings(created.uid) == []
    cf.delete_live_input(created.uid)
    with pytest.raises(ProviderNotFoundError):
        cf.get_live_input(created.uid)


def test_client_retries_injected_5xx_but_not_a_create(
    stack: LocalStack, inject_faults: Any
) -> None:
    sleeps: list[float] = []
    cf = provider(stack, sleeps)
    spec = LiveInputSpec(
        stream_id="retry", name="n", recording_timeout_seconds=0, allowed_origins=()
    )
    uid = cf.create_live_input(spec).uid

    inject_faults(503, 502, method="GET", path=f"/live_inputs/{uid}")
    assert cf.get_live_input(uid).uid == uid
    assert len(sleeps) == 2

    inject_faults(500, method="POST", path="/live_inputs")
    with pytest.raises(ProviderUnavailableError):
        cf.create_live_input(spec)
    assert len(sleeps) == 2
    cf.delete_live_input(uid)


def test_client_updates_inputs_edits_videos_and_subscribes_the_webhook(
    stack: LocalStack, webhook_routing: WebhookRouting
) -> None:
    client = CloudflareStreamClient(
        api_base=f"{stack.cloudflare_url}/client/v4",
        account_id="local-account",
        api_token=SecretStr(API_TOKEN),
        retry=RetryPolicy(0),
    )
    created = client.create_live_input({"meta": {"name": "n"}, "recording": {"mode": "automatic"}})

    updated = client.update_live_input(
        created.uid, {"recording": {"mode": "automatic", "allowedOrigins": ["example.com"]}}
    )

    assert updated.recording is not None
    assert updated.recording["allowedOrigins"] == ["example.com"]
    secret = client.set_webhook("http://127.0.0.1:9/webhook")
    assert len(secret) >= 32 and client.set_webhook("http://127.0.0.1:9/other") == secret
    with pytest.raises(ProviderNotFoundError):
        client.get_video("no-such-video")
    with pytest.raises(ProviderNotFoundError):
        client.edit_video("no-such-video", {"allowedOrigins": []})
    client.delete_live_input(created.uid)


def test_injected_faults_hit_only_the_matching_request(
    stack: LocalStack, cloudflare: Any, inject_faults: Any
) -> None:
    created = cloudflare.post("/live_inputs", json={"meta": {}}).json()["result"]["uid"]
    inject_faults(429, retry_after=30, method="POST", path="/live_inputs")

    assert cloudflare.get(f"/live_inputs/{created}").status_code == 200
    assert cloudflare.get("/live_inputs").status_code == 200
    refused = cloudflare.post("/live_inputs", json={"meta": {}})
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "30"
    assert cloudflare.post("/live_inputs", json={"meta": {}}).status_code == 200


def test_a_read_modify_write_runs_the_change_again_after_a_concurrent_write(
    db: firestore.Client,
) -> None:
    # What the creation guards, invitations and memorial events rely on (RestDocuments).
    name = f"read_modify_write_{uuid.uuid4().hex[:8]}"
    collection = db.collection(name)
    ref, fresh = collection.document("existing"), collection.document("created")
    ref.set({"n": 1})
    documents = RestDocuments(FirestoreRest.from_environment(PROJECT_ID), name)
    seen: list[int] = []

    def change(value: int) -> int:
        seen.append(value)
        if len(seen) == 1:
            ref.update({"n": 10})  # another writer lands between the read and the write
        return value + 1

    def read(data: dict[str, Any] | None) -> int:
        return int((data or {}).get("n", 0))

    def write(value: int) -> dict[str, Any]:
        return {"n": value}

    codec = Codec(read, write)
    assert documents.change("existing", codec, change) == 11
    assert seen == [1, 10] and (ref.get().to_dict() or {}) == {"n": 11}

    def created_meanwhile(value: int) -> int:
        if not fresh.get().exists:
            fresh.set({"n": 5})  # appears between the read (none) and the create
        return value + 1

    assert documents.change("created", codec, created_meanwhile) == 6
    assert (fresh.get().to_dict() or {}) == {"n": 6}
