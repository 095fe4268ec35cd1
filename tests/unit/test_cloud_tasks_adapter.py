"""The Cloud Tasks adapter against a local server in the REST API's place: the requests it makes,
the tasks it creates and how it maps the API's answers."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

import functions.main as entry_points
from common.adapters.cloud_tasks import TASK_FUNCTIONS, CloudTasksQueue
from common.errors import ErrorCode, FailedPreconditionError, InternalError, UnavailableError
from common.ports import ScheduledTask
from common.signatures import TASK_AUTH_HEADER
from tests.local_http import Seen, serving

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


class FixedToken:
    def header(self) -> str:
        return "Bearer instance-token"

    def refused(self, header: str) -> None:
        raise AssertionError(f"the API refused {header}")


def google_error(code: int, status: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": f"{status.lower()} by the test", "status": status}}


@contextmanager
def tasks_api(*answers: tuple[int, dict[str, Any]]) -> Iterator[tuple[str, Seen, list[Any]]]:
    """A stand-in API answering ``answers`` in turn (the last one repeats); its origin, the
    requests it got and their JSON bodies."""
    bodies: list[Any] = []

    def handle(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[Any, ...]:
        bodies.append(json.loads(body))
        return answers[min(len(bodies), len(answers)) - 1]

    with serving(handle) as (origin, seen):
        yield origin, seen, bodies


def production_queue(origin: str, **options: Any) -> CloudTasksQueue:
    return CloudTasksQueue(
        origin,
        FixedToken(),
        QUEUE,
        PATTERN,
        FixedClock(),
        oidc_service_account=INVOKER,
        sleep=lambda _s: None,
        **options,
    )


E = TypeVar("E", bound=Exception)


def enqueue_refused(
    answer: tuple[int, dict[str, Any]], error: type[E], caplog: pytest.LogCaptureFixture
) -> tuple[E, Seen]:
    """The error enqueueing ``TASK`` raises when the API answers ``answer``, and what the API
    was asked; errors are logged at ERROR."""
    with (
        tasks_api(answer) as (origin, seen, _),
        caplog.at_level(logging.ERROR),
        pytest.raises(error) as info,
    ):
        production_queue(origin).enqueue(TASK)
    return info.value, seen


def test_production_tasks_carry_an_oidc_token_for_the_function_url_and_no_shared_secret() -> None:
    with tasks_api((200, {"name": f"{QUEUE}/tasks/monitor-s1-1-0"})) as (origin, seen, bodies):
        assert production_queue(origin).enqueue(TASK) is True
    ((method, path, headers),) = seen
    assert (method, path) == ("POST", f"/v2/{QUEUE}/tasks")
    assert headers["authorization"] == "Bearer instance-token"
    task = bodies[0]["task"]
    assert task["name"] == f"{QUEUE}/tasks/monitor-s1-1-0"
    assert task["scheduleTime"] == "2025-01-01T00:00:30.000000Z"
    http = task["httpRequest"]
    service = "https://runmonitorcheck-123456789012.us-central1.run.app"
    assert http["url"] == f"{service}/api/tasks/monitor"
    assert http["httpMethod"] == "POST"
    assert http["oidcToken"] == {"serviceAccountEmail": INVOKER, "audience": service}
    assert TASK_AUTH_HEADER not in http["headers"]
    assert json.loads(base64.b64decode(http["body"])) == TASK.payload


def test_each_task_path_goes_to_the_function_that_serves_it() -> None:
    queue = production_queue("http://127.0.0.1:9")
    for path, function in TASK_FUNCTIONS.items():
        url, audience = queue.target(path)
        assert url.startswith(f"https://{function}-") and url.endswith(path)
        assert getattr(entry_points, function).routes == (path,)
        assert audience == url.removesuffix(path)


def test_local_tasks_go_to_the_gateway_with_the_shared_token_and_no_oidc() -> None:
    queue = CloudTasksQueue(
        "http://127.0.0.1:9",
        FixedToken(),
        QUEUE,
        "http://127.0.0.1:5000/",
        FixedClock(),
        auth_token="local-task-token",
    )
    http = queue.task_body(TASK)["task"]["httpRequest"]
    assert http["url"] == "http://127.0.0.1:5000/api/tasks/monitor"
    assert http["headers"][TASK_AUTH_HEADER] == "local-task-token"
    assert "oidcToken" not in http


def test_an_existing_task_name_is_not_an_error() -> None:
    with tasks_api((409, google_error(409, "ALREADY_EXISTS"))) as (origin, seen, _):
        assert production_queue(origin).enqueue(TASK) is False
    assert len(seen) == 1


def test_permission_denied_names_the_queue_and_the_missing_roles(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error, seen = enqueue_refused(
        (403, google_error(403, "PERMISSION_DENIED")), FailedPreconditionError, caplog
    )
    message = error.message
    assert error.code == ErrorCode.FAILED_PRECONDITION
    assert QUEUE in message
    assert "roles/cloudtasks.enqueuer" in message and "roles/iam.serviceAccountUser" in message
    assert INVOKER in message
    assert QUEUE in caplog.text and "permission_denied by the test" in caplog.text


def test_a_disabled_api_says_to_enable_it_not_to_grant_roles(
    caplog: pytest.LogCaptureFixture,
) -> None:
    disabled = google_error(403, "PERMISSION_DENIED")
    disabled["error"]["details"] = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "SERVICE_DISABLED",
            "domain": "googleapis.com",
        }
    ]
    error, seen = enqueue_refused((403, disabled), FailedPreconditionError, caplog)
    assert "cloudtasks.googleapis.com" in error.message
    assert "roles/" not in error.message
    assert len(seen) == 1
    assert "SERVICE_DISABLED" in caplog.text


def test_a_missing_queue_says_so(caplog: pytest.LogCaptureFixture) -> None:
    error, seen = enqueue_refused(
        (404, google_error(404, "NOT_FOUND")), FailedPreconditionError, caplog
    )
    assert QUEUE in error.message and "does not exist" in error.message
    assert "does not exist" in caplog.text


def test_a_refused_request_is_our_fault_and_is_not_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error, seen = enqueue_refused(
        (400, google_error(400, "INVALID_ARGUMENT")), InternalError, caplog
    )
    assert len(seen) == 1
    assert "invalid_argument by the test" in caplog.text


# Google answers both ALREADY_EXISTS and ABORTED with HTTP 409: only the first means the task
# is scheduled; an aborted request is retried like a transient failure.
@pytest.mark.parametrize(("code", "status"), [(503, "UNAVAILABLE"), (409, "ABORTED")])
def test_a_transient_failure_is_retried_with_the_same_task(code: int, status: str) -> None:
    with tasks_api((code, google_error(code, status)), (200, {})) as (origin, seen, bodies):
        assert production_queue(origin).enqueue(TASK) is True
    assert len(seen) == 2
    assert bodies[0] == bodies[1]


def test_a_retry_after_an_attempt_that_landed_reports_the_task_scheduled() -> None:
    answers: tuple[tuple[int, dict[str, Any]], ...] = (
        (504, google_error(504, "DEADLINE_EXCEEDED")),
        (409, google_error(409, "ALREADY_EXISTS")),
    )
    with tasks_api(*answers) as (origin, seen, _):
        assert production_queue(origin).enqueue(TASK) is False
    assert len(seen) == 2


def test_transient_failures_past_the_budget_stay_retryable() -> None:
    with (
        tasks_api((503, google_error(503, "UNAVAILABLE"))) as (origin, seen, _),
        pytest.raises(UnavailableError) as info,
    ):
        production_queue(origin, budget_s=0.5).enqueue(TASK)
    assert info.value.retry_after_s == 5
    assert len(seen) >= 2


def test_an_unreachable_api_is_unavailable_not_a_crash() -> None:
    with tasks_api((200, {})) as (origin, _, _):
        pass  # the server is gone: nothing listens at its port now
    with pytest.raises(UnavailableError):
        production_queue(origin, budget_s=0.3).enqueue(TASK)
