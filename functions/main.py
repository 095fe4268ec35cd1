"""Every deployed HTTP function. Each one: route, authenticate, parse, call one service, render.

Paths are those of the SvelteKit backend this replaces; ``firebase.json`` rewrites each path to
the function of the same name below. ``/api/streams/**`` and ``/api/livestreamMVPTwo/**`` are
served by the same functions (the MVP Two paths answer list calls with a bare array).
"""

from __future__ import annotations

import logging

import flask
import functions_framework
from cloudevents.http import CloudEvent

from common.adapters.firestore.events import decode_stream_change
from common.bootstrap import get_services
from common.errors import InvalidArgumentError
from common.http import Ctx, Reply, http_endpoint, task_endpoint
from common.logging import configure_logging
from common.models.api import (
    MemorialStreamsResponse,
    MonitorTaskPayload,
    MonitorTaskResult,
    OrphanSweepPayload,
    OrphanSweepResult,
    Pagination,
    PublicListResponse,
    RecordingChoiceRequest,
    ReorderRequest,
    StreamCreateRequest,
    StreamListResponse,
    StreamPublicView,
    StreamUpdateRequest,
    parse_status_filter,
)
from common.models.domain import StreamStatus
from common.ports import StreamQuery

# Every line a function logs, from its first, is one JSON object Cloud Logging can parse.
configure_logging()
log = logging.getLogger(__name__)
MVP = "/api/livestreamMVPTwo"
UNIFIED = "/api"


def _both(suffix: str) -> tuple[str, str]:
    return f"{UNIFIED}{suffix}", f"{MVP}{suffix}"


def _status_param(ctx: Ctx) -> StreamStatus | None:
    return parse_status_filter(ctx.query_str("status"))


@functions_framework.http
@http_endpoint(_both("/streams"), methods=("GET", "POST"))
def streams(ctx: Ctx) -> Reply:
    """GET lists the streams the caller may see; POST creates one (with its live input)."""
    if ctx.method == "POST":
        return ctx.services.streams.create(
            ctx.user,
            ctx.body(StreamCreateRequest),
            idempotency_key=ctx.header("Idempotency-Key"),
        )
    limit = ctx.query_int("limit", 20, low=1, high=100)
    offset = ctx.query_int("offset", 0, low=0, high=10_000)
    query = StreamQuery(
        memorial_id=ctx.query_str("memorialId"),
        status=_status_param(ctx),
        is_public=ctx.query_bool("isPublic"),
        created_by=ctx.query_str("createdBy"),
        limit=limit,
        offset=offset,
    )
    views, has_more = ctx.services.streams.list_streams(ctx.user, query)
    if ctx.path.startswith(MVP):
        return views
    return StreamListResponse(
        streams=views,
        total=len(views),
        hasMore=has_more,
        pagination=Pagination(
            limit=limit, offset=offset, nextOffset=offset + limit if has_more else None
        ),
    )


@functions_framework.http
@http_endpoint(_both("/streams/{stream_id}"), methods=("GET", "PUT", "DELETE"))
def stream(ctx: Ctx) -> Reply:
    """GET reads one stream (credentials only for those who may start it); PUT edits; DELETE."""
    stream_id = ctx.param("stream_id")
    if ctx.method == "PUT":
        return ctx.services.streams.update(ctx.user, stream_id, ctx.body(StreamUpdateRequest))
    if ctx.method == "DELETE":
        return ctx.services.streams.delete(ctx.user, stream_id)
    return ctx.services.streams.get(ctx.user, stream_id)


@functions_framework.http
@http_endpoint(_both("/streams/{stream_id}/start"), methods=("POST",))
def startstream(ctx: Ctx) -> Reply:
    """POST marks the stream live and returns its RTMP credentials and WHIP endpoint."""
    return ctx.services.broadcasts.start(ctx.user, ctx.param("stream_id"))


@functions_framework.http
@http_endpoint(_both("/streams/{stream_id}/stop"), methods=("POST",))
def stopstream(ctx: Ctx) -> Reply:
    """POST ends the broadcast; the recording follows when Cloudflare has processed it."""
    return ctx.services.broadcasts.stop(ctx.user, ctx.param("stream_id"))


@functions_framework.http
@http_endpoint(_both("/streams/{stream_id}/status"), methods=("GET",))
def streamstatus(ctx: Ctx) -> Reply:
    """GET the stream's status for polling pages: no Cloudflare call, one document read."""
    return ctx.services.info.status(ctx.user, ctx.param("stream_id"))


