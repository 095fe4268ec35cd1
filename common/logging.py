"""JSON-lines logging to stdout (parsed by Cloud Logging), with secrets redacted."""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

_SECRET_KEYS = re.compile(r"(stream_?key|whip|secret|token|password|authorization|cookie)", re.I)
_SECRET_VALUES = re.compile(r"(/live/)[^\s\"']+|(https?://[^\s\"']+/)[^/\s\"']+(/webRTC/publish)")
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {"message"}


def redact(text: str) -> str:
    """Mask RTMP stream keys and WHIP publish secrets inside free text."""
    return _SECRET_VALUES.sub(
        lambda m: f"{m.group(1)}***" if m.group(1) else f"{m.group(2)}***{m.group(3)}", text
    )


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``severity``, ``message``, ``logger`` and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": redact(record.getMessage()),
            "logger": record.name,
        }
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
