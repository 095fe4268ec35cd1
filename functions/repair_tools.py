"""The management page's repair tools: attach recordings, align status, rebuild URLs.
``common/services/repair_tools.py`` does the work; each tool takes the stream's id.
"""

from __future__ import annotations

from common.http import REACHES_CLOUDFLARE, Op
from common.services.repair_tools import (
    CorsResponse,
    PlaybackUrlResponse,
    SyncRecordingResponse,
    SyncStatusResponse,
    VideoIdResponse,
)
from functions.paths import stream_call

# Each tool's operations by method (the frontend calls some of them with two methods).
ATTACH = {
    "POST": Op(
        "Attach the recordings Cloudflare has",
        {200: SyncRecordingResponse},
        preloads=REACHES_CLOUDFLARE,
    )
}
ALIGN = {
    "POST": Op(
        "Align status with the live input",
        {200: SyncStatusResponse},
        preloads=REACHES_CLOUDFLARE,
    )
}
# GET attaches the recordings it finds, as POST does.
VIDEO_ID = dict.fromkeys(
    ("POST", "GET"),
    Op(
        "List recordings, name the primary",
        {200: VideoIdResponse},
        writes=True,
        preloads=REACHES_CLOUDFLARE,
    ),
)
CONFIGURE_CORS = dict.fromkeys(
    ("PUT", "POST"),
    Op("Apply allowed origins", {200: CorsResponse}, preloads=REACHES_CLOUDFLARE),
)
REBUILD_URLS = {
    "POST": Op("Rebuild playback URLs", {200: PlaybackUrlResponse}, preloads=REACHES_CLOUDFLARE)
}
RECONCILE = {
    "POST": Op("Reconcile a stuck stream", {200: SyncStatusResponse}, preloads=REACHES_CLOUDFLARE)
}


@stream_call("/sync-recording", ATTACH, lambda services: services.repair_tools.sync_recording)
def syncrecording() -> None:
    """POST fetches the stream's recordings from Cloudflare and attaches them now."""


@stream_call("/sync-status", ALIGN, lambda services: services.repair_tools.sync_status)
def syncstatus() -> None:
    """POST aligns the stream's status with the live input's connection."""


@stream_call("/get-video-id", VIDEO_ID, lambda services: services.repair_tools.get_video_id)
def getvideoid() -> None:
    """POST lists the input's recordings and names the primary video id."""


@stream_call(
    "/configure-cors", CONFIGURE_CORS, lambda services: services.repair_tools.configure_cors
)
def configurecors() -> None:
    """PUT applies the allowed origins to the live input and its existing recordings."""


@stream_call(
    "/fix-playback-url", REBUILD_URLS, lambda services: services.repair_tools.fix_playback_url
)
def fixplaybackurl() -> None:
    """POST rebuilds the live player URL and the recording's HLS URL."""


@stream_call("/fix-status", RECONCILE, lambda services: services.repair_tools.fix_status)
def fixstatus() -> None:
    """POST reconciles a stuck status (both ways) and the recordings."""
