"""The composition root: builds every adapter and service from settings, once per instance,
each on first use: a function loads and connects only what its requests reach (the public
listing never imports the Cloudflare, Cloud Tasks or Firebase Auth clients), which keeps cold
starts near the floor of functions-framework and Firestore.

Building is thread-safe: with concurrency above 1, the first requests of an instance may ask
for the same part at once, and each part is still built exactly once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from common.logging import configure_logging
from common.ports import (
    Authenticator,
    Clock,
    CreateQuota,
    EventStore,
    IdempotencyStore,
    InvitationStore,
    MemorialDirectory,
    PlaybackTokens,
    StreamMigrationStore,
    StreamProvider,
    StreamReads,
    StreamRepository,
    SystemClock,
    TaskQueue,
    TemplateStore,
)
from common.settings import Settings, get_settings

if TYPE_CHECKING:
    from google.cloud import firestore

    from common.adapters.firestore.rest import FirestoreRest
    from common.adapters.firestore.streams import FirestoreStreamRepository
    from common.services.audience import AudienceService
    from common.services.broadcasts import BroadcastService
    from common.services.keepsakes import KeepsakeService
    from common.services.live_inputs import LiveInputProvisioner
    from common.services.memorial_events import EventService
    from common.services.migration import MigrationService
    from common.services.monitors import MonitorService
    from common.services.playback import PlaybackService
    from common.services.policy import StreamPolicy
    from common.services.repair_tools import RepairTools
    from common.services.schedule_windows import ScheduleWindowService
    from common.services.simulcast import SimulcastService
    from common.services.stream_changes import StreamChangeService
    from common.services.stream_info import StreamInfoService
    from common.services.stream_listings import StreamListingService
    from common.services.streams import StreamService
    from common.services.webhooks import WebhookService

log = logging.getLogger(__name__)
PartT = TypeVar("PartT")
# Wrong invitation codes per (stream, client), counted like stream creations (TTL on expiresAt).
INVITATION_ATTEMPTS_COLLECTION = "invitation_attempts"
PolicyT = TypeVar("PolicyT")


class built_once(Generic[PartT]):  # noqa: N801 - used as a decorator, like property
    """A ``Services`` attribute built by its method on first read, then kept. Parts build
    one another (a service reads its adapters), so the lock is re-entrant."""

    def __init__(self, build: Callable[[Services], PartT]) -> None:
        self._build = build
        self._name = build.__name__
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, services: None, owner: type[Services]) -> built_once[PartT]: ...
    @overload
    def __get__(self, services: Services, owner: type[Services]) -> PartT: ...
    def __get__(self, services: Services | None, owner: type[Services]) -> Any:
        if services is None:
            return self
        built = services.__dict__
        if self._name not in built:
            with services._building:
                if self._name not in built:
                    built[self._name] = self._build(services)
        return built[self._name]


@dataclass(frozen=True)
class Given:
    """Adapters handed in (fakes in tests); each one left ``None`` is built for real."""

    repo: StreamRepository | None = None
    memorials: MemorialDirectory | None = None
    provider: StreamProvider | None = None
    auth: Authenticator | None = None
    clock: Clock | None = None
    tasks: TaskQueue | None = None
    migrations: StreamMigrationStore | None = None
    create_quota: CreateQuota | None = None
    idempotency: IdempotencyStore | None = None
    playback_tokens: PlaybackTokens | None = None
    invitations: InvitationStore | None = None
    invitation_attempts: CreateQuota | None = None
    event_store: EventStore | None = None
    template_store: TemplateStore | None = None


class Services:
    """Everything an entry point may call, and the ports the services share (it is their
    ``BackendPorts``)."""

    def __init__(self, settings: Settings, given: Given = Given()) -> None:
        self.settings = settings
        self._given = given
        self._building = threading.RLock()
        self._preloading: set[str] = set()
        self._preload_lock = threading.Lock()
        # An adapter handed in is that part, already built: its method below never runs.
        handed_in = {part.name: getattr(given, part.name) for part in fields(given)}
        self.__dict__.update({name: part for name, part in handed_in.items() if part is not None})

    def preload(self, part: str) -> None:
        """Start loading, in the background, what building ``part`` will need, without
        building it, so without the parts' lock: a request that reaches Cloudflare after
        reading Firestore loads the TLS roots of its client while those reads wait on the
        network, which leaves the interpreter free (no module is imported in the background,
        where two threads importing at once could meet in a circular import).
        Once per instance; nothing when the part is built or handed in."""
        preloader = _PRELOADERS.get(part)
        with self._preload_lock:
            if preloader is None or part in self.__dict__ or part in self._preloading:
                return
            self._preloading.add(part)
        try:
            load = preloader()
        except Exception:  # only an optimisation: the part's build meets, and reports, it
            log.debug("preloading %s failed", part, exc_info=True)
            return

        def run() -> None:
            try:
                load()
            except Exception:
                log.debug("preloading %s failed", part, exc_info=True)

        threading.Thread(target=run, name=f"preload-{part}", daemon=True).start()

    # The ports.

    @built_once
    def firestore_client(self) -> firestore.Client:
        from google.cloud import firestore

        return firestore.Client(project=self.settings.gcp_project)

    @built_once
    def repo(self) -> StreamRepository:
        from common.adapters.firestore.deferred import DeferredStreamRepository

        # Reads and most writes go over REST; the client library is built for the others.
        return DeferredStreamRepository(
            lambda: self._firestore_streams,
            self.settings.streams_collection,
            rest=self.firestore_rest,
            reads=self.reads,
            legacy_collections=self.settings.legacy_streams_collections,
        )

    @built_once
    def firestore_rest(self) -> FirestoreRest:
        """Firestore's REST API, for the reads and most writes: no gRPC on a cold start."""
        from common.adapters.firestore.rest import FirestoreRest

        return FirestoreRest.from_environment(self.settings.gcp_project)

    @built_once
    def reads(self) -> StreamReads:
        if self._given.repo is not None:
            return self._given.repo
        from common.adapters.firestore.rest import RestStreamReads

        return RestStreamReads(
            self.firestore_rest,
            self.settings.streams_collection,
            self.settings.legacy_streams_collections,
        )

    @built_once
    def memorials(self) -> MemorialDirectory:
        from common.adapters.firestore.rest import RestMemorialDirectory

        return RestMemorialDirectory(self.firestore_rest, self.settings.memorials_collection)

    @built_once
    def migrations(self) -> StreamMigrationStore | None:
        # Only the real repository migrates its own legacy documents.
        return None if self._given.repo is not None else self._firestore_streams

    @built_once
    def _firestore_streams(self) -> FirestoreStreamRepository:
        from common.adapters.firestore.streams import FirestoreStreamRepository

        return FirestoreStreamRepository(
            self.firestore_client,
            self.settings.streams_collection,
            self.settings.legacy_streams_collections,
        )

    @built_once
    def clock(self) -> Clock:
        return SystemClock()

    @built_once
    def provider(self) -> StreamProvider:
        return _cloudflare(self.settings)

    @built_once
    def tasks(self) -> TaskQueue:
        return _cloud_tasks(self.settings, self.clock)

    @built_once
    def auth(self) -> Authenticator:
        return _firebase_auth(self.settings)

    @built_once
    def create_quota(self) -> CreateQuota:
        from common.adapters.firestore.rest_guards import RestCreateQuota

        return RestCreateQuota(self.firestore_rest)

    @built_once
    def idempotency(self) -> IdempotencyStore:
        from common.adapters.firestore.rest_guards import RestIdempotencyStore

        return RestIdempotencyStore(self.firestore_rest)

    @built_once
    def playback_tokens(self) -> PlaybackTokens:
        from common.adapters.cloudflare.signing import LocalPlaybackTokens, NoPlaybackTokens

        settings = self.settings
        key_id, pem = settings.cloudflare_signing_key_id, settings.cloudflare_signing_key_pem
        if key_id is None or pem is None:
            return NoPlaybackTokens()
        return LocalPlaybackTokens(key_id, pem, settings.playback_token_ttl_s, self.clock)

    @built_once
    def invitations(self) -> InvitationStore:
        from common.adapters.firestore.invitations import RestInvitationStore

        return RestInvitationStore(self.firestore_rest, self.settings.streams_collection)

    @built_once
    def invitation_attempts(self) -> CreateQuota:
        from common.adapters.firestore.rest_guards import RestCreateQuota

        return RestCreateQuota(self.firestore_rest, INVITATION_ATTEMPTS_COLLECTION)

    # The services.

    @built_once
    def policy(self) -> StreamPolicy:
        from common.services.create_guards import CreateLimits
        from common.services.policy import StreamPolicy

        settings = self.settings
        return from_settings(
            StreamPolicy,
            settings,
            delivery_base=settings.cloudflare_delivery_base,
            allowed_origins=cloudflare_origins(settings.allowed_origins),
            create_limits=from_settings(CreateLimits, settings),
        )

    @built_once
    def monitors(self) -> MonitorService:
        from common.services.monitors import MonitorPolicy, MonitorService

        return MonitorService(self, policy=from_settings(MonitorPolicy, self.settings))

    @built_once
    def live_inputs(self) -> LiveInputProvisioner:
        from common.services.live_inputs import LiveInputProvisioner

        return LiveInputProvisioner(self, policy=self.policy)

    @built_once
    def listings(self) -> StreamListingService:
        from common.services.stream_access import TimedMemorialCache
        from common.services.stream_listings import StreamListingService

        cached = TimedMemorialCache(self.memorials, self.settings.memorial_cache_ttl_s)
        return StreamListingService(self, listing_memorials=cached)

    @built_once
    def streams(self) -> StreamService:
        from common.services.streams import StreamService

        return StreamService(
            self,
            policy=self.policy,
            live_inputs=self.live_inputs,
            create_quota=self.create_quota,
            idempotency=self.idempotency,
            windows=self.windows,
        )

    @built_once
    def windows(self) -> ScheduleWindowService:
        from common.services.schedule_windows import ScheduleWindowService, WindowPolicy

        return ScheduleWindowService(
            self,
            policy=from_settings(WindowPolicy, self.settings),
            monitors=self.monitors,
            broadcasts=self.broadcasts,
        )

    @built_once
    def broadcasts(self) -> BroadcastService:
        from common.services.broadcasts import BroadcastService

        return BroadcastService(
            self, policy=self.policy, monitors=self.monitors, live_inputs=self.live_inputs
        )

    @built_once
    def stream_changes(self) -> StreamChangeService:
        from common.services.stream_changes import StreamChangeService

        return StreamChangeService(self, monitors=self.monitors, windows=self.windows)

    @built_once
    def webhooks(self) -> WebhookService:
        from common.adapters.cloudflare.webhooks import CloudflareWebhooks, WebhookSecrets
        from common.services.provider_events import ProviderEventService
        from common.services.webhooks import WebhookService

        secrets = WebhookSecrets(
            stream_signing=self.settings.cloudflare_webhook_secret,
            notifications=self.settings.cloudflare_notification_secret,
            tolerance_s=self.settings.webhook_tolerance_s,
        )
        return WebhookService(
            ProviderEventService(self, monitors=self.monitors),
            CloudflareWebhooks(secrets, self.clock),
        )

    @built_once
    def repair_tools(self) -> RepairTools:
        from common.services.repair_tools import RepairTools

        return RepairTools(self, monitors=self.monitors, policy=self.policy)

    @built_once
    def keepsakes(self) -> KeepsakeService:
        from common.services.keepsakes import KeepsakePolicy, KeepsakeService

        return KeepsakeService(
            self,
            policy=from_settings(KeepsakePolicy, self.settings),
            allowed_origins=self.policy.allowed_origins,
            tokens=lambda: self.playback_tokens,
        )

    @built_once
    def simulcast(self) -> SimulcastService:
        from common.services.simulcast import SimulcastService

        return SimulcastService(self, live_inputs=self.live_inputs, claims=self.idempotency)

    @built_once
    def audience(self) -> AudienceService:
        from common.services.audience import AudiencePolicy, AudienceService

        return AudienceService(self, policy=AudiencePolicy())

    @built_once
    def info(self) -> StreamInfoService:
        from common.services.stream_info import StreamInfoService

        return StreamInfoService(
            repo=self.reads,
            memorials=self.memorials,
            clock=self.clock,
            delivery_base=self.settings.cloudflare_delivery_base,
            memorial_cache_ttl_s=self.settings.memorial_cache_ttl_s,
        )

    @built_once
    def playback(self) -> PlaybackService:
        from common.services.playback import GuestLimits, PlaybackService

        return PlaybackService(
            repo=self.repo,
            memorials=self.memorials,
            tokens=self.playback_tokens,
            live_inputs=self.live_inputs,
            invitations=self.invitations,
            attempts=self.invitation_attempts,
            clock=self.clock,
            delivery_base=self.settings.cloudflare_delivery_base,
            site_origin=self.settings.invitation_site,
            limits=from_settings(GuestLimits, self.settings),
        )

    @built_once
    def event_store(self) -> EventStore:
        from common.adapters.firestore.memorial_events import RestEventStore

        return RestEventStore(self.firestore_rest)

    @built_once
    def template_store(self) -> TemplateStore:
        from common.adapters.firestore.memorial_events import RestTemplateStore

        return RestTemplateStore(self.firestore_rest)

    @built_once
    def memorial_events(self) -> EventService:
        from common.services.memorial_events import EventService

        stores = (self.event_store, self.template_store)
        site = self.settings.invitation_site
        return EventService(self, streams=self.streams, stores=stores, site=site)

    @built_once
    def migration(self) -> MigrationService:
        from common.services.migration import MigrationService

        return MigrationService(lambda: self.migrations)


