"""The middle tier: every deployed function as functions-framework serves it, over in-memory
fakes wired by the real composition root (``build_services``). No network, no emulators.

Each function gets its own app, made the way functions-framework-python's own tests make one:
``functions_framework.create_app(target=name, source="functions/main.py").test_client()``.
Requests use the URL paths ``firebase.json`` rewrites to that function (the client and the
reply checks: ``tests/functions/calls.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from werkzeug.test import TestResponse

from common.bootstrap import Services, build_services, override
from common.errors import UnauthenticatedError
from common.models.domain import Recording, Stream, User
from common.ports import PendingMigration, RequestCredentials
from common.settings import Settings
from tests import people
from tests.fakes import (
    FixedClock,
    InMemoryCreateQuota,
    InMemoryIdempotencyStore,
    InMemoryMemorialDirectory,
    InMemoryStreamRepository,
    RecordingTaskQueue,
)
from tests.fakes.events import InMemoryEventStore, InMemoryTemplateStore
from tests.fakes.provider import FakeStreamProvider
from tests.functions.calls import bearer, client, ok
from tests.stream_webhooks import sign_stream_webhook, video_webhook_body

MVP = "/api/livestreamMVPTwo"

WEBHOOK_SECRET = "functions-test-stream-webhook-secret"
NOTIFICATION_SECRET = "functions-test-notification-secret"
TASK_TOKEN = "functions-test-task-token"
DELIVERY_BASE = "https://customer-test.cloudflarestream.com"
SITE = "https://tributestream.com"

TOKENS = {f"token-{user.uid}": user for user in people.EVERYONE}


class TokenAuthenticator:
    """``Authenticator``: a bearer token (or session cookie) ``token-<uid>`` is that test user;
    any other credential is refused, as Firebase refuses an invalid token."""

    def __init__(self) -> None:
        self.seen: list[RequestCredentials] = []

    def authenticate(self, credentials: RequestCredentials) -> User | None:
        self.seen.append(credentials)
        presented = credentials.bearer_token or credentials.session_cookie
        if presented is None:
            return None
        user = TOKENS.get(presented)
        if user is None:
            raise UnauthenticatedError("Invalid or expired credentials")
        return user


class InMemoryMigrationStore:
    """``StreamMigrationStore``: legacy documents waiting to move; ``applied`` the moved ones."""

    def __init__(self, *pending: PendingMigration) -> None:
        self.pending = list(pending)
        self.applied: list[str] = []

    def pending_migrations(self) -> list[PendingMigration]:
        return [item for item in self.pending if item.stream_id not in self.applied]

    def apply_migration(self, item: PendingMigration) -> None:
        self.applied.append(item.stream_id)


def local_settings(**changes: Any) -> Settings:
    """Local-environment settings with every secret the functions check set to a test value
    (explicit, so ``LS_*`` variables of the shell or the integration stack do not leak in)."""
    values: dict[str, Any] = {
        "environment": "local",
        "gcp_project": "demo-functions-tests",
        "cloudflare_delivery_base": DELIVERY_BASE,
        "cloudflare_webhook_secret": SecretStr(WEBHOOK_SECRET),
        "cloudflare_notification_secret": SecretStr(NOTIFICATION_SECRET),
        "webhook_tolerance_s": 300,
        "task_auth_token": SecretStr(TASK_TOKEN),
        "cloud_tasks_emulator_host": None,
        "tasks_target_base_url": "http://127.0.0.1:5000",
        "tasks_invoker_service_account": None,
        "allowed_origins": [SITE, "https://*.tributestream.com"],
        "recording_timeout_seconds": 300,
        "recording_monitor_checks": 3,
        "recording_monitor_interval_s": 30,
        "status_monitor_interval_s": 60,
        "status_monitor_grace_checks": 2,
        "orphan_sweep_delay_s": 120,
        "memorial_cache_ttl_s": 0,
        "create_rate_limit": 20,
        "create_rate_limit_admin": 100,
        "create_rate_window_s": 600,
        "streams_collection": "streams",
        "legacy_streams_collections": ["mvp_two_streams"],
    }
    return Settings(**(values | changes))


@dataclass(frozen=True)
class Created:
    """What the create reply says of a new stream (the fields these tests use)."""

    id: str
    cloudflareId: str
    playbackUrl: str
    streamKey: str
    streamUrl: str

    @classmethod
    def of(cls, body: dict[str, Any]) -> Created:
        return cls(**{name: body[name] for name in cls.__dataclass_fields__})


class Backend:
    """The services ``build_services`` wires over fakes, and handles on those fakes."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or local_settings()
        self.clock = FixedClock()
        self.repo = InMemoryStreamRepository()
        self.memorials = InMemoryMemorialDirectory(people.MEMORIAL, people.PRIVATE_MEMORIAL)
        self.provider = FakeStreamProvider(self.clock)
        self.tasks = RecordingTaskQueue()
        self.auth = TokenAuthenticator()
        self.migrations = InMemoryMigrationStore()
        self.create_quota = InMemoryCreateQuota()
        self.idempotency = InMemoryIdempotencyStore()
        self.event_store = InMemoryEventStore()
        self.template_store = InMemoryTemplateStore()
        self.services = self.build()

    def build(self, **ports: Any) -> Services:
        """``build_services`` over these fakes, with ``ports`` added or put in their place."""
        fakes: dict[str, Any] = {
            "repo": self.repo,
            "memorials": self.memorials,
            "provider": self.provider,
            "auth": self.auth,
            "clock": self.clock,
            "tasks": self.tasks,
            "migrations": self.migrations,
            "create_quota": self.create_quota,
            "idempotency": self.idempotency,
            "event_store": self.event_store,
            "template_store": self.template_store,
        }
        return build_services(self.settings, **(fakes | ports))

    def create_stream(
        self, user: User = people.OWNER, *, on_memorial: str | None = None, **body: Any
    ) -> Created:
        """A stream made through ``POST /api/streams`` (live input and credentials included);
        ``on_memorial`` files it under that memorial afterwards, so its creator and the
        memorial's managers differ (as in the authorization matrix)."""
        payload = {"title": "Funeral service"} | body
        created = Created.of(
            ok(client("streams").post("/api/streams", json=payload, headers=bearer(user)))
        )
        if on_memorial is not None:
            self.repo.update(
                created.id, lambda s: s.model_copy(update={"memorial_id": on_memorial})
            )
        return created

    def start(self, stream_id: str, user: User = people.OWNER) -> Any:
        """``POST /api/streams/{id}/start``, which must succeed."""
        path = f"/api/streams/{stream_id}/start"
        return ok(client("startstream").post(path, headers=bearer(user)))

    def stop(self, stream_id: str, user: User = people.OWNER) -> Any:
        """``POST /api/streams/{id}/stop``, which must succeed."""
        path = f"/api/streams/{stream_id}/stop"
        return ok(client("stopstream").post(path, headers=bearer(user)))

    def fetch_recordings(self, stream_id: str, user: User = people.OWNER) -> Any:
        """``POST /api/streams/{id}/recordings`` (fetch them from Cloudflare), must succeed."""
        path = f"/api/streams/{stream_id}/recordings"
        return ok(client("streamrecordings").post(path, headers=bearer(user)))

    def add_legacy_stream(self, stream_id: str, user: User = people.OWNER) -> None:
        """A stream document an earlier backend wrote: no live input yet."""
        now = self.clock.now()
        stream = Stream(
            id=stream_id, title="Old", created_by=user.uid, created_at=now, updated_at=now
        )
        self.repo.create(stream, None)

    def stream(self, stream_id: str) -> Stream:
        stored = self.repo.get(stream_id)
        assert stored is not None, f"stream {stream_id} does not exist"
        return stored

    def live_input_of(self, stream_id: str) -> str:
        uid = self.stream(stream_id).cloudflare_id
        assert uid is not None
        return uid

    def add_recording(
        self, stream_id: str, video_uid: str, *, ready: bool = True, minutes: int = 1
    ) -> Recording:
        """A recording Cloudflare made of the stream's live input, ``minutes`` from now."""
        created = self.clock.now() + timedelta(minutes=minutes)
        recording = Recording(
            video_uid=video_uid,
            live_input_uid=self.live_input_of(stream_id),
            state="ready" if ready else "inprogress",
            ready_to_stream=ready,
            duration=120.0 if ready else None,
            size=1_000_000 if ready else None,
            hls_url=f"{DELIVERY_BASE}/{video_uid}/manifest/video.m3u8" if ready else None,
            dash_url=f"{DELIVERY_BASE}/{video_uid}/manifest/video.mpd" if ready else None,
            thumbnail_url=f"{DELIVERY_BASE}/{video_uid}/thumbnails/thumbnail.jpg",
            created=created,
            modified=created + timedelta(seconds=90),
        )
        live_input = self.live_input_of(stream_id)
        self.provider.recordings.setdefault(live_input, []).append(recording)
        return recording

    def secrets(self) -> list[str]:
        """Every publishing secret the fake provider handed out (keys, WHIP publish URLs)."""
        values = []
        for _, live_input in self.provider.inputs.values():
            values += [live_input.stream_key.get_secret_value()]
            values += [live_input.whip_url.get_secret_value()]
        return values


