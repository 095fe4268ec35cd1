"""Runtime configuration, read once from the environment (prefix ``LS_``)."""

import os
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDER = "local-dev-token"
CLOUDFLARE_API_BASE = "https://api.cloudflare.com/client/v4"


class Settings(BaseSettings):
    """Every knob of the backend. Secrets are ``SecretStr`` so they never reach a log."""

    model_config = SettingsConfigDict(env_prefix="LS_", extra="ignore", frozen=True)

    environment: Literal["local", "production"] = "local"
    gcp_project: str = "demo-memorial-streams"
    # Where the site's own pages (memorial page, management page listener) read streams.
    streams_collection: str = "streams"
    # Collections an earlier backend wrote streams to: still served, moved on first write,
    # and moved in bulk by the admin migration (`/api/streams/migrate`).
    legacy_streams_collections: list[str] = Field(default_factory=lambda: ["mvp_two_streams"])
    memorials_collection: str = "memorials"

    cloudflare_api_base: str = CLOUDFLARE_API_BASE
    cloudflare_account_id: str = "local-account"
    cloudflare_api_token: SecretStr = SecretStr(_PLACEHOLDER)
    # Customer playback host, e.g. https://customer-<CODE>.cloudflarestream.com
    cloudflare_delivery_base: str = "https://customer-local.cloudflarestream.com"
    cloudflare_connect_timeout_s: float = 5.0
    cloudflare_read_timeout_s: float = 15.0
    cloudflare_max_retries: int = Field(default=2, ge=0, le=5)

    # Webhooks: the Stream webhook's signing secret (from PUT /stream/webhook) and the
    # shared secret of the Notifications destination for live-input events.
    cloudflare_webhook_secret: SecretStr | None = None
    cloudflare_notification_secret: SecretStr | None = None
    webhook_tolerance_s: int = Field(default=300, ge=30, le=3600)
    # Private streams: the Stream signing key (``POST /stream/keys``: its ``id``, and its
    # ``pem`` exactly as returned, base64) that signs viewers' playback tokens locally, and how
    # long a token plays (Cloudflare accepts at most 24 h). Unset: private playback answers 503.
    cloudflare_signing_key_id: str | None = None
    cloudflare_signing_key_pem: SecretStr | None = None
    playback_token_ttl_s: int = Field(default=2 * 3600, ge=60, le=24 * 3600)
    # Invited guests: wrong codes one client may try on one stream per window (then 429), and
    # the site an invitation's link points at (default: the first allowed origin that is no
    # wildcard), as ``{site}/livestream/{streamId}?invite={code}``.
    invitation_attempt_limit: int = Field(default=10, ge=1, le=1000)
    invitation_attempt_window_s: int = Field(default=600, ge=1, le=24 * 3600)
    site_origin: str | None = None

    @property
    def invitation_site(self) -> str:
        """The origin invitation links point at."""
        if self.site_origin:
            return self.site_origin.rstrip("/")
        return next((o for o in self.allowed_origins if "*" not in o), "http://localhost:5173")

    # How long a signed-in user's account (custom claims, disabled, revocation) is trusted
    # before Firebase Auth is asked again: role changes and revocations apply within this.
    auth_user_cache_ttl_s: float = Field(default=30, ge=0, le=60)
    # How long the status/recordings/embed-info polls trust a memorial's privacy and managers.
    memorial_cache_ttl_s: float = Field(default=30, ge=0, le=300)

    # Cloud Tasks: the queue of the recording and status monitors, and where tasks call back.
    # The local emulator's REST API (host:port); production calls cloudtasks.googleapis.com.
    cloud_tasks_emulator_host: str | None = None
    tasks_location: str = "us-central1"
    tasks_queue: str = "recording-monitor"
    # Where tasks call back. Locally the gateway (one base URL for every task path). In
    # production each task goes to its own function's Cloud Run URL: a pattern with
    # ``{function}``, e.g. ``https://{function}-<PROJECT_NUMBER>.<REGION>.run.app`` (the
    # deterministic run.app URL, which is also the OIDC audience Cloud Run accepts).
    tasks_target_base_url: str = "http://127.0.0.1:5000"
    # Production: tasks carry an OIDC token of this service account (it holds run.invoker on
    # the task functions, which are deployed with --no-allow-unauthenticated).
    tasks_invoker_service_account: str | None = None
    # Local only (the Cloud Tasks emulator mints no OIDC token): a shared secret sent as
    # ``X-Task-Auth`` and checked by the task endpoints. Refused in production.
    task_auth_token: SecretStr | None = None
    recording_monitor_checks: int = Field(default=20, ge=1, le=200)
    recording_monitor_interval_s: float = Field(default=30, ge=0.1, le=3600)
    # Checks past recording_monitor_checks while Cloudflare still records or processes the
    # broadcast's video (a long service's processing, an encoder Stop could not cut off):
    # 6 h at 30 s.
    recording_monitor_max_checks: int = Field(default=720, ge=1, le=10_000)
    status_monitor_interval_s: float = Field(default=60, ge=0.1, le=3600)
    # How many status checks a started stream waits for its encoder before it is ended.
    status_monitor_grace_checks: int = Field(default=30, ge=1, le=720)
    # After a live-input create that got no answer: when to look again for the input it made.
    orphan_sweep_delay_s: float = Field(default=120, ge=0, le=3600)
    # How long a browser broadcast's session is kept for its DELETE (Firestore TTL after that).
    whip_session_ttl_s: int = Field(default=24 * 3600, ge=60, le=7 * 24 * 3600)
    # Stream creations (each makes a Cloudflare live input) per user in a sliding window,
    # shared by all instances (Firestore); administrators get their own, higher cap.
    create_rate_limit: int = Field(default=20, ge=1, le=10_000)
    create_rate_limit_admin: int = Field(default=100, ge=1, le=10_000)
    create_rate_window_s: int = Field(default=600, ge=1, le=24 * 3600)
    # How long an Idempotency-Key of a stream creation is remembered (Firestore TTL after).
    idempotency_key_ttl_s: int = Field(default=24 * 3600, ge=3600, le=7 * 24 * 3600)

    # Schedule windows: a scheduled stream reads "starting soon" this long before its start;
    # one the family forgot to Stop is ended this long after its planned end (a service
    # without one is planned this long), unless an encoder is still on air: then the end
    # moves on by a step at a time, to a hard maximum past the planned end.
    window_starting_soon_lead_s: float = Field(default=30 * 60, ge=0, le=24 * 3600)
    window_overrun_s: float = Field(default=30 * 60, ge=0, le=12 * 3600)
    window_default_duration_s: float = Field(default=2 * 3600, ge=60, le=24 * 3600)
    window_extension_s: float = Field(default=15 * 60, ge=1, le=12 * 3600)
    window_hard_maximum_s: float = Field(default=4 * 3600, ge=0, le=24 * 3600)

    # A reconnect within this window continues the same recording (anchors §3.4: church Wi-Fi).
    recording_timeout_seconds: int = Field(default=300, ge=0, le=3600)
    # Memorial recordings are meant to stay: no automatic deletion unless configured.
    delete_recording_after_days: int | None = Field(default=None, ge=30, le=1096)
    # Browser origins, scheme://host[:port] ("https://*.example.com" covers subdomains), that get
    # CORS with credentials and may write with the session cookie; a bare host means https.
    # Locally the frontend's dev servers are added. Cloudflare gets the hosts (bootstrap).
    allowed_origins: list[str] = Field(
        default_factory=lambda: ["https://tributestream.com", "https://*.tributestream.com"]
    )

    @field_validator("allowed_origins")
    @classmethod
    def _origins_with_scheme(cls, origins: list[str], info: ValidationInfo) -> list[str]:
        normalised = []
        for entry in origins:
            origin = entry.strip().lower().rstrip("/")
            origin = origin if "://" in origin else f"https://{origin}"
            scheme, _, host = origin.partition("://")
            if scheme not in ("http", "https") or not host or any(c in host for c in "/?#@"):
                raise ValueError(f"allowed origin {entry!r} is not scheme://host[:port]")
            normalised.append(origin)
        if info.data.get("environment") == "local":
            normalised += ["http://localhost:5173", "http://localhost:5174"]
        return list(dict.fromkeys(normalised))

    @model_validator(mode="after")
    def _refuse_placeholders_in_production(self) -> "Settings":
        """Production starts only on real values: no local default and no emulator.

        Every problem is listed at once, so one failed start tells the operator all of them.
        """
        if self.environment != "production":
            return self
        problems = [
            *_local_defaults(self),
            *_task_delivery_problems(self),
            *_signing_key_problems(self),
            *_emulator_variables(),
        ]
        if problems:
            raise ValueError(
                "refusing to start in production (LS_ENVIRONMENT=production): "
                + "; ".join(problems)
            )
        return self


