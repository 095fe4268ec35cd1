"""``extendstream``, ``endstream`` and the window task ``runwindowedge`` through
functions-framework: a schedule window's edges, extended and ended by its managers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests import people
from tests.functions.calls import bearer, client, error, ok
from tests.functions.conftest import TASK_TOKEN, Backend

WINDOW = "/api/tasks/window"
TASK_AUTH = {"X-Task-Auth": TASK_TOKEN, "X-CloudTasks-TaskName": "test-task"}


def scheduled(backend: Backend, hours_ahead: float = 2) -> tuple[str, dict[str, Any]]:
    """A stream planned ``hours_ahead`` from now for an hour, and its window's close task."""
    start = backend.clock.now() + timedelta(hours=hours_ahead)
    created = backend.create_stream(
        scheduledStartTime=start.isoformat(),
        scheduledEndTime=(start + timedelta(hours=1)).isoformat(),
    )
    close = [t for t in backend.tasks.tasks if t.path == WINDOW and t.payload["edge"] == "close"]
    return created.id, dict(close[-1].payload)


def test_a_window_task_runs_its_edge_and_a_stale_one_does_nothing(backend: Backend) -> None:
    stream_id, close = scheduled(backend)
    soon = close | {"edge": "soon"}
    early = ok(client("runwindowedge").post(WINDOW, json=soon, headers=TASK_AUTH))
    assert early == {"outcome": "waiting"}  # delivered early: queued again for its time
    backend.clock.advance(90 * 60)
    body = ok(client("runwindowedge").post(WINDOW, json=soon, headers=TASK_AUTH))
    assert body == {"outcome": "starting_soon"}
    status = ok(client("streamstatus").get(f"/api/streams/{stream_id}/status"))
    assert status["schedule"]["phase"] == "starting_soon"
    assert status["schedule"]["startsInSeconds"] == 30 * 60
    stale = close | {"revision": close["revision"] + 1}
    assert ok(client("runwindowedge").post(WINDOW, json=stale, headers=TASK_AUTH)) == {
        "outcome": "stale"
    }


def test_the_window_task_is_served_to_tasks_only(backend: Backend) -> None:
    _, close = scheduled(backend)
    error(client("runwindowedge").post(WINDOW, json=close), 401, no_store=False)
    # A body no retry can mend is acknowledged (200), so the queue stops retrying it.
    bad = close | {"edge": "later"}
    body = ok(client("runwindowedge").post(WINDOW, json=bad, headers=TASK_AUTH))
    assert body["acknowledged"] is True
    assert body["code"] == "invalid-argument"


def test_extend_moves_the_planned_end_and_answers_the_window(backend: Backend) -> None:
    stream_id, close = scheduled(backend)
    path = f"/api/streams/{stream_id}/extend"
    body = ok(client("extendstream").post(path, json={"minutes": 30}, headers=bearer(people.OWNER)))
    assert body["schedule"]["phase"] == "upcoming"
    assert body["schedule"]["scheduleWindow"]["revision"] == close["revision"] + 1
    planned_end = backend.stream(stream_id).scheduled_end_time
    assert planned_end == backend.clock.now() + timedelta(hours=3, minutes=30)
    # Without a body, a quarter of an hour.
    again = ok(client("extendstream").post(path, headers=bearer(people.OWNER)))
    assert again["schedule"]["scheduleWindow"]["revision"] == close["revision"] + 2


def test_extend_refuses_bad_minutes_strangers_and_streams_without_a_schedule(
    backend: Backend,
) -> None:
    stream_id, _ = scheduled(backend)
    path = f"/api/streams/{stream_id}/extend"
    for minutes in (0, 241, "soon"):
        error(
            client("extendstream").post(
                path, json={"minutes": minutes}, headers=bearer(people.OWNER)
            ),
            400,
            "invalid-argument",
        )
    error(
        client("extendstream").post(path, headers=bearer(people.STRANGER)), 403, "permission-denied"
    )
    error(client("extendstream").post(path), 401, "unauthenticated")
    plain = backend.create_stream().id
    error(
        client("extendstream").post(f"/api/streams/{plain}/extend", headers=bearer(people.OWNER)),
        409,
        "conflict",
    )


def test_end_now_stops_a_live_service_and_closes_its_window(backend: Backend, prefix: str) -> None:
    stream_id, _ = scheduled(backend, hours_ahead=0.25)
    backend.start(stream_id)
    body = ok(
        client("endstream").post(f"{prefix}/streams/{stream_id}/end", headers=bearer(people.OWNER))
    )
    assert body["status"] == "completed"
    assert body["schedule"]["phase"] == "ended"
    assert body["schedule"]["scheduleWindow"]["closedBy"] == "manager"
    error(
        client("endstream").post(f"/api/streams/{stream_id}/end", headers=bearer(people.STRANGER)),
        403,
        "permission-denied",
    )


def test_a_window_that_ends_before_it_starts_is_a_400(backend: Backend) -> None:
    start = backend.clock.now() + timedelta(hours=2)
    body = {
        "title": "t",
        "scheduledStartTime": start.isoformat(),
        "scheduledEndTime": (start - timedelta(minutes=1)).isoformat(),
    }
    reply = error(
        client("streams").post("/api/streams", json=body, headers=bearer(people.OWNER)),
        400,
        "invalid-argument",
    )
    assert "ends before it starts" in str(reply)
    stream_id, _ = scheduled(backend)
    reply = error(
        client("stream").put(
            f"/api/streams/{stream_id}",
            json={"scheduledEndTime": backend.clock.now().isoformat()},
            headers=bearer(people.OWNER),
        ),
        400,
        "invalid-argument",
    )
    assert "ends before it starts" in str(reply)
