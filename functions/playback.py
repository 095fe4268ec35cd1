"""Private playback: signed URLs for those who may watch a stream, and invitation codes for
guests without an account. ``common/services/playback.py`` does the work."""

from __future__ import annotations

import flask

from common.http import Ctx, Op, Reply
from common.services.playback import (
    AccessRequest,
    InvitationCreateRequest,
    InvitationListResponse,
    InvitationView,
    PlaybackResponse,
)
from functions.paths import stream_call, stream_function

PLAYBACK = {
    "GET": Op(
        "Playable URLs of what is on now (signed for private streams)", {200: PlaybackResponse}
    )
}
INVITATIONS = {
    "GET": Op("The stream's invitation codes (managers)", {200: InvitationListResponse}),
    "POST": Op(
        "Create an invitation code and link for guests (managers)",
        {201: InvitationView},
        body=InvitationCreateRequest,
    ),
}
INVITATION = {"DELETE": Op("Revoke an invitation code (managers)", {200: InvitationView})}
ACCESS = {
    "POST": Op(
        "Redeem an invitation code: view-only playback, no account needed",
        {200: PlaybackResponse},
        body=AccessRequest,
        errors=(429,),
    )
}


@stream_call("/playback", PLAYBACK, lambda services: services.playback.playback, cache="anonymous")
def streamplayback() -> None:
    """GET what the caller may watch now: signed URLs (and ``expiresAt``) for a private stream,
    the plain ones for a public stream."""


@stream_function("/invitations", INVITATIONS)
def streaminvitations(ctx: Ctx) -> Reply:
    """GET the stream's invitations, or POST a new one."""
    stream_id = ctx.param("streamId")
    if ctx.method == "POST":
        request = ctx.body(InvitationCreateRequest)
        return ctx.services.playback.invite(ctx.user, stream_id, request)
    return ctx.services.playback.invitations(ctx.user, stream_id)


@stream_function("/invitations/{code}", INVITATION)
def streaminvitation(ctx: Ctx) -> Reply:
    """DELETE (revoke) one invitation of the stream."""
    return ctx.services.playback.revoke(ctx.user, ctx.param("streamId"), ctx.param("code"))


@stream_function("/access", ACCESS)
def streamaccess(ctx: Ctx) -> Reply:
    """POST an invitation code: playback for a guest (no account; credentials are ignored)."""
    code = ctx.body(AccessRequest).code
    return ctx.services.playback.redeem(_client_address(ctx.request), ctx.param("streamId"), code)


def _client_address(request: flask.Request) -> str:
    """Who is guessing codes: the first address of ``X-Forwarded-For``, which Cloud Run's and
    Hosting's front ends fill with the client's address, else the peer's. A client can put a
    false one first (and so get more guesses; 128-bit codes are not guessable anyway)."""
    forwarded = request.headers.get("X-Forwarded-For", "")
    first = forwarded.split(",", 1)[0].strip()
    return first[:64] or request.remote_addr or "unknown"
