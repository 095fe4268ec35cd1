"""Documents read per page of the public listing over 5,000 streams: paging by offset (each
skipped document is billed as a read) beside paging by cursor, in one run, with the real
service against the Firestore emulator, counted at the client library.

``print_cursor_pagination()`` expects the stack's environment (benchmarks/run.py sets it);
``python -m benchmarks.pagination`` starts a Firestore emulator of its own and runs it alone.
"""

from __future__ import annotations

import functools
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1 import query

from benchmarks.firestore_costs import FirestoreCounter
from common.adapters.firestore.documents import stream_to_document
from common.adapters.firestore.streams import FirestoreStreamRepository
from common.bootstrap import build_services
from common.models.domain import Stream, StreamStatus
from common.ports import StreamPage
from common.settings import get_settings
from emulators.stack import LocalStack, Ports

PAGES = (1, 10, 25, 50)
SEED_BATCH = 400  # below Firestore's 500 writes per batch
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PageCost:
    """Documents read for one page, asked for by offset and by cursor."""

    page: int
    by_offset: int
    by_cursor: int
    same_streams: bool


@contextmanager
def skipped_documents_billed(counter: FirestoreCounter) -> Iterator[None]:
    """Count the documents a query's offset skips: Firestore bills them as reads, although
    the client never receives them."""
    counting = query.Query.stream

    def stream(request: Any, *args: Any, **kwargs: Any) -> Any:
        counter.current.reads += request._offset or 0  # noqa: SLF001 - the offset sent
        return counting(request, *args, **kwargs)

    setattr(query.Query, "stream", stream)  # noqa: B010 - mypy refuses assigning a method
    try:
        yield
    finally:
        setattr(query.Query, "stream", counting)  # noqa: B010


def seed(client: firestore.Client, collection: str, count: int) -> None:
    """``count`` public, visible streams in ``collection``, in batches, display orders 0-9."""
    statuses = (StreamStatus.SCHEDULED, StreamStatus.LIVE, StreamStatus.COMPLETED)
    for start in range(0, count, SEED_BATCH):
        batch = client.batch()
        for n in range(start, min(start + SEED_BATCH, count)):
            at = T0 + timedelta(minutes=n)
            stream = Stream(
                id=f"bench-{n:05d}",
                title=f"Service {n}",
                created_by="bench",
                created_at=at,
                updated_at=at,
                status=statuses[n % len(statuses)],
                display_order=n % 10,
            )
            batch.set(client.collection(collection).document(stream.id), stream_to_document(stream))
        batch.commit()


def measure_cursor_pagination(
    streams: int = 5000, page_size: int = 20, pages: tuple[int, ...] = PAGES
) -> list[PageCost]:
    """Seed ``streams`` into a collection of this run alone (the stream trigger does not watch
    it) and read ``pages`` of the public listing both ways."""
    settings = get_settings()
    client = firestore.Client(project=settings.gcp_project)
    collection = f"bench_pagination_{uuid.uuid4().hex[:8]}"
    seed(client, collection, streams)
    listings = build_services(settings, repo=FirestoreStreamRepository(client, collection)).listings
    counter = FirestoreCounter()
    costs: list[PageCost] = []
    cursor: str | None = None
    with counter.installed(), skipped_documents_billed(counter):
        for page in range(1, max(pages) + 1):
            cursor_reads, by_cursor = _read(
                counter, functools.partial(listings.list_public, None, page_size, 0, cursor)
            )
            cursor = by_cursor.next_cursor
            if page not in pages:
                continue
            offset = (page - 1) * page_size
            offset_reads, by_offset = _read(
                counter, functools.partial(listings.list_public, None, page_size, offset)
            )
            same = by_offset.streams == by_cursor.streams
            costs.append(PageCost(page, offset_reads, cursor_reads, same))
    return costs


def _read(counter: FirestoreCounter, listing: Callable[[], StreamPage]) -> tuple[int, StreamPage]:
    """What one listing call read, and its page."""
    pages: list[StreamPage] = []
    reads = counter.measure(lambda: pages.append(listing())).reads
    return reads, pages[0]


def print_cursor_pagination(streams: int = 5000, page_size: int = 20) -> None:
    """Print documents read per page of the public listing, by offset beside by cursor."""
    costs = measure_cursor_pagination(streams, page_size)
    print(
        f"Public listing over {streams:,} streams, {page_size} a page: Firestore documents read"
        " per page (client library, emulator; skipped offset documents billed as reads)"
    )
    print(f"   {'page':>4} {'by offset':>10} {'by cursor':>10}   same streams")
    for cost in costs:
        print(
            f"   {cost.page:4d} {cost.by_offset:10d} {cost.by_cursor:10d}"
            f"   {'yes' if cost.same_streams else 'NO'}"
        )


def main() -> None:
    """Run alone, against a Firestore emulator started for it."""
    stack = LocalStack(Ports.free(), Path(tempfile.mkdtemp(prefix="bench-pagination-")))
    stack.start_component("firestore")
    os.environ.update(stack.env)
    get_settings.cache_clear()
    try:
        print_cursor_pagination()
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
