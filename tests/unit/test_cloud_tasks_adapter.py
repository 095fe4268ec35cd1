"""The Cloud Tasks adapter: the shape of the tasks it creates and the errors it maps."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import tasks_v2

import functions.main as entry_points
from common.adapters.cloud_tasks import TASK_FUNCTIONS, CloudTasksQueue
from common.errors import ErrorCode, FailedPreconditionError, UnavailableError
from common.ports import ScheduledTask
from common.signatures import TASK_AUTH_HEADER

QUEUE = "projects/memorials-prod/locations/us-central1/queues/recording-monitor"
PATTERN = "https://{function}-123456789012.us-central1.run.app"
INVOKER = "livestream-task-invoker@memorials-prod.iam.gserviceaccount.com"
TASK = ScheduledTask(
    name="monitor-s1-1-0",
    path="/api/tasks/monitor",
    payload={"kind": "status", "streamId": "s1"},
    delay_s=30,
)


class FixedClock:
    def now(self) -> datetime:
        return datetime(2025, 1, 1, tzinfo=UTC)


class FakeTasksClient:
    """Captures create_task requests; raises ``error`` when set."""

    def __init__(self, error: Exception | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.error = error

    def create_task(self, *, parent: str, task: tasks_v2.Task, timeout: float) -> tasks_v2.Task:
        self.requests.append({"parent": parent, "task": task, "timeout": timeout})
        if self.error is not None:
            raise self.error
        return task


def api_error(kind: Any, message: str) -> Exception:
    """A google.api_core exception (its constructors are untyped)."""
    error: Exception = kind(message)
    return error


def production_queue(client: FakeTasksClient) -> CloudTasksQueue:
    return CloudTasksQueue(
        client,  # type: ignore[arg-type]
        QUEUE,
        PATTERN,
        FixedClock(),
        oidc_service_account=INVOKER,
    )


def test_production_tasks_carry_an_oidc_token_for_the_function_url_and_no_shared_secret() -> None:
    client = FakeTasksClient()
    assert production_queue(client).enqueue(TASK) is True
    (request,) = client.requests
    task: tasks_v2.Task = request["task"]
    assert request["parent"] == QUEUE
    assert task.name == f"{QUEUE}/tasks/monitor-s1-1-0"
    http = task.http_request
    service = "https://runmonitorcheck-123456789012.us-central1.run.app"
    assert http.url == f"{service}/api/tasks/monitor"
    assert http.oidc_token.service_account_email == INVOKER
    assert http.oidc_token.audience == service  # Cloud Run accepts the service URL
    assert TASK_AUTH_HEADER not in http.headers
    assert http.http_method == tasks_v2.HttpMethod.POST
    assert task.schedule_time.timestamp() == datetime(2025, 1, 1, 0, 0, 30, tzinfo=UTC).timestamp()


def test_each_task_path_goes_to_the_function_that_serves_it() -> None:
    queue = production_queue(FakeTasksClient())
    for path, function in TASK_FUNCTIONS.items():
        url, audience = queue.target(path)
        assert url.startswith(f"https://{function}-") and url.endswith(path)
        assert getattr(entry_points, function).routes == (path,)
        assert audience == url.removesuffix(path)


def test_local_tasks_go_to_the_gateway_with_the_shared_token_and_no_oidc() -> None:
    client = FakeTasksClient()
    queue = CloudTasksQueue(
        client,  # type: ignore[arg-type]
        QUEUE,
        "http://127.0.0.1:5000/",
        FixedClock(),
        auth_token="local-task-token",
    )
    queue.enqueue(TASK)
    http = client.requests[0]["task"].http_request
    assert http.url == "http://127.0.0.1:5000/api/tasks/monitor"
    assert http.headers[TASK_AUTH_HEADER] == "local-task-token"
    assert not tasks_v2.HttpRequest.pb(http).HasField("oidc_token")


def test_an_existing_task_name_is_not_an_error() -> None:
    queue = production_queue(FakeTasksClient(api_error(gexc.AlreadyExists, "dup")))
    assert queue.enqueue(TASK) is False


def test_permission_denied_names_the_queue_and_the_missing_roles(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue = production_queue(FakeTasksClient(api_error(gexc.PermissionDenied, "denied")))
    with caplog.at_level(logging.ERROR), pytest.raises(FailedPreconditionError) as info:
        queue.enqueue(TASK)
    message = info.value.message
    assert info.value.code == ErrorCode.FAILED_PRECONDITION
    assert QUEUE in message
    assert "roles/cloudtasks.enqueuer" in message and "roles/iam.serviceAccountUser" in message
    assert INVOKER in message
    assert QUEUE in caplog.text


def test_a_missing_queue_says_so(caplog: pytest.LogCaptureFixture) -> None:
    queue = production_queue(FakeTasksClient(api_error(gexc.NotFound, "queue")))
    with caplog.at_level(logging.ERROR), pytest.raises(FailedPreconditionError) as info:
        queue.enqueue(TASK)
    assert QUEUE in info.value.message and "does not exist" in info.value.message
    assert "does not exist" in caplog.text


def test_transient_failures_stay_retryable() -> None:
    queue = production_queue(FakeTasksClient(api_error(gexc.ServiceUnavailable, "down")))
    with pytest.raises(UnavailableError):
        queue.enqueue(TASK)
