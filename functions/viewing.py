"""What memorial pages poll and embed, without a Cloudflare call: a stream's status, a
memorial's status board and the player URLs. ``common/services/stream_info.py`` and the
memorial board of ``common/services/stream_listings.py`` do the work.
"""

from __future__ import annotations

import functions_framework

from common.http import Ctx, Op, Reply, http_endpoint
from common.models.api import (
    MemorialStreamStatusResponse,
)
from common.services.stream_info import (
    EmbedInfoResponse,
    StreamStatusResponse,
)
from functions.paths import UNIFIED, stream_function

# Both polled answers are CDN-cacheable for visitors: a conditional GET may be answered 304.
STATUS = {
    "GET": Op(
        "Status for polling pages (no Cloudflare call)", {200: StreamStatusResponse, 304: None}
    )
}
BOARD = {"GET": Op("Live/scheduled/completed", {200: MemorialStreamStatusResponse, 304: None})}
PLAYER_URLS = {"GET": Op("Player URLs", {200: EmbedInfoResponse})}


@stream_function("/status", STATUS, cache="anonymous")
def streamstatus(ctx: Ctx) -> Reply:
    """GET the stream's status for polling pages: no Cloudflare call, one document read."""
    return ctx.services.info.status(ctx.user, ctx.param("streamId"))


@functions_framework.http
@http_endpoint((f"{UNIFIED}/memorials/{{memorialId}}/streams/status",), BOARD, cache="anonymous")
def memorialstreamstatus(ctx: Ctx) -> Reply:
    """GET the live / scheduled / completed streams of a memorial, for polling pages."""
    return ctx.services.listings.memorial_status(ctx.user, ctx.param("memorialId"))


@stream_function("/embed-info", PLAYER_URLS)
def streamembedinfo(ctx: Ctx) -> Reply:
    """GET ready-made player URLs (iframe, HLS, DASH, thumbnails) for the stream."""
    return ctx.services.info.embed_info(ctx.user, ctx.param("streamId"))
