"""The OpenAPI 3.1 description of every HTTP endpoint, generated from the pydantic models.

``OPERATIONS`` is checked against the routes the functions really serve (tests/unit), so the
document cannot drift from the code. Paths are the unified ``/api/...`` ones; every
``/api/streams/...`` path is also served under ``/api/livestreamMVPTwo/streams/...``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from common.models import api
from common.models.domain import StreamStatus
from common.services import migration, stream_info, tools, webhooks
from common.services.create_guards import IDEMPOTENCY_HEADER

SDP = "application/sdp"


class ErrorBody(BaseModel):
    """Every error: a message for people, a code for programs, sometimes details."""

    error: str
    code: str


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    responses: dict[int, Any]
    body: Any = None
    query: dict[str, dict[str, Any]] = field(default_factory=dict)
    headers: tuple[str, ...] = ()
    # Error statuses beyond ERROR_STATUSES that this operation may answer.
    errors: tuple[int, ...] = ()


ANY_VIEW = (api.StreamOwnerView, api.StreamManagerView, api.StreamPublicView)
LIST_QUERY: dict[str, dict[str, Any]] = {
    "limit": {"type": "integer", "minimum": 1, "maximum": 100},
    "offset": {"type": "integer", "minimum": 0, "maximum": 10000},
    "status": {"type": "string", "enum": [s.value for s in StreamStatus]},
}
S = "/api/streams/{streamId}"
OPERATIONS: list[Operation] = [
    Operation(
        "get",
        "/api/streams",
        "Streams the caller may see",
        {200: api.StreamListResponse},
        query={
            **LIST_QUERY,
            "memorialId": {"type": "string"},
            "createdBy": {"type": "string"},
            "isPublic": {"type": "string", "enum": ["true", "false"]},
        },
    ),
    Operation(
        "post",
        "/api/streams",
        "Create a stream and its live input",
        {200: api.StreamOwnerView},
        body=api.StreamCreateRequest,
        headers=(IDEMPOTENCY_HEADER,),
        errors=(422,),
    ),
    Operation(
        "get", S, "One stream (credentials only for those who may start it)", {200: ANY_VIEW}
    ),
    Operation(
        "put", S, "Edit a stream", {200: api.StreamManagerView}, body=api.StreamUpdateRequest
    ),
    Operation("delete", S, "Delete a stream that is not live", {200: api.DeleteResponse}),
    Operation("post", f"{S}/start", "Go live; returns RTMP credentials", {200: api.StartResponse}),
    Operation("post", f"{S}/stop", "End the broadcast", {200: api.StopResponse}),
    Operation(
        "put",
        "/api/streams/reorder",
        "Set display order",
        {200: api.ReorderResponse},
        body=api.ReorderRequest,
    ),
    Operation(
        "get",
        "/api/streams/public",
        "Public streams (CDN-cacheable, ETag)",
        {200: api.PublicListResponse, 304: None},
        query=LIST_QUERY,
    ),
    Operation(
        "get",
        "/api/memorials/{memorialId}/streams",
        "A memorial's streams",
        {200: api.MemorialStreamsResponse},
    ),
    Operation(
        "post",
        "/api/memorials/{memorialId}/streams",
        "Create a memorial's stream",
        {200: api.StreamOwnerView},
        body=api.StreamCreateRequest,
        headers=(IDEMPOTENCY_HEADER,),
        errors=(422,),
    ),
    Operation(
        "get",
        "/api/memorials/{memorialId}/streams/status",
        "Live/scheduled/completed",
        {200: api.MemorialStreamStatusResponse},
    ),
    Operation(
        "post", f"{S}/whip", "WHIP: relay an SDP offer (browser broadcast)", {201: SDP}, body=SDP
    ),
    Operation(
        "delete", f"{S}/whip/{{sessionId}}", "End a browser broadcast", {200: api.DeleteResponse}
    ),
    Operation(
        "post",
        f"{S}/sync-recording",
        "Attach the recordings Cloudflare has",
        {200: tools.SyncRecordingResponse},
    ),
    Operation(
        "post",
        f"{S}/sync-status",
        "Align status with the live input",
        {200: tools.SyncStatusResponse},
    ),
    Operation(
        "post",
        f"{S}/get-video-id",
        "List recordings, name the primary",
        {200: tools.VideoIdResponse},
    ),
    Operation(
        "get",
        f"{S}/get-video-id",
        "List recordings, name the primary",
        {200: tools.VideoIdResponse},
    ),
    Operation("put", f"{S}/configure-cors", "Apply allowed origins", {200: tools.CorsResponse}),
    Operation("post", f"{S}/configure-cors", "Apply allowed origins", {200: tools.CorsResponse}),
    Operation(
        "post", f"{S}/fix-playback-url", "Rebuild playback URLs", {200: tools.PlaybackUrlResponse}
    ),
    Operation(
        "post", f"{S}/fix-status", "Reconcile a stuck stream", {200: tools.SyncStatusResponse}
    ),
    Operation(
        "get",
        f"{S}/status",
        "Status for polling pages (no Cloudflare call)",
        {200: stream_info.StreamStatusResponse},
    ),
    Operation(
        "get",
        f"{S}/recordings",
        "The stream's playable recordings",
        {200: stream_info.StreamRecordingsResponse},
    ),
    Operation(
        "post",
        f"{S}/recordings",
        "Fetch and attach the recordings Cloudflare has",
        {200: tools.RecordingsSyncResponse},
    ),
    Operation(
        "put",
        f"{S}/recordings/{{videoId}}",
        "Make a recording the primary one, or hide it",
        {200: api.StreamManagerView},
        body=api.RecordingChoiceRequest,
    ),
    Operation(
        "get",
        f"{S}/credentials",
        "RTMP credentials and WHIP endpoint, without going live",
        {200: api.CredentialsResponse},
    ),
    Operation("get", f"{S}/embed-info", "Player URLs", {200: stream_info.EmbedInfoResponse}),
    Operation(
        "get",
        "/api/streams/migrate",
        "Admin: what migrating legacy stream documents would change",
        {200: migration.MigrationReport},
    ),
    Operation(
        "post",
        "/api/streams/migrate",
        "Admin: migrate up to `limit` legacy stream documents (repeat until done)",
        {200: migration.MigrationReport},
        query={"limit": {"type": "integer", "minimum": 1, "maximum": 500}},
    ),
    Operation(
        "post",
        "/api/webhooks/cloudflare/recording",
        "Cloudflare Stream webhook",
        {200: webhooks.WebhookReply},
        body=dict,
        headers=("Webhook-Signature",),
    ),
    Operation(
        "post",
        "/api/webhooks/cloudflare/live-input",
        "Cloudflare Notifications",
        {200: webhooks.WebhookReply},
        body=dict,
        headers=("cf-webhook-auth",),
    ),
    Operation(
        "post",
        "/api/tasks/monitor",
        "Cloud Tasks: one monitor check",
        {200: (api.MonitorTaskResult, ErrorBody)},
        body=api.MonitorTaskPayload,
        headers=("X-Task-Auth",),
    ),
    Operation(
        "post",
        "/api/tasks/sweep-live-inputs",
        "Cloud Tasks: delete orphaned live inputs of one stream",
        {200: (api.OrphanSweepResult, ErrorBody)},
        body=api.OrphanSweepPayload,
        headers=("X-Task-Auth",),
    ),
]
ERROR_STATUSES = (400, 401, 403, 404, 405, 409, 429, 503)
HEADER_SCHEMAS: dict[str, dict[str, Any]] = {
    IDEMPOTENCY_HEADER: {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": "^[\\x20-\\x7e]{1,255}$",
    },
}
HEADER_DESCRIPTIONS = {
    IDEMPOTENCY_HEADER: (
        "Makes the create safe to retry (kept 24 h per user): the same key with the same body"
        " returns the stream the first request created (200), never a second one; with a"
        " different body 422; while the first request still runs 409 with Retry-After. A"
        " failed create does not use the key up. More than the allowed creations per user"
        " and window: 429 with Retry-After."
    ),
}


def _models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = [ErrorBody]
    for operation in OPERATIONS:
        for item in (operation.body, *operation.responses.values()):
            for model in item if isinstance(item, tuple) else (item,):
                if isinstance(model, type) and issubclass(model, BaseModel):
                    found.append(model)
    return list(dict.fromkeys(found))


def _schema_of(item: Any) -> dict[str, Any]:
    if isinstance(item, tuple):
        return {"anyOf": [_schema_of(model) for model in item]}
    if item is dict:
        return {"type": "object"}
    return {"$ref": f"#/components/schemas/{item.__name__}"}


def _content(item: Any) -> dict[str, Any]:
    if item == SDP:
        # Every SDP session description begins with its version line (RFC 8866 §5).
        return {SDP: {"schema": {"type": "string", "pattern": "^v=0\r?\n"}}}
    return {"application/json": {"schema": _schema_of(item)}}


def _operation(op: Operation) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"},
        }
        for name in ("streamId", "memorialId", "sessionId", "videoId")
        if f"{{{name}}}" in op.path
    ]
    parameters += [
        {"name": n, "in": "query", "required": False, "schema": s} for n, s in op.query.items()
    ]
    parameters += [
        {
            "name": h,
            "in": "header",
            "required": False,
            "schema": HEADER_SCHEMAS.get(h, {"type": "string"}),
        }
        | ({"description": HEADER_DESCRIPTIONS[h]} if h in HEADER_DESCRIPTIONS else {})
        for h in op.headers
    ]
    responses: dict[str, Any] = {}
    for status, item in op.responses.items():
        responses[str(status)] = (
            {"description": "OK"}
            if item is None
            else {"description": "OK", "content": _content(item)}
        )
    for status in (*ERROR_STATUSES, *op.errors):
        responses[str(status)] = {"description": "Error", "content": _content(ErrorBody)}
    document: dict[str, Any] = {
        "summary": op.summary,
        "parameters": parameters,
        "responses": responses,
        "security": [{"bearer": []}, {"session": []}, {}],
    }
    if op.body is not None:
        document["requestBody"] = {"required": True, "content": _content(op.body)}
    return document


def openapi_document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    _, definitions = models_json_schema(
        [(model, "serialization") for model in _models()],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Memorial livestream API", "version": "1.0.0", "description": __doc__},
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "Firebase ID"},
                "session": {"type": "apiKey", "in": "cookie", "name": "__session"},
            },
        },
    }
