"""The REST reader's own parts: Firestore's JSON values, retries within the budget, refusals,
and the metadata server's tokens, against small local HTTP servers standing in for Firestore
and the metadata server (the reads themselves run against the emulator in
tests/integration/test_firestore_rest.py and the repository contract)."""

from __future__ import annotations

import json
import socket
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from common.adapters.firestore.documents import DocumentQuery
from common.adapters.firestore.rest import (
    FirestoreRest,
    FirestoreRestError,
    decode_value,
    encode_value,
    format_timestamp,
    parse_timestamp,
)
from common.adapters.google_tokens import EmulatorToken, MetadataServerTokens
from common.errors import UnavailableError
from tests.local_http import serving


def document(path: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": f"projects/p/databases/(default)/documents/{path}",
        "fields": {name: encode_value(value) for name, value in fields.items()},
        "createTime": "2026-12-01T10:00:00.123456789Z",
    }


def test_values_decode_as_the_client_library_gives_them() -> None:
    assert decode_value({"integerValue": "9007199254740993"}) == 9007199254740993
    assert decode_value({"doubleValue": 1}) == 1.0
    assert str(decode_value({"doubleValue": "NaN"})) == "nan"
    assert decode_value({"nullValue": None}) is None
    assert decode_value({"booleanValue": False}) is False
    assert decode_value({"bytesValue": "aGk="}) == b"hi"
    assert decode_value({"mapValue": {}}) == {}
    assert decode_value({"arrayValue": {}}) == []
    assert decode_value(
        {"mapValue": {"fields": {"a": {"arrayValue": {"values": [{"stringValue": "x"}]}}}}}
    ) == {"a": ["x"]}
    reference = "projects/p/databases/(default)/documents/streams/abc"
    assert decode_value({"referenceValue": reference}) == "streams/abc"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01T10:00:00Z", datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)),
        ("2026-12-01T10:00:00.5Z", datetime(2026, 12, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        # Nanoseconds are cut to the microsecond, as the client library's datetimes compare.
        ("2026-12-01T10:00:00.123456789Z", datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_timestamps_parse_to_utc_microseconds(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected and parsed.tzinfo is not None


def test_values_a_filter_or_cursor_carries_encode_and_others_are_refused() -> None:
    moment = datetime(2026, 12, 1, 10, 0, 0, 250, tzinfo=UTC)
    assert encode_value(moment) == {"timestampValue": format_timestamp(moment)}
    assert parse_timestamp(format_timestamp(moment)) == moment
    assert encode_value(True) == {"booleanValue": True}  # a bool, not the int it also is
    assert encode_value(3) == {"integerValue": "3"}
    assert encode_value(None) == {"nullValue": None}
    for refused in (float("inf"), object(), b"bytes"):
        with pytest.raises(TypeError):
            encode_value(refused)


def test_a_query_is_sent_as_firestores_structured_query() -> None:
    sent: list[dict[str, Any]] = []

    def firestore(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        sent.append(json.loads(body))
        return 200, [{"document": document("streams/b", title="B")}, {"readTime": "x"}]

    moment = datetime(2026, 12, 1, tzinfo=UTC)
    with serving(firestore) as (origin, seen):
        rest = FirestoreRest(origin, "p", EmulatorToken())
        found = rest.run_query(
            "streams",
            DocumentQuery(
                filters={"isPublic": True, "memorialId": "m1"},
                orderings=(("createdAt", "DESCENDING"), ("__name__", "DESCENDING")),
                start_after=(moment, "c"),
                offset=2,
                limit=21,
            ),
        )

    assert [(s.id, s.fields, s.reference.path) for s in found] == [
        ("b", {"title": "B"}, "streams/b")
    ]
    assert seen[0][:2] == ("POST", "/v1/projects/p/databases/%28default%29/documents:runQuery")
    assert seen[0][2]["authorization"] == "Bearer owner"
    query = sent[0]["structuredQuery"]
    assert query["from"] == [{"collectionId": "streams"}]
    assert query["where"]["compositeFilter"]["op"] == "AND"
    assert [
        f["fieldFilter"]["field"]["fieldPath"] for f in query["where"]["compositeFilter"]["filters"]
    ] == ["isPublic", "memorialId"]
    assert query["orderBy"][1] == {"field": {"fieldPath": "__name__"}, "direction": "DESCENDING"}
    assert query["startAt"] == {
        "values": [
            {"timestampValue": format_timestamp(moment)},
            {"referenceValue": "projects/p/databases/(default)/documents/streams/c"},
        ],
        "before": False,
    }
    assert (query["offset"], query["limit"]) == (2, 21)


def test_a_missing_document_is_an_answer_and_an_id_naming_no_document_is_refused() -> None:
    def firestore(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        return 404, {"error": {"code": 404, "status": "NOT_FOUND"}}

    with serving(firestore) as (origin, seen):
        rest = FirestoreRest(origin, "p", EmulatorToken())
        missing = rest.get("streams", "gone")
        for not_an_id in ("a/b", "", ".."):
            with pytest.raises(ValueError, match="not a document id"):
                rest.get("streams", not_an_id)

    assert (missing.exists, missing.to_dict(), missing.id) == (False, None, "gone")
    assert len(seen) == 1  # the refused ids never left the process


def test_transient_failures_are_retried_then_answered() -> None:
    answers = iter([(503, {}), (429, {}), (200, document("streams/a", n=1))])
    sleeps: list[float] = []

    with serving(lambda *_: next(answers)) as (origin, seen):
        rest = FirestoreRest(origin, "p", EmulatorToken(), sleep=sleeps.append)
        snapshot = rest.get("streams", "a")

    assert snapshot.get("n") == 1 and snapshot.create_time is not None
    assert len(seen) == 3 and sleeps == [0.1, 0.2]


def test_a_database_that_stays_down_is_a_503_within_the_budget() -> None:
    with serving(lambda *_: (503, {})) as (origin, seen):
        rest = FirestoreRest(origin, "p", EmulatorToken(), budget_s=0.5)
        with pytest.raises(UnavailableError):
            rest.get("streams", "a")
    assert len(seen) >= 2

    # Nothing listening at all: the same answer, not a crash.
    with serving(lambda *_: (200, {})) as (origin, _):
        pass
    rest = FirestoreRest(origin, "p", EmulatorToken(), budget_s=0.3)
    with pytest.raises(UnavailableError):
        rest.get("streams", "a")


def test_a_refusal_retrying_cannot_change_is_not_retried() -> None:
    with serving(lambda *_: (403, {"error": {"status": "PERMISSION_DENIED"}})) as (origin, seen):
        rest = FirestoreRest(origin, "p", EmulatorToken())
        with pytest.raises(FirestoreRestError, match="HTTP 403"):
            rest.get_many("memorials", ["a", "b"])
    assert len(seen) == 1


def test_tokens_come_from_the_metadata_server_and_are_kept_until_near_expiry() -> None:
    issued: list[str] = []

    def metadata(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        if headers.get("metadata-flavor") != "Google":  # as the real one refuses
            return 403, {}
        issued.append(f"token-{len(issued)}")
        return 200, {"access_token": issued[-1], "expires_in": 3599, "token_type": "Bearer"}

    now = [1000.0]
    with serving(metadata) as (origin, seen):
        tokens = MetadataServerTokens(origin.removeprefix("http://"), clock=lambda: now[0])
        first = tokens.header()
        now[0] += 3000  # still more than a minute left
        again = tokens.header()
        now[0] += 600
        renewed = tokens.header()

    assert (first, again, renewed) == ("Bearer token-0", "Bearer token-0", "Bearer token-1")
    assert [path for _, path, _ in seen] == [
        "/computeMetadata/v1/instance/service-accounts/default/token"
    ] * 2


def test_concurrent_first_reads_share_one_token_fetch() -> None:
    fetches: list[int] = []
    gate = threading.Event()

    def metadata(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        fetches.append(1)
        gate.wait(2)
        return 200, {"access_token": "t", "expires_in": 3599}

    with serving(metadata) as (origin, _):
        tokens = MetadataServerTokens(origin.removeprefix("http://"))
        headers: list[str] = []
        threads = [
            threading.Thread(target=lambda: headers.append(tokens.header())) for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        gate.set()
        for thread in threads:
            thread.join()

    assert headers == ["Bearer t"] * 8 and len(fetches) == 1


def test_a_query_refused_for_a_missing_index_says_so() -> None:
    # FAILED_PRECONDITION is an answer only to a conditional write (the document changed);
    # to a query it means an index is missing, and its message says which.
    refusal = {"error": {"status": "FAILED_PRECONDITION", "message": "The query requires an index"}}
    with serving(lambda *_: (400, refusal)) as (origin, _):
        rest = FirestoreRest(origin, "p", EmulatorToken())
        with pytest.raises(FirestoreRestError, match="requires an index"):
            rest.run_query("streams", DocumentQuery({"isPublic": True}, (), None, 0, 5))


def test_a_kept_alive_connection_the_server_closed_is_reopened_at_once() -> None:
    # The server answers one request per connection, then closes it while the client keeps
    # it for the next request (as a load balancer drops idle connections).
    listener = socket.create_server(("127.0.0.1", 0))
    answer = json.dumps(document("streams/a", n=1)).encode()

    def serve_two_connections() -> None:
        for _ in range(2):
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(answer)}\r\n\r\n".encode()
                    + answer
                )

    server = threading.Thread(target=serve_two_connections, daemon=True)
    server.start()
    sleeps: list[float] = []
    rest = FirestoreRest(
        f"http://127.0.0.1:{listener.getsockname()[1]}", "p", EmulatorToken(), sleep=sleeps.append
    )
    try:
        first = rest.get("streams", "a")
        second = rest.get("streams", "a")  # its kept connection is closed: reopened
    finally:
        server.join(5)
        listener.close()

    assert first.get("n") == second.get("n") == 1
    assert sleeps == []  # no backoff for a connection the server closed


@pytest.mark.parametrize(
    ("status", "reason"),
    [(400, "FAILED_PRECONDITION"), (404, "NOT_FOUND"), (409, "ALREADY_EXISTS"), (409, "ABORTED")],
)
def test_a_refused_conditional_commit_is_an_answer(status: int, reason: str) -> None:
    refusal = {"error": {"code": status, "status": reason, "message": "refused by the test"}}
    with serving(lambda *_: (status, refusal)) as (origin, seen):
        rest = FirestoreRest(origin, "p", EmulatorToken())
        write = rest.create_write("streams/a/private", "monitor-status", {"n": 1})
        assert rest.commit([write]) is None  # the caller reads again
        assert len(seen) == 1  # not retried


@pytest.mark.parametrize(
    ("status", "reason"),
    [(400, "FAILED_PRECONDITION"), (404, "NOT_FOUND"), (409, "ALREADY_EXISTS")],
)
def test_a_refusal_of_an_unconditional_write_or_a_read_is_an_error_not_silence(
    status: int, reason: str
) -> None:
    refusal = {"error": {"code": status, "status": reason, "message": "refused by the test"}}
    with serving(lambda *_: (status, refusal)) as (origin, seen):
        rest = FirestoreRest(origin, "p", EmulatorToken())
        with pytest.raises(FirestoreRestError, match=f"HTTP {status}"):
            rest.apply([rest.set_write("streams/a/private", "credentials", {"n": 1})])
        with pytest.raises(FirestoreRestError, match=f"HTTP {status}"):
            rest.run_query("streams", DocumentQuery({"isPublic": True}, (), None, 0, 5))
    assert len(seen) == 2  # neither retried


def test_an_aborted_unconditional_write_is_retried_as_google_advises() -> None:
    aborted = {"error": {"code": 409, "status": "ABORTED", "message": "contention"}}
    landed = {"writeResults": [{}], "commitTime": "2026-12-04T10:00:00.123456789Z"}
    answers = [(409, aborted), (200, landed)]
    with serving(lambda *_: answers.pop(0)) as (origin, seen):
        rest = FirestoreRest(origin, "p", EmulatorToken(), sleep=lambda _s: None)
        written = rest.apply([rest.delete_write("streams", "a")])
    assert written == ["2026-12-04T10:00:00.123456789Z"]  # a delete's time is the commit's
    assert len(seen) == 2


def test_a_write_aborted_until_the_budget_ends_is_a_503() -> None:
    aborted = {"error": {"code": 409, "status": "ABORTED", "message": "contention"}}
    with serving(lambda *_: (409, aborted)) as (origin, seen):
        rest = FirestoreRest(origin, "p", EmulatorToken(), budget_s=0.3)
        with pytest.raises(UnavailableError):
            rest.apply([rest.delete_write("streams", "a")])
    assert len(seen) > 1


def test_timestamps_keep_four_digit_years_and_take_naive_times_as_utc() -> None:
    assert format_timestamp(datetime(1, 1, 1)) == "0001-01-01T00:00:00.000000Z"
    assert format_timestamp(datetime(2026, 12, 1, 10)) == "2026-12-01T10:00:00.000000Z"
    assert parse_timestamp(format_timestamp(datetime(1, 1, 1, tzinfo=UTC))) == datetime(
        1, 1, 1, tzinfo=UTC
    )


def test_field_names_are_quoted_and_escaped_as_field_paths() -> None:
    bodies: list[Any] = []

    def handle(_m: str, _p: str, _h: dict[str, str], body: bytes) -> tuple[Any, ...]:
        bodies.append(json.loads(body))
        return 200, []

    with serving(handle) as (origin, _):
        rest = FirestoreRest(origin, "p", EmulatorToken())
        rest.run_query("streams", DocumentQuery({"a`b\\c": 1, "plain": 2}, (), None, 0, 5))

    filters = bodies[0]["structuredQuery"]["where"]["compositeFilter"]["filters"]
    assert [f["fieldFilter"]["field"]["fieldPath"] for f in filters] == ["`a\\`b\\\\c`", "plain"]


def test_a_streamed_answer_that_fails_midway_is_retried_not_taken_as_whole() -> None:
    # runQuery's 200 began before the error: the documents before it are not the answer.
    answers = iter(
        [
            (200, [{"document": document("streams/a")}, {"error": {"status": "UNAVAILABLE"}}]),
            (200, [{"document": document("streams/a")}, {"document": document("streams/b")}]),
        ]
    )
    with serving(lambda *_: next(answers)) as (origin, seen):
        rest = FirestoreRest(origin, "p", EmulatorToken(), sleep=lambda _s: None)
        found = rest.run_query("streams", DocumentQuery({}, (), None, 0, 5))
    assert [snapshot.id for snapshot in found] == ["a", "b"]
    assert len(seen) == 2


def test_a_streamed_error_retrying_cannot_change_is_an_error() -> None:
    answer = [{"error": {"status": "PERMISSION_DENIED", "message": "no"}}]
    with serving(lambda *_: (200, answer)) as (origin, seen):
        rest = FirestoreRest(origin, "p", EmulatorToken())
        with pytest.raises(FirestoreRestError):
            rest.get_many("memorials", ["a"])
    assert len(seen) == 1


def test_a_batch_read_that_leaves_a_document_out_is_not_an_absent_document() -> None:
    # A memorial neither found nor missing must not read as absent (absent reads as public).
    only_a = [{"found": document("memorials/a")}]
    with serving(lambda *_: (200, only_a)) as (origin, _):
        rest = FirestoreRest(origin, "p", EmulatorToken())
        with pytest.raises(UnavailableError):
            rest.get_many("memorials", ["a", "b"])
        assert [snapshot.id for snapshot in rest.get_many("memorials", ["a"])] == ["a"]
