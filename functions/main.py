"""Every deployed HTTP function. Each one: route, authenticate, parse, call one service, render.

Paths are those of the SvelteKit backend this replaces; ``firebase.json`` rewrites each path to
the function of the same name below. ``/api/streams/**`` and ``/api/livestreamMVPTwo/**`` are
served by the same functions (the MVP Two paths answer list calls with a bare array).

Each method a function answers is declared once, beside it, as an ``Op``: its summary, body,
query and reply models. The handler parses with those models and the OpenAPI document
(``common.openapi``) is generated from them; path parameters are named as the document names
them. The document describes the ``/api/...`` paths, not their MVP Two aliases.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import flask
import functions_framework
from cloudevents.http import CloudEvent
from pydantic import BaseModel, Field

from common.adapters.cloud_tasks import TASK_AUTH_HEADER
from common.adapters.firestore.events import decode_stream_change
from common.bootstrap import get_services
from common.errors import InvalidArgumentError
from common.http import SDP, Ctx, ErrorBody, Op, QueryFlag, Reply, http_endpoint, task_endpoint
from common.logging import configure_logging
from common.models.api import (
    CredentialsResponse,
    DeleteResponse,
    MemorialStreamsResponse,
    MemorialStreamStatusResponse,
    MonitorTaskPayload,
    MonitorTaskResult,
    OrphanSweepPayload,
    OrphanSweepResult,
    Pagination,
    PublicListResponse,
    RecordingChoiceRequest,
    ReorderRequest,
    ReorderResponse,
    StartResponse,
    StopResponse,
    StreamCreateRequest,
    StreamListResponse,
    StreamManagerView,
    StreamOwnerView,
    StreamPublicView,
    StreamUpdateRequest,
)
from common.models.domain import StreamStatus
from common.ports import StreamQuery
from common.services.create_guards import IDEMPOTENCY_HEADER
from common.services.migration import MigrationReport
from common.services.repair_tools import (
    CorsResponse,
    PlaybackUrlResponse,
    RecordingsSyncResponse,
    SyncRecordingResponse,
    SyncStatusResponse,
    VideoIdResponse,
)
from common.services.stream_info import (
    EmbedInfoResponse,
    StreamRecordingsResponse,
    StreamStatusResponse,
)
from common.services.webhooks import WebhookReply

# Every line a function logs, from its first, is one JSON object Cloud Logging can parse.
configure_logging()
log = logging.getLogger(__name__)
MVP = "/api/livestreamMVPTwo"
UNIFIED = "/api"


def _unified_and_mvp(suffix: str) -> tuple[str, str]:
    return f"{UNIFIED}{suffix}", f"{MVP}{suffix}"


class PublicListQuery(BaseModel):
    """``GET /api/streams/public``: a page of public streams, of one status if given."""

    limit: int = Field(50, ge=1, le=100)
    offset: int = Field(0, ge=0, le=10_000)
    status: StreamStatus | None = None


class StreamListQuery(PublicListQuery):
    """``GET /api/streams``: a page of the streams the caller may see, filtered."""

    limit: int = Field(20, ge=1, le=100)
    memorialId: str | None = None
    createdBy: str | None = None
    isPublic: QueryFlag = None


class MigrateQuery(BaseModel):
    """``POST /api/streams/migrate``: how many legacy documents this call migrates."""

    limit: int = Field(200, ge=1, le=500)


ANY_VIEW = (StreamOwnerView, StreamManagerView, StreamPublicView)
CREATE = Op(
    "Create a stream and its live input",
    {200: StreamOwnerView},
    body=StreamCreateRequest,
    headers=(IDEMPOTENCY_HEADER,),
    errors=(422,),
)
VIDEO_ID = Op("List recordings, name the primary", {200: VideoIdResponse})
CONFIGURE_CORS = Op("Apply allowed origins", {200: CorsResponse})


@functions_framework.http
@http_endpoint(
    _unified_and_mvp("/streams"),
    {
        "GET": Op("Streams the caller may see", {200: StreamListResponse}, query=StreamListQuery),
        "POST": CREATE,
    },
)
def streams(ctx: Ctx) -> Reply:
    """GET lists the streams the caller may see; POST creates one (with its live input)."""
    if ctx.method == "POST":
        return ctx.services.streams.create(
            ctx.user,
            ctx.body(StreamCreateRequest),
            idempotency_key=ctx.header(IDEMPOTENCY_HEADER),
        )
    asked = ctx.query(StreamListQuery)
    query = StreamQuery(
        memorial_id=asked.memorialId,
        status=asked.status,
        is_public=asked.isPublic,
        created_by=asked.createdBy,
        limit=asked.limit,
        offset=asked.offset,
    )
    views, has_more = ctx.services.streams.list_streams(ctx.user, query)
    if ctx.path.startswith(MVP):
        return views
    return StreamListResponse(
        streams=views,
        total=len(views),
        hasMore=has_more,
        pagination=Pagination(
            limit=asked.limit,
            offset=asked.offset,
            nextOffset=asked.offset + asked.limit if has_more else None,
        ),
    )


@functions_framework.http
@http_endpoint(
    _unified_and_mvp("/streams/{streamId}"),
    {
        "GET": Op("One stream (credentials only for those who may start it)", {200: ANY_VIEW}),
        "PUT": Op("Edit a stream", {200: StreamManagerView}, body=StreamUpdateRequest),
        "DELETE": Op("Delete a stream that is not live", {200: DeleteResponse}),
    },
)
def stream(ctx: Ctx) -> Reply:
    """GET reads one stream (credentials only for those who may start it); PUT edits; DELETE."""
    stream_id = ctx.param("streamId")
    if ctx.method == "PUT":
        return ctx.services.streams.update(ctx.user, stream_id, ctx.body(StreamUpdateRequest))
    if ctx.method == "DELETE":
        return ctx.services.streams.delete(ctx.user, stream_id)
    return ctx.services.streams.get(ctx.user, stream_id)


@functions_framework.http
@http_endpoint(
    _unified_and_mvp("/streams/{streamId}/start"),
    {"POST": Op("Go live; returns RTMP credentials", {200: StartResponse})},
)
def startstream(ctx: Ctx) -> Reply:
    """POST marks the stream live and returns its RTMP credentials and WHIP endpoint."""
    return ctx.services.broadcasts.start(ctx.user, ctx.param("streamId"))


@functions_framework.http
@http_endpoint(
    _unified_and_mvp("/streams/{streamId}/stop"),
    {"POST": Op("End the broadcast", {200: StopResponse})},
)
def stopstream(ctx: Ctx) -> Reply:
    """POST ends the broadcast; the recording follows when Cloudflare has processed it."""
    return ctx.services.broadcasts.stop(ctx.user, ctx.param("streamId"))


@functions_framework.http
@http_endpoint(
    _unified_and_mvp("/streams/{streamId}/status"),
    {"GET": Op("Status for polling pages (no Cloudflare call)", {200: StreamStatusResponse})},
)
def streamstatus(ctx: Ctx) -> Reply:
    """GET the stream's status for polling pages: no Cloudflare call, one document read."""
    return ctx.services.info.status(ctx.user, ctx.param("streamId"))


