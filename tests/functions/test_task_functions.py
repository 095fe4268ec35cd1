"""The Cloud Tasks targets ``runmonitorcheck`` and ``sweeporphanedinputs``: locally only a
request with the shared ``X-Task-Auth`` token gets in; permanent failures are acknowledged
(200) so the queue stops retrying, transient ones answer 503/429 with ``Retry-After``."""

from __future__ import annotations

from typing import Any

import pytest

from common.bootstrap import override
from common.models.domain import LiveInputSpec, StreamStatus
from common.ports import ProviderError, ProviderRejectedError, ProviderUnavailableError
from tests.functions.calls import client, error, ok
from tests.functions.conftest import TASK_TOKEN, Backend, local_settings

MONITOR = "/api/tasks/monitor"
SWEEP = "/api/tasks/sweep-live-inputs"
TASK_AUTH = {"X-Task-Auth": TASK_TOKEN, "X-CloudTasks-TaskName": "test-task"}


def started(backend: Backend) -> tuple[str, dict[str, Any]]:
    """A started stream and the payload of the status check its start scheduled."""
    stream = backend.create_stream()
    backend.start(stream.id)
    [task] = backend.tasks.tasks
    assert task.path == MONITOR
    return stream.id, dict(task.payload)


def orphan(backend: Backend, stream_id: str) -> str:
    """A live input tagged with ``stream_id`` that no stream uses."""
    spec = LiveInputSpec(
        stream_id=stream_id, name="orphan", recording_timeout_seconds=300, allowed_origins=()
    )
    return backend.provider.create_live_input(spec).uid


# --- runmonitorcheck -------------------------------------------------------------------------


def test_a_scheduled_status_check_runs_and_schedules_the_next(backend: Backend) -> None:
    stream_id, payload = started(backend)

    body = ok(client("runmonitorcheck").post(MONITOR, json=payload, headers=TASK_AUTH))

    assert body == {"outcome": "rescheduled"}
    assert [t.payload["attempt"] for t in backend.tasks.tasks] == [0, 1]
    again = ok(client("runmonitorcheck").post(MONITOR, json=payload, headers=TASK_AUTH))
    assert again == {"outcome": "requeued"}  # a duplicate only queues the next again: one
    assert [t.payload["attempt"] for t in backend.tasks.tasks] == [0, 1]


def test_a_check_that_cannot_queue_the_next_answers_503_so_cloud_tasks_retries_it(
    backend: Backend,
) -> None:
    stream_id, payload = started(backend)
    backend.tasks.unavailable_for = 1

    failed = client("runmonitorcheck").post(MONITOR, json=payload, headers=TASK_AUTH)

    assert failed.status_code == 503 and failed.headers["Retry-After"] == "5"
    assert failed.get_json()["code"] == "unavailable"
    assert [t.payload["attempt"] for t in backend.tasks.tasks] == [0]
    again = ok(client("runmonitorcheck").post(MONITOR, json=payload, headers=TASK_AUTH))
    assert again == {"outcome": "requeued"}
    assert [t.payload["attempt"] for t in backend.tasks.tasks] == [0, 1]


def test_the_status_check_ends_a_stream_whose_encoder_never_came(backend: Backend) -> None:
    stream_id, payload = started(backend)
    ok(client("runmonitorcheck").post(MONITOR, json=payload, headers=TASK_AUTH))
    backend.clock.advance(60)

    last = ok(
        client("runmonitorcheck").post(MONITOR, json=payload | {"attempt": 1}, headers=TASK_AUTH)
    )

    assert last == {"outcome": "done"}
    assert backend.stream(stream_id).status == StreamStatus.COMPLETED


def test_a_check_of_a_deleted_stream_is_gone(backend: Backend) -> None:
    payload = {"kind": "recording", "streamId": "deleted", "generation": 1, "attempt": 0}

    assert ok(client("runmonitorcheck").post(MONITOR, json=payload, headers=TASK_AUTH)) == {
        "outcome": "gone"
    }


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_a_monitor_call_without_the_task_token_is_a_401(
    backend: Backend, token: str | None
) -> None:
    stream_id, payload = started(backend)
    headers = {} if token is None else {"X-Task-Auth": token}

    response = client("runmonitorcheck").post(MONITOR, json=payload, headers=headers)

    error(response, 401, "unauthenticated", no_store=False)
    assert len(backend.tasks.tasks) == 1