# Set in the environment, each of these points a client library at a local emulator;
# FIREBASE_AUTH_EMULATOR_HOST even makes our Auth adapter accept unsigned ID tokens.
EMULATOR_VARIABLES = (
    "FIREBASE_AUTH_EMULATOR_HOST",
    "FIRESTORE_EMULATOR_HOST",
    "FIREBASE_DATABASE_EMULATOR_HOST",
    "FIREBASE_STORAGE_EMULATOR_HOST",
    "STORAGE_EMULATOR_HOST",
    "PUBSUB_EMULATOR_HOST",
    "LS_CLOUD_TASKS_EMULATOR_HOST",
)
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "0.0.0.0", "[::1]", "::1"})  # noqa: S104


def _host(url: str) -> str:
    """The host of an origin or URL, with or without a scheme (``localhost:5173`` too)."""
    rest = url.split("://", 1)[-1]
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.split(":", 1)[0].lower()


def is_local_origin(origin: str) -> bool:
    """Whether an allowed origin (``https://host``, ``host:port`` or ``*.host``) is local."""
    return _host(origin) in _LOCAL_HOSTS


def _local_defaults(settings: Settings) -> list[str]:
    problems = []
    if settings.cloudflare_api_token.get_secret_value() == _PLACEHOLDER:
        problems.append("LS_CLOUDFLARE_API_TOKEN must be set (it is the local placeholder)")
    if settings.cloudflare_account_id in ("", "local-account"):
        problems.append("LS_CLOUDFLARE_ACCOUNT_ID must be the Cloudflare account id")
    if "customer-local" in settings.cloudflare_delivery_base or not (
        settings.cloudflare_delivery_base.startswith("https://")
    ):
        problems.append(
            "LS_CLOUDFLARE_DELIVERY_BASE must be https://customer-<CODE>.cloudflarestream.com"
        )
    if settings.cloudflare_api_base.rstrip("/") != CLOUDFLARE_API_BASE:
        # The API token goes wherever this points: only Cloudflare's own API gets it.
        problems.append(f"LS_CLOUDFLARE_API_BASE must be {CLOUDFLARE_API_BASE}")
    if settings.gcp_project.startswith("demo-"):
        problems.append(
            f"LS_GCP_PROJECT is {settings.gcp_project!r}, an emulator-only demo project"
        )
    local = [o for o in settings.allowed_origins if is_local_origin(o)]
    if local:
        problems.append(f"LS_ALLOWED_ORIGINS must not allow local origins: {local}")
    return problems


