"""What one request has already read, so a write right after a read need not read again.

Each HTTP function and task runs its handler inside ``request_scope()``. The Firestore adapter
remembers the stream documents it read there, and the update that follows starts from that
snapshot, conditional on it being unchanged (when it has changed, the write is refused and the
update reads again). Outside a request scope nothing is remembered.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_remembered: ContextVar[dict[str, Any] | None] = ContextVar("remembered_reads", default=None)


@contextmanager
def request_scope() -> Iterator[None]:
    token = _remembered.set({})
    try:
        yield
    finally:
        _remembered.reset(token)


def remember(key: str, value: Any) -> None:
    """Keep ``value`` for the rest of the request (nothing outside a request scope)."""
    remembered = _remembered.get()
    if remembered is not None:
        remembered[key] = value


def take(key: str) -> Any | None:
    """What the request remembered under ``key``, forgotten once taken."""
    remembered = _remembered.get()
    return remembered.pop(key, None) if remembered is not None else None


def peek(key: str) -> Any | None:
    """What the request remembered under ``key``, still remembered after."""
    remembered = _remembered.get()
    return remembered.get(key) if remembered is not None else None
