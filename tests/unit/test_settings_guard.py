"""The production guard: production refuses every local default and every emulator variable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from common.settings import EMULATOR_VARIABLES, Settings
from emulators.stack import LocalStack, Ports
from tests.fakes import session_signing_key_pem

PRODUCTION: dict[str, Any] = {
    "environment": "production",
    "gcp_project": "memorials-prod",
    "cloudflare_account_id": "0123456789abcdef",
    "cloudflare_api_token": "real-token",
    "cloudflare_delivery_base": "https://customer-f00ba7.cloudflarestream.com",
    "tasks_target_base_url": "https://{function}-123456789012.us-central1.run.app",
    "tasks_invoker_service_account": (
        "livestream-task-invoker@memorials-prod.iam.gserviceaccount.com"
    ),
    "allowed_origins": ["https://tributestream.com", "https://*.tributestream.com"],
}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in EMULATOR_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name in Settings.model_fields:
        monkeypatch.delenv(f"LS_{name.upper()}", raising=False)


def refusal(**changes: Any) -> str:
    with pytest.raises(ValidationError) as info:
        Settings(**{**PRODUCTION, **changes})
    return str(info.value)


def test_a_fully_configured_production_settings_object_is_accepted() -> None:
    settings = Settings(**PRODUCTION)
    assert settings.environment == "production"
    assert settings.task_auth_token is None


def test_local_settings_keep_their_defaults() -> None:
    settings = Settings()
    assert settings.environment == "local"
    assert settings.cloudflare_account_id == "local-account"


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"cloudflare_api_token": "local-dev-token"}, "LS_CLOUDFLARE_API_TOKEN"),
        ({"cloudflare_account_id": "local-account"}, "LS_CLOUDFLARE_ACCOUNT_ID"),
        (
            {"cloudflare_delivery_base": "https://customer-local.cloudflarestream.com"},
            "LS_CLOUDFLARE_DELIVERY_BASE",
        ),
        ({"gcp_project": "demo-memorial-streams"}, "LS_GCP_PROJECT"),
        ({"allowed_origins": ["https://tributestream.com", "localhost:5173"]}, "localhost:5173"),
        ({"allowed_origins": ["http://localhost:5174"]}, "LS_ALLOWED_ORIGINS"),
        ({"allowed_origins": ["http://127.0.0.1:3000"]}, "LS_ALLOWED_ORIGINS"),
        ({"task_auth_token": "local-task-token"}, "LS_TASK_AUTH_TOKEN"),
        ({"task_auth_token": "another-shared-token"}, "OIDC"),
        ({"tasks_target_base_url": "http://127.0.0.1:5000"}, "LS_TASKS_TARGET_BASE_URL"),
        ({"tasks_target_base_url": "https://example.web.app"}, "{function}"),
        ({"tasks_invoker_service_account": None}, "LS_TASKS_INVOKER_SERVICE_ACCOUNT"),
        ({"cloud_tasks_emulator_host": "127.0.0.1:8123"}, "LS_CLOUD_TASKS_EMULATOR_HOST"),
        (
            {"cloudflare_api_base": "http://127.0.0.1:8788/client/v4"},
            "LS_CLOUDFLARE_API_BASE",
        ),
    ],
)
def test_each_local_default_is_refused_with_a_message_naming_it(
    changes: dict[str, Any], named: str
) -> None:
    message = refusal(**changes)
    assert "refusing to start in production" in message
    assert named in message


def test_the_real_defaults_are_all_refused_at_once() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(environment="production")
    message = str(info.value)
    for name in (
        "LS_CLOUDFLARE_API_TOKEN",
        "LS_CLOUDFLARE_ACCOUNT_ID",
        "LS_CLOUDFLARE_DELIVERY_BASE",
        "LS_GCP_PROJECT",
        "LS_TASKS_TARGET_BASE_URL",
        "LS_TASKS_INVOKER_SERVICE_ACCOUNT",
    ):
        assert name in message


@pytest.mark.parametrize(
    "variable", [v for v in EMULATOR_VARIABLES if v != "LS_CLOUD_TASKS_EMULATOR_HOST"]
)
def test_each_emulator_variable_is_refused(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "127.0.0.1:9099")
    message = refusal()
    assert f"{variable} is set" in message and "emulator" in message


def test_the_cloud_tasks_emulator_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LS_CLOUD_TASKS_EMULATOR_HOST", "127.0.0.1:8123")
    assert "LS_CLOUD_TASKS_EMULATOR_HOST" in refusal()


def test_the_auth_emulator_is_called_out(monkeypatch: pytest.MonkeyPatch) -> None:
    # firebase-admin accepts unsigned ID tokens when it is set: the worst of them.
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")
    assert "FIREBASE_AUTH_EMULATOR_HOST" in refusal()


def test_emulator_variables_are_fine_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in EMULATOR_VARIABLES:
        monkeypatch.setenv(variable, "127.0.0.1:9099")
    assert Settings().cloud_tasks_emulator_host == "127.0.0.1:9099"


def test_the_local_stacks_environment_passes_the_local_guard(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stack = LocalStack(ports=Ports.free(), workdir=tmp_path)
    for name, value in stack.env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.environment == "local"
    assert settings.task_auth_token is not None  # the emulator's tasks carry X-Task-Auth
    assert settings.tasks_invoker_service_account is None  # and no OIDC token
    # The same environment marked production is refused: it is all local.
    monkeypatch.setenv("LS_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="FIREBASE_AUTH_EMULATOR_HOST"):
        Settings()


def test_production_takes_the_signing_key_as_a_pair() -> None:
    pem = session_signing_key_pem()
    accepted = Settings(
        **PRODUCTION, cloudflare_signing_key_id="kid", cloudflare_signing_key_pem=pem
    )
    assert accepted.cloudflare_signing_key_id == "kid"
    assert "set together" in refusal(cloudflare_signing_key_id="kid")
    refused = refusal(cloudflare_signing_key_pem=pem)
    assert "set together" in refused
    assert pem.get_secret_value() not in refused