def from_settings(policy: type[PolicyT], settings: Settings, **others: Any) -> PolicyT:
    """The ``policy`` dataclass with each field the settings have under the same name, and
    ``others`` for the rest (fields the settings lack keep their defaults)."""
    policy_fields = {field.name for field in fields(policy)}  # type: ignore[arg-type]
    named = policy_fields & set(type(settings).model_fields)
    return policy(**{name: getattr(settings, name) for name in named - set(others)}, **others)


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
    playback_tokens: PlaybackTokens | None = None,
    invitations: InvitationStore | None = None,
    invitation_attempts: CreateQuota | None = None,
    event_store: EventStore | None = None,
    template_store: TemplateStore | None = None,
) -> Services:
    """Wire the services; anything not passed in is built for real from ``settings`` when
    first used."""
    return Services(
        settings,
        Given(
            repo=repo,
            memorials=memorials,
            provider=provider,
            auth=auth,
            clock=clock,
            tasks=tasks,
            migrations=migrations,
            create_quota=create_quota,
            idempotency=idempotency,
            playback_tokens=playback_tokens,
            invitations=invitations,
            invitation_attempts=invitation_attempts,
            event_store=event_store,
            template_store=template_store,
        ),
    )


def _cloud_tasks(settings: Settings, clock: Clock) -> TaskQueue:
    from common.adapters.cloud_tasks import PRODUCTION_ORIGIN, CloudTasksQueue, queue_path
    from common.adapters.google_tokens import AccessTokens, EmulatorToken, instance_tokens

    tokens: AccessTokens = instance_tokens()
    origin = PRODUCTION_ORIGIN
    if settings.cloud_tasks_emulator_host:
        origin, tokens = f"http://{settings.cloud_tasks_emulator_host}", EmulatorToken()
    # Production: OIDC tokens of the invoker account (Cloud Run checks them); locally the
    # emulator mints none, so the shared X-Task-Auth token stands in.
    token = settings.task_auth_token
    return CloudTasksQueue(
        origin,
        tokens,
        queue_path(settings.gcp_project, settings.tasks_location, settings.tasks_queue),
        settings.tasks_target_base_url,
        clock,
        oidc_service_account=settings.tasks_invoker_service_account,
        auth_token=token.get_secret_value() if token else None,
    )