@pytest.fixture(params=["/api", MVP], ids=["api", "mvp"])
def prefix(request: pytest.FixtureRequest) -> str:
    """The base path a function is called under: each answers under ``/api`` and under the MVP's
    old base path, so a test taking ``prefix`` runs under both."""
    base: str = request.param
    return base


@pytest.fixture(autouse=True)
def backend() -> Iterator[Backend]:
    """Installed for every test here, so no function ever builds the real adapters."""
    built = Backend()
    with override(built.services):
        yield built


def assert_no_secrets(response: TestResponse, backend: Backend) -> None:
    """Nothing a publisher could use is in a reply meant for viewers."""
    text = response.get_data(as_text=True)
    for field in ('"streamKey"', '"streamUrl"', '"whipEndpoint"', "rtmp://"):
        assert field not in text, field
    for secret in backend.secrets():
        assert secret not in text, secret


def stream_signature(body: bytes, at: int, secret: str = WEBHOOK_SECRET) -> str:
    """A Stream webhook ``Webhook-Signature`` (HMAC-SHA256 of ``time.body``)."""
    return sign_stream_webhook(secret, body, at)


def video_payload(uid: str, live_input: str, state: str, created: datetime) -> bytes:
    """The Stream webhook body Cloudflare sends for a video of a live input."""
    return video_webhook_body(uid, live_input, state, created, DELIVERY_BASE)
