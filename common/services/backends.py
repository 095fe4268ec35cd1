"""The ports the stream services reach the world through, handed to each service as one."""

from __future__ import annotations

from dataclasses import dataclass

from common.access import Action, Permissions
from common.models.domain import Stream, User
from common.ports import Clock, MemorialDirectory, StreamProvider, StreamRepository, TaskQueue
from common.services.stream_access import load_authorized


@dataclass(frozen=True)
class Backends:
    """Streams, memorials, the video platform, the task queue and the clock (wired once, in
    ``common/bootstrap.py``; fakes in the service tests)."""

    repo: StreamRepository
    memorials: MemorialDirectory
    provider: StreamProvider
    tasks: TaskQueue
    clock: Clock


class WithBackends:
    """Base of the services: ``self._repo``, ``self._provider``... name the shared ports."""

    def __init__(self, backends: Backends) -> None:
        self._repo = backends.repo
        self._memorials = backends.memorials
        self._provider = backends.provider
        self._tasks = backends.tasks
        self._clock = backends.clock

    def _load(
        self, user: User | None, stream_id: str, action: Action, message: str = "Permission denied"
    ) -> tuple[Stream, Permissions]:
        """The stream, if it exists (404) and ``user`` may take ``action`` on it (401/403)."""
        return load_authorized(
            self._repo, self._memorials, user, stream_id, action, message=message
        )
