"""The real local stack for integration tests: started once per session, on free ports."""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import firebase_admin
import httpx
import pytest
from firebase_admin import App, auth
from google.cloud import firestore

from emulators.stack import API_TOKEN, NOTIFICATION_SECRET, PROJECT_ID, LocalStack, Ports

ROOT = Path(__file__).resolve().parents[2]

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

    @property
    def cookie(self) -> dict[str, str]:
        """The session cookie as a browser sends it through Hosting (``__session`` only)."""
        return {"Cookie": f"__session={self.session_cookie}"}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``stops_firestore`` run after every other test, whatever their names:
    the emulator keeps its data in memory, so stopping it empties it, and the session's
    memorials, users' streams and fixtures with it. The sort is stable: the rest keep their
    order."""
    items.sort(key=lambda item: item.get_closest_marker("stops_firestore") is not None)


# Schedule windows in seconds, not minutes: starting soon 6 s before the start, ended 3 s
# after the planned end, extended by 3 s while on air, to 9 s past the planned end at most.
WINDOW_PACE = {
    "LS_WINDOW_STARTING_SOON_LEAD_S": "6",
    "LS_WINDOW_OVERRUN_S": "3",
    "LS_WINDOW_EXTENSION_S": "3",
    "LS_WINDOW_HARD_MAXIMUM_S": "9",
}


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    workdir = Path(tempfile.mkdtemp(prefix="livestream-stack-"))
    local = LocalStack(Ports.free(), workdir, settings_env=WINDOW_PACE)
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


def run_beside(
    stack: LocalStack, argv: list[str], *, timeout: float = 60, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """``argv`` run from the repository's root in the stack's environment, as a function
    instance or a script there would be; its output captured."""
    return subprocess.run(
        argv,
        cwd=ROOT,
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


@pytest.fixture(scope="session")
def db(stack: LocalStack) -> firestore.Client:
    return firestore.Client(project=PROJECT_ID)


def sign_up(stack: LocalStack, app: App, role: str, claims: dict[str, Any] | None = None) -> Caller:
    """A new user in the Auth emulator (``{role}-…@example.com``) with ``claims``, signed in
    with their password: an ID token and a session cookie made from it."""
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    user = auth.create_user(email=email, password="secret-pass-1", app=app)
    if claims:
        auth.set_custom_user_claims(user.uid, claims, app=app)
    response = httpx.post(
        f"http://127.0.0.1:{stack.ports.auth}/identitytoolkit.googleapis.com/v1/"
        "accounts:signInWithPassword?key=emulator",
        json={"email": email, "password": "secret-pass-1", "returnSecureToken": True},
    )
    response.raise_for_status()
    id_token: str = response.json()["idToken"]
    cookie = auth.create_session_cookie(id_token, expires_in=3600, app=app)
    return Caller(
        role, user.uid, id_token, cookie.decode() if isinstance(cookie, bytes) else cookie
    )


@pytest.fixture(scope="session")
def firebase_app(stack: LocalStack) -> Iterator[App]:
    """The Admin SDK, pointed at the stack's Auth emulator."""
    app = firebase_admin.initialize_app(options={"projectId": PROJECT_ID}, name="tests")
    yield app
    firebase_admin.delete_app(app)


@pytest.fixture(scope="session")
def callers(stack: LocalStack, firebase_app: App) -> dict[str, Caller]:
    """One signed-in user per role, shared by the whole session."""
    return {role: sign_up(stack, firebase_app, role, CLAIMS.get(role)) for role in ROLES}


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
def private_stream(api: httpx.Client, callers: dict[str, Caller]) -> str:
    """A stream of the shared owner that only its managers and administrators may read."""
    response = api.post(
        "/api/streams",
        json={"title": "Private service", "isPublic": False, "isVisible": False},
        headers=callers["owner"].bearer,
    )
    assert response.status_code == 200, response.text
    stream_id: str = response.json()["id"]
    return stream_id


