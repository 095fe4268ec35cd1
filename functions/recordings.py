"""A stream's recordings: the playable list, and the managers' choice of the primary one."""

from __future__ import annotations

from common.http import Ctx, Op, Reply
from common.models.api import RecordingChoiceRequest, StreamManagerView
from common.services.repair_tools import RecordingsSyncResponse
from common.services.stream_info import StreamRecordingsResponse
from functions.paths import stream_function

RECORDINGS = {
    "GET": Op("The stream's playable recordings", {200: StreamRecordingsResponse}),
    "POST": Op("Fetch and attach the recordings Cloudflare has", {200: RecordingsSyncResponse}),
}
RECORDING = {
    "PUT": Op(
        "Make a recording the primary one, or hide it",
        {200: StreamManagerView},
        body=RecordingChoiceRequest,
    ),
    "DELETE": Op("Delete one recording (never the last playable one)", {200: StreamManagerView}),
}


@stream_function("/recordings", RECORDINGS)
def streamrecordings(ctx: Ctx) -> Reply:
    """GET the stream's playable recordings; POST fetches them from Cloudflare first."""
    stream_id = ctx.param("streamId")
    if ctx.method == "POST":
        return ctx.services.repair_tools.sync_recordings(ctx.user, stream_id)
    return ctx.services.info.recordings(ctx.user, stream_id)


@stream_function("/recordings/{videoId}", RECORDING)
def streamrecording(ctx: Ctx) -> Reply:
    """PUT makes one recording the one the memorial page shows first, or hides it; DELETE
    deletes it at Cloudflare and from the stream."""
    if ctx.method == "DELETE":
        return ctx.services.keepsakes.delete_recording(
            ctx.user, ctx.param("streamId"), ctx.param("videoId")
        )
    choice = ctx.body(RecordingChoiceRequest)
    return ctx.services.repair_tools.choose_recording(
        ctx.user, ctx.param("streamId"), ctx.param("videoId"), choice
    )
