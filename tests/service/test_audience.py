"""Audience: the status monitor keeps ``viewerCount`` and its peak ``maxViewers`` from the live
viewer count (one read per check, none unless on air), writing the stream only when they
change; the family's analytics add Cloudflare's minutes viewed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from common.errors import NotFoundError, PermissionDeniedError
from common.models.api import StreamCreateRequest
from common.models.domain import StreamStatus, User
from common.ports import ProviderUnavailableError
from common.services.audience import AudiencePolicy, AudienceService
from common.services.monitors import with_audience
from tests import people
from tests.conftest import World


class Live:
    """A started stream whose encoder is on air, and the checks of its status monitor."""

    def __init__(
        self, world: World, user: User = people.OWNER, memorial_id: str | None = None
    ) -> None:
        self.world, self.user = world, user
        request = StreamCreateRequest(title="t", memorial_id=memorial_id)
        self.stream = world.service.create(user, request)
        world.broadcasts.start(user, self.stream.id)
        task = next(t.payload for t in world.tasks.tasks if t.payload["kind"] == "status")
        self.generation = int(str(task["generation"]))
        self.uid = self.stream.cloudflare_id or ""
        self.attempt = 0
        self.connection("connected")

    def connection(self, state: str) -> None:
        spec, live_input = self.world.provider.inputs[self.uid]
        changed = live_input.model_copy(update={"connection": state})
        self.world.provider.inputs[self.uid] = (spec, changed)

    def check(self, viewers: int | None = None) -> str:
        if viewers is not None:
            self.world.provider.viewers[self.uid] = viewers
        self.world.clock.advance(60)
        outcome = self.world.monitors.run_check(
            "status", self.stream.id, self.generation, self.attempt
        )
        self.attempt += 1
        return outcome

    def counts(self) -> tuple[int, int | None]:
        stream = self.world.repo.streams[self.stream.id]
        return stream.viewer_count, stream.max_viewers


def test_each_check_shows_the_count_and_the_peak_never_falls(world: World) -> None:
    live = Live(world)
    seen = []
    for viewers in (3, 7, 2, 0):
        assert live.check(viewers) == "rescheduled"
        seen.append(live.counts())
    assert seen == [(3, 3), (7, 7), (2, 7), (0, 7)]
    assert world.provider.calls.count("live_viewers") == 4


def test_a_check_whose_count_did_not_change_leaves_the_stream_unwritten(world: World) -> None:
    live = Live(world)
    live.check(5)
    writes = world.repo.stream_writes[live.stream.id]
    before = world.repo.streams[live.stream.id]
    for _ in range(3):
        live.check(5)
    assert world.repo.stream_writes[live.stream.id] == writes
    assert world.repo.streams[live.stream.id] == before
    live.check(6)
    assert world.repo.stream_writes[live.stream.id] == writes + 1


def test_no_count_is_read_unless_the_broadcast_is_on_air(world: World) -> None:
    live = Live(world)
    live.connection("disconnected")
    world.provider.viewers[live.uid] = 9
    assert live.check() == "rescheduled"  # within the grace checks: waiting for the encoder
    assert "live_viewers" not in world.provider.calls
    assert live.counts() == (0, None)


def test_a_failed_count_keeps_the_last_one_and_the_check_goes_on(world: World) -> None:
    live = Live(world)
    live.check(4)
    world.provider.fail("live_viewers", ProviderUnavailableError("views down"))
    assert live.check(8) == "rescheduled"
    assert live.counts() == (4, 4)


def test_the_end_of_the_broadcast_shows_nobody_watching_and_keeps_the_peak(world: World) -> None:
    live = Live(world)
    live.check(6)
    world.broadcasts.stop(people.OWNER, live.stream.id)
    stream = world.repo.streams[live.stream.id]
    assert stream.status == StreamStatus.COMPLETED
    assert (stream.viewer_count, stream.max_viewers) == (0, 6)


def test_with_audience_changes_nothing_when_nothing_changed(world: World) -> None:
    live = Live(world)
    stream = world.repo.streams[live.stream.id]
    assert with_audience(stream, 0) is stream
    peaked = with_audience(stream, 5)
    assert with_audience(peaked, 5) is peaked
    assert (with_audience(peaked, 1).viewer_count, with_audience(peaked, 1).max_viewers) == (1, 5)


def audience(world: World, ttl_s: float = 300) -> AudienceService:
    return AudienceService(world.backends, policy=AudiencePolicy(analytics_cache_ttl_s=ttl_s))


def test_analytics_give_the_peak_and_minutes_of_every_video(world: World) -> None:
    live = Live(world, people.MEMORIAL_OWNER, memorial_id=people.MEMORIAL.id)
    live.check(12)
    world.broadcasts.stop(people.MEMORIAL_OWNER, live.stream.id)
    world.provider.minutes = {live.uid: 3.0}

    answer = audience(world).analytics(people.MEMORIAL_OWNER, live.stream.id)

    assert (answer.peakViewers, answer.viewerCount, answer.minutesViewed) == (12, 0, 3.0)
    uids, since, until = world.provider.minutes_asked[-1]
    assert live.uid in uids
    assert since == world.repo.streams[live.stream.id].created_at
    assert until == world.clock.now()


def test_analytics_are_asked_of_cloudflare_once_per_ttl(world: World) -> None:
    live = Live(world)
    live.check(2)
    service = audience(world, ttl_s=300)
    service.analytics(people.OWNER, live.stream.id)
    world.clock.advance(120)
    service.analytics(people.OWNER, live.stream.id)
    assert world.provider.calls.count("minutes_viewed") == 1
    world.clock.advance(300)
    service.analytics(people.OWNER, live.stream.id)
    assert world.provider.calls.count("minutes_viewed") == 2


def test_a_stream_never_live_has_no_analytics_call(world: World) -> None:
    view = world.service.create(people.OWNER, StreamCreateRequest(title="t"))
    answer = audience(world).analytics(people.OWNER, view.id)
    assert (answer.peakViewers, answer.minutesViewed, answer.since) == (0, 0.0, None)
    assert "minutes_viewed" not in world.provider.calls


def test_the_analytics_window_is_at_most_what_cloudflare_answers(world: World) -> None:
    live = Live(world)
    world.clock.advance(int(timedelta(days=40).total_seconds()))
    answer = audience(world).analytics(people.OWNER, live.stream.id)
    assert answer.since is not None and answer.until is not None
    assert answer.until - answer.since == timedelta(days=31)


def test_analytics_are_for_those_who_may_edit_the_stream(world: World) -> None:
    live = Live(world)
    with pytest.raises(PermissionDeniedError):
        audience(world).analytics(people.STRANGER, live.stream.id)
    with pytest.raises(NotFoundError):
        audience(world).analytics(people.OWNER, "missing")
