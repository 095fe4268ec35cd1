from __future__ import annotations

import pytest

from common.models.api import StreamCreateRequest, StreamOwnerView
from common.models.domain import Memorial, User
from common.ports import CreateQuota, IdempotencyStore
from common.services.backends import Backends
from common.services.broadcasts import BroadcastService
from common.services.live_inputs import LiveInputProvisioner
from common.services.monitors import MonitorPolicy, MonitorService
from common.services.policy import StreamPolicy
from common.services.provider_events import ProviderEventService
from common.services.schedule_windows import ScheduleWindowService, WindowPolicy
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
EVERYONE = (OWNER, MEMORIAL_OWNER, FUNERAL_DIRECTOR, ADMIN, STRANGER, HELPER)

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


MONITOR_POLICY = MonitorPolicy(
    recording_monitor_checks=3, status_checks=5, status_monitor_grace_checks=2
)
# Starting soon 30 min before, ended 30 min after the planned end (15-min steps, 2 h at most).
WINDOW_POLICY = WindowPolicy(
    window_starting_soon_lead_s=1800,
    window_overrun_s=1800,
    window_default_duration_s=3600,
    window_extension_s=900,
    window_hard_maximum_s=7200,
)


class World:
    """A service over fakes, plus handles on the fakes."""

    def __init__(
        self,
        policy: StreamPolicy = POLICY,
        create_quota: CreateQuota | None = None,
        idempotency: IdempotencyStore | None = None,
    ) -> None:
        self.repo = InMemoryStreamRepository()
        self.memorials = InMemoryMemorialDirectory(MEMORIAL, PRIVATE_MEMORIAL)
        self.clock = FixedClock()
        self.provider = FakeStreamProvider(self.clock)
        self.tasks = RecordingTaskQueue()
        self.backends = Backends(
            repo=self.repo,
            memorials=self.memorials,
            provider=self.provider,
            tasks=self.tasks,
            clock=self.clock,
        )
        self.monitors = MonitorService(self.backends, policy=MONITOR_POLICY)
        self.events = ProviderEventService(self.backends, monitors=self.monitors)
        self.live_inputs = LiveInputProvisioner(self.backends, policy=policy)
        self.broadcasts = BroadcastService(
            self.backends, policy=policy, monitors=self.monitors, live_inputs=self.live_inputs
        )
        self.windows = ScheduleWindowService(
            self.backends, policy=WINDOW_POLICY, monitors=self.monitors, broadcasts=self.broadcasts
        )
        self.service = StreamService(
            self.backends,
            policy=policy,
            live_inputs=self.live_inputs,
            create_quota=create_quota,
            idempotency=idempotency,
            windows=self.windows,
        )
        self.changes = StreamChangeService(
            self.backends, monitors=self.monitors, windows=self.windows
        )

    def new_stream(self, user: User = OWNER, title: str = "t") -> tuple[StreamOwnerView, str]:
        """A stream ``user`` creates through the service, and the uid of its live input."""
        view = self.service.create(user, StreamCreateRequest(title=title))
        assert view.cloudflare_id is not None
        return view, view.cloudflare_id


@pytest.fixture
def world() -> World:
    return World()
