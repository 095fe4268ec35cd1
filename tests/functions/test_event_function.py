"""``onstreamwritten``, the Firestore ``document.v1.written`` CloudEvent function, as
functions-framework serves it (binary-mode CloudEvent, data as protobuf or JSON)."""

from __future__ import annotations

import json
import uuid

import pytest

from common.adapters.firestore.documents import stream_to_document
from common.models.domain import Stream
from emulators.firestore_events import EVENT_TYPE, JSON, PROTOBUF, EventBridge
from tests import people
from tests.functions.calls import event_client
from tests.functions.conftest import Backend


def deliver(before: Stream | None, after: Stream | None, content_type: str) -> int:
    """POST the change the way Eventarc does; the status functions-framework answers."""
    stream_id = (after or before).id  # type: ignore[union-attr]
    bridge = EventBridge("demo-functions-tests", "streams", "http://unused", content_type)
    data = bridge.event_data(
        stream_id,
        stream_to_document(before) if before else None,
        stream_to_document(after) if after else None,
    )
    return post_event(bridge.body(data), content_type, stream_id)


def post_event(body: bytes, content_type: str, stream_id: str) -> int:
    headers = {
        "ce-id": str(uuid.uuid4()),
        "ce-specversion": "1.0",
        "ce-type": EVENT_TYPE,
        "ce-source": "//firestore.googleapis.com/projects/demo-functions-tests/databases/(default)",
        "ce-subject": f"documents/streams/{stream_id}",
        "ce-time": "2026-11-24T10:00:00Z",
        "Content-Type": content_type,
    }
    response = event_client("onstreamwritten").post("/", data=body, headers=headers)
    return response.status_code


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_a_stream_going_live_starts_its_status_monitor(backend: Backend, content_type: str) -> None:
    created = backend.create_stream()
    before = backend.stream(created.id)
    after = before.began_broadcast(backend.clock.now())
    backend.repo.update(created.id, lambda _: after)

    assert deliver(before, after, content_type) == 200

    assert [(t.payload["kind"], t.payload["streamId"]) for t in backend.tasks.tasks] == [
        ("status", created.id)
    ]


def test_a_deleted_stream_takes_its_live_input_with_it(backend: Backend) -> None:
    created = backend.create_stream()
    before = backend.stream(created.id)
    backend.repo.delete(created.id)

    assert deliver(before, None, PROTOBUF) == 200

    assert created.cloudflareId not in backend.provider.inputs


def test_unreadable_event_data_is_dropped_not_retried(backend: Backend) -> None:
    backend.create_stream(people.OWNER)

    assert post_event(b"\xff\xff not protobuf", PROTOBUF, "stream-1") == 200
    assert (
        post_event(
            json.dumps(
                {"value": {"name": "x/y", "fields": {"recordingMonitor": {"stringValue": "?"}}}}
            ).encode(),
            JSON,
            "y",
        )
        == 200
    )
    assert backend.tasks.tasks == []
