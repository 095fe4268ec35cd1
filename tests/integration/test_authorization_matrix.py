"""Every stream endpoint × every role: anonymous callers get 401, outsiders 403, and each role
the contract allows gets through (FRONTEND_CONTRACT.md §1, denials enforced) with the answer
that endpoint gives a fresh scheduled stream: never a 5xx, never a refusal."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from google.cloud import firestore

from tests.integration.conftest import Caller

pytestmark = pytest.mark.emulator

MANAGERS = {"owner", "memorial_owner", "funeral_director", "admin", "helper"}
FULL = {"owner", "memorial_owner", "admin"}
ROLES = ["anonymous", "stranger", *sorted(MANAGERS)]
SDP = {
    "content": b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\n",
    "headers": {"Content-Type": "application/sdp"},
}

OK = {200}
# (method, path under /api/streams/{id}, request extras, roles allowed, what they get)
ENDPOINTS: list[tuple[str, str, dict[str, Any], set[str], set[int]]] = [
    ("GET", "", {}, MANAGERS, OK),
    ("PUT", "", {"json": {"title": "Renamed"}}, MANAGERS, OK),
    ("DELETE", "", {}, FULL, OK),
    ("POST", "/start", {}, MANAGERS, OK),
    ("POST", "/stop", {}, MANAGERS, {409}),  # the stream never went live
    # A bare offer (no media sections): relayed, and answered or refused as a bad offer.
    ("POST", "/whip", SDP, MANAGERS, {201, 400}),
    ("POST", "/sync-recording", {}, MANAGERS, OK),
    ("POST", "/sync-status", {}, MANAGERS, OK),
    ("POST", "/get-video-id", {}, MANAGERS, OK),
    ("PUT", "/configure-cors", {}, MANAGERS, OK),
    ("POST", "/fix-playback-url", {}, MANAGERS, OK),
    ("POST", "/fix-status", {}, MANAGERS, OK),
]


@pytest.mark.parametrize(
    ("method", "suffix", "extras", "allowed", "expected"),
    ENDPOINTS,
    ids=[f"{m} {s or '/'}" for m, s, _, _, _ in ENDPOINTS],
)
def test_endpoint_by_role(
    api: httpx.Client,
    callers: dict[str, Caller],
    memorial_id: str,
    db: firestore.Client,
    method: str,
    suffix: str,
    extras: dict[str, Any],
    allowed: set[str],
    expected: set[int],
) -> None:
    outcomes = {}
    for role in ROLES:
        # "owner" created it; it belongs to a memorial run by memorial_owner and
        # funeral_director; helper is in allowedUsers; it is neither public nor visible.
        stream = api.post(
            "/api/streams",
            json={
                "title": "Private service",
                "isPublic": False,
                "isVisible": False,
                "allowedUsers": [callers["helper"].uid],
            },
            headers=callers["owner"].bearer,
        ).json()
        db.collection("streams").document(stream["id"]).update({"memorialId": memorial_id})
        headers = {
            **extras.get("headers", {}),
            **(callers[role].bearer if role != "anonymous" else {}),
        }
        request = {k: v for k, v in extras.items() if k != "headers"}
        response = api.request(
            method, f"/api/streams/{stream['id']}{suffix}", headers=headers, **request
        )
        outcomes[role] = (response.status_code, response.text[:300])

    for role, (status, text) in outcomes.items():
        if role == "anonymous":
            assert status == 401, (role, status, text)
        elif role in allowed:
            # Allowed means served: a crash (5xx) is as much a failure as a refusal.
            assert status < 500, (role, status, text)
            assert status in expected, (role, status, text)
        else:
            assert status == 403, (role, status, text)
