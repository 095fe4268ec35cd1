"""What polling pages cost and see: answers from the stream document alone (the service has
no stream provider to call), the memorial read once per cache window."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from common.errors import PermissionDeniedError, UnauthenticatedError
from common.models.api import StreamCreateRequest
from common.models.domain import Memorial, RecordingEntry, Stream, StreamStatus
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

    def get(self, memorial_id: str) -> Memorial | None:
        self.reads[memorial_id] += 1
        return super().get(memorial_id)


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


def test_the_memorial_status_board_reads_the_memorial_once_per_cache_window() -> None:
    memorials = CountingMemorials(people.MEMORIAL)
    world = World()
    backends = Backends(
        repo=world.repo,
        memorials=memorials,
        provider=world.provider,
        tasks=world.tasks,
        clock=world.clock,
    )
    service = StreamService(backends, policy=POLICY, live_inputs=world.live_inputs)
    listings = StreamListingService(
        backends, listing_memorials=TimedMemorialCache(memorials, ttl_s=30)
    )
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
