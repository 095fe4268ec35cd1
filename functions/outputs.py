"""Simulcast outputs of a stream (managers): YouTube, Facebook or any RTMP(S) destination its
broadcast is sent on to, by Cloudflare. ``common/services/simulcast.py`` does the work."""

from __future__ import annotations

from common.http import REACHES_CLOUDFLARE, Ctx, Op, Reply
from common.models.outputs import (
    OutputCreate,
    OutputDeleted,
    OutputListView,
    OutputUpdate,
    OutputView,
)
from functions.paths import stream_function

OUTPUTS = {
    "GET": Op(
        "The stream's simulcast outputs, keys masked (managers)",
        {200: OutputListView},
        preloads=REACHES_CLOUDFLARE,
    ),
    "POST": Op(
        "Add a simulcast output: an rtmp(s):// URL and its stream key (managers)",
        {201: OutputView},
        body=OutputCreate,
        preloads=REACHES_CLOUDFLARE,
    ),
}
OUTPUT = {
    "PUT": Op(
        "Enable or disable a simulcast output (managers)",
        {200: OutputView},
        body=OutputUpdate,
        preloads=REACHES_CLOUDFLARE,
    ),
    "DELETE": Op(
        "Remove a simulcast output (managers)", {200: OutputDeleted}, preloads=REACHES_CLOUDFLARE
    ),
}


@stream_function("/outputs", OUTPUTS)
def streamoutputs(ctx: Ctx) -> Reply:
    """GET the stream's outputs, or POST a new one."""
    stream_id = ctx.param("streamId")
    if ctx.method == "POST":
        return ctx.services.simulcast.add(ctx.user, stream_id, ctx.body(OutputCreate))
    return ctx.services.simulcast.list(ctx.user, stream_id)


@stream_function("/outputs/{outputId}", OUTPUT)
def streamoutput(ctx: Ctx) -> Reply:
    """PUT ``{"enabled": ...}`` to start or stop sending to one output; DELETE removes it."""
    stream_id, output_id = ctx.param("streamId"), ctx.param("outputId")
    if ctx.method == "DELETE":
        return ctx.services.simulcast.remove(ctx.user, stream_id, output_id)
    request = ctx.body(OutputUpdate)
    return ctx.services.simulcast.set_enabled(ctx.user, stream_id, output_id, request)
