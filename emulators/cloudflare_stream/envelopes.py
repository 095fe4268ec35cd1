"""What the emulator's Flask views share: Cloudflare's JSON envelope and 10003 "not found",
and the state and media side of the app serving the request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import flask

if TYPE_CHECKING:
    from emulators.cloudflare_stream.media import Broadcasts
    from emulators.cloudflare_stream.state import EmulatorState


def current_state() -> EmulatorState:
    state: EmulatorState = flask.current_app.config["EMULATOR_STATE"]
    return state


def current_broadcasts() -> Broadcasts:
    broadcasts: Broadcasts = flask.current_app.config["BROADCASTS"]
    return broadcasts


def envelope(result: Any, status: int = 200, **extra: Any) -> flask.Response:
    body = {"success": True, "errors": [], "messages": [], "result": result, **extra}
    return flask.make_response(flask.jsonify(body), status)


def failure(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Any:
    body = {
        "success": False,
        "errors": [{"code": code, "message": message}],
        "messages": [],
        "result": None,
    }
    response = flask.make_response(flask.jsonify(body), status)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


class Missing(Exception):
    """No such record: Cloudflare's 404 with error 10003 (the app's error handler renders it)."""


RecordT = TypeVar("RecordT")


def existing(records: Mapping[str, RecordT], uid: str, what: str) -> RecordT:
    """The record of ``uid``, or Cloudflare's "<what> not found"."""
    record = records.get(uid)
    if record is None:
        raise Missing(f"{what} not found")
    return record
