"""Local stand-in for Eventarc's Firestore trigger: watches a collection in the Firestore
emulator and POSTs ``google.cloud.firestore.document.v1.written`` CloudEvents to the trigger
function, in commit order per document.

Like Eventarc, the data is ``DocumentEventData`` as ``application/protobuf`` unless
``--content-type application/json`` is given."""

from __future__ import annotations

import argparse
import base64
import json
import logging
import queue
import threading
import time
import uuid
import zlib
from datetime import UTC, datetime
from typing import Any

import httpx
from google.cloud import firestore
from google.events.cloud.firestore_v1 import DocumentEventData
from google.protobuf import json_format

log = logging.getLogger(__name__)
EVENT_TYPE = "google.cloud.firestore.document.v1.written"
# Eventarc delivers concurrently; enough lanes that a burst of writes (a test suite, a busy
# funeral morning) does not queue the events of an unrelated document behind it.
LANES = 32
SLOW_DELIVERY_S = 5.0
PROTOBUF = "application/protobuf"
JSON = "application/json"
# Logged once the first snapshot is in: writes from then on get their events.
READY_MESSAGE = "event bridge ready"


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# Order matters: bool before int, datetime before anything broader.
_ENCODERS: list[tuple[type, str, Any]] = [
    (bool, "booleanValue", lambda v: v),
    (int, "integerValue", str),
    (float, "doubleValue", lambda v: v),
    (str, "stringValue", lambda v: v),
    (datetime, "timestampValue", _timestamp),
    (bytes, "bytesValue", lambda v: base64.b64encode(v).decode()),
    (list, "arrayValue", lambda v: {"values": [encode_value(item) for item in v]}),
    (dict, "mapValue", lambda v: {"fields": {k: encode_value(x) for k, x in v.items()}}),
]


def encode_value(value: Any) -> dict[str, Any]:
    """A Python value as a typed Firestore REST value."""
    if value is None:
        return {"nullValue": None}
    for kind, name, encode in _ENCODERS:
        if isinstance(value, kind):
            return {name: encode(value)}
    return {"stringValue": str(value)}


class EventBridge:
    """Turns snapshot changes into CloudEvents delivered by one worker thread."""

    def __init__(
        self, project: str, collection: str, target: str, content_type: str = PROTOBUF
    ) -> None:
        self._project = project
        self._content_type = content_type
        self._collection = collection
        self._target = target
        self._known: dict[str, dict[str, Any]] = {}
        self._primed = False
        self._resumed = False
        # One ordered lane per worker; a document always uses the same lane, so its events
        # arrive in commit order while different documents are delivered in parallel.
        self._lanes: list[queue.Queue[tuple[str, dict[str, Any], float]]] = [
            queue.Queue() for _ in range(LANES)
        ]

    def document_name(self, doc_id: str) -> str:
        return f"projects/{self._project}/databases/(default)/documents/{self._collection}/{doc_id}"

    def on_snapshot(self, docs: Any, changes: Any, _read_time: Any) -> None:
        if not self._primed:
            self._prime({doc.id: doc.to_dict() for doc in docs})
            return
        for change in changes:
            doc_id = change.document.id
            before = self._known.get(doc_id)
            after = None if change.type.name == "REMOVED" else change.document.to_dict()
            if after is None:
                self._known.pop(doc_id, None)
            else:
                self._known[doc_id] = after
            self.enqueue(doc_id, before, after)

    def resume(self) -> None:
        """The watch stream broke: the next snapshot is a full one, to compare with what we
        knew, so that writes made while it was down still get their events."""
        self._primed = False
        self._resumed = True

    def _prime(self, current: dict[str, dict[str, Any]]) -> None:
        # The first snapshot only says what exists (Eventarc sends nothing for it), unless it
        # follows a broken stream.
        if self._resumed:
            for doc_id in sorted(self._known.keys() | current.keys()):
                before, after = self._known.get(doc_id), current.get(doc_id)
                if before != after:
                    self.enqueue(doc_id, before, after)
        self._known = current
        if not self._primed and not self._resumed:
            log.info("%s: watching %s", READY_MESSAGE, self._collection)
        self._primed = True

    def enqueue(
        self, doc_id: str, before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> None:
        lane = self._lanes[zlib.crc32(doc_id.encode()) % LANES]
        lane.put((doc_id, self.event_data(doc_id, before, after), time.monotonic()))

    def event_data(
        self, doc_id: str, before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> dict[str, Any]:
        data: dict[str, Any] = {}
        name = self.document_name(doc_id)
        if before is not None:
            data["oldValue"] = {"name": name, "fields": encode_value(before)["mapValue"]["fields"]}
        if after is not None:
            data["value"] = {"name": name, "fields": encode_value(after)["mapValue"]["fields"]}
        return data

    def body(self, data: dict[str, Any]) -> bytes:
        """The event data in the bridge's content type."""
        if self._content_type == JSON:
            return json.dumps(data).encode()
        return bytes(json_format.ParseDict(data, DocumentEventData.pb()()).SerializeToString())

    def start_delivery(self) -> None:
        for lane in self._lanes:
            threading.Thread(target=self._deliver_forever, args=(lane,), daemon=True).start()

    def _deliver_forever(self, lane: queue.Queue[tuple[str, dict[str, Any], float]]) -> None:
        with httpx.Client(timeout=30) as client:
            while True:
                doc_id, data, queued_at = lane.get()
                waited = time.monotonic() - queued_at
                if waited > SLOW_DELIVERY_S:
                    log.warning("event for %s delivered %.1f s after its write", doc_id, waited)
                headers = {
                    "ce-id": str(uuid.uuid4()),
                    "ce-specversion": "1.0",
                    "ce-type": EVENT_TYPE,
                    "ce-source": f"//firestore.googleapis.com/projects/{self._project}/"
                    "databases/(default)",
                    "ce-subject": f"documents/{self._collection}/{doc_id}",
                    "ce-time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                    "Content-Type": self._content_type,
                }
                try:
                    response = client.post(self._target, content=self.body(data), headers=headers)
                    if response.status_code >= 300:
                        log.warning("trigger answered %s for %s", response.status_code, doc_id)
                except httpx.HTTPError as exc:
                    log.warning("trigger delivery failed for %s: %s", doc_id, exc)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project", required=True)
    parser.add_argument("--collection", default="streams")
    parser.add_argument("--target", required=True)
    parser.add_argument("--content-type", choices=(PROTOBUF, JSON), default=PROTOBUF)
    return parser


def main() -> None:
    args = build_parser().parse_args()
    logging.basicConfig(level=logging.INFO)
    bridge = EventBridge(args.project, args.collection, args.target, args.content_type)
    client = firestore.Client(project=args.project)
    bridge.start_delivery()
    while True:
        watch = client.collection(args.collection).on_snapshot(bridge.on_snapshot)
        time.sleep(1)
        while watch.is_active:
            time.sleep(0.5)
        # The client gives up on some stream errors (a corrupt message, the emulator gone).
        log.warning("Firestore watch stream ended; subscribing again")
        watch.unsubscribe()  # type: ignore[no-untyped-call]
        bridge.resume()


if __name__ == "__main__":
    main()