@functions_framework.http
@http_endpoint(_both("/streams/{stream_id}/recordings"), methods=("GET", "POST"))
def streamrecordings(ctx: Ctx) -> Reply:
    """GET the stream's playable recordings; POST fetches them from Cloudflare first."""
    stream_id = ctx.param("stream_id")
    if ctx.method == "POST":
        return ctx.services.tools.sync_recordings(ctx.user, stream_id)
    return ctx.services.info.recordings(ctx.user, stream_id)


@functions_framework.http
@http_endpoint(_both("/streams/{stream_id}/recordings/{video_id}"), methods=("PUT",))
def streamrecording(ctx: Ctx) -> Reply:
    """PUT makes one recording the one the memorial page shows first, or hides it."""
    choice = ctx.body(RecordingChoiceRequest)
    return ctx.services.tools.choose_recording(
        ctx.user, ctx.param("stream_id"), ctx.param("video_id"), choice
    )


@functions_framework.http
@http_endpoint(_both("/streams/{stream_id}/credentials"), methods=("GET",))
def streamcredentials(ctx: Ctx) -> Reply:
    """GET the RTMP credentials and WHIP endpoint without going live."""
    return ctx.services.broadcasts.credentials(ctx.user, ctx.param("stream_id"))


@functions_framework.http
@http_endpoint(_both("/streams/{stream_id}/embed-info"), methods=("GET",))
def streamembedinfo(ctx: Ctx) -> Reply:
    """GET ready-made player URLs (iframe, HLS, DASH, thumbnails) for the stream."""
    return ctx.services.info.embed_info(ctx.user, ctx.param("stream_id"))


@functions_framework.http
@http_endpoint(_both("/streams/migrate"), methods=("GET", "POST"))
def migratestreams(ctx: Ctx) -> Reply:
    """GET reports what the migration of legacy stream documents would change; POST applies
    it to at most ``limit`` documents (admins only; call again until ``done``)."""
    if ctx.method == "POST":
        limit = ctx.query_int("limit", 200, low=1, high=500)
        return ctx.services.migration.apply(ctx.user, limit)
    return ctx.services.migration.report(ctx.user)


@functions_framework.http
@http_endpoint(_both("/streams/reorder"), methods=("PUT",))
def reorderstreams(ctx: Ctx) -> Reply:
    """PUT sets ``displayOrder`` of the listed streams to their position in the list."""
    return ctx.services.streams.reorder(ctx.user, ctx.body(ReorderRequest))


@functions_framework.http
@http_endpoint(
    (f"{UNIFIED}/streams/public", f"{MVP}/public/streams", f"{MVP}/public-streams"),
    methods=("GET",),
    public_cache=True,
)
def publicstreams(ctx: Ctx) -> Reply:
    """GET lists public, visible streams for memorial pages; no authentication."""
    limit = ctx.query_int("limit", 50, low=1, high=100)
    offset = ctx.query_int("offset", 0, low=0, high=10_000)
    page = ctx.services.streams.list_public(_status_param(ctx), limit, offset)
    views = [StreamPublicView.of(s) for s in page.streams]
    if ctx.path.endswith("/public-streams"):
        return views
    return PublicListResponse.grouped(views, limit=limit, offset=offset, has_more=page.has_more)


@functions_framework.http
@http_endpoint((f"{UNIFIED}/memorials/{{memorial_id}}/streams",), methods=("GET", "POST"))
def memorialstreams(ctx: Ctx) -> Reply:
    """GET the streams of one memorial, grouped; POST creates a stream for that memorial."""
    memorial_id = ctx.param("memorial_id")
    if ctx.method == "POST":
        return ctx.services.streams.create_for_memorial(
            ctx.user,
            memorial_id,
            ctx.body(StreamCreateRequest),
            idempotency_key=ctx.header("Idempotency-Key"),
        )
    views = ctx.services.streams.memorial_streams(ctx.user, memorial_id)
    return MemorialStreamsResponse.grouped(memorial_id, views)


@functions_framework.http
@http_endpoint((f"{UNIFIED}/memorials/{{memorial_id}}/streams/status",), methods=("GET",))
def memorialstreamstatus(ctx: Ctx) -> Reply:
    """GET the live / scheduled / completed streams of a memorial, for polling pages."""
    return ctx.services.streams.memorial_status(ctx.user, ctx.param("memorial_id"))


