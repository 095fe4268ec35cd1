"""Firestore documents read and written per operation, counted at the client library and at
the REST adapter (the emulator reports nothing), with the real services wired as deployed
against the local stack."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1 import batch, collection, document, query

from common.adapters.firestore.rest import FirestoreRest
from common.adapters.firestore.streams import FirestoreStreamRepository
from common.bootstrap import build_services
from common.models.api import StreamCreateRequest
from common.models.domain import MonitorKind, User
from common.request_scope import request_scope
from common.settings import get_settings

STREAMS_PATH = "/documents/streams/"


@dataclass
class Tally:
    reads: int = 0
    writes: int = 0
    stream_writes: int = 0  # each fires the Firestore trigger once


@dataclass
class FirestoreCounter:
    """Counts documents read (a query bills at least one) and written, while installed."""

    current: Tally = field(default_factory=Tally)

    @contextmanager
    def installed(self) -> Iterator[None]:
        originals: list[tuple[Any, str, Any]] = []

        def patch(owner: Any, name: str, wrapper: Callable[[Any], Any]) -> None:
            original = getattr(owner, name)
            originals.append((owner, name, original))
            setattr(owner, name, wrapper(original))

        patch(document.DocumentReference, "get", self._counting_get)
        patch(query.Query, "stream", self._counting_stream)
        patch(collection.CollectionReference, "stream", self._counting_stream)
        patch(batch.WriteBatch, "commit", self._counting_commit)
        patch(firestore.Client, "get_all", self._counting_results)
        # The viewer functions' reads, over the REST API.
        patch(FirestoreRest, "get", self._counting_get)
        patch(FirestoreRest, "get_many", self._counting_results)
        patch(FirestoreRest, "run_query", self._counting_results)
        patch(FirestoreRest, "list_ids", self._counting_results)
        # Both commit() (conditional writes) and apply() (the others) send through _commit.
        patch(FirestoreRest, "_commit", self._counting_rest_commit)
        try:
            yield
        finally:
            for owner, name, original in reversed(originals):
                setattr(owner, name, original)

    def measure(self, operation: Callable[[], object]) -> Tally:
        """What ``operation`` read and wrote (and nothing done after it returned)."""
        self.current = measured = Tally()
        with request_scope():  # each operation is one request, as the functions run it
            operation()
        self.current = Tally()
        return measured

    def _counting_get(self, original: Any) -> Any:
        @functools.wraps(original)
        def get(owner: Any, *args: Any, **kwargs: Any) -> Any:
            self.current.reads += 1
            return original(owner, *args, **kwargs)

        return get

    def _counting_stream(self, original: Any) -> Any:
        @functools.wraps(original)
        def stream(request: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
            # A query collection.stream() makes goes through Query.stream too: count once.
            if isinstance(request, collection.CollectionReference):
                yield from original(request, *args, **kwargs)
                return
            results = list(original(request, *args, **kwargs))
            self.current.reads += max(1, len(results))
            yield from results

        return stream

    def _counting_results(self, original: Any) -> Any:
        """A batch read or a query: each document it gives is one read (a query at least one)."""

        @functools.wraps(original)
        def read(owner: Any, *args: Any, **kwargs: Any) -> list[Any]:
            results = list(original(owner, *args, **kwargs))
            self.current.reads += max(1, len(results))
            return results

        return read

    def _counting_commit(self, original: Any) -> Any:
        @functools.wraps(original)
        def commit(write_batch: Any, *args: Any, **kwargs: Any) -> Any:
            for write in write_batch._write_pbs:  # noqa: SLF001 - the writes about to be sent
                self._count_write(write.update.name or write.delete)
            return original(write_batch, *args, **kwargs)

        return commit

    def _counting_rest_commit(self, original: Any) -> Any:
        @functools.wraps(original)
        def commit(rest: Any, writes: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
            for write in writes:
                self._count_write(write["update"]["name"] if "update" in write else write["delete"])
            return original(rest, writes, *args, **kwargs)

        return commit

    def _count_write(self, name: str) -> None:
        self.current.writes += 1
        tail = name.split(STREAMS_PATH, 1)[-1] if STREAMS_PATH in name else ""
        if tail and "/" not in tail:
            self.current.stream_writes += 1


# What #14 asks of each operation (reads, writes, stream writes), printed beside the count.
GOALS: dict[str, str] = {
    "create": "-",
    "start": "<=2 reads, 1 write",
    "status check, nothing changed": "0 stream writes",
    "stop": "-",
    "recording check, nothing yet": "0 stream writes",
    "public listing (page of 20)": "reads = page + 1",
}


def measure_operations() -> list[tuple[str, Tally]]:
    """One stream's life through the real services, each operation counted (``repo`` reads
    the monitors' generations between operations, uncounted)."""
    settings = get_settings()
    repo = FirestoreStreamRepository(
        firestore.Client(project=settings.gcp_project),
        settings.streams_collection,
        settings.legacy_streams_collections,
    )
    services = build_services(settings)  # as deployed: reads and updates over REST
    director = User(uid="bench-director", role="funeral_director")
    counter = FirestoreCounter()
    rows: list[tuple[str, Tally]] = []
    created: list[str] = []

    def generation(kind: MonitorKind) -> int:
        stream = repo.get(created[0])
        monitor = stream.monitor(kind) if stream else None
        return monitor.generation if monitor else 0

    def create() -> None:
        created.append(services.streams.create(director, StreamCreateRequest(title="Costs")).id)

    with counter.installed():
        rows.append(("create", counter.measure(create)))
        stream_id = created[0]
        start = functools.partial(services.broadcasts.start, director, stream_id)
        rows.append(("start", counter.measure(start)))
        status = functools.partial(
            services.monitors.run_check, "status", stream_id, generation("status"), 0
        )
        rows.append(("status check, nothing changed", counter.measure(status)))
        stop = functools.partial(services.broadcasts.stop, director, stream_id)
        rows.append(("stop", counter.measure(stop)))
        recording = functools.partial(
            services.monitors.run_check, "recording", stream_id, generation("recording"), 0
        )
        rows.append(("recording check, nothing yet", counter.measure(recording)))
        listing = functools.partial(services.listings.list_public, None, 20, 0)
        rows.append(("public listing (page of 20)", counter.measure(listing)))
    return rows


def print_operations(rows: list[tuple[str, Tally]]) -> None:
    print("5. Firestore per operation (counted at the client library and the REST API, emulator)")
    print(f"   {'operation':32} {'reads':>5} {'writes':>6} {'trigger runs':>12}   goal")
    for name, tally in rows:
        print(
            f"   {name:32} {tally.reads:5d} {tally.writes:6d} {tally.stream_writes:12d}"
            f"   {GOALS.get(name, '-')}"
        )
