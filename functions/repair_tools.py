"""The management page's repair tools: attach recordings, align status, rebuild URLs.
``common/services/repair_tools.py`` does the work; each tool takes the stream's id.
"""

from __future__ import annotations

from common.http import Ctx, Op, Reply
from common.services.repair_tools import (
    CorsResponse,
    PlaybackUrlResponse,
    SyncRecordingResponse,
    SyncStatusResponse,
    VideoIdResponse,
)
from functions.paths import stream_function

# Each tool's operations by method (the frontend calls some of them with two methods).
ATTACH = {"POST": Op("Attach the recordings Cloudflare has", {200: SyncRecordingResponse})}
ALIGN = {"POST": Op("Align status with the live input", {200: SyncStatusResponse})}
VIDEO_ID = dict.fromkeys(
    ("POST", "GET"), Op("List recordings, name the primary", {200: VideoIdResponse})
)
CONFIGURE_CORS = dict.fromkeys(("PUT", "POST"), Op("Apply allowed origins", {200: CorsResponse}))
REBUILD_URLS = {"POST": Op("Rebuild playback URLs", {200: PlaybackUrlResponse})}
RECONCILE = {"POST": Op("Reconcile a stuck stream", {200: SyncStatusResponse})}


@stream_function("/sync-recording", ATTACH)
def syncrecording(ctx: Ctx) -> Reply:
    """POST fetches the stream's recordings from Cloudflare and attaches them now."""
    return ctx.services.repair_tools.sync_recording(ctx.user, ctx.param("streamId"))


@stream_function("/sync-status", ALIGN)
def syncstatus(ctx: Ctx) -> Reply:
    """POST aligns the stream's status with the live input's connection."""
    return ctx.services.repair_tools.sync_status(ctx.user, ctx.param("streamId"))


@stream_function("/get-video-id", VIDEO_ID)
def getvideoid(ctx: Ctx) -> Reply:
    """POST lists the input's recordings and names the primary video id."""
    return ctx.services.repair_tools.get_video_id(ctx.user, ctx.param("streamId"))


@stream_function("/configure-cors", CONFIGURE_CORS)
def configurecors(ctx: Ctx) -> Reply:
    """PUT applies the allowed origins to the live input and its existing recordings."""
    return ctx.services.repair_tools.configure_cors(ctx.user, ctx.param("streamId"))


@stream_function("/fix-playback-url", REBUILD_URLS)
def fixplaybackurl(ctx: Ctx) -> Reply:
    """POST rebuilds the live player URL and the recording's HLS URL."""
    return ctx.services.repair_tools.fix_playback_url(ctx.user, ctx.param("streamId"))


@stream_function("/fix-status", RECONCILE)
def fixstatus(ctx: Ctx) -> Reply:
    """POST reconciles a stuck status (both ways) and the recordings."""
    return ctx.services.repair_tools.fix_status(ctx.user, ctx.param("streamId"))
