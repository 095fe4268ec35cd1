"""Every stream endpoint × every role: anonymous callers get 401, outsiders 403, and each role
the contract allows gets through (FRONTEND_CONTRACT.md §1, denials enforced)."""

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

# (method, path under /api/streams/{id}, request extras, roles allowed)
ENDPOINTS: list[tuple[str, str, dict[str, Any], set[str]]] = [
    ("GET", "", {}, MANAGERS),
    ("PUT", "", {"json": {"title": "Renamed"}}, MANAGERS),
    ("DELETE", "", {}, FULL),
    ("POST", "/start", {}, MANAGERS),
    ("POST", "/stop", {}, MANAGERS),
    ("POST", "/whip", SDP, MANAGERS),
    ("POST", "/sync-recording", {}, MANAGERS),
    ("POST", "/sync-status", {}, MANAGERS),
    ("POST", "/get-video-id", {}, MANAGERS),
    ("PUT", "/configure-cors", {}, MANAGERS),
    ("POST", "/fix-playback-url", {}, MANAGERS),
    ("POST", "/fix-status", {}, MANAGERS),
]


@pytest.mark.parametrize(
    ("method", "suffix", "extras", "allowed"),
    ENDPOINTS,
    ids=[f"{m} {s or '/'}" for m, s, _, _ in ENDPOINTS],
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
        outcomes[role] = response.status_code

    for role, status in outcomes.items():
        if role == "anonymous":
            assert status == 401, (role, status)
        elif role in allowed:
            assert status not in (401, 403), (role, status)
        else:
            assert status == 403, (role, status)
