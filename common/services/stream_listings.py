"""What viewers and managers read of streams: one stream, the listings and a memorial's
board. Nothing here writes, so the functions that only read (a funeral's audience polls them)
load none of creation's rate limits, live inputs or schedule windows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from common.access import Action, Permissions, stream_permissions
from common.models.api import (
    MemorialStreamStatusResponse,
    StreamManagerView,
    StreamOwnerView,
    StreamPublicView,
)
from common.models.domain import Stream, StreamStatus, User
from common.ports import MemorialDirectory, StreamPage, StreamQuery
from common.services.backends import BackendPorts, WithBackends
from common.services.stream_access import MemorialCache

# A page whose streams are all hidden from the caller reads on, this many pages of at least
# this many streams at most, before it answers with nothing shown (its cost is bounded, and
# only a run of more hidden streams than that leaves a cursor naming one).
READ_ON_PAGES = 3
READ_ON_LIMIT = 100


class StreamListingService(WithBackends):
    """Reads of streams (over ``reads``: no write follows them). Every method authorises the
    caller itself."""

    def __init__(
        self, backends: BackendPorts, *, listing_memorials: MemorialDirectory | None = None
    ) -> None:
        """``listing_memorials`` is where the listings read memorials from (a per-instance
        cache: a memorial status board polled by a funeral's audience costs one query per cache
        miss, not a memorial read as well)."""
        super().__init__(backends)
        self._listing_memorials = listing_memorials

    def list_streams(
        self, user: User | None, query: StreamQuery
    ) -> tuple[list[StreamPublicView], StreamPage]:
        """Streams matching ``query`` that ``user`` may view (anonymous callers see public ones),
        and the page they come from (whether more follow, the next page's cursor)."""
        if user is None:
            if query.is_public is False or query.is_visible is False:
                return [], StreamPage(streams=[], has_more=False)
            query = replace(query, is_public=True, is_visible=True)
        viewable, page = self._viewable_page(user, query)
        return [_view(stream, permissions) for stream, permissions in viewable], page

    def list_public(
        self, status: StreamStatus | None, limit: int, offset: int, cursor: str | None = None
    ) -> StreamPage:
        """Public, visible streams of public memorials, in display order (a page starts at
        ``offset`` or at ``cursor``, an earlier page's ``next_cursor``)."""
        query = StreamQuery(
            is_public=True,
            is_visible=True,
            status=status,
            order="display",
            limit=limit,
            offset=offset,
            cursor=cursor,
        )
        return self._viewable_page(None, query)[1]

    def memorial_streams(self, user: User | None, memorial_id: str) -> list[StreamPublicView]:
        """The streams of one memorial that ``user`` may view: visitors see visible ones,
        managers also the hidden ones (so they can show them again)."""
        streams = self._reads.list_by_memorial(memorial_id, visible_only=False)
        return self._views_for(user, streams)

    def memorial_status(self, user: User | None, memorial_id: str) -> MemorialStreamStatusResponse:
        """Live, upcoming and completed streams of a memorial, stamped with the server time."""
        views = self.memorial_streams(user, memorial_id)
        return MemorialStreamStatusResponse.grouped(views, self._clock.now())

    def get(self, user: User | None, stream_id: str) -> StreamPublicView:
        """One stream, in the richest view the caller is entitled to."""
        stream, permissions = self._load(user, stream_id, Action.VIEW)
        if permissions.can(Action.START):
            return StreamOwnerView.with_credentials(stream, self._reads.get_credentials(stream.id))
        return _view(stream, permissions)

    def _memorial_cache(self) -> MemorialCache:
        """Memorials for one listing: each read at most once (through the per-instance cache
        where one is wired)."""
        return MemorialCache(self._listing_memorials or self._memorials)

    def _views_for(self, user: User | None, streams: Sequence[Stream]) -> list[StreamPublicView]:
        viewable = self._viewable(user, streams, self._memorial_cache())
        return [_view(stream, permissions) for stream, permissions in viewable]

    def _viewable_page(
        self, user: User | None, query: StreamQuery
    ) -> tuple[list[tuple[Stream, Permissions]], StreamPage]:
        """The page of ``query`` cut to the streams ``user`` may view (with what else they may
        do), and its next-page cursor never names a stream they may not see: a page that ends
        on one goes on after the last one shown (the few after it are read, and filtered,
        again), and a page that shows none reads on from its cursor, ``READ_ON_PAGES`` larger
        pages at most, so a listing cannot be walked a page at a time to learn the hidden
        streams. Only a page that read that far and still shows none names the last document
        it read (a hidden stream, or one unreadable as a stream)."""
        memorials = self._memorial_cache()
        page = self._reads.find(query)
        viewable = self._viewable(user, page.streams, memorials)
        passed_before = 0
        onward = replace(query, offset=0, limit=max(query.limit, READ_ON_LIMIT))
        for _ in range(READ_ON_PAGES):
            if viewable or page.next_cursor is None:
                break
            passed_before += page.went_past
            page = self._reads.find(replace(onward, cursor=page.next_cursor))
            viewable = self._viewable(user, page.streams, memorials)
        shown = viewable[: query.limit]
        has_more = page.has_more or len(viewable) > len(shown)
        streams = [stream for stream, _ in shown]
        last = [stream.id for stream in page.streams].index(streams[-1].id) if streams else -1
        end = page.passed_through(last + 1) if streams else page.went_past
        cursor = page.next_cursor
        if end != page.went_past:
            # It ends before what was read does (on a hidden stream, or on a document that is
            # unreadable as one), or on a stream past the last place a cursor can name: the
            # next page starts after its last stream (no cursor if that one's place is not
            # one a cursor can name).
            cursor = page.cursor_after(last)
        passed = passed_before + end
        return shown, StreamPage(streams, has_more, cursor if has_more else None, passed)

    @staticmethod
    def _viewable(
        user: User | None, streams: Sequence[Stream], memorials: MemorialCache
    ) -> list[tuple[Stream, Permissions]]:
        """The streams ``user`` may view, in order, each with what else they may do."""
        memorials.read_ahead(stream.memorial_id for stream in streams)
        viewable = []
        for stream in streams:
            permissions = stream_permissions(user, stream, memorials.get(stream.memorial_id))
            if permissions.can(Action.VIEW):
                viewable.append((stream, permissions))
        return viewable


def _view(stream: Stream, permissions: Permissions) -> StreamPublicView:
    if permissions.can(Action.EDIT):
        return StreamManagerView.of(stream)
    return StreamPublicView.of(stream)