@functions_framework.http
@http_endpoint(
    _unified_and_mvp("/streams/{streamId}/recordings"),
    {
        "GET": Op("The stream's playable recordings", {200: StreamRecordingsResponse}),
        "POST": Op("Fetch and attach the recordings Cloudflare has", {200: RecordingsSyncResponse}),
    },
)
def streamrecordings(ctx: Ctx) -> Reply:
    """GET the stream's playable recordings; POST fetches them from Cloudflare first."""
    stream_id = ctx.param("streamId")
    if ctx.method == "POST":
        return ctx.services.repair_tools.sync_recordings(ctx.user, stream_id)
    return ctx.services.info.recordings(ctx.user, stream_id)


@functions_framework.http
@http_endpoint(
    _unified_and_mvp("/streams/{streamId}/recordings/{videoId}"),
    {
        "PUT": Op(
            "Make a recording the primary one, or hide it",
            {200: StreamManagerView},
            body=RecordingChoiceRequest,
        )
    },
)
def streamrecording(ctx: Ctx) -> Reply:
    """PUT makes one recording the one the memorial page shows first, or hides it."""
    choice = ctx.body(RecordingChoiceRequest)
    return ctx.services.repair_tools.choose_recording(
        ctx.user, ctx.param("streamId"), ctx.param("videoId"), choice
    )


@functions_framework.http
@http_endpoint(
    _unified_and_mvp("/streams/{streamId}/credentials"),
    {
        "GET": Op(
            "RTMP credentials and WHIP endpoint, without going live", {200: CredentialsResponse}
        )
    },
)
def streamcredentials(ctx: Ctx) -> Reply:
    """GET the RTMP credentials and WHIP endpoint without going live."""
    return ctx.services.broadcasts.credentials(ctx.user, ctx.param("streamId"))


@functions_framework.http
@http_endpoint(
    _unified_and_mvp("/streams/{streamId}/embed-info"),
    {"GET": Op("Player URLs", {200: EmbedInfoResponse})},
)
def streamembedinfo(ctx: Ctx) -> Reply:
    """GET ready-made player URLs (iframe, HLS, DASH, thumbnails) for the stream."""
    return ctx.services.info.embed_info(ctx.user, ctx.param("streamId"))


