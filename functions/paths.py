"""The two path families every stream endpoint answers: the unified ``/api/...`` paths and the
MVP Two aliases of the SvelteKit backend this replaces (which answer lists with a bare array),
and the decorators of the functions that serve one path of a stream or one task."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import flask
import functions_framework
from pydantic import BaseModel

from common.bootstrap import Services
from common.http import Ctx, ErrorBody, Handler, Op, Reply, http_endpoint, task_endpoint
from common.models.domain import User
from common.signatures import TASK_AUTH_HEADER

MVP = "/api/livestreamMVPTwo"
UNIFIED = "/api"

Function = Callable[[flask.Request], flask.Response]
# Picks, from the services, the method a one-call function asks with the caller and the stream.
StreamCall = Callable[[Services], Callable[[User | None, str], Reply]]


def unified_and_mvp(suffix: str) -> tuple[str, str]:
    return f"{UNIFIED}{suffix}", f"{MVP}{suffix}"


def stream_function(
    suffix: str, operations: Mapping[str, Op], **options: Any
) -> Callable[[Handler], Function]:
    """The functions-framework HTTP function serving ``/api/streams/{streamId}<suffix>`` and
    its MVP Two alias with ``operations`` (``http_endpoint``'s ``options``)."""

    def decorate(handler: Handler) -> Function:
        routes = unified_and_mvp(f"/streams/{{streamId}}{suffix}")
        function = http_endpoint(routes, operations, **options)(handler)
        functions_framework.http(function)  # registers it as an HTTP function
        return function

    return decorate


def unified_function(
    path: str, operations: Mapping[str, Op], **options: Any
) -> Callable[[Handler], Function]:
    """The functions-framework HTTP function serving ``/api<path>`` alone (no MVP Two alias:
    newer than MVP Two) with ``operations`` (``http_endpoint``'s ``options``)."""

    def decorate(handler: Handler) -> Function:
        function = http_endpoint((f"{UNIFIED}{path}",), operations, **options)(handler)
        functions_framework.http(function)  # registers it as an HTTP function
        return function

    return decorate


def stream_call(
    suffix: str, operations: Mapping[str, Op], call: StreamCall, **options: Any
) -> Callable[[Callable[[], None]], Function]:
    """``stream_function`` for a function whose handler only asks one service method (``call``
    picks it) with the caller and the path's ``streamId``. The ``def`` it decorates names the
    function and describes it (its docstring); its body is that docstring alone."""

    def decorate(declaration: Callable[[], None]) -> Function:
        @functools.wraps(declaration)
        def handler(ctx: Ctx) -> Reply:
            return call(ctx.services)(ctx.user, ctx.param("streamId"))

        return stream_function(suffix, operations, **options)(handler)

    return decorate


def task_function(
    path: str, payload: type[BaseModel], result: type[BaseModel]
) -> Callable[[Handler], Function]:
    """The functions-framework function Cloud Tasks posts ``payload`` to at ``path``: it
    answers ``result``, or an error body Cloud Tasks retries on. The handler's docstring
    is the operation's summary."""

    def decorate(handler: Handler) -> Function:
        summary = (handler.__doc__ or handler.__name__).strip()
        operation = Op(
            summary, {200: (result, ErrorBody)}, body=payload, headers=(TASK_AUTH_HEADER,)
        )
        function = task_endpoint((path,), operation)(handler)
        functions_framework.http(function)  # registers it as an HTTP function
        return function

    return decorate
