"""Loading a stream on behalf of a caller: 404 if it does not exist, 401/403 if the caller may
not take the action on it; memorials looked up once per request."""

from __future__ import annotations

from common.access import Action, Permissions, require, stream_permissions
from common.errors import NotFoundError
from common.models.domain import Memorial, Stream, User
from common.ports import MemorialDirectory, StreamRepository


def load_authorized(
    repo: StreamRepository,
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