def _cloudflare_client(stack: LocalStack, api: str) -> httpx.Client:
    """A client of one of the Cloudflare emulator's APIs (``stream``, ``alerting/v3``)."""
    return httpx.Client(
        base_url=f"{stack.cloudflare_url}/client/v4/accounts/local-account/{api}",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=10,
    )


@pytest.fixture
def cloudflare(stack: LocalStack) -> Iterator[httpx.Client]:
    """A client of the Cloudflare emulator, to check what our backend did there."""
    with _cloudflare_client(stack, "stream") as client:
        yield client


@pytest.fixture
def alerting(stack: LocalStack) -> Iterator[httpx.Client]:
    """A client of the emulator's Alerting API: Notifications' webhook destinations and
    policies."""
    with _cloudflare_client(stack, "alerting/v3") as client:
        yield client


def live_input_policy(name: str, destination_id: str, *, enabled: bool = True) -> dict[str, Any]:
    """An Alerting policy body that sends live-input events to webhook ``destination_id``."""
    return {
        "name": name,
        "alert_type": "stream_live_notifications",
        "enabled": enabled,
        "mechanisms": {"webhooks": [{"id": destination_id}]},
    }


@pytest.fixture
def inject_faults(stack: LocalStack) -> Iterator[Any]:
    def inject(
        *statuses: int | None,
        retry_after: int | None = None,
        latency_ms: int = 0,
        delay_ms: int = 0,
        method: str | None = None,
        path: str | None = None,
        drop_webhooks: int = 0,
        duplicate_webhooks: bool = False,
    ) -> None:
        """One fault per status; ``None`` lets the request through after ``delay_ms``. The next
        ``drop_webhooks`` webhooks are lost; ``duplicate_webhooks`` sends each one twice."""
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
            json={
                "failNext": faults,
                "latencyMs": latency_ms,
                "dropWebhooks": drop_webhooks,
                "duplicateWebhooks": duplicate_webhooks,
            },
        ).raise_for_status()

    yield inject
    inject()


@pytest.fixture
def webhooks_lost(inject_faults: Any) -> None:
    """Cloudflare's webhooks are lost from the test's start (the next 50 of them)."""
    inject_faults(drop_webhooks=50)


@dataclass
class WebhookRouting:
    """Points Cloudflare's webhooks elsewhere for one test, then back at our functions."""

    stack: LocalStack
    cloudflare: httpx.Client
    alerting: httpx.Client

    def stream_webhook_to(self, url: str) -> str:
        """Re-point the Stream webhook; returns its (unchanged) signing secret."""
        response = self.cloudflare.put("/webhook", json={"notificationUrl": url})
        secret: str = response.json()["result"]["secret"]
        return secret

    def notifications_to(self, url: str, secret: str) -> None:
        """Re-point the stack's Notifications destination (its policy keeps naming it)."""
        rows = self.alerting.get("/destinations/webhooks").json()["result"]
        destination = next(r["id"] for r in rows if r["name"] == "live-input")
        self.alerting.put(
            f"/destinations/webhooks/{destination}",
            json={"name": "live-input", "url": url, "secret": secret},
        ).raise_for_status()

    def restore(self) -> None:
        self.stream_webhook_to(f"{self.stack.gateway_url}/api/webhooks/cloudflare/recording")
        self.notifications_to(
            f"{self.stack.gateway_url}/api/webhooks/cloudflare/live-input", NOTIFICATION_SECRET
        )


@pytest.fixture
def webhook_routing(
    stack: LocalStack, cloudflare: httpx.Client, alerting: httpx.Client
) -> Iterator[WebhookRouting]:
    routing = WebhookRouting(stack, cloudflare, alerting)
    yield routing
    routing.restore()


@pytest.fixture
def edge_api(stack: LocalStack) -> Iterator[httpx.Client]:
    """Like ``api``, but through an edge proxy that forwards every cookie (not Hosting)."""
    with httpx.Client(base_url=stack.edge_gateway_url, timeout=30) as client:
        yield client
