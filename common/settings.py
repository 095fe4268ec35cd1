"""Runtime configuration, read once from the environment (prefix ``LS_``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDER = "local-dev-token"


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

    cloudflare_api_base: str = "https://api.cloudflare.com/client/v4"
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

    # How long a signed-in user's account (custom claims, disabled, revocation) is trusted
    # before Firebase Auth is asked again: role changes and revocations apply within this.
    auth_user_cache_ttl_s: float = Field(default=30, ge=0, le=60)
    # How long the status/recordings/embed-info polls trust a memorial's privacy and managers.
    memorial_cache_ttl_s: float = Field(default=30, ge=0, le=300)

    # Cloud Tasks: the queue of the recording and status monitors, and where tasks call back.
    cloud_tasks_emulator_host: str | None = None
    tasks_location: str = "us-central1"
    tasks_queue: str = "recording-monitor"
    tasks_target_base_url: str = "http://127.0.0.1:5000"
    task_auth_token: SecretStr = SecretStr("local-task-token")
    recording_monitor_checks: int = Field(default=20, ge=1, le=200)
    recording_monitor_interval_s: float = Field(default=30, ge=0.1, le=3600)
    status_monitor_interval_s: float = Field(default=60, ge=0.1, le=3600)
    # How many status checks a started stream waits for its encoder before it is ended.
    status_monitor_grace_checks: int = Field(default=30, ge=1, le=720)
    # After a live-input create that got no answer: when to look again for the input it made.
    orphan_sweep_delay_s: float = Field(default=120, ge=0, le=3600)
    # How long a browser broadcast's session is kept for its DELETE (Firestore TTL after that).
    whip_session_ttl_s: int = Field(default=24 * 3600, ge=60, le=7 * 24 * 3600)

    # A reconnect within this window continues the same recording (anchors §3.4: church Wi-Fi).
    recording_timeout_seconds: int = Field(default=300, ge=0, le=3600)
    # Memorial recordings are meant to stay: no automatic deletion unless configured.
    delete_recording_after_days: int | None = Field(default=None, ge=30, le=1096)
    allowed_origins: list[str] = Field(
        default_factory=lambda: [
            "tributestream.com",
            "*.tributestream.com",
            "localhost:5173",
            "localhost:5174",
        ]
    )

    @model_validator(mode="after")
    def _refuse_placeholders_in_production(self) -> Settings:
        if (
            self.environment == "production"
            and self.cloudflare_api_token.get_secret_value() == _PLACEHOLDER
        ):
            raise ValueError("LS_CLOUDFLARE_API_TOKEN must be set in production")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
