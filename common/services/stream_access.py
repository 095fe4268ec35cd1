"""Loading a stream on behalf of a caller: 404 if it does not exist, 401/403 if the caller may
not take the action on it; memorials looked up once per request, or kept a while per
instance for the pages that poll."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterable

from common.access import Action, Permissions, require, stream_permissions
from common.errors import NotFoundError
from common.models.domain import Memorial, Stream, User
from common.ports import MemorialDirectory, StreamReads


def load_authorized(
    repo: StreamReads,
    memorials: MemorialDirectory,
    user: User | None,
    stream_id: str,
    action: Action,
    *,
    message: str = "Permission denied",
) -> tuple[Stream, Permissions]:
    """The stream, if it exists (404) and ``user`` may take ``action`` on it (401/403)."""
    stream = repo.get(stream_id)
    if stream is None:
        raise NotFoundError("Stream not found")
    memorial = memorials.get(stream.memorial_id) if stream.memorial_id else None
    permissions = stream_permissions(user, stream, memorial)
    require(permissions, action, user, message)
    return stream, permissions


class MemorialCache:
    """Memorial lookups for the duration of one request."""

    def __init__(self, directory: MemorialDirectory) -> None:
        self._directory = directory
        self._seen: dict[str, Memorial | None] = {}

    def get(self, memorial_id: str | None) -> Memorial | None:
        if memorial_id is None:
            return None
        if memorial_id not in self._seen:
            self._seen[memorial_id] = self._directory.get(memorial_id)
        return self._seen[memorial_id]

    def read_ahead(self, memorial_ids: Iterable[str | None]) -> None:
        """Read the memorials not seen yet at once (a listing's page: one read, not one a
        memorial)."""
        wanted = {m for m in memorial_ids if m is not None and m not in self._seen}
        if wanted:
            self._seen.update(self._directory.get_many(wanted))


class TimedMemorialCache:
    """Memorial lookups kept for ``ttl_s`` seconds per instance: a memorial's privacy or
    managers change rarely, pages poll often."""

    def __init__(
        self,
        directory: MemorialDirectory,
        ttl_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._directory = directory
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._entries: dict[str, tuple[float, Memorial | None]] = {}
        self._lock = threading.Lock()

    def get(self, memorial_id: str) -> Memorial | None:
        return self.get_many((memorial_id,))[memorial_id]

    def get_many(self, memorial_ids: Collection[str]) -> dict[str, Memorial | None]:
        now = self._monotonic()
        with self._lock:
            cached = {m: self._entries.get(m) for m in memorial_ids}
        fresh = {m: e[1] for m, e in cached.items() if e is not None and now - e[0] < self._ttl_s}
        stale = [m for m in cached if m not in fresh]
        if not stale:
            return fresh
        read = self._directory.get_many(stale)
        with self._lock:
            self._entries.update({m: (now, memorial) for m, memorial in read.items()})
        return fresh | read
