"""The two path families every stream endpoint answers: the unified ``/api/...`` paths and the
MVP Two aliases of the SvelteKit backend this replaces (which answer lists with a bare array),
and the decorators of the functions that serve one path of a stream or one task."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flask
import functions_framework
from pydantic import BaseModel

from common.http import ErrorBody, Handler, Op, http_endpoint, task_endpoint
from common.signatures import TASK_AUTH_HEADER

MVP = "/api/livestreamMVPTwo"
UNIFIED = "/api"


def unified_and_mvp(suffix: str) -> tuple[str, str]:
    return f"{UNIFIED}{suffix}", f"{MVP}{suffix}"


def stream_function(
    suffix: str, operations: Mapping[str, Op], **options: Any
) -> Callable[[Handler], Callable[[flask.Request], flask.Response]]:
    """The functions-framework HTTP function serving ``/api/streams/{streamId}<suffix>`` and
    its MVP Two alias with ``operations`` (``http_endpoint``'s ``options``)."""

    def decorate(handler: Handler) -> Callable[[flask.Request], flask.Response]:
        routes = unified_and_mvp(f"/streams/{{streamId}}{suffix}")
        function = http_endpoint(routes, operations, **options)(handler)
        functions_framework.http(function)  # registers it as an HTTP function
        return function

    return decorate


def task_function(
    path: str, payload: type[BaseModel], result: type[BaseModel]
) -> Callable[[Handler], Callable[[flask.Request], flask.Response]]:
    """The functions-framework function Cloud Tasks posts ``payload`` to at ``path``: it
    answers ``result``, or an error body Cloud Tasks retries on. The handler's docstring
    is the operation's summary."""

    def decorate(handler: Handler) -> Callable[[flask.Request], flask.Response]:
        summary = (handler.__doc__ or handler.__name__).strip()
        operation = Op(
            summary, {200: (result, ErrorBody)}, body=payload, headers=(TASK_AUTH_HEADER,)
        )
        function = task_endpoint((path,), operation)(handler)
        functions_framework.http(function)  # registers it as an HTTP function
        return function

    return decorate
