"""The ``TaskQueue`` contract: the recording fake and Cloud Tasks (its emulator) alike."""

from __future__ import annotations

import uuid

from common.ports import ScheduledTask, TaskQueue

HOUR = 3600.0  # never due during the run: the emulator dispatches nothing


def task(name: str, delay_s: float = HOUR) -> ScheduledTask:
    return ScheduledTask(
        name=name,
        path="/api/tasks/monitor-check",
        payload={"streamId": "stream-1", "generation": 1},
        delay_s=delay_s,
    )


def test_distinct_names_are_all_enqueued(tasks: TaskQueue) -> None:
    prefix = f"contract-{uuid.uuid4().hex}"
    assert tasks.enqueue(task(f"{prefix}-a")) is True
    assert tasks.enqueue(task(f"{prefix}-b")) is True


def test_a_second_task_of_the_same_name_is_refused(tasks: TaskQueue) -> None:
    name = f"contract-{uuid.uuid4().hex}"

    assert tasks.enqueue(task(name)) is True
    assert tasks.enqueue(task(name, delay_s=2 * HOUR)) is False