@functions_framework.http
@http_endpoint(
    _unified_and_mvp("/streams/migrate"),
    {
        "GET": Op(
            "Admin: what migrating legacy stream documents would change", {200: MigrationReport}
        ),
        "POST": Op(
            "Admin: migrate up to `limit` legacy stream documents (repeat until done)",
            {200: MigrationReport},
            query=MigrateQuery,
        ),
    },
)
def migratestreams(ctx: Ctx) -> Reply:
    """GET reports what the migration of legacy stream documents would change; POST applies
    it to at most ``limit`` documents (admins only; call again until ``done``)."""
    if ctx.method == "POST":
        return ctx.services.migration.apply(ctx.user, ctx.query(MigrateQuery).limit)
    return ctx.services.migration.report(ctx.user)


@functions_framework.http
@http_endpoint(
    _unified_and_mvp("/streams/reorder"),
    {"PUT": Op("Set display order", {200: ReorderResponse}, body=ReorderRequest)},
)
def reorderstreams(ctx: Ctx) -> Reply:
    """PUT sets ``displayOrder`` of the listed streams to their position in the list."""
    return ctx.services.streams.reorder(ctx.user, ctx.body(ReorderRequest))


@functions_framework.http
@http_endpoint(
    (f"{UNIFIED}/streams/public", f"{MVP}/public/streams", f"{MVP}/public-streams"),
    {
        "GET": Op(
            "Public streams (CDN-cacheable, ETag)",
            {200: PublicListResponse, 304: None},
            query=PublicListQuery,
        )
    },
    public_cache=True,
)
def publicstreams(ctx: Ctx) -> Reply:
    """GET lists public, visible streams for memorial pages; no authentication."""
    asked = ctx.query(PublicListQuery)
    page = ctx.services.streams.list_public(asked.status, asked.limit, asked.offset)
    views = [StreamPublicView.of(s) for s in page.streams]
    if ctx.path.endswith("/public-streams"):
        return views
    return PublicListResponse.grouped(
        views, limit=asked.limit, offset=asked.offset, has_more=page.has_more
    )


@functions_framework.http
@http_endpoint(
    (f"{UNIFIED}/memorials/{{memorialId}}/streams",),
    {
        "GET": Op("A memorial's streams", {200: MemorialStreamsResponse}),
        "POST": replace(CREATE, summary="Create a memorial's stream"),
    },
)
def memorialstreams(ctx: Ctx) -> Reply:
    """GET the streams of one memorial, grouped; POST creates a stream for that memorial."""
    memorial_id = ctx.param("memorialId")
    if ctx.method == "POST":
        return ctx.services.streams.create_for_memorial(
            ctx.user,
            memorial_id,
            ctx.body(StreamCreateRequest),
            idempotency_key=ctx.header(IDEMPOTENCY_HEADER),
        )
    views = ctx.services.streams.memorial_streams(ctx.user, memorial_id)
    return MemorialStreamsResponse.grouped(memorial_id, views)


@functions_framework.http
@http_endpoint(
    (f"{UNIFIED}/memorials/{{memorialId}}/streams/status",),
    {"GET": Op("Live/scheduled/completed", {200: MemorialStreamStatusResponse})},
)
def memorialstreamstatus(ctx: Ctx) -> Reply:
    """GET the live / scheduled / completed streams of a memorial, for polling pages."""
    return ctx.services.streams.memorial_status(ctx.user, ctx.param("memorialId"))


