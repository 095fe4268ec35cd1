"""The database goes away mid-run: callers get clean, retryable errors, Cloudflare is left
with no orphaned live input, and the service recovers by itself when the database returns.

Marked ``stops_firestore``: the emulator keeps its data in memory, so the restart empties it,
and ``tests/integration/conftest.py`` runs such tests after every other one."""

from __future__ import annotations

import time

import httpx
import pytest
from google.cloud import firestore

from emulators.stack import LocalStack
from tests.integration.conftest import Caller

pytestmark = [pytest.mark.emulator, pytest.mark.stops_firestore]
RECOVERY_S = 60


def test_firestore_outage_is_a_clean_503_and_the_service_recovers(
    api: httpx.Client,
    cloudflare: httpx.Client,
    callers: dict[str, Caller],
    stack: LocalStack,
    db: firestore.Client,
    memorial_id: str,
) -> None:
    owner = callers["owner"].bearer
    inputs_before = cloudflare.get("/live_inputs").json()["result"]["total"]
    stack.stop_component("firestore")
    try:
        started = time.monotonic()
        created = api.post("/api/streams", json={"title": "During the outage"}, headers=owner)
        listing = api.get("/api/streams/public")
        elapsed = time.monotonic() - started
    finally:
        stack.stop_component("events")
        stack.start_component("firestore")
        stack.start_component("events")

    for response in (created, listing):
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "unavailable"
        assert int(response.headers["Retry-After"]) > 0
    assert elapsed < 60
    assert cloudflare.get("/live_inputs").json()["result"]["total"] == inputs_before

    # The emulator's restart and gRPC's reconnect take a few seconds (more on a loaded
    # machine): meanwhile callers keep getting a clean 503 with Retry-After, as a client
    # honouring it would, and then the service answers again without any restart of ours.
    deadline = time.monotonic() + RECOVERY_S
    while True:
        recovered = api.post("/api/streams", json={"title": "After the outage"}, headers=owner)
        if recovered.status_code != 503 or time.monotonic() > deadline:
            break
        assert int(recovered.headers["Retry-After"]) > 0
        time.sleep(1)
    assert recovered.status_code == 200, recovered.text
    assert api.get(f"/api/streams/{recovered.json()['id']}").json()["title"] == "After the outage"
