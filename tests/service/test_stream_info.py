"""What polling pages cost and see: answers from the stream document alone (the service has
no stream provider to call), the memorial read once per cache window."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from common.errors import PermissionDeniedError, UnauthenticatedError
from common.models.api import StreamCreateRequest
from common.models.domain import Memorial, RecordingEntry, Stream, StreamStatus
from common.ports import MemorialDirectory
from common.services.backends import Backends
from common.services.stream_access import TimedMemorialCache
from common.services.stream_info import StreamInfoService
from common.services.stream_listings import StreamListingService
from common.services.streams import StreamService
from tests import people
from tests.conftest import POLICY, World
from tests.fakes import FixedClock, InMemoryMemorialDirectory, InMemoryStreamRepository


class CountingRepository(InMemoryStreamRepository):
    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    def get(self, stream_id: str) -> Stream | None:
        self.gets += 1
        return super().get(stream_id)


class CountingMemorials(InMemoryMemorialDirectory):
    def __init__(self, *memorials: Memorial) -> None:
        super().__init__(*memorials)
        self.reads: Counter[str] = Counter()
        self.batches: list[set[str]] = []

    def get(self, memorial_id: str) -> Memorial | None:
        self.reads[memorial_id] += 1
        return super().get(memorial_id)

    def get_many(self, memorial_ids: Collection[str]) -> dict[str, Memorial | None]:
        self.batches.append(set(memorial_ids))
        return super().get_many(memorial_ids)


@dataclass
class Polled:
    repo: CountingRepository
    memorials: CountingMemorials
    service: StreamInfoService

    def add(self, title: str, memorial_id: str | None = None) -> Stream:
        now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
        stream = Stream(
            id=f"stream-{len(self.repo.streams) + 1}",
            title=title,
            memorial_id=memorial_id,
            created_by=people.OWNER.uid,
            cloudflare_id="input-1",
            created_at=now,
            updated_at=now,
        )
        self.repo.create(stream, None)
        return stream


@pytest.fixture
def polled() -> Polled:
    repo, memorials = (
        CountingRepository(),
        CountingMemorials(people.MEMORIAL, people.PRIVATE_MEMORIAL),
    )
    service = StreamInfoService(
        repo=repo,
        memorials=memorials,
        clock=FixedClock(),
        delivery_base="https://customer-x.cloudflarestream.com",
        memorial_cache_ttl_s=30,
    )
    return Polled(repo, memorials, service)


def test_a_status_poll_reads_one_document_and_the_memorial_once_per_window(
    polled: Polled,
) -> None:
    made = polled.add("Funeral", people.MEMORIAL.id)
    polled.repo.gets = 0

    polls = [polled.service.status(None, made.id) for _ in range(10)]

    assert {p.status for p in polls} == {StreamStatus.SCHEDULED}
    assert polls[0].cloudflare is not None and polls[0].cloudflare.connected is False
    assert polled.repo.gets == 10  # one stream read per poll
    assert polled.memorials.reads[people.MEMORIAL.id] == 1  # the memorial once per cache window


def test_status_of_a_private_memorials_stream_is_refused_to_visitors(polled: Polled) -> None:
    made = polled.add("Private", people.PRIVATE_MEMORIAL.id)
    with pytest.raises(UnauthenticatedError):
        polled.service.status(None, made.id)
    with pytest.raises(PermissionDeniedError):
        polled.service.recordings(people.STRANGER, made.id)
    assert polled.service.status(people.OWNER, made.id).status == StreamStatus.SCHEDULED


def test_recordings_lists_only_playable_ones_in_order(polled: Polled) -> None:
    made = polled.add("Funeral")
    entries = (
        RecordingEntry(video_uid="v1", state="ready", ready=True, hls_url="https://h/v1.m3u8"),
        RecordingEntry(video_uid="v2", state="inprogress", ready=False),
        RecordingEntry(video_uid="v3", state="ready", ready=True, hls_url="https://h/v3.m3u8"),
    )
    polled.repo.update(made.id, lambda s: s.model_copy(update={"recordings": entries}))

    listed = polled.service.recordings(None, made.id)

    assert [(r.id, r.sequenceNumber) for r in listed.recordings] == [("v1", 1), ("v3", 2)]
    assert listed.recordings[0].playbackUrl == "https://customer-x.cloudflarestream.com/v1/iframe"
    assert listed.totalRecordings == 2


def _cached_listings(
    world: World, memorials: CountingMemorials, writes_read: MemorialDirectory
) -> tuple[StreamService, StreamListingService]:
    """Creation over ``writes_read``, and listings that read ``memorials`` through a cache."""
    backends = Backends(
        repo=world.repo,
        memorials=writes_read,
        provider=world.provider,
        tasks=world.tasks,
        clock=world.clock,
    )
    service = StreamService(backends, policy=POLICY, live_inputs=world.live_inputs)
    cached = TimedMemorialCache(memorials, ttl_s=30)
    return service, StreamListingService(backends, listing_memorials=cached)


def test_the_memorial_status_board_reads_the_memorial_once_per_cache_window() -> None:
    memorials = CountingMemorials(people.MEMORIAL)
    world = World()
    service, listings = _cached_listings(world, memorials, writes_read=memorials)
    service.create_for_memorial(
        people.MEMORIAL_OWNER, people.MEMORIAL.id, StreamCreateRequest(title="Funeral")
    )
    assert memorials.reads[people.MEMORIAL.id] == 1

    boards = [listings.memorial_status(None, people.MEMORIAL.id) for _ in range(10)]

    assert all(len(board.scheduledStreams) == 1 for board in boards)
    assert memorials.reads[people.MEMORIAL.id] == 2  # the ten boards read it once between them
    # Writes read the memorial fresh: who may manage it is never taken from the cache.
    service.create_for_memorial(
        people.MEMORIAL_OWNER, people.MEMORIAL.id, StreamCreateRequest(title="Committal")
    )
    assert memorials.reads[people.MEMORIAL.id] == 3


def test_a_listing_page_reads_its_memorials_at_once_and_each_once_per_cache_window() -> None:
    chapel = Memorial(id="memorial-chapel", owner_uid=people.MEMORIAL_OWNER.uid)
    memorials = CountingMemorials(people.MEMORIAL, people.PRIVATE_MEMORIAL, chapel)
    world = World()
    site = InMemoryMemorialDirectory(people.MEMORIAL, people.PRIVATE_MEMORIAL, chapel)
    service, listings = _cached_listings(world, memorials, writes_read=site)
    for memorial in (people.MEMORIAL, people.MEMORIAL, people.PRIVATE_MEMORIAL, chapel):
        made = service.create_for_memorial(
            people.MEMORIAL_OWNER, memorial.id, StreamCreateRequest(title="Service")
        )
        # As an earlier server left some: public, on a memorial that is not.
        stream = world.repo.streams[made.id]
        world.repo.streams[made.id] = stream.model_copy(update={"is_public": True})

    first = listings.list_public(None, limit=10, offset=0)
    again = listings.list_public(None, limit=10, offset=0)

    assert len(first.streams) == len(again.streams) == 3  # not the private memorial's
    assert memorials.batches == [{people.MEMORIAL.id, people.PRIVATE_MEMORIAL.id, chapel.id}]
    assert set(memorials.reads.values()) == {1}
