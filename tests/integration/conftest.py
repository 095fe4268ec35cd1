"""The real local stack for integration tests: started once per session, on free ports."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import firebase_admin
import httpx
import pytest
from firebase_admin import auth
from google.cloud import firestore

from emulators.stack import API_TOKEN, NOTIFICATION_SECRET, PROJECT_ID, LocalStack, Ports

ROLES = ("owner", "memorial_owner", "funeral_director", "admin", "stranger", "helper")
CLAIMS: dict[str, dict[str, Any]] = {
    "admin": {"role": "admin", "admin": True},
    "funeral_director": {"role": "funeral_director"},
}


@dataclass
class Caller:
    """A signed-in test user: uid, a Firebase ID token and a session cookie."""

    role: str
    uid: str
    id_token: str
    session_cookie: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.id_token}"}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``stops_firestore`` run after every other test, whatever their names:
    the emulator keeps its data in memory, so stopping it empties it, and the session's
    memorials, users' streams and fixtures with it. The sort is stable: the rest keep their
    order."""
    items.sort(key=lambda item: item.get_closest_marker("stops_firestore") is not None)


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    workdir = Path(tempfile.mkdtemp(prefix="livestream-stack-"))
    local = LocalStack(Ports.free(), workdir)
    local.start()
    os.environ.update(local.env)
    try:
        yield local
    finally:
        local.stop()


def stored(reference: Any) -> dict[str, Any]:
    """The data of a Firestore document that must exist."""
    data = reference.get().to_dict()
    assert data is not None, f"{reference.path} does not exist"
    return dict(data)


@pytest.fixture(scope="session")
def db(stack: LocalStack) -> firestore.Client:
    return firestore.Client(project=PROJECT_ID)


@pytest.fixture(scope="session")
def callers(stack: LocalStack) -> dict[str, Caller]:
    app = firebase_admin.initialize_app(options={"projectId": PROJECT_ID}, name="tests")
    result: dict[str, Caller] = {}
    for role in ROLES:
        email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        user = auth.create_user(email=email, password="secret-pass-1", app=app)
        if role in CLAIMS:
            auth.set_custom_user_claims(user.uid, CLAIMS[role], app=app)
        response = httpx.post(
            f"http://127.0.0.1:{stack.ports.auth}/identitytoolkit.googleapis.com/v1/"
            "accounts:signInWithPassword?key=emulator",
            json={"email": email, "password": "secret-pass-1", "returnSecureToken": True},
        )
        id_token = response.json()["idToken"]
        cookie = auth.create_session_cookie(id_token, expires_in=3600, app=app)
        result[role] = Caller(
            role, user.uid, id_token, cookie.decode() if isinstance(cookie, bytes) else cookie
        )
    return result


def create_memorial(
    db: firestore.Client,
    callers: dict[str, Caller],
    *,
    public: bool = True,
    loved_one: str = "Grace Hopper",
) -> str:
    """A memorial owned by "memorial_owner" with "funeral_director" as its funeral director."""
    memorial = f"memorial-{uuid.uuid4().hex[:8]}"
    db.collection("memorials").document(memorial).set(
        {
            "ownerUid": callers["memorial_owner"].uid,
            "funeralDirectorUid": callers["funeral_director"].uid,
            "isPublic": public,
            "lovedOneName": loved_one,
        }
    )
    return memorial


@pytest.fixture(scope="session")
def memorial_id(db: firestore.Client, callers: dict[str, Caller]) -> str:
    return create_memorial(db, callers)


@pytest.fixture
def api(stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as client:
        yield client


@pytest.fixture
def cloudflare(stack: LocalStack) -> Iterator[httpx.Client]:
    """A client of the Cloudflare emulator, to check what our backend did there."""
    with httpx.Client(
        base_url=f"{stack.cloudflare_url}/client/v4/accounts/local-account/stream",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=10,
    ) as client:
        yield client


@pytest.fixture
def inject_faults(stack: LocalStack) -> Iterator[Any]:
    def inject(
        *statuses: int | None,
        retry_after: int | None = None,
        latency_ms: int = 0,
        delay_ms: int = 0,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """One fault per status; ``None`` lets the request through after ``delay_ms``."""
        faults = [
            {
                "status": s,
                "retryAfter": retry_after,
                "delayMs": delay_ms,
                "method": method,
                "path": path,
            }
            for s in statuses
        ]
        httpx.post(
            f"{stack.cloudflare_url}/__emulator/faults",
            json={"failNext": faults, "latencyMs": latency_ms},
        ).raise_for_status()

    yield inject
    inject()


@dataclass
class WebhookRouting:
    """Points Cloudflare's webhooks elsewhere for one test, then back at our functions."""

    stack: LocalStack
    cloudflare: httpx.Client

    def stream_webhook_to(self, url: str) -> str:
        """Re-point the Stream webhook; returns its (unchanged) signing secret."""
        response = self.cloudflare.put("/webhook", json={"notificationUrl": url})
        secret: str = response.json()["result"]["secret"]
        return secret

    def notifications_to(self, url: str, secret: str) -> None:
        """Re-point the stack's Notifications destination (its policy keeps naming it)."""
        destinations = (
            f"{self.stack.cloudflare_url}/client/v4/accounts/local-account/alerting/v3/"
            "destinations/webhooks"
        )
        rows = httpx.get(destinations, headers=self.cloudflare.headers).json()["result"]
        destination = next(r["id"] for r in rows if r["name"] == "live-input")
        httpx.put(
            f"{destinations}/{destination}",
            json={"name": "live-input", "url": url, "secret": secret},
            headers=self.cloudflare.headers,
        ).raise_for_status()

    def restore(self) -> None:
        self.stream_webhook_to(f"{self.stack.gateway_url}/api/webhooks/cloudflare/recording")
        self.notifications_to(
            f"{self.stack.gateway_url}/api/webhooks/cloudflare/live-input", NOTIFICATION_SECRET
        )


@pytest.fixture
def webhook_routing(stack: LocalStack, cloudflare: httpx.Client) -> Iterator[WebhookRouting]:
    routing = WebhookRouting(stack, cloudflare)
    yield routing
    routing.restore()


@pytest.fixture
def edge_api(stack: LocalStack) -> Iterator[httpx.Client]:
    """Like ``api``, but through an edge proxy that forwards every cookie (not Hosting)."""
    with httpx.Client(base_url=stack.edge_gateway_url, timeout=30) as client:
        yield client
