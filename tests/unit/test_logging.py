from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import flask
import pytest

from common.logging import TRACE_FIELD, TRACE_HEADER, JsonFormatter, redact, trace_of

ROOT = Path(__file__).resolve().parents[2]


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


def test_log_lines_of_a_request_carry_its_cloud_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LS_GCP_PROJECT", "memorials-prod")
    record = logging.LogRecord("x", logging.INFO, "f", 1, "hello", (), None)
    app = flask.Flask("t")
    trace_id = "105445aa7843bc8bf206b12000100000"
    with app.test_request_context(headers={TRACE_HEADER: f"{trace_id}/1;o=1"}):
        inside = json.loads(JsonFormatter().format(record))
    outside = json.loads(JsonFormatter().format(record))
    assert inside[TRACE_FIELD] == f"projects/memorials-prod/traces/{trace_id}"
    assert TRACE_FIELD not in outside


def test_malformed_trace_headers_are_ignored() -> None:
    assert trace_of("not-a-trace/1", "p") is None
    assert trace_of(None, "p") is None
    assert trace_of("105445aa7843bc8bf206b12000100000", None) is None


def test_the_functions_module_logs_json_from_import() -> None:
    # A fresh process, as a cold Cloud Run instance: the first line already is JSON.
    program = "import functions.main, logging; logging.getLogger('probe').error('first line')"
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, cwd=ROOT
    )
    (line,) = result.stdout.splitlines()
    assert json.loads(line) == {"severity": "ERROR", "message": "first line", "logger": "probe"}
