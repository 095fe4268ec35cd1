"""How a test calls a deployed function and reads its reply: functions-framework's test client
of each function of ``functions/main.py``, the bearer header of a test user, and the checks of a
reply's status and body."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, cast

import flask
import functions_framework
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from common.models.domain import User

SOURCE = Path(__file__).absolute().parents[2] / "functions" / "main.py"


def bearer(user: User) -> dict[str, str]:
    """The ``Authorization`` header of a signed-in test user."""
    return {"Authorization": f"Bearer token-{user.uid}"}


@functools.cache
def function_app(target: str, signature_type: str | None = None) -> flask.Flask:
    """functions-framework's app for one function of ``functions/main.py`` (made once)."""
    app = functions_framework.create_app(  # type: ignore[no-untyped-call]
        target=target, source=str(SOURCE), signature_type=signature_type
    )
    return cast(flask.Flask, app)


def client(target: str) -> FlaskClient:
    """A test client of the named HTTP function."""
    return function_app(target).test_client()


def event_client(target: str) -> FlaskClient:
    """A test client of the named CloudEvent function."""
    return function_app(target, "cloudevent").test_client()


def ok(response: TestResponse, status: int = 200) -> Any:
    """The JSON body of a response that must have ``status``."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json", response.mimetype
    return response.get_json()


def error(
    response: TestResponse, status: int, code: str | None = None, *, no_store: bool = True
) -> dict[str, Any]:
    """The ``{"error": ..., "code": ...}`` body of a refused request; a browser-facing
    function's errors are never cached (``no_store``; task targets sit behind no CDN)."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json", response.mimetype
    body = response.get_json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("error"), str), body
    assert body["error"], body
    if code is not None:
        assert body["code"] == code, body
    if no_store:
        assert response.headers.get("Cache-Control") == "no-store"
    return body
