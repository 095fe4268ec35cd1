"""The streams: create, read, edit, delete, list (the caller's, a memorial's, the public
ones) and order them. ``common/services/streams.py`` does the writes and
``common/services/stream_listings.py`` the reads.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TypedDict

import functions_framework
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from common.http import REACHES_CLOUDFLARE, Ctx, Op, QueryFlag, Reply, http_endpoint
from common.models.api import (
    IDEMPOTENCY_HEADER,
    DeleteResponse,
    MemorialStreamsResponse,
    Pagination,
    PublicListResponse,
    ReorderRequest,
    ReorderResponse,
    StreamCreateRequest,
    StreamListResponse,
    StreamManagerView,
    StreamOwnerView,
    StreamPublicView,
    StreamUpdateRequest,
)
from common.models.domain import StreamStatus
from common.ports import StreamPage, StreamQuery
from common.services.migration import MigrationReport
from functions.paths import MVP, UNIFIED, unified_and_mvp


class PublicListQuery(BaseModel):
    """``GET /api/streams/public``: a page of public streams, of one status if given. Fields
    are named as ``StreamQuery`` names them (camelCase in the query string)."""

    model_config = ConfigDict(alias_generator=to_camel)

    limit: int = Field(50, ge=1, le=100)
    offset: int = Field(0, ge=0, le=10_000)
    # An earlier page's nextCursor: the page after it, with no skipped (billed) reads
    # (common.pagination refuses any other, an over-long one included, with a 400).
    cursor: str | None = None
    status: StreamStatus | None = None

    def paging(self, page: StreamPage) -> Paging:
        """What a reply's pagination block says of ``page``, the one this query asked for."""
        return Paging(
            limit=self.limit,
            offset=self.offset,
            has_more=page.has_more,
            by_cursor=self.cursor is not None,
            passed=page.passed,
        )


class Paging(TypedDict):
    """The arguments of ``Pagination.after`` (and ``PublicListResponse.grouped``)."""

    limit: int
    offset: int
    has_more: bool
    by_cursor: bool
    passed: int | None


class StreamListQuery(PublicListQuery):
    """``GET /api/streams``: a page of the streams the caller may see, filtered."""

    limit: int = Field(20, ge=1, le=100)
    memorial_id: str | None = None
    created_by: str | None = None
    is_public: QueryFlag = None


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
    preloads=REACHES_CLOUDFLARE,
)


@functions_framework.http
@http_endpoint(
    unified_and_mvp("/streams"),
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
    views, page = ctx.services.listings.list_streams(ctx.user, StreamQuery(**asked.model_dump()))
    if ctx.path.startswith(MVP):
        return views
    return StreamListResponse(
        streams=views,
        total=len(views),
        hasMore=page.has_more,
        nextCursor=page.next_cursor,
        pagination=Pagination.after(**asked.paging(page)),
    )


@functions_framework.http
@http_endpoint(
    unified_and_mvp("/streams/{streamId}"),
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
    return ctx.services.listings.get(ctx.user, stream_id)


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
    views = ctx.services.listings.memorial_streams(ctx.user, memorial_id)
    return MemorialStreamsResponse.grouped(memorial_id, views)


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
    page = ctx.services.listings.list_public(asked.status, asked.limit, asked.offset, asked.cursor)
    views = [StreamPublicView.of(s) for s in page.streams]
    if ctx.path.endswith("/public-streams"):
        return views
    return PublicListResponse.grouped(views, next_cursor=page.next_cursor, **asked.paging(page))


@functions_framework.http
@http_endpoint(
    unified_and_mvp("/streams/reorder"),
    {"PUT": Op("Set display order", {200: ReorderResponse}, body=ReorderRequest)},
)
def reorderstreams(ctx: Ctx) -> Reply:
    """PUT sets ``displayOrder`` of the listed streams to their position in the list."""
    return ctx.services.streams.reorder(ctx.user, ctx.body(ReorderRequest))


@functions_framework.http
@http_endpoint(
    unified_and_mvp("/streams/migrate"),
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