def _cloudflare(settings: Settings) -> StreamProvider:
    from common.adapters.cloudflare.client import (
        CloudflareStreamClient,
        CloudflareStreamProvider,
        RetryPolicy,
    )

    client = CloudflareStreamClient(
        api_base=settings.cloudflare_api_base,
        account_id=settings.cloudflare_account_id,
        api_token=settings.cloudflare_api_token,
        retry=RetryPolicy(settings.cloudflare_max_retries),
        connect_timeout_s=settings.cloudflare_connect_timeout_s,
        read_timeout_s=settings.cloudflare_read_timeout_s,
    )
    return CloudflareStreamProvider(client, delivery_base=settings.cloudflare_delivery_base)


def _cloudflare_roots() -> Callable[[], object]:
    from common.adapters.tls_roots import roots_loader

    return roots_loader()


# What ``Services.preload`` may load ahead, by part: run here, each gives what the
# background thread runs.
_PRELOADERS: dict[str, Callable[[], Callable[[], object]]] = {"provider": _cloudflare_roots}


def _firebase_auth(settings: Settings) -> Authenticator:
    from common.adapters.firebase_auth import FirebaseAuthenticator
    from common.adapters.identity_toolkit import IdentityToolkit

    return FirebaseAuthenticator(
        IdentityToolkit.from_environment(
            settings.gcp_project, production=settings.environment == "production"
        ),
        user_cache_ttl_s=settings.auth_user_cache_ttl_s,
    )


_lock = threading.Lock()
_current: Services | None = None


def get_services() -> Services:
    """The instance's services (each part built on first use, never at import time)."""
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
