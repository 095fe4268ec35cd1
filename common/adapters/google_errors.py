"""Google's JSON error bodies (``{"error": {"code", "message", "status", "details"}}``), as
the REST adapters (Firestore, Cloud Tasks) read them."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class GoogleError:
    """An error's ``status`` (``ABORTED``...), its message and the reasons of its details
    (``SERVICE_DISABLED``...); for a body that is no such error, its start as the message."""

    status: str
    message: str
    reasons: tuple[str, ...] = ()

    def __str__(self) -> str:
        return " ".join([self.message, *self.reasons])


def google_error(data: bytes) -> GoogleError:
    try:
        error = json.loads(data)["error"]
        reasons = tuple(
            str(detail["reason"])
            for detail in error.get("details") or []
            if isinstance(detail, dict) and "reason" in detail
        )
        return GoogleError(str(error.get("status", "")), str(error.get("message", "")), reasons)
    except (ValueError, KeyError, TypeError, AttributeError):
        return GoogleError("", repr(data[:300]))