def test_locally_without_a_configured_task_token_nothing_gets_in(backend: Backend) -> None:
    stream_id, payload = started(backend)
    unconfigured = Backend(local_settings(task_auth_token=None))

    with override(unconfigured.services):
        response = client("runmonitorcheck").post(MONITOR, json=payload, headers=TASK_AUTH)

    error(response, 401, "unauthenticated", no_store=False)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"kind": "bogus", "streamId": "s", "generation": 1, "attempt": 0},
        {"kind": "status", "streamId": "s", "generation": 1, "attempt": -1},
        {"kind": "status", "streamId": "s", "generation": 1, "attempt": 0, "extra": True},
        {"kind": "status", "streamId": "a/b", "generation": 1, "attempt": 0},
    ],
)
def test_a_malformed_task_is_acknowledged_not_retried(backend: Backend, payload: object) -> None:
    response = client("runmonitorcheck").post(MONITOR, json=payload, headers=TASK_AUTH)

    body = ok(response)
    assert body["acknowledged"] is True
    assert body["code"] == "invalid-argument"
    assert body["error"]


@pytest.mark.parametrize(
    "failure",
    [ProviderUnavailableError("timeout"), ProviderRejectedError("Authentication error")],
)
def test_cloudflare_failing_a_check_leaves_the_next_check_queued(
    backend: Backend, failure: ProviderError
) -> None:
    # Not the queue's retries, which end after maxAttempts: the chain itself goes on.
    stream_id, payload = started(backend)
    backend.provider.fail("get_live_input", failure)

    body = ok(client("runmonitorcheck").post(MONITOR, json=payload, headers=TASK_AUTH))

    assert body == {"outcome": "unanswered"}
    assert [t.payload["attempt"] for t in backend.tasks.tasks] == [0, 1]
    assert backend.stream(stream_id).status == StreamStatus.LIVE


# --- sweeporphanedinputs ---------------------------------------------------------------------


def test_the_sweep_deletes_inputs_no_stream_uses(backend: Backend) -> None:
    stream = backend.create_stream()
    in_use = backend.live_input_of(stream.id)
    left_behind = orphan(backend, stream.id)
    backend.clock.advance(120)

    body = ok(
        client("sweeporphanedinputs").post(SWEEP, json={"streamId": stream.id}, headers=TASK_AUTH)
    )

    assert body == {"deleted": 1}
    assert left_behind not in backend.provider.inputs
    assert in_use in backend.provider.inputs


def test_the_sweep_of_a_stream_that_was_never_written_deletes_its_input(backend: Backend) -> None:
    uid = orphan(backend, "never-written")

    body = ok(
        client("sweeporphanedinputs").post(
            SWEEP, json={"streamId": "never-written"}, headers=TASK_AUTH
        )
    )

    assert body == {"deleted": 1}
    assert uid not in backend.provider.inputs


def test_an_input_too_new_to_judge_is_retried_later(backend: Backend) -> None:
    stream = backend.create_stream()
    young = orphan(backend, stream.id)

    response = client("sweeporphanedinputs").post(
        SWEEP, json={"streamId": stream.id}, headers=TASK_AUTH
    )

    error(response, 503, "unavailable", no_store=False)
    assert int(response.headers["Retry-After"]) == 60
    assert young in backend.provider.inputs


def test_the_sweep_needs_the_task_token_and_a_stream_id(backend: Backend) -> None:
    uid = orphan(backend, "s-1")

    unauthenticated = client("sweeporphanedinputs").post(SWEEP, json={"streamId": "s-1"})
    malformed = client("sweeporphanedinputs").post(SWEEP, json={}, headers=TASK_AUTH)

    error(unauthenticated, 401, "unauthenticated", no_store=False)
    assert ok(malformed)["acknowledged"] is True
    assert uid in backend.provider.inputs
