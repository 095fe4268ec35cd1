from __future__ import annotations

import json
import logging

from common.logging import JsonFormatter, redact


def test_redact_masks_stream_keys_and_whip_secrets() -> None:
    text = (
        "push rtmps://live.example/live/abc123secret and https://c.example/SECRETX/webRTC/publish"
    )
    masked = redact(text)
    assert "abc123secret" not in masked and "SECRETX" not in masked
    assert "/live/***" in masked and "/***/webRTC/publish" in masked


def test_json_formatter_masks_secret_extras() -> None:
    record = logging.LogRecord("x", logging.INFO, "f", 1, "created %s", ("s1",), None)
    record.streamKey = "k-123"
    record.stream_id = "s1"
    line = json.loads(JsonFormatter().format(record))
    assert line == {
        "severity": "INFO",
        "message": "created s1",
        "logger": "x",
        "streamKey": "***",
        "stream_id": "s1",
    }
