"""Firestore document CloudEvents (``google.cloud.firestore.document.v1.written``).

Eventarc delivers the change as ``application/protobuf`` (``DocumentEventData``) unless the
trigger asks for ``application/json``; both are accepted. Protobuf is read through its JSON
mapping, so one decoder handles both: ``value`` and ``oldValue`` are Firestore REST documents
whose fields are typed values (``stringValue``, ``mapValue``, …).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError

from common.adapters.firestore.documents import stream_from_fields
from common.models.domain import Stream


def decode_value(value: dict[str, Any]) -> Any:
    """One typed Firestore REST value as a Python value."""
    kind, raw = next(iter(value.items()))
    decoders: dict[str, Any] = {
        "nullValue": lambda _: None,
        "booleanValue": bool,
        "integerValue": int,
        "doubleValue": float,
        "stringValue": str,
        "referenceValue": str,
        "bytesValue": base64.b64decode,
        "timestampValue": lambda v: datetime.fromisoformat(v.replace("Z", "+00:00")),
        "geoPointValue": dict,
        "arrayValue": lambda v: [decode_value(item) for item in v.get("values", [])],
        "mapValue": lambda v: decode_fields(v.get("fields", {})),
    }
    return decoders[kind](raw)


def decode_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """A Firestore REST ``fields`` map as a plain dict."""
    return {name: decode_value(value) for name, value in fields.items()}


def stream_of(document: dict[str, Any] | None) -> Stream | None:
    """The stream a CloudEvent document describes, or ``None`` when absent."""
    if not document or "fields" not in document:
        return None
    stream_id = str(document["name"]).rsplit("/", 1)[-1]
    try:
        return stream_from_fields(stream_id, decode_fields(document["fields"]))
    except (KeyError, TypeError, ValueError) as exc:  # e.g. a malformed monitor map
        raise ValueError(f"document {stream_id} is not a readable stream") from exc


def event_data_as_json(data: bytes | dict[str, Any] | None) -> dict[str, Any]:
    """The event's ``DocumentEventData`` in its JSON form, whichever encoding carried it."""
    if data is None:
        return {}
    if isinstance(data, dict):
        return data
    # Imported here: every HTTP function shares this module, and only the trigger needs it.
    from google.events.cloud.firestore_v1 import DocumentEventData  # noqa: PLC0415

    try:
        message = DocumentEventData.pb().FromString(data)
    except DecodeError as exc:
        raise ValueError("event data is not a Firestore DocumentEventData") from exc
    decoded: dict[str, Any] = json_format.MessageToDict(message)
    return decoded


def decode_stream_change(
    data: bytes | dict[str, Any] | None,
) -> tuple[Stream | None, Stream | None]:
    """(before, after) of a ``written`` event; ``None`` for a creation or a deletion.

    Raises ``ValueError`` for data that is not a readable stream change.
    """
    change = event_data_as_json(data)
    return stream_of(change.get("oldValue")), stream_of(change.get("value"))
