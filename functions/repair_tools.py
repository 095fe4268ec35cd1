"""The management page's repair tools: attach recordings, align status, rebuild URLs.
``common/services/repair_tools.py`` does the work.
"""

from __future__ import annotations

import functions_framework

from common.http import Ctx, Op, Reply, http_endpoint
from common.services.repair_tools import (
    CorsResponse,
    PlaybackUrlResponse,
    SyncRecordingResponse,
    SyncStatusResponse,
    VideoIdResponse,
)
from functions.paths import unified_and_mvp

VIDEO_ID = Op("List recordings, name the primary", {200: VideoIdResponse})
CONFIGURE_CORS = Op("Apply allowed origins", {200: CorsResponse})


@functions_framework.http
@http_endpoint(
    unified_and_mvp("/streams/{streamId}/sync-recording"),
    {"POST": Op("Attach the recordings Cloudflare has", {200: SyncRecordingResponse})},
)
def syncrecording(ctx: Ctx) -> Reply:
    """POST fetches the stream's recordings from Cloudflare and attaches them now."""
    return ctx.services.repair_tools.sync_recording(ctx.user, ctx.param("streamId"))


@functions_framework.http
@http_endpoint(
    unified_and_mvp("/streams/{streamId}/sync-status"),
    {"POST": Op("Align status with the live input", {200: SyncStatusResponse})},
)
def syncstatus(ctx: Ctx) -> Reply:
    """POST aligns the stream's status with the live input's connection."""
    return ctx.services.repair_tools.sync_status(ctx.user, ctx.param("streamId"))


@functions_framework.http
@http_endpoint(
    unified_and_mvp("/streams/{streamId}/get-video-id"), {"POST": VIDEO_ID, "GET": VIDEO_ID}
)
def getvideoid(ctx: Ctx) -> Reply:
    """POST lists the input's recordings and names the primary video id."""
    return ctx.services.repair_tools.get_video_id(ctx.user, ctx.param("streamId"))


@functions_framework.http
@http_endpoint(
    unified_and_mvp("/streams/{streamId}/configure-cors"),
    {"PUT": CONFIGURE_CORS, "POST": CONFIGURE_CORS},
)
def configurecors(ctx: Ctx) -> Reply:
    """PUT applies the allowed origins to the live input and its existing recordings."""
    return ctx.services.repair_tools.configure_cors(ctx.user, ctx.param("streamId"))


@functions_framework.http
@http_endpoint(
    unified_and_mvp("/streams/{streamId}/fix-playback-url"),
    {"POST": Op("Rebuild playback URLs", {200: PlaybackUrlResponse})},
)
def fixplaybackurl(ctx: Ctx) -> Reply:
    """POST rebuilds the live player URL and the recording's HLS URL."""
    return ctx.services.repair_tools.fix_playback_url(ctx.user, ctx.param("streamId"))


@functions_framework.http
@http_endpoint(
    unified_and_mvp("/streams/{streamId}/fix-status"),
    {"POST": Op("Reconcile a stuck stream", {200: SyncStatusResponse})},
)
def fixstatus(ctx: Ctx) -> Reply:
    """POST reconciles a stuck status (both ways) and the recordings."""
    return ctx.services.repair_tools.fix_status(ctx.user, ctx.param("streamId"))
