"""Stream creation through the whole stack: ``Idempotency-Key`` replays instead of creating
twice, and the per-user creation rate answers 429 with ``Retry-After`` before Cloudflare is
called. Each test signs in users of its own, so the shared test users keep their quota."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from firebase_admin import App
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from common.adapters.firestore.rest import FirestoreRest
from common.adapters.firestore.rest_guards import RestCreateQuota
from common.ports import CreateQuotaUsage
from common.settings import Settings
from emulators.stack import PROJECT_ID, LocalStack
from tests.integration.conftest import Caller, create_memorial, sign_up

pytestmark = pytest.mark.emulator


@pytest.fixture
def user(stack: LocalStack, firebase_app: App) -> Caller:
    """A user of this test's own, signed in, with the whole creation quota left."""
    return sign_up(stack, firebase_app, "guards")


def live_inputs(cloudflare: httpx.Client) -> dict[str, dict[str, Any]]:
    rows = cloudflare.get("/live_inputs").json()["result"]["liveInputs"]
    return {row["uid"]: row for row in rows}


def test_a_retried_create_with_one_idempotency_key_returns_the_same_stream(
    api: httpx.Client, cloudflare: httpx.Client, db: firestore.Client, user: Caller
) -> None:
    headers = {**user.bearer, "Idempotency-Key": f"create-{uuid.uuid4()}"}
    body = {"title": "Funeral service", "description": "Chapel"}
    before = live_inputs(cloudflare)

    first = api.post("/api/streams", json=body, headers=headers)
    second = api.post("/api/streams", json=body, headers=headers)

    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["streamKey"] == first.json()["streamKey"]
    created = {u: row for u, row in live_inputs(cloudflare).items() if u not in before}
    assert list(created) == [first.json()["cloudflareId"]]
    streams = db.collection("streams").where(filter=FieldFilter("createdBy", "==", user.uid)).get()
    assert [s.id for s in streams] == [first.json()["id"]]

    other = api.post("/api/streams", json={**body, "title": "Other"}, headers=headers)
    assert other.status_code == 422, other.text
    assert "Idempotency-Key" in other.json()["error"]
    malformed = api.post(
        "/api/streams", json=body, headers={**user.bearer, "Idempotency-Key": "x" * 256}
    )
    assert malformed.status_code == 400, malformed.text
    assert set(live_inputs(cloudflare)) - set(before) == set(created)


def test_the_memorial_create_path_is_idempotent_too(
    api: httpx.Client, cloudflare: httpx.Client, db: firestore.Client, user: Caller
) -> None:
    memorial = f"memorial-{uuid.uuid4().hex[:8]}"
    db.collection("memorials").document(memorial).set({"ownerUid": user.uid, "isPublic": True})
    headers = {**user.bearer, "Idempotency-Key": "memorial-create"}
    before = live_inputs(cloudflare)

    replies = [
        api.post(f"/api/memorials/{memorial}/streams", json={"title": "Service"}, headers=headers)
        for _ in range(2)
    ]

    assert [r.status_code for r in replies] == [200, 200], replies[-1].text
    assert replies[0].json()["id"] == replies[1].json()["id"]
    assert len(set(live_inputs(cloudflare)) - set(before)) == 1


def test_a_burst_beyond_the_creation_limit_gets_429_and_makes_no_live_inputs(
    api: httpx.Client, cloudflare: httpx.Client, db: firestore.Client, callers: Any, user: Caller
) -> None:
    settings = Settings()  # the stack's environment, as the functions read it
    left = 3
    # The user has already created all but ``left`` of the streams the window allows (one
    # write, whatever the stack's limit: the shared test users need a high one).
    now = datetime.now(UTC)
    window = timedelta(seconds=settings.create_rate_window_s)
    used = max(0, settings.create_rate_limit - left)
    RestCreateQuota(FirestoreRest.from_environment(PROJECT_ID)).update(
        user.uid, lambda _: CreateQuotaUsage(creations=(now,) * used, expires_at=now + window)
    )
    memorial = create_memorial(db, callers)  # not this user's: refused before counting
    before = live_inputs(cloudflare)

    def create(number: int) -> httpx.Response:
        return api.post("/api/streams", json={"title": f"Burst {number}"}, headers=user.bearer)

    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(create, range(10)))

    created = [r for r in replies if r.status_code == 200]
    refused = [r for r in replies if r.status_code == 429]
    assert len(created) == min(left, settings.create_rate_limit), [r.text for r in replies]
    assert len(refused) == len(replies) - len(created), [r.text for r in replies]
    for reply in refused:
        assert 0 < int(reply.headers["Retry-After"]) <= settings.create_rate_window_s
        assert reply.json()["code"] == "resource-exhausted"
    new_inputs = set(live_inputs(cloudflare)) - set(before)
    assert new_inputs == {r.json()["cloudflareId"] for r in created}

    # Over the limit, the memorial path refuses too, and a request that is not allowed at all
    # is still a 403 (authorisation comes first and counts nothing).
    over = api.post(
        f"/api/memorials/{memorial}/streams", json={"title": "More"}, headers=user.bearer
    )
    assert over.status_code == 403, over.text
    own = f"memorial-{uuid.uuid4().hex[:8]}"
    db.collection("memorials").document(own).set({"ownerUid": user.uid, "isPublic": True})
    limited = api.post(f"/api/memorials/{own}/streams", json={"title": "More"}, headers=user.bearer)
    assert limited.status_code == 429, limited.text
    assert int(limited.headers["Retry-After"]) > 0
    assert set(live_inputs(cloudflare)) - set(before) == new_inputs
