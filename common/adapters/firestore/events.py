"""Firestore document CloudEvents (``google.cloud.firestore.document.v1.written``), JSON form.

The trigger is deployed with ``application/json`` event data: ``value`` and ``oldValue`` are
Firestore REST documents whose fields are typed values (``stringValue``, ``mapValue``, …).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from common.adapters.firestore.streams import StreamDocument
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
    return StreamDocument.model_validate(decode_fields(document["fields"])).to_stream(stream_id)


def decode_stream_change(data: dict[str, Any]) -> tuple[Stream | None, Stream | None]:
    """(before, after) of a ``written`` event; ``None`` for a creation or a deletion."""
    return stream_of(data.get("oldValue")), stream_of(data.get("value"))
