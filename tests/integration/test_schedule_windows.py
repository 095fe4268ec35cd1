"""Schedule windows through the whole stack, on real media and real Cloud Tasks (the stack
runs them in seconds: tests/integration/conftest.py ``WINDOW_PACE``): a scheduled service reads
"starting soon", goes live from a real encoder before its start, is extended while on air and
ended at the hard maximum with its recording kept; a forgotten Stop with nothing on air is
ended by the window; a reschedule leaves the old tasks acting on nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from emulators.test_card import push_test_card
from tests.integration.conftest import Caller
from tests.integration.test_broadcast_e2e import wait_for

pytestmark = pytest.mark.emulator


class Service:
    """A scheduled stream of the shared owner, read through the API."""

    def __init__(
        self, api: httpx.Client, owner: Caller, start_in_s: float, length_s: float
    ) -> None:
        self.api, self.owner = api, owner
        self.start = datetime.now(UTC) + timedelta(seconds=start_in_s)
        body = {
            "title": "Funeral service",
            "scheduledStartTime": self.start.isoformat(),
            "scheduledEndTime": (self.start + timedelta(seconds=length_s)).isoformat(),
        }
        response = api.post("/api/streams", json=body, headers=owner.bearer)
        assert response.status_code == 200, response.text
        self.created: dict[str, Any] = response.json()
        self.id: str = self.created["id"]

    def status(self) -> dict[str, Any]:
        response = self.api.get(f"/api/streams/{self.id}/status")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def stream(self) -> dict[str, Any]:
        response = self.api.get(f"/api/streams/{self.id}", headers=self.owner.bearer)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def phase_is(self, phase: str) -> dict[str, Any] | None:
        schedule: dict[str, Any] = self.status()["schedule"]
        return schedule if schedule["phase"] == phase else None


def test_a_service_goes_starting_soon_then_live_and_is_extended_on_air_to_its_hard_maximum(
    api: httpx.Client, callers: dict[str, Caller]
) -> None:
    # Starts in 10 s for 3 s: starting soon from 4 s, closes at 16 s, at 22 s at the latest.
    service = Service(api, callers["owner"], start_in_s=10, length_s=3)
    upcoming = service.status()
    assert upcoming["schedule"]["phase"] == "upcoming", upcoming
    assert 0 < upcoming["schedule"]["startsInSeconds"] <= 10
    soon = wait_for(lambda: service.phase_is("starting_soon"), 15, "starting soon")
    assert soon["startsInSeconds"] > 0
    assert service.status()["status"] == "scheduled"

    # The family's encoder goes on air before the start time; nobody presses Stop.
    encoder = push_test_card(service.created["streamUrl"], service.created["streamKey"], 90)
    try:
        wait_for(lambda: service.phase_is("live"), 20, "the encoder to take it live")
        ended = wait_for(
            lambda: (s := service.stream())["status"] == "completed" and s, 40, "the window end"
        )
        assert encoder.poll() is None, "the encoder was still sending when the window ended it"
    finally:
        encoder.kill()
        encoder.wait()
    window = ended["scheduleWindow"]
    assert window["closedBy"] == "hard_maximum", window
    # Each step counts from when the close ran (a task arrives a little late), so one or two
    # steps fit before the hard maximum.
    assert window["extensions"] >= 1, window
    latest = datetime.fromisoformat(window["latestClose"])
    step = timedelta(seconds=3)
    assert latest - step <= datetime.fromisoformat(window["closedAt"]), window
    assert ended["schedulePhase"] == "ended"
    # What was broadcast is kept: the recording arrives as after a Stop.
    recorded = wait_for(
        lambda: (s := service.status())["recordingStatus"] == "ready" and s, 90, "the recording"
    )
    assert recorded["status"] == "completed"


def test_a_forgotten_stop_with_nothing_on_air_is_ended_by_the_window(
    api: httpx.Client, callers: dict[str, Caller]
) -> None:
    # Inside the lead already: starting soon at once; the window closes 3 s after its end.
    service = Service(api, callers["owner"], start_in_s=1, length_s=1)
    assert service.status()["schedule"]["phase"] == "starting_soon"
    started = api.post(f"/api/streams/{service.id}/start", headers=callers["owner"].bearer)
    assert started.status_code == 200, started.text
    ended = wait_for(
        lambda: (s := service.stream())["status"] == "completed" and s, 30, "the window end"
    )
    assert ended["scheduleWindow"]["closedBy"] == "window", ended["scheduleWindow"]
    assert ended["schedulePhase"] == "ended"
    assert ended["broadcastState"] == "ended"


def test_a_reschedule_leaves_the_old_tasks_stale_and_managers_extend_and_end_it(
    api: httpx.Client, callers: dict[str, Caller]
) -> None:
    owner = callers["owner"]
    # Its "starting soon" task is due 2 s from now...
    service = Service(api, owner, start_in_s=8, length_s=60)
    later = datetime.now(UTC) + timedelta(minutes=10)
    moved = api.put(
        f"/api/streams/{service.id}",
        json={
            "scheduledStartTime": later.isoformat(),
            "scheduledEndTime": (later + timedelta(minutes=30)).isoformat(),
        },
        headers=owner.bearer,
    )
    assert moved.status_code == 200, moved.text
    first = service.created["scheduleWindow"]["revision"]
    assert moved.json()["scheduleWindow"]["revision"] > first
    # ...and once it has run, it changed nothing: the service is ten minutes off.
    time.sleep(5)
    assert service.status()["schedule"]["phase"] == "upcoming"

    extended = api.post(
        f"/api/streams/{service.id}/extend", json={"minutes": 20}, headers=owner.bearer
    )
    assert extended.status_code == 200, extended.text
    schedule = extended.json()["schedule"]
    assert schedule["scheduleWindow"]["revision"] > moved.json()["scheduleWindow"]["revision"]
    planned_end = datetime.fromisoformat(schedule["scheduledEndTime"])
    assert abs(planned_end - (later + timedelta(minutes=50))) < timedelta(seconds=1)

    stranger = api.post(f"/api/streams/{service.id}/end", headers=callers["stranger"].bearer)
    assert stranger.status_code == 403, stranger.text
    ended = api.post(f"/api/streams/{service.id}/end", headers=owner.bearer)
    assert ended.status_code == 200, ended.text
    assert ended.json()["schedule"]["phase"] == "ended"
    assert service.status()["schedule"]["phase"] == "ended"
