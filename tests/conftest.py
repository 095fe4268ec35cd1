from __future__ import annotations

import pytest

from common.models.domain import Memorial, User
from common.services.broadcasts import BroadcastService
from common.services.live_inputs import LiveInputProvisioner
from common.services.monitors import MonitorPolicy, MonitorService
from common.services.policy import StreamPolicy
from common.services.provider_events import ProviderEventService
from common.services.stream_changes import StreamChangeService
from common.services.streams import StreamService
from tests.fakes import (
    FakeStreamProvider,
    FixedClock,
    InMemoryMemorialDirectory,
    InMemoryStreamRepository,
    RecordingTaskQueue,
)

OWNER = User(uid="owner-uid", email="owner@example.com")
MEMORIAL_OWNER = User(uid="family-uid")
FUNERAL_DIRECTOR = User(uid="director-uid", role="funeral_director")
ADMIN = User(uid="admin-uid", role="admin", is_admin=True)
STRANGER = User(uid="stranger-uid")
HELPER = User(uid="helper-uid")

MEMORIAL = Memorial(
    id="memorial-1",
    owner_uid=MEMORIAL_OWNER.uid,
    funeral_director_uid=FUNERAL_DIRECTOR.uid,
    is_public=True,
    loved_one_name="Ada Lovelace",
)
PRIVATE_MEMORIAL = Memorial(id="memorial-private", owner_uid=MEMORIAL_OWNER.uid, is_public=False)

POLICY = StreamPolicy(
    delivery_base="https://customer-test.cloudflarestream.com",
    recording_timeout_seconds=300,
    allowed_origins=("example.com",),
)


MONITOR_POLICY = MonitorPolicy(recording_checks=3, status_checks=5, status_grace_checks=2)


class World:
    """A service over fakes, plus handles on the fakes."""

    def __init__(self) -> None:
        self.repo = InMemoryStreamRepository()
        self.memorials = InMemoryMemorialDirectory(MEMORIAL, PRIVATE_MEMORIAL)
        self.clock = FixedClock()
        self.provider = FakeStreamProvider(self.clock)
        self.tasks = RecordingTaskQueue()
        self.monitors = MonitorService(
            repo=self.repo,
            provider=self.provider,
            tasks=self.tasks,
            clock=self.clock,
            policy=MONITOR_POLICY,
        )
        self.events = ProviderEventService(
            repo=self.repo, provider=self.provider, clock=self.clock, monitors=self.monitors
        )
        self.changes = StreamChangeService(
            provider=self.provider, clock=self.clock, monitors=self.monitors
        )
        self.live_inputs = LiveInputProvisioner(
            repo=self.repo,
            provider=self.provider,
            clock=self.clock,
            policy=POLICY,
            tasks=self.tasks,
        )
        self.service = StreamService(
            repo=self.repo,
            memorials=self.memorials,
            provider=self.provider,
            clock=self.clock,
            policy=POLICY,
            live_inputs=self.live_inputs,
        )
        self.broadcasts = BroadcastService(
            repo=self.repo,
            memorials=self.memorials,
            provider=self.provider,
            clock=self.clock,
            policy=POLICY,
            monitors=self.monitors,
            live_inputs=self.live_inputs,
        )


@pytest.fixture
def world() -> World:
    return World()