def _task_delivery_problems(settings: Settings) -> list[str]:
    problems = []
    if settings.task_auth_token is not None:
        problems.append(
            "LS_TASK_AUTH_TOKEN is the local emulator's shared task token: production tasks"
            " carry OIDC tokens (unset it)"
        )
    if settings.cloud_tasks_emulator_host:
        problems.append("LS_CLOUD_TASKS_EMULATOR_HOST points at the local Cloud Tasks emulator")
    target = settings.tasks_target_base_url
    if (
        not target.startswith("https://")
        or _host(target) in _LOCAL_HOSTS
        or "{function}" not in target
    ):
        problems.append(
            "LS_TASKS_TARGET_BASE_URL must be the functions' Cloud Run URL pattern,"
            " https://{function}-<PROJECT_NUMBER>.<REGION>.run.app"
        )
    if not settings.tasks_invoker_service_account:
        problems.append(
            "LS_TASKS_INVOKER_SERVICE_ACCOUNT must name the service account whose OIDC token"
            " tasks carry"
        )
    return problems


def _signing_key_problems(settings: Settings) -> list[str]:
    """The signing key comes as a pair, or not at all: only the functions that sign get it
    (a pem that is not a key is refused when it first signs: ``SigningKeyError``)."""
    key_id, pem = settings.cloudflare_signing_key_id, settings.cloudflare_signing_key_pem
    if (key_id is None) != (pem is None):
        return [
            "LS_CLOUDFLARE_SIGNING_KEY_ID and LS_CLOUDFLARE_SIGNING_KEY_PEM must be set together"
        ]
    return []


def _emulator_variables() -> list[str]:
    # The process environment, not a setting: it is what the client libraries read.
    return [
        f"{name} is set: it points a client library at a local emulator"
        for name in EMULATOR_VARIABLES
        if name != "LS_CLOUD_TASKS_EMULATOR_HOST" and os.environ.get(name)
    ]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
