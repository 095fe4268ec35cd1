"""The ports the stream services reach the world through, handed to each service as one."""

from __future__ import annotations

from dataclasses import dataclass

from common.ports import Clock, MemorialDirectory, StreamProvider, StreamRepository, TaskQueue


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
        self._backends = backends

    @property
    def _repo(self) -> StreamRepository:
        return self._backends.repo

    @property
    def _memorials(self) -> MemorialDirectory:
        return self._backends.memorials

    @property
    def _provider(self) -> StreamProvider:
        return self._backends.provider

    @property
    def _tasks(self) -> TaskQueue:
        return self._backends.tasks

    @property
    def _clock(self) -> Clock:
        return self._backends.clock
