"""The optimistic read-modify-write of ``guard_documents.py`` on the client library, for the
small documents its adapters change that way (invitations, events). The creation guards
themselves go over REST (``rest_guards.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore

from common.adapters.firestore.guard_documents import (
    optimistic_update,
)
from common.adapters.firestore.streams import REQUEST_TIME_LIMITS, firestore_errors

T = TypeVar("T")


def read_modify_write(
    client: firestore.Client,
    ref: Any,
    read: Callable[[dict[str, Any] | None], T],
    write: Callable[[T], dict[str, Any]],
    change: Callable[[T], T],
) -> T:
    """Apply ``change`` to the document's value; only lands if nobody wrote in between."""

    def load() -> tuple[dict[str, Any] | None, Any]:
        with firestore_errors():
            snapshot = ref.get(**REQUEST_TIME_LIMITS)
        return (snapshot.to_dict() if snapshot.exists else None), snapshot

    def write_if_unchanged(snapshot: Any, data: dict[str, Any]) -> bool:
        """Write ``data``; ``False`` when the document changed since ``snapshot`` was read."""
        with firestore_errors():
            try:
                if snapshot.exists:
                    option = client.write_option(last_update_time=snapshot.update_time)
                    ref.update(data, option=option, **REQUEST_TIME_LIMITS)
                else:
                    ref.create(data, **REQUEST_TIME_LIMITS)
            except (gexc.AlreadyExists, gexc.FailedPrecondition, gexc.NotFound):
                return False
        return True

    return optimistic_update(load, write_if_unchanged, read, write, change)
