"""The composition root: builds every adapter from settings, once per instance."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import firebase_admin
import grpc
from google.cloud import firestore, tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

from common.adapters.cloud_tasks import CloudTasksQueue
from common.adapters.cloudflare.client import (
    CloudflareStreamClient,
    CloudflareStreamProvider,
    RetryPolicy,
)
from common.adapters.cloudflare.webhooks import CloudflareWebhooks, WebhookSecrets
from common.adapters.firebase_auth import FirebaseAuthenticator
from common.adapters.firestore.guards import FirestoreCreateQuota, FirestoreIdempotencyStore
from common.adapters.firestore.streams import FirestoreMemorialDirectory, FirestoreStreamRepository
from common.logging import configure_logging
from common.ports import (
    Authenticator,
    Clock,
    CreateQuota,
    IdempotencyStore,
    MemorialDirectory,
    StreamMigrationStore,
    StreamProvider,
    StreamRepository,
    SystemClock,
    TaskQueue,
)
from common.services.backends import Backends
from common.services.broadcasts import BroadcastService
from common.services.create_guards import CreateLimits
from common.services.live_inputs import LiveInputProvisioner
from common.services.migration import MigrationService
from common.services.monitors import MonitorPolicy, MonitorService
from common.services.policy import StreamPolicy
from common.services.provider_events import ProviderEventService
from common.services.repair_tools import RepairTools
from common.services.stream_changes import StreamChangeService
from common.services.stream_info import StreamInfoService
from common.services.streams import StreamService
from common.services.webhooks import WebhookService
from common.settings import Settings, get_settings


@dataclass(frozen=True)
class Services:
    """Everything an entry point may call."""

    settings: Settings
    auth: Authenticator
    streams: StreamService
    broadcasts: BroadcastService
    live_inputs: LiveInputProvisioner
    monitors: MonitorService
    stream_changes: StreamChangeService
    webhooks: WebhookService
    repair_tools: RepairTools
    info: StreamInfoService
    migration: MigrationService


def cloudflare_origins(origins: list[str]) -> tuple[str, ...]:
    """Our browser origins as Cloudflare's ``allowedOrigins`` wants them: hosts, no scheme
    (``https://*.example.com`` → ``*.example.com``; a port stays, ``localhost:5173``)."""
    return tuple(dict.fromkeys(origin.split("://", 1)[-1] for origin in origins))


def build_services(
    settings: Settings,
    *,
    repo: StreamRepository | None = None,
    memorials: MemorialDirectory | None = None,
    provider: StreamProvider | None = None,
    auth: Authenticator | None = None,
    clock: Clock | None = None,
    tasks: TaskQueue | None = None,
    migrations: StreamMigrationStore | None = None,
    create_quota: CreateQuota | None = None,
    idempotency: IdempotencyStore | None = None,
) -> Services:
    """Wire the services; anything not passed in is built for real from ``settings``."""
    if repo is None or memorials is None:
        real_repo, real_memorials = _firestore(settings)
        migrations = migrations or (real_repo if repo is None else None)
        repo = repo or real_repo
        memorials = memorials or real_memorials
    policy = StreamPolicy(
        delivery_base=settings.cloudflare_delivery_base,
        recording_timeout_seconds=settings.recording_timeout_seconds,
        allowed_origins=cloudflare_origins(settings.allowed_origins),
        delete_recording_after_days=settings.delete_recording_after_days,
        orphan_sweep_delay_s=settings.orphan_sweep_delay_s,
        whip_session_ttl_s=settings.whip_session_ttl_s,
        create_limits=CreateLimits(
            per_user=settings.create_rate_limit,
            per_admin=settings.create_rate_limit_admin,
            window_s=settings.create_rate_window_s,
            idempotency_ttl_s=settings.idempotency_key_ttl_s,
        ),
    )
    if create_quota is None or idempotency is None:
        guards_db = firestore.Client(project=settings.gcp_project)
        create_quota = create_quota or FirestoreCreateQuota(guards_db)
        idempotency = idempotency or FirestoreIdempotencyStore(guards_db)
    clock = clock or SystemClock()
    provider = provider or _cloudflare(settings)
    tasks = tasks or _cloud_tasks(settings, clock)
    backends = Backends(repo=repo, memorials=memorials, provider=provider, tasks=tasks, clock=clock)
    monitors = MonitorService(
        backends,
        policy=MonitorPolicy(
            recording_checks=settings.recording_monitor_checks,
            recording_interval_s=settings.recording_monitor_interval_s,
            status_interval_s=settings.status_monitor_interval_s,
            status_grace_checks=settings.status_monitor_grace_checks,
            reconnect_window_s=settings.recording_timeout_seconds,
        ),
    )
    live_inputs = LiveInputProvisioner(backends, policy=policy)
    streams = StreamService(
        backends,
        policy=policy,
        live_inputs=live_inputs,
        create_quota=create_quota,
        idempotency=idempotency,
    )
    secrets = WebhookSecrets(
        stream_signing=settings.cloudflare_webhook_secret,
        notifications=settings.cloudflare_notification_secret,
        tolerance_s=settings.webhook_tolerance_s,
    )
    return Services(
        settings=settings,
        auth=auth or _firebase_auth(settings),
        streams=streams,
        broadcasts=BroadcastService(
            backends, policy=policy, monitors=monitors, live_inputs=live_inputs
        ),
        live_inputs=live_inputs,
        monitors=monitors,
        stream_changes=StreamChangeService(backends, monitors=monitors),
        webhooks=WebhookService(
            ProviderEventService(backends, monitors=monitors), CloudflareWebhooks(secrets, clock)
        ),
        repair_tools=RepairTools(backends, monitors=monitors, policy=policy),
        info=StreamInfoService(
            repo=repo,
            memorials=memorials,
            clock=clock,
            delivery_base=settings.cloudflare_delivery_base,
            memorial_cache_ttl_s=settings.memorial_cache_ttl_s,
        ),
        migration=MigrationService(migrations),
    )


def _cloud_tasks(settings: Settings, clock: Clock) -> TaskQueue:
    if settings.cloud_tasks_emulator_host:
        channel = grpc.insecure_channel(settings.cloud_tasks_emulator_host)
        client = tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
    else:
        client = tasks_v2.CloudTasksClient()
    queue = client.queue_path(settings.gcp_project, settings.tasks_location, settings.tasks_queue)
    # Production: OIDC tokens of the invoker account (Cloud Run checks them); locally the
    # emulator mints none, so the shared X-Task-Auth token stands in.
    token = settings.task_auth_token
    return CloudTasksQueue(
        client,
        queue,
        settings.tasks_target_base_url,
        clock,
        oidc_service_account=settings.tasks_invoker_service_account,
        auth_token=token.get_secret_value() if token else None,
    )


def _firestore(settings: Settings) -> tuple[FirestoreStreamRepository, MemorialDirectory]:
    client = firestore.Client(project=settings.gcp_project)
    return (
        FirestoreStreamRepository(
            client, settings.streams_collection, settings.legacy_streams_collections
        ),
        FirestoreMemorialDirectory(client, settings.memorials_collection),
    )


def _cloudflare(settings: Settings) -> StreamProvider:
    client = CloudflareStreamClient(
        api_base=settings.cloudflare_api_base,
        account_id=settings.cloudflare_account_id,
        api_token=settings.cloudflare_api_token,
        retry=RetryPolicy(settings.cloudflare_max_retries),
        connect_timeout_s=settings.cloudflare_connect_timeout_s,
        read_timeout_s=settings.cloudflare_read_timeout_s,
    )
    return CloudflareStreamProvider(client)


def _firebase_auth(settings: Settings) -> Authenticator:
    name = "livestream-backend"
    try:
        app = firebase_admin.get_app(name)
    except ValueError:
        app = firebase_admin.initialize_app(options={"projectId": settings.gcp_project}, name=name)
    return FirebaseAuthenticator(app, user_cache_ttl_s=settings.auth_user_cache_ttl_s)


_lock = threading.Lock()
_current: Services | None = None


def get_services() -> Services:
    """The instance's services, built on first use (never at import time)."""
    global _current  # noqa: PLW0603 - one container per function instance, by design
    with _lock:
        if _current is None:
            configure_logging()
            _current = build_services(get_settings())
        return _current


@contextmanager
def override(services: Services) -> Iterator[Services]:
    """Install ``services`` for the duration of the block (tests), then restore."""
    global _current  # noqa: PLW0603
    with _lock:
        previous, _current = _current, services
    try:
        yield services
    finally:
        with _lock:
            _current = previous
