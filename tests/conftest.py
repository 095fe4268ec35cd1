from __future__ import annotations

import pytest

from common.models.api import StreamCreateRequest, StreamOwnerView
from common.models.domain import User
from common.ports import CreateQuota, IdempotencyStore
from common.services.backends import Backends
from common.services.broadcasts import BroadcastService
from common.services.live_inputs import LiveInputProvisioner
from common.services.monitors import MonitorPolicy, MonitorService
from common.services.policy import StreamPolicy
from common.services.provider_events import ProviderEventService
from common.services.schedule_windows import ScheduleWindowService, WindowPolicy
from common.services.stream_changes import StreamChangeService
from common.services.stream_listings import StreamListingService
from common.services.streams import StreamService
from tests import people
from tests.fakes import (
    FixedClock,
    InMemoryMemorialDirectory,
    InMemoryStreamRepository,
    RecordingTaskQueue,
)
from tests.fakes.provider import FakeStreamProvider

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
        self.memorials = InMemoryMemorialDirectory(people.MEMORIAL, people.PRIVATE_MEMORIAL)
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
        self.listings = StreamListingService(self.backends)
        self.changes = StreamChangeService(
            self.backends, monitors=self.monitors, windows=self.windows
        )

    def new_stream(
        self, user: User = people.OWNER, title: str = "t"
    ) -> tuple[StreamOwnerView, str]:
        """A stream ``user`` creates through the service, and the uid of its live input."""
        view = self.service.create(user, StreamCreateRequest(title=title))
        assert view.cloudflare_id is not None
        return view, view.cloudflare_id

    def new_memorial_stream(self) -> tuple[str, str]:
        """A stream OWNER creates, filed afterwards under the public memorial with HELPER named on
        it (so its creator, its helper and the memorial's managers all differ); its id and the
        uid of its live input."""
        view, input_uid = self.new_stream(people.OWNER)
        update = {"memorial_id": people.MEMORIAL.id, "allowed_users": (people.HELPER.uid,)}
        self.repo.update(view.id, lambda s: s.model_copy(update=update))
        return view.id, input_uid


@pytest.fixture
def world() -> World:
    return World()
