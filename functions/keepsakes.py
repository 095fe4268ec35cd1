"""Keepsakes of a recording: its MP4 download for the family, and trimming it (managers), with
the scheduled check that follows either to ready (Cloud Tasks only)."""

from __future__ import annotations

from common.http import Ctx, Op, Reply
from common.services.keepsakes import (
    ClipRequest,
    KeepsakeTaskPayload,
    KeepsakeTaskResult,
    RecordingClipView,
    RecordingDownloadView,
)
from functions.paths import stream_function, task_function

DOWNLOAD = {
    "GET": Op("Where the recording's MP4 download stands", {200: RecordingDownloadView}),
    "POST": Op("Ask for the recording's MP4 download", {202: RecordingDownloadView}),
}
CLIP = {
    "POST": Op(
        "Trim the recording: a new recording that becomes the primary one when ready",
        {202: RecordingClipView},
        body=ClipRequest,
    )
}


@stream_function("/recordings/{videoId}/download", DOWNLOAD, cache="anonymous")
def downloadrecording(ctx: Ctx) -> Reply:
    """POST asks Cloudflare for an MP4 of the recording; GET says how far it is (and its URL)."""
    stream_id, video_id = ctx.param("streamId"), ctx.param("videoId")
    if ctx.method == "POST":
        return ctx.services.keepsakes.request_download(ctx.user, stream_id, video_id)
    return ctx.services.keepsakes.download(ctx.user, stream_id, video_id)


@stream_function("/recordings/{videoId}/clip", CLIP)
def cliprecording(ctx: Ctx) -> Reply:
    """POST cuts ``startTimeSeconds``..``endTimeSeconds`` of the recording into a new one."""
    request = ctx.body(ClipRequest)
    return ctx.services.keepsakes.clip(
        ctx.user, ctx.param("streamId"), ctx.param("videoId"), request
    )


@task_function("/api/tasks/keepsake", KeepsakeTaskPayload, KeepsakeTaskResult)
def runkeepsakecheck(ctx: Ctx) -> Reply:
    """Cloud Tasks: one scheduled check of a download or a trim."""
    task = ctx.body(KeepsakeTaskPayload)
    outcome = ctx.services.keepsakes.run_check(
        task.kind, task.streamId, task.videoId, task.generation, task.attempt
    )
    return KeepsakeTaskResult(outcome=outcome)
