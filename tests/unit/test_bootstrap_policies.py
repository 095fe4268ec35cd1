"""The composition root hands each policy the settings of the same name."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import pytest

from common.bootstrap import Given, Services, build_services, built_once
from common.settings import Settings


def _settings_off_their_defaults() -> tuple[Settings, set[str]]:
    """Settings whose every number is moved off its default (within its bounds), and the names
    of those moved."""
    defaults = Settings()
    moved: dict[str, Any] = {
        name: value + 1
        for name in Settings.model_fields
        if type(value := getattr(defaults, name)) in (int, float)
    }
    moved["delete_recording_after_days"] = 90
    delivery_base = "https://customer-x.cloudflarestream.com"
    return Settings(**moved, cloudflare_delivery_base=delivery_base), set(moved)


def _offline_services(settings: Settings) -> Services:
    """Services whose Firestore adapters are stand-ins, never called: no client is made."""
    stores = ("repo", "memorials", "invitations", "invitation_attempts")
    return Services(settings, Given(**dict.fromkeys(stores, object())))  # type: ignore[arg-type]


# Each policy the composition root builds from the settings, and where a service keeps it.
POLICIES: dict[str, Callable[[Services], Any]] = {
    "monitors": lambda services: services.monitors.policy,
    "streams": lambda services: services.policy,
    "create limits": lambda services: services.policy.create_limits,
    "schedule windows": lambda services: services.windows.policy,
    "guest limits": lambda services: services.playback._limits,
}


@pytest.mark.parametrize("reach", POLICIES.values(), ids=POLICIES.keys())
def test_each_policy_takes_every_setting_of_the_same_name(reach: Callable[[Services], Any]) -> None:
    settings, moved = _settings_off_their_defaults()
    policy = reach(_offline_services(settings))
    taken = [field for field in fields(policy) if field.name in moved]
    assert taken, f"{type(policy).__name__} takes no setting"
    for field in taken:
        assert getattr(policy, field.name) == getattr(settings, field.name), field.name
        # A policy that kept its own default would pass the line above only by coincidence.
        assert field.default != getattr(settings, field.name), field.name


def test_the_policies_fields_without_a_setting_keep_their_defaults_or_derive() -> None:
    services = _offline_services(_settings_off_their_defaults()[0])
    assert services.monitors.policy.status_checks == 720
    assert services.policy.delivery_base == "https://customer-x.cloudflarestream.com"
    assert services.policy.create_limits.idempotency_lease_s == 120


def test_each_adapter_handed_in_is_the_part_every_service_is_given() -> None:
    given = {part.name: object() for part in fields(Given)}
    services = Services(Settings(), Given(**given))  # type: ignore[arg-type]
    for name, adapter in given.items():
        # A part the composition root builds under another name would silently stay real.
        assert isinstance(inspect.getattr_static(Services, name), built_once), name
        assert getattr(services, name) is adapter, name


def test_a_repository_handed_in_migrates_nothing_unless_a_migration_store_is_too() -> None:
    repo, store = object(), object()
    assert build_services(Settings(), repo=repo).migrations is None  # type: ignore[arg-type]
    both = build_services(Settings(), repo=repo, migrations=store)  # type: ignore[arg-type]
    assert both.migrations is store