@functions_framework.http
@http_endpoint(
    (*_both("/streams/{stream_id}/whip"), *_both("/streams/{stream_id}/whip/{session_id}")),
    methods=("POST", "DELETE"),
    cors=True,
    accept_post="application/sdp",
)
def whipstream(ctx: Ctx) -> Reply:
    """POST relays a browser's WHIP offer (application/sdp) and answers 201 with the SDP and
    the session URL in Location; DELETE on that URL ends the browser broadcast."""
    stream_id = ctx.param("stream_id")
    if ctx.method == "DELETE":
        return ctx.services.broadcasts.end_whip(
            ctx.user, stream_id, ctx.require_param("session_id")
        )
    if not (ctx.header("Content-Type") or "").startswith("application/sdp"):
        raise InvalidArgumentError("Content-Type must be application/sdp")
    offer = ctx.raw_body.decode("utf-8", errors="replace")
    publication = ctx.services.broadcasts.publish_whip(ctx.user, stream_id, offer)
    return flask.Response(
        publication.answer_sdp,
        status=201,
        content_type="application/sdp",
        headers={"Location": publication.location},
    )


@functions_framework.http
@http_endpoint(("/api/webhooks/cloudflare/recording",), methods=("POST",))
def cloudflarerecordingwebhook(ctx: Ctx) -> Reply:
    """POST from Cloudflare's Stream webhook (signed): a recording is ready or failed."""
    return ctx.services.webhooks.handle_video(ctx.header("Webhook-Signature"), ctx.raw_body)


@functions_framework.http
@http_endpoint(("/api/webhooks/cloudflare/live-input",), methods=("POST",))
def cloudflareliveinputwebhook(ctx: Ctx) -> Reply:
    """POST from Cloudflare Notifications: a live input connected, disconnected or errored."""
    return ctx.services.webhooks.handle_live_input(ctx.header("cf-webhook-auth"), ctx.raw_body)


@functions_framework.http
@task_endpoint(("/api/tasks/monitor",))
def runmonitorcheck(ctx: Ctx) -> Reply:
    """POST from Cloud Tasks: one scheduled recording or status check."""
    task = ctx.body(MonitorTaskPayload)
    outcome = ctx.services.recordings.run_check(
        task.kind, task.streamId, task.generation, task.attempt
    )
    return MonitorTaskResult(outcome=outcome)


@functions_framework.http
@task_endpoint(("/api/tasks/sweep-live-inputs",))
def sweeporphanedinputs(ctx: Ctx) -> Reply:
    """POST from Cloud Tasks: delete live inputs a failed create may have left behind."""
    task = ctx.body(OrphanSweepPayload)
    return OrphanSweepResult(deleted=ctx.services.live_inputs.sweep_orphaned_inputs(task.streamId))


@functions_framework.http
@http_endpoint(_both("/streams/{stream_id}/sync-recording"), methods=("POST",))
def syncrecording(ctx: Ctx) -> Reply:
    """POST fetches the stream's recordings from Cloudflare and attaches them now."""
    return ctx.services.tools.sync_recording(ctx.user, ctx.param("stream_id"))


@functions_framework.http
@http_endpoint(_both("/streams/{stream_id}/sync-status"), methods=("POST",))
def syncstatus(ctx: Ctx) -> Reply:
    """POST aligns the stream's status with the live input's connection."""
    return ctx.services.tools.sync_status(ctx.user, ctx.param("stream_id"))


@functions_framework.http
@http_endpoint(_both("/streams/{stream_id}/get-video-id"), methods=("POST", "GET"))
def getvideoid(ctx: Ctx) -> Reply:
    """POST lists the input's recordings and names the primary video id."""
    return ctx.services.tools.get_video_id(ctx.user, ctx.param("stream_id"))


@functions_framework.http
@http_endpoint(_both("/streams/{stream_id}/configure-cors"), methods=("PUT", "POST"))
def configurecors(ctx: Ctx) -> Reply:
    """PUT applies the allowed origins to the live input and its existing recordings."""
    return ctx.services.tools.configure_cors(ctx.user, ctx.param("stream_id"))


@functions_framework.http
@http_endpoint(_both("/streams/{stream_id}/fix-playback-url"), methods=("POST",))
def fixplaybackurl(ctx: Ctx) -> Reply:
    """POST rebuilds the live player URL and the recording's HLS URL."""
    return ctx.services.tools.fix_playback_url(ctx.user, ctx.param("stream_id"))


@functions_framework.http
@http_endpoint(_both("/streams/{stream_id}/fix-status"), methods=("POST",))
def fixstatus(ctx: Ctx) -> Reply:
    """POST reconciles a stuck status (both ways) and the recordings."""
    return ctx.services.tools.fix_status(ctx.user, ctx.param("stream_id"))


@functions_framework.cloud_event
def onstreamwritten(event: CloudEvent) -> None:
    """Firestore ``document.v1.written`` on ``streams/{id}``: react to status changes."""
    try:
        before, after = decode_stream_change(event.get_data())
    except ValueError:
        # Redelivery cannot make unreadable data readable; retrying would loop for days.
        log.exception("dropping unreadable Firestore event %s", event["id"])
        return
    get_services().recordings.on_stream_written(before, after)
