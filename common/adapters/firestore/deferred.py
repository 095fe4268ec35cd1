"""The stream repository, built on the first call that needs it.

An update whose change alters nothing of the stream this request has already read (over REST,
see ``StreamDocumentReads._remembered``) answers from that read: a request that ends up
writing nothing (a Stop after the disconnect already ended the broadcast, a duplicate
webhook, a check that finds nothing new) never loads the client library and gRPC. Answering
from the read is what the request would have done had it run entirely at the moment of that
read; any real write still goes through the repository, conditional on the read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cached_property

from common.adapters.firestore.documents import (
    snapshot_key,
    stream_from_snapshot,
    stream_to_document,
)
from common.models.domain import MonitorKind, MonitorProgress, Stream, StreamCredentials
from common.ports import (
    MonitorCheck,
    StreamPage,
    StreamQuery,
    StreamRepository,
    WhipSession,
)
from common.request_scope import peek


class DeferredStreamRepository:
    """``StreamRepository`` that builds ``build()`` on the first call an earlier read of the
    request cannot answer, and delegates every call to it from then on."""

    def __init__(self, build: Callable[[], StreamRepository], primary_collection: str) -> None:
        self._build = build
        self._primary = primary_collection

    @cached_property
    def _repo(self) -> StreamRepository:
        return self._build()

    def update(self, stream_id: str, change: Callable[[Stream], Stream]) -> Stream:
        snapshot = peek(snapshot_key(self._primary, stream_id))
        if snapshot is not None:
            before = stream_from_snapshot(snapshot)
            after = Stream.model_validate(change(before).model_dump())
            if stream_to_document(after) == stream_to_document(before):
                return after
        return self._repo.update(stream_id, change)

    def get(self, stream_id: str) -> Stream | None:
        return self._repo.get(stream_id)

    def get_credentials(self, stream_id: str) -> StreamCredentials | None:
        return self._repo.get_credentials(stream_id)

    def find(self, query: StreamQuery) -> StreamPage:
        return self._repo.find(query)

    def list_by_memorial(self, memorial_id: str, *, visible_only: bool) -> list[Stream]:
        return self._repo.list_by_memorial(memorial_id, visible_only=visible_only)

    def find_by_live_input(self, live_input_uid: str) -> Stream | None:
        return self._repo.find_by_live_input(live_input_uid)

    def deleted_stream_of_input(self, live_input_uid: str) -> str | None:
        return self._repo.deleted_stream_of_input(live_input_uid)

    def new_id(self) -> str:
        return self._repo.new_id()

    def create(self, stream: Stream, credentials: StreamCredentials | None) -> None:
        self._repo.create(stream, credentials)

    def delete(self, stream_id: str) -> None:
        self._repo.delete(stream_id)

    def monitor_progress(self, stream_id: str, kind: MonitorKind) -> MonitorProgress | None:
        return self._repo.monitor_progress(stream_id, kind)

    def record_check(self, stream_id: str, kind: MonitorKind, change: MonitorCheck) -> Stream:
        return self._repo.record_check(stream_id, kind, change)

    def remember_deleted_input(self, live_input_uid: str, stream_id: str, at: datetime) -> None:
        self._repo.remember_deleted_input(live_input_uid, stream_id, at)

    def save_credentials(self, stream_id: str, credentials: StreamCredentials) -> None:
        self._repo.save_credentials(stream_id, credentials)

    def set_display_orders(self, orders: dict[str, int], updated_at: datetime) -> None:
        self._repo.set_display_orders(orders, updated_at)

    def save_whip_session(self, stream_id: str, session: WhipSession) -> None:
        self._repo.save_whip_session(stream_id, session)

    def whip_session(self, stream_id: str, session_id: str) -> WhipSession | None:
        return self._repo.whip_session(stream_id, session_id)

    def delete_whip_session(self, stream_id: str, session_id: str) -> None:
        self._repo.delete_whip_session(stream_id, session_id)
