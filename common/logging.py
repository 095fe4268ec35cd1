"""JSON-lines logging to stdout (parsed by Cloud Logging), with secrets redacted."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from typing import Any

import flask

_SECRET_KEYS = re.compile(r"(stream_?key|whip|secret|token|password|authorization|cookie)", re.I)
_SECRET_VALUES = re.compile(r"(/live/)[^\s\"']+|(https?://[^\s\"']+/)[^/\s\"']+(/webRTC/publish)")
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {"message"}


def redact(text: str) -> str:
    """Mask RTMP stream keys and WHIP publish secrets inside free text."""
    return _SECRET_VALUES.sub(
        lambda m: f"{m.group(1)}***" if m.group(1) else f"{m.group(2)}***{m.group(3)}", text
    )


TRACE_HEADER = "X-Cloud-Trace-Context"
TRACE_FIELD = "logging.googleapis.com/trace"
_TRACE_ID = re.compile(r"^[0-9a-fA-F]{32}$")


def trace_of(header: str | None, project: str | None) -> str | None:
    """Cloud Logging's trace name for an ``X-Cloud-Trace-Context: TRACE_ID/SPAN;o=1`` header,
    so that a request's log lines group under it in the console."""
    if not header or not project:
        return None
    trace_id = header.split("/", 1)[0].strip()
    return f"projects/{project}/traces/{trace_id}" if _TRACE_ID.match(trace_id) else None


def _current_trace() -> str | None:
    if not flask.has_request_context():
        return None
    project = os.environ.get("LS_GCP_PROJECT") or os.environ.get("GOOGLE_CLOUD_PROJECT")
    return trace_of(flask.request.headers.get(TRACE_HEADER), project)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``severity``, ``message``, ``logger``, the request's trace
    and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": redact(record.getMessage()),
            "logger": record.name,
        }
        trace = _current_trace()
        if trace:
            entry[TRACE_FIELD] = trace
        for key, value in vars(record).items():
            if key in _STANDARD or key.startswith("_"):
                continue
            entry[key] = "***" if _SECRET_KEYS.search(key) else value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    """Install the JSON formatter on the root logger (idempotent)."""
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
