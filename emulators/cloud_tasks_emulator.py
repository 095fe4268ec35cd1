"""The Cloud Tasks emulator (PyPI ``gcloud-tasks-emulator``), run by its own interpreter in
``.local/tasks-emulator``, with one behaviour of Cloud Tasks it lacks: a task name that was
used already is refused with ALREADY_EXISTS (production keeps names of created, run and
deleted tasks for an hour or more). Our monitors rely on it: their deterministic task names
make a second scheduling of the same check a no-op.

Usage (arguments as the emulator's own command): python cloud_tasks_emulator.py start -p ...
"""

from __future__ import annotations

from typing import Any

from gcloud_tasks_emulator import server  # type: ignore[import-not-found]
from gcloud_tasks_emulator.__main__ import main  # type: ignore[import-not-found]
from google.api_core.exceptions import AlreadyExists

_create_task = server.QueueState.create_task


def _create_task_once(self: Any, queue: str, task: Any) -> Any:
    """Create ``task`` unless a task of the same name was ever created in this run."""
    used: set[str] = self.__dict__.setdefault("_used_task_names", set())
    if task.name and task.name in used:
        message = f"Task {task.name} already exists or existed recently"
        raise AlreadyExists(message)  # type: ignore[no-untyped-call]
    created = _create_task(self, queue, task)
    used.add(created.name)
    return created


if __name__ == "__main__":
    server.QueueState.create_task = _create_task_once
    main()