@functions_framework.http
@http_endpoint(
    (
        *_unified_and_mvp("/streams/{streamId}/whip"),
        *_unified_and_mvp("/streams/{streamId}/whip/{sessionId}"),
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


@functions_framework.http
@http_endpoint(
    ("/api/webhooks/cloudflare/recording",),
    {
        "POST": Op(
            "Cloudflare Stream webhook",
            {200: WebhookReply},
            body=dict,
            headers=("Webhook-Signature",),
        )
    },
)
def cloudflarerecordingwebhook(ctx: Ctx) -> Reply:
    """POST from Cloudflare's Stream webhook (signed): a recording is ready or failed."""
    return ctx.services.webhooks.handle_video(ctx.header("Webhook-Signature"), ctx.raw_body)


@functions_framework.http
@http_endpoint(
    ("/api/webhooks/cloudflare/live-input",),
    {
        "POST": Op(
            "Cloudflare Notifications", {200: WebhookReply}, body=dict, headers=("cf-webhook-auth",)
        )
    },
)
def cloudflareliveinputwebhook(ctx: Ctx) -> Reply:
    """POST from Cloudflare Notifications: a live input connected, disconnected or errored."""
    return ctx.services.webhooks.handle_live_input(ctx.header("cf-webhook-auth"), ctx.raw_body)


@functions_framework.http
@task_endpoint(
    ("/api/tasks/monitor",),
    Op(
        "Cloud Tasks: one monitor check",
        {200: (MonitorTaskResult, ErrorBody)},
        body=MonitorTaskPayload,
        headers=(TASK_AUTH_HEADER,),
    ),
)
def runmonitorcheck(ctx: Ctx) -> Reply:
    """POST from Cloud Tasks: one scheduled recording or status check."""
    task = ctx.body(MonitorTaskPayload)
    outcome = ctx.services.monitors.run_check(
        task.kind, task.streamId, task.generation, task.attempt
    )
    return MonitorTaskResult(outcome=outcome)


@functions_framework.http
@task_endpoint(
    ("/api/tasks/sweep-live-inputs",),
    Op(
        "Cloud Tasks: delete orphaned live inputs of one stream",
        {200: (OrphanSweepResult, ErrorBody)},
        body=OrphanSweepPayload,
        headers=(TASK_AUTH_HEADER,),
    ),
)
def sweeporphanedinputs(ctx: Ctx) -> Reply:
    """POST from Cloud Tasks: delete live inputs a failed create may have left behind."""
    task = ctx.body(OrphanSweepPayload)
    return OrphanSweepResult(deleted=ctx.services.live_inputs.sweep_orphaned_inputs(task.streamId))


@functions_framework.http
@http_endpoint(
    _unified_and_mvp("/streams/{streamId}/sync-recording"),
    {"POST": Op("Attach the recordings Cloudflare has", {200: SyncRecordingResponse})},
)
def syncrecording(ctx: Ctx) -> Reply:
    """POST fetches the stream's recordings from Cloudflare and attaches them now."""
    return ctx.services.repair_tools.sync_recording(ctx.user, ctx.param("streamId"))


@functions_framework.http
@http_endpoint(
    _unified_and_mvp("/streams/{streamId}/sync-status"),
    {"POST": Op("Align status with the live input", {200: SyncStatusResponse})},
)
def syncstatus(ctx: Ctx) -> Reply:
    """POST aligns the stream's status with the live input's connection."""
    return ctx.services.repair_tools.sync_status(ctx.user, ctx.param("streamId"))


@functions_framework.http
@http_endpoint(
    _unified_and_mvp("/streams/{streamId}/get-video-id"), {"POST": VIDEO_ID, "GET": VIDEO_ID}
)
def getvideoid(ctx: Ctx) -> Reply:
    """POST lists the input's recordings and names the primary video id."""
    return ctx.services.repair_tools.get_video_id(ctx.user, ctx.param("streamId"))


@functions_framework.http
@http_endpoint(
    _unified_and_mvp("/streams/{streamId}/configure-cors"),
    {"PUT": CONFIGURE_CORS, "POST": CONFIGURE_CORS},
)
def configurecors(ctx: Ctx) -> Reply:
    """PUT applies the allowed origins to the live input and its existing recordings."""
    return ctx.services.repair_tools.configure_cors(ctx.user, ctx.param("streamId"))


@functions_framework.http
@http_endpoint(
    _unified_and_mvp("/streams/{streamId}/fix-playback-url"),
    {"POST": Op("Rebuild playback URLs", {200: PlaybackUrlResponse})},
)
def fixplaybackurl(ctx: Ctx) -> Reply:
    """POST rebuilds the live player URL and the recording's HLS URL."""
    return ctx.services.repair_tools.fix_playback_url(ctx.user, ctx.param("streamId"))


@functions_framework.http
@http_endpoint(
    _unified_and_mvp("/streams/{streamId}/fix-status"),
    {"POST": Op("Reconcile a stuck stream", {200: SyncStatusResponse})},
)
def fixstatus(ctx: Ctx) -> Reply:
    """POST reconciles a stuck status (both ways) and the recordings."""
    return ctx.services.repair_tools.fix_status(ctx.user, ctx.param("streamId"))


@functions_framework.cloud_event
def onstreamwritten(event: CloudEvent) -> None:
    """Firestore ``document.v1.written`` on ``streams/{id}``: react to status changes."""
    try:
        before, after = decode_stream_change(event.get_data())
    except ValueError:
        # Redelivery cannot make unreadable data readable; retrying would loop for days.
        log.exception("dropping unreadable Firestore event %s", event["id"])
        return
    get_services().stream_changes.on_stream_written(before, after)
