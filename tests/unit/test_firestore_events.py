"""Firestore trigger events decode to the same stream whichever encoding Eventarc used."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from common.adapters.firestore.documents import stream_to_document
from common.adapters.firestore.events import decode_stream_change
from common.models.domain import MonitorState, RecordingEntry, Stream, StreamStatus
from emulators.firestore_events import JSON, PROTOBUF, EventBridge

NOW = datetime(2026, 11, 25, 9, 30, 15, 123456, tzinfo=UTC)


def completed_stream() -> Stream:
    return Stream(
        id="s-1",
        title="Service for Ada",
        description="",
        memorial_id=None,
        created_by="u1",
        allowed_users=("u2", "u3"),
        status=StreamStatus.COMPLETED,
        cloudflare_id="in-1",
        display_order=3,
        recordings=(
            RecordingEntry(
                video_uid="v1",
                state="ready",
                ready=True,
                hls_url="https://v/1.m3u8",
                duration=3600.5,
                size=123_456_789_012,
                created=NOW,
            ),
        ),
        recording_monitor=MonitorState(generation=2, next_attempt=4, checked_at=NOW),
        created_at=NOW,
        updated_at=NOW,
    )


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_an_update_decodes_to_the_stream_before_and_after(content_type: str) -> None:
    before = completed_stream().model_copy(update={"status": StreamStatus.LIVE})
    after = completed_stream()
    bridge = EventBridge("demo", "mvp_two_streams", "http://unused", content_type)
    data = bridge.event_data("s-1", stream_to_document(before), stream_to_document(after))
    body = bridge.body(data)
    wire: bytes | dict[str, object] = body if content_type == PROTOBUF else _json(body)

    decoded_before, decoded_after = decode_stream_change(wire)

    assert decoded_before == before
    assert decoded_after == after


def test_creation_and_deletion_have_no_before_or_no_after() -> None:
    bridge = EventBridge("demo", "mvp_two_streams", "http://unused")
    document = stream_to_document(completed_stream())

    created = decode_stream_change(bridge.body(bridge.event_data("s-1", None, document)))
    deleted = decode_stream_change(bridge.body(bridge.event_data("s-1", document, None)))

    assert created == (None, completed_stream())
    assert deleted == (completed_stream(), None)
    assert decode_stream_change(None) == (None, None)


def test_bytes_that_are_not_document_event_data_are_refused() -> None:
    with pytest.raises(ValueError, match="DocumentEventData"):
        decode_stream_change(b"\xff\xff not protobuf")


def _json(body: bytes) -> dict[str, object]:
    decoded: dict[str, object] = json.loads(body)
    return decoded


class RecordingBridge(EventBridge):
    def __init__(self) -> None:
        super().__init__("demo", "mvp_two_streams", "http://unused")
        self.events: list[tuple[str, dict[str, object] | None, dict[str, object] | None]] = []

    def enqueue(
        self, doc_id: str, before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> None:
        self.events.append((doc_id, before, after))


def snapshot(**docs: dict[str, object]) -> list[SimpleNamespace]:
    return [
        SimpleNamespace(id=doc_id, to_dict=lambda d=data: dict(d)) for doc_id, data in docs.items()
    ]


def change(kind: str, doc_id: str, data: dict[str, object]) -> SimpleNamespace:
    return SimpleNamespace(
        type=SimpleNamespace(name=kind),
        document=SimpleNamespace(id=doc_id, to_dict=lambda: dict(data)),
    )


def test_the_bridge_sends_nothing_for_the_first_snapshot_then_each_change() -> None:
    bridge = RecordingBridge()
    bridge.on_snapshot(snapshot(a={"v": 1}), [change("ADDED", "a", {"v": 1})], None)
    assert bridge.events == []

    bridge.on_snapshot([], [change("MODIFIED", "a", {"v": 2})], None)
    bridge.on_snapshot([], [change("REMOVED", "a", {"v": 2})], None)

    assert bridge.events == [("a", {"v": 1}, {"v": 2}), ("a", {"v": 2}, None)]


def test_after_a_broken_watch_the_bridge_sends_what_changed_while_it_was_down() -> None:
    bridge = RecordingBridge()
    bridge.on_snapshot(snapshot(a={"v": 1}, b={"v": 1}, c={"v": 1}), [], None)

    bridge.resume()
    bridge.on_snapshot(snapshot(a={"v": 2}, c={"v": 1}, d={"v": 1}), [], None)

    assert bridge.events == [
        ("a", {"v": 1}, {"v": 2}),
        ("b", {"v": 1}, None),
        ("d", None, {"v": 1}),
    ]


def test_a_document_with_a_malformed_monitor_is_unreadable_not_a_crash() -> None:
    bridge = EventBridge("demo", "streams", "http://unused", "application/json")
    document = {
        "title": "x",
        "createdBy": "u",
        "createdAt": datetime(2026, 1, 1, tzinfo=UTC),
        "recordingMonitor": {"unexpected": 1},
    }
    data = json.loads(bridge.body(bridge.event_data("s1", None, document)))
    with pytest.raises(ValueError, match="not a readable stream"):
        decode_stream_change(data)
