"""The composition root hands each policy the settings of the same name."""

from __future__ import annotations

import inspect
from dataclasses import fields

from common.bootstrap import Given, Services, build_services, built_once
from common.settings import Settings


def test_the_monitor_and_stream_policies_take_their_settings() -> None:
    settings = Settings(
        recording_monitor_checks=7,
        recording_monitor_interval_s=4,
        status_monitor_interval_s=9,
        status_monitor_grace_checks=3,
        recording_timeout_seconds=11,
        orphan_sweep_delay_s=13,
        whip_session_ttl_s=170,
        cloudflare_delivery_base="https://customer-x.cloudflarestream.com",
        create_rate_limit=5,
        create_rate_limit_admin=6,
        create_rate_window_s=70,
        idempotency_key_ttl_s=3700,
    )
    services = build_services(settings, repo=object(), memorials=object())  # type: ignore[arg-type]
    monitor = services.monitors.policy
    assert (
        monitor.recording_monitor_checks,
        monitor.recording_monitor_interval_s,
        monitor.status_monitor_interval_s,
        monitor.status_monitor_grace_checks,
        monitor.recording_timeout_seconds,
        monitor.status_checks,
    ) == (7, 4, 9, 3, 11, 720)
    stream = services.policy
    assert (stream.recording_timeout_seconds, stream.orphan_sweep_delay_s) == (11, 13)
    assert stream.whip_session_ttl_s == 170
    assert stream.delivery_base == "https://customer-x.cloudflarestream.com"
    limits = stream.create_limits
    assert (
        limits.create_rate_limit,
        limits.create_rate_limit_admin,
        limits.create_rate_window_s,
        limits.idempotency_key_ttl_s,
        limits.idempotency_lease_s,
    ) == (5, 6, 70, 3700, 120)


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
