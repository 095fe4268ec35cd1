"""The ports the stream services reach the world through, handed to each service as one."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar, cast

from common.access import Action, Permissions
from common.errors import AppError
from common.models.domain import Stream, User
from common.ports import (
    Clock,
    MemorialDirectory,
    ProviderError,
    ScheduledTask,
    StreamProvider,
    StreamReads,
    StreamRepository,
    TaskQueue,
)
from common.services.stream_access import load_authorized

PortT = TypeVar("PortT")
log = logging.getLogger(__name__)


class BackendPorts(Protocol):
    """Streams, memorials, the video platform, the task queue and the clock. The composition
    root (``common/bootstrap.py``) builds each on first use, so a function that never calls
    Cloudflare never loads its client."""

    @property
    def repo(self) -> StreamRepository: ...
    @property
    def reads(self) -> StreamReads:
        """Reads no write follows in the same request (the viewer functions')."""
        ...

    @property
    def memorials(self) -> MemorialDirectory: ...
    @property
    def provider(self) -> StreamProvider: ...
    @property
    def tasks(self) -> TaskQueue: ...
    @property
    def clock(self) -> Clock: ...


@dataclass(frozen=True)
class Backends:
    """``BackendPorts`` given up front (fakes in the service tests)."""

    repo: StreamRepository
    memorials: MemorialDirectory
    provider: StreamProvider
    tasks: TaskQueue
    clock: Clock

    @property
    def reads(self) -> StreamReads:
        return self.repo


class _Port(Generic[PortT]):
    """``self._repo`` and the like: the port of that name, read from the backends on use."""

    def __set_name__(self, owner: type[WithBackends], name: str) -> None:
        self._port = name.removeprefix("_")

    def __get__(self, service: WithBackends, owner: type[WithBackends]) -> PortT:
        return cast(PortT, getattr(service._backends, self._port))


class WithBackends:
    """Base of the services: ``self._repo``, ``self._provider``... name the shared ports, each
    read from the backends when first used."""

    _repo = _Port[StreamRepository]()
    _reads = _Port[StreamReads]()
    _memorials = _Port[MemorialDirectory]()
    _provider = _Port[StreamProvider]()
    _tasks = _Port[TaskQueue]()
    _clock = _Port[Clock]()

    def __init__(self, backends: BackendPorts) -> None:
        self._backends = backends

    def _load(
        self, user: User | None, stream_id: str, action: Action, message: str = "Permission denied"
    ) -> tuple[Stream, Permissions]:
        """The stream, if it exists (404) and ``user`` may take ``action`` on it (401/403).

        Read through the reads port: a request that writes nothing then never builds the
        writing client, and a write after it starts from this read (``request_scope``)."""
        return load_authorized(
            self._reads, self._memorials, user, stream_id, action, message=message
        )

    def _set_ingest(self, stream: Stream, *, enabled: bool) -> bool:
        """Let publishers in to the stream's live input, or not (disabling ends what is being
        sent); whether Cloudflare did. A failure is logged: the callers go on without it."""
        if not stream.cloudflare_id:
            return False
        try:
            self._provider.set_input_enabled(stream.cloudflare_id, enabled)
        except ProviderError as error:
            action = "open" if enabled else "close"
            log.warning("could not %s the ingest of stream %s: %s", action, stream.id, error)
            return False
        return True

    def _enqueue(self, task: ScheduledTask) -> None:
        """Queue ``task``. A queue that fails is logged, not raised: each chain of tasks has
        a fallback (the Firestore trigger, the webhooks, the repair tools, asking again)."""
        try:
            self._tasks.enqueue(task)
        except AppError:
            log.exception("could not schedule %s", task.name)
