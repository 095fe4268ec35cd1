"""Going live and ending: Start, Stop, the encoder's credentials and browser broadcasts
(WHIP). ``common/services/broadcasts.py`` does the work.
"""

from __future__ import annotations

import flask
import functions_framework

from common.errors import InvalidArgumentError
from common.http import REACHES_CLOUDFLARE, SDP, Ctx, Op, Reply, http_endpoint
from common.models.api import (
    CredentialsResponse,
    DeleteResponse,
    ExtendRequest,
    StartResponse,
    StopResponse,
    WindowResponse,
)
from functions.paths import UNIFIED, stream_call, stream_function, unified_and_mvp

GO_LIVE = {
    "POST": Op(
        "Go live; returns RTMP credentials", {200: StartResponse}, preloads=REACHES_CLOUDFLARE
    )
}
END = {"POST": Op("End the broadcast", {200: StopResponse}, preloads=REACHES_CLOUDFLARE)}
# A stream without a live input gets one here (it is created on first use).
CREDENTIALS = {
    "GET": Op(
        "RTMP credentials and WHIP endpoint, without going live",
        {200: CredentialsResponse},
        writes=True,
    )
}


@stream_call("/start", GO_LIVE, lambda services: services.broadcasts.start)
def startstream() -> None:
    """POST marks the stream live and returns its RTMP credentials and WHIP endpoint."""


@stream_call("/stop", END, lambda services: services.broadcasts.stop)
def stopstream() -> None:
    """POST ends the broadcast; the recording follows when Cloudflare has processed it."""


EXTEND = {
    "POST": Op(
        "Plan the service to end later (a schedule window)", {200: WindowResponse}, ExtendRequest
    )
}
END_NOW = {
    "POST": Op("End the service now: stop it if live; close its window", {200: WindowResponse})
}


@stream_function("/extend", EXTEND)
def extendstream(ctx: Ctx) -> Reply:
    """POST moves the planned end later; the window's tasks move with it."""
    minutes = ctx.body(ExtendRequest).minutes
    return ctx.services.windows.extend(ctx.user, ctx.param("streamId"), minutes)


@stream_call("/end", END_NOW, lambda services: services.windows.end_now)
def endstream() -> None:
    """POST ends the service now: a live broadcast stops, the page stops counting down."""


@stream_call("/credentials", CREDENTIALS, lambda services: services.broadcasts.credentials)
def streamcredentials() -> None:
    """GET the RTMP credentials and WHIP endpoint without going live."""


@functions_framework.http
@http_endpoint(
    (
        *unified_and_mvp("/streams/{streamId}/whip"),
        *unified_and_mvp("/streams/{streamId}/whip/{sessionId}"),
    ),
    {
        "POST": Op(
            "WHIP: relay an SDP offer (browser broadcast)",
            {201: SDP},
            body=SDP,
            route=f"{UNIFIED}/streams/{{streamId}}/whip",
        ),
        "DELETE": Op(
            "End a browser broadcast",
            {200: DeleteResponse},
            route=f"{UNIFIED}/streams/{{streamId}}/whip/{{sessionId}}",
        ),
    },
    cors=True,
    accept_post=SDP,
)
def whipstream(ctx: Ctx) -> Reply:
    """POST relays a browser's WHIP offer (application/sdp) and answers 201 with the SDP and
    the session URL in Location; DELETE on that URL ends the browser broadcast."""
    stream_id = ctx.param("streamId")
    if ctx.method == "DELETE":
        return ctx.services.broadcasts.end_whip(ctx.user, stream_id, ctx.require_param("sessionId"))
    if not (ctx.header("Content-Type") or "").startswith(SDP):
        raise InvalidArgumentError(f"Content-Type must be {SDP}")
    offer = ctx.raw_body.decode("utf-8", errors="replace")
    publication = ctx.services.broadcasts.publish_whip(ctx.user, stream_id, offer)
    return flask.Response(
        publication.answer_sdp,
        status=201,
        content_type=SDP,
        headers={"Location": publication.location},
    )
