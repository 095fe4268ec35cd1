"""Cloud Tasks: delayed HTTP calls to our task endpoints, de-duplicated by task name."""

from __future__ import annotations

import json
from datetime import timedelta

from google.api_core import exceptions as gexc
from google.cloud import tasks_v2
from google.protobuf import timestamp_pb2

from common.errors import UnavailableError
from common.ports import Clock, ScheduledTask

TASK_AUTH_HEADER = "X-Task-Auth"


class CloudTasksQueue:
    """``TaskQueue`` over one Cloud Tasks queue whose tasks call ``target_base_url``."""

    def __init__(
        self,
        client: tasks_v2.CloudTasksClient,
        queue_path: str,
        target_base_url: str,
        auth_token: str,
        clock: Clock,
    ) -> None:
        self._client = client
        self._queue = queue_path
        self._target = target_base_url.rstrip("/")
        self._auth_token = auth_token
        self._clock = clock

    def enqueue(self, task: ScheduledTask) -> bool:
        schedule = timestamp_pb2.Timestamp()
        schedule.FromDatetime(self._clock.now() + timedelta(seconds=task.delay_s))
        request = tasks_v2.Task(
            name=f"{self._queue}/tasks/{task.name}",
            schedule_time=schedule,
            http_request=tasks_v2.HttpRequest(
                http_method=tasks_v2.HttpMethod.POST,
                url=f"{self._target}{task.path}",
                headers={"Content-Type": "application/json", TASK_AUTH_HEADER: self._auth_token},
                body=json.dumps(task.payload).encode(),
            ),
        )
        try:
            self._client.create_task(parent=self._queue, task=request, timeout=10)
        except gexc.AlreadyExists:
            return False
        except (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.RetryError) as exc:
            raise UnavailableError("The task queue is unavailable", retry_after_s=5) from exc
        return True
