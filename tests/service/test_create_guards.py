"""Stream creation is rate limited per user and idempotent under ``Idempotency-Key``."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

import pytest

from common.errors import (
    AppError,
    ConflictError,
    InvalidArgumentError,
    ResourceExhaustedError,
    UnavailableError,
)
from common.models.api import StreamCreateRequest, StreamOwnerView
from common.models.domain import LiveInput, LiveInputSpec, User
from common.ports import IdempotencyRecord, ProviderUnavailableError
from common.services.create_guards import CreateLimits, IdempotencyKeyReusedError
from tests import people
from tests.conftest import POLICY, World
from tests.fakes import InMemoryCreateQuota, InMemoryIdempotencyStore

LIMITS = CreateLimits(create_rate_limit=3, create_rate_limit_admin=5, create_rate_window_s=600)
BODY = StreamCreateRequest(title="Funeral service", description="Chapel")


class GuardedWorld(World):
    """The usual fakes, with the creation guards wired."""

    def __init__(self) -> None:
        self.quota = InMemoryCreateQuota()
        self.keys = InMemoryIdempotencyStore()
        super().__init__(
            policy=replace(POLICY, create_limits=LIMITS),
            create_quota=self.quota,
            idempotency=self.keys,
        )

    def live_inputs_of(self, stream_id: str) -> list[str]:
        return [
            uid for uid, (spec, _) in self.provider.inputs.items() if spec.stream_id == stream_id
        ]


@pytest.fixture
def guarded() -> GuardedWorld:
    return GuardedWorld()


def create(
    world: GuardedWorld,
    user: User = people.OWNER,
    body: StreamCreateRequest = BODY,
    key: str | None = None,
) -> StreamOwnerView:
    return world.service.create(user, body, idempotency_key=key)


# --- rate limit ------------------------------------------------------------------------------


def test_the_creation_beyond_the_limit_is_refused_with_429_before_any_live_input(
    guarded: GuardedWorld,
) -> None:
    for _ in range(LIMITS.create_rate_limit):
        create(guarded)

    with pytest.raises(ResourceExhaustedError) as refused:
        create(guarded)

    assert refused.value.http_status == 429
    assert refused.value.retry_after_s == LIMITS.create_rate_window_s
    assert refused.value.details == {"limit": 3, "windowSeconds": 600}
    assert len(guarded.repo.streams) == LIMITS.create_rate_limit
    assert guarded.provider.calls.count("create_live_input") == LIMITS.create_rate_limit


def test_both_create_paths_count_against_the_same_limit(guarded: GuardedWorld) -> None:
    service = guarded.service
    service.create(people.MEMORIAL_OWNER, BODY)
    service.create_for_memorial(people.MEMORIAL_OWNER, people.MEMORIAL.id, BODY)
    service.create(
        people.MEMORIAL_OWNER, BODY.model_copy(update={"memorialId": people.MEMORIAL.id})
    )

    with pytest.raises(ResourceExhaustedError):
        service.create_for_memorial(people.MEMORIAL_OWNER, people.MEMORIAL.id, BODY)
    with pytest.raises(ResourceExhaustedError):
        service.create(people.MEMORIAL_OWNER, BODY)
    assert len(guarded.provider.inputs) == 3


def test_the_window_slides_and_retry_after_says_when_the_oldest_creation_leaves_it(
    guarded: GuardedWorld,
) -> None:
    for _ in range(LIMITS.create_rate_limit):
        create(guarded)
        guarded.clock.advance(100)  # creations at 0, 100 and 200 s

    with pytest.raises(ResourceExhaustedError) as refused:
        create(guarded)  # at 300 s: the first leaves the window at 600 s
    assert refused.value.retry_after_s == 300

    guarded.clock.advance(300)
    create(guarded)
    with pytest.raises(ResourceExhaustedError) as again:
        create(guarded)  # the one from 100 s leaves at 700 s
    assert again.value.retry_after_s == 100


def test_the_limit_is_per_user_and_administrators_have_a_higher_cap(
    guarded: GuardedWorld,
) -> None:
    for _ in range(LIMITS.create_rate_limit):
        create(guarded)
    create(guarded, user=people.STRANGER)
    for _ in range(LIMITS.create_rate_limit_admin):
        create(guarded, user=people.ADMIN)
    with pytest.raises(ResourceExhaustedError):
        create(guarded, user=people.ADMIN)


def test_refused_requests_do_not_count(guarded: GuardedWorld) -> None:
    for _ in range(LIMITS.create_rate_limit):
        create(guarded)
    for _ in range(5):
        with pytest.raises(ResourceExhaustedError):
            create(guarded)
    guarded.clock.advance(LIMITS.create_rate_window_s)
    for _ in range(LIMITS.create_rate_limit):
        create(guarded)


def test_concurrent_creations_cannot_exceed_the_limit(guarded: GuardedWorld) -> None:
    def attempt(_: int) -> str:
        try:
            return create(guarded).id
        except ResourceExhaustedError:
            return "refused"

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(attempt, range(20)))

    assert results.count("refused") == 20 - LIMITS.create_rate_limit
    assert len(guarded.provider.inputs) == LIMITS.create_rate_limit


def test_without_the_guards_wired_nothing_is_limited(world: World) -> None:
    for _ in range(LIMITS.create_rate_limit + 5):
        world.service.create(people.OWNER, BODY, idempotency_key="k")
    assert len(world.repo.streams) == LIMITS.create_rate_limit + 5


# --- idempotency -------------------------------------------------------------------------------


def test_a_retry_with_the_same_key_and_body_returns_the_first_stream(
    guarded: GuardedWorld,
) -> None:
    first = create(guarded, key="create-1")
    retries = [create(guarded, key="create-1") for _ in range(5)]

    assert {r.id for r in retries} == {first.id}
    assert all(r.stream_key == first.stream_key and r.stream_key for r in retries)
    assert len(guarded.repo.streams) == 1
    assert guarded.provider.calls.count("create_live_input") == 1
    assert guarded.live_inputs_of(first.id) == [first.cloudflare_id]
    # Replays create nothing, so they take nothing from the creation rate.
    for _ in range(LIMITS.create_rate_limit - 1):
        create(guarded)


def test_a_replay_shows_the_stream_as_it_is_now(guarded: GuardedWorld) -> None:
    first = create(guarded, key="create-1")
    guarded.repo.update(first.id, lambda s: s.model_copy(update={"title": "Renamed"}))

    assert create(guarded, key="create-1").title == "Renamed"


def test_the_same_key_with_another_body_is_refused_with_422(guarded: GuardedWorld) -> None:
    create(guarded, key="create-1")

    with pytest.raises(IdempotencyKeyReusedError) as refused:
        create(guarded, body=BODY.model_copy(update={"title": "Other"}), key="create-1")

    assert refused.value.http_status == 422
    assert "Idempotency-Key" in refused.value.message
    assert guarded.provider.calls.count("create_live_input") == 1


def test_the_same_key_on_the_other_create_path_is_another_request(
    guarded: GuardedWorld,
) -> None:
    guarded.service.create(people.MEMORIAL_OWNER, BODY, idempotency_key="k")
    with pytest.raises(IdempotencyKeyReusedError):
        guarded.service.create_for_memorial(
            people.MEMORIAL_OWNER, people.MEMORIAL.id, BODY, idempotency_key="k"
        )


def test_memorial_path_replays_too(guarded: GuardedWorld) -> None:
    service = guarded.service
    first = service.create_for_memorial(
        people.MEMORIAL_OWNER, people.MEMORIAL.id, BODY, idempotency_key="k"
    )
    again = service.create_for_memorial(
        people.MEMORIAL_OWNER, people.MEMORIAL.id, BODY, idempotency_key="k"
    )
    assert again.id == first.id
    assert len(guarded.provider.inputs) == 1


def test_keys_are_scoped_to_the_user(guarded: GuardedWorld) -> None:
    mine = create(guarded, key="shared-key")
    theirs = create(guarded, user=people.STRANGER, key="shared-key")
    assert mine.id != theirs.id
    assert len(guarded.provider.inputs) == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "clé", "line\nbreak", "tab\there"])
def test_a_malformed_key_is_refused_with_400(guarded: GuardedWorld, key: str) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        create(guarded, key=key)
    assert refused.value.http_status == 400
    assert guarded.provider.calls == []


@pytest.mark.parametrize("key", ["a", "x" * 255, "ABC-123_~ !{}"])
def test_well_formed_keys_are_accepted(guarded: GuardedWorld, key: str) -> None:
    assert create(guarded, key=key).id == create(guarded, key=key).id


def test_a_failed_create_does_not_pin_the_key(guarded: GuardedWorld) -> None:
    guarded.provider.fail("create_live_input", ProviderUnavailableError("503"))
    with pytest.raises(UnavailableError):
        create(guarded, key="create-1")

    retried = create(guarded, key="create-1")

    assert list(guarded.repo.streams) == [retried.id]
    assert create(guarded, key="create-1").id == retried.id
    # A failed create may even be retried with another body: nothing was made under the key.
    guarded.clock.advance(
        LIMITS.create_rate_window_s
    )  # failed attempts count too: each reached Cloudflare
    guarded.provider.fail("create_live_input", ProviderUnavailableError("503"))
    with pytest.raises(UnavailableError):
        create(guarded, key="create-2")
    other = create(guarded, body=BODY.model_copy(update={"title": "Fixed"}), key="create-2")
    assert other.title == "Fixed"


def test_a_timed_out_create_and_its_retry_leave_one_stream_and_one_live_input(
    guarded: GuardedWorld,
) -> None:
    # Cloudflare made the input but the answer never came.
    guarded.provider.create_succeeds_before_failing = True
    guarded.provider.fail("create_live_input", ProviderUnavailableError("timeout"))
    with pytest.raises(UnavailableError):
        create(guarded, key="create-1")
    guarded.provider.create_succeeds_before_failing = False

    retried = create(guarded, key="create-1")

    # Every attempt under the key used the same stream id, so the sweep finds every input.
    assert list(guarded.repo.streams) == [retried.id]
    assert guarded.live_inputs_of(retried.id) == [retried.cloudflare_id]
    assert len(guarded.provider.inputs) == 1


def test_a_late_landing_input_of_a_failed_attempt_is_swept(guarded: GuardedWorld) -> None:
    guarded.provider.fail("create_live_input", ProviderUnavailableError("timeout"))
    with pytest.raises(UnavailableError):
        create(guarded, key="create-1")
    retried = create(guarded, key="create-1")
    # The first attempt's input lands after its sweep ran (Cloudflare held the request).
    late = guarded.provider.create_live_input(
        LiveInputSpec(
            stream_id=retried.id, name="late", recording_timeout_seconds=300, allowed_origins=()
        )
    )
    guarded.clock.advance(120)

    assert guarded.live_inputs.sweep_orphaned_inputs(retried.id) == 1
    assert late.uid not in guarded.provider.inputs
    assert guarded.live_inputs_of(retried.id) == [retried.cloudflare_id]
    assert any(t.payload == {"streamId": retried.id} for t in guarded.tasks.tasks)


def test_a_retry_refused_by_the_limit_does_not_pin_the_key(guarded: GuardedWorld) -> None:
    for _ in range(LIMITS.create_rate_limit):
        create(guarded)
    with pytest.raises(ResourceExhaustedError):
        create(guarded, key="create-1")
    guarded.clock.advance(LIMITS.create_rate_window_s)
    assert create(guarded, key="create-1").id in guarded.repo.streams


class BlockingProvider:
    """Holds ``create_live_input`` until released, to see a request in flight."""

    def __init__(self, world: GuardedWorld) -> None:
        self.inner = world.provider
        self.entered = threading.Event()
        self.release = threading.Event()
        original = self.inner.create_live_input

        def create_live_input(spec: LiveInputSpec) -> LiveInput:
            self.entered.set()
            assert self.release.wait(10)
            return original(spec)

        self.inner.create_live_input = create_live_input  # type: ignore[method-assign]


def test_a_retry_while_the_first_is_in_flight_gets_409_with_retry_after(
    guarded: GuardedWorld,
) -> None:
    blocking = BlockingProvider(guarded)
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(create, guarded, people.OWNER, BODY, "create-1")
        assert blocking.entered.wait(10)

        with pytest.raises(ConflictError) as busy:
            create(guarded, key="create-1")
        assert busy.value.http_status == 409
        assert busy.value.retry_after_s == 1

        blocking.release.set()
        created = first.result(10)
    assert create(guarded, key="create-1").id == created.id
    assert len(guarded.provider.inputs) == 1


def test_concurrent_creates_with_one_key_make_one_stream(guarded: GuardedWorld) -> None:
    start = threading.Barrier(8)

    def attempt(_: int) -> str:
        start.wait()
        for _ in range(200):
            try:
                return create(guarded, key="burst").id
            except ConflictError:
                threading.Event().wait(0.005)
        raise AssertionError("never finished")

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = set(pool.map(attempt, range(8)))

    assert len(ids) == 1
    assert list(guarded.repo.streams) == list(ids)
    assert guarded.provider.calls.count("create_live_input") == 1


def test_a_key_whose_request_vanished_is_taken_over_with_the_same_stream_id(
    guarded: GuardedWorld,
) -> None:
    now = guarded.clock.now()
    guarded.keys.records[(people.OWNER.uid, "create-1")] = IdempotencyRecord(
        fingerprint=_fingerprint_of(guarded, "create-1"),
        stream_id="stream-crashed",
        state="pending",
        lease_until=now + timedelta(seconds=30),
        expires_at=now + timedelta(days=1),
    )
    with pytest.raises(ConflictError):
        create(guarded, key="create-1")

    guarded.clock.advance(31)
    created = create(guarded, key="create-1")

    assert created.id == "stream-crashed"


def test_a_stream_created_by_an_attempt_that_never_reported_is_replayed(
    guarded: GuardedWorld,
) -> None:
    guarded.keys.fail_updates = [UnavailableError("down"), None, UnavailableError("down")]
    with pytest.raises(UnavailableError):
        create(guarded, key="create-1")  # the claim itself fails: nothing happens
    created = create(guarded, key="create-1")  # marking it done fails: the lease stays
    assert guarded.keys.records[(people.OWNER.uid, "create-1")].state == "pending"

    guarded.clock.advance(LIMITS.idempotency_lease_s + 1)
    assert create(guarded, key="create-1").id == created.id
    assert guarded.keys.records[(people.OWNER.uid, "create-1")].state == "done"
    assert len(guarded.provider.inputs) == 1


def test_a_replay_of_a_deleted_stream_is_a_conflict_not_a_new_stream(
    guarded: GuardedWorld,
) -> None:
    first = create(guarded, key="create-1")
    guarded.service.delete(people.OWNER, first.id)

    with pytest.raises(ConflictError) as gone:
        create(guarded, key="create-1")

    assert gone.value.retry_after_s is None
    assert guarded.provider.inputs == {}


def test_keys_expire_after_their_ttl(guarded: GuardedWorld) -> None:
    first = create(guarded, key="create-1")
    guarded.clock.advance(LIMITS.idempotency_key_ttl_s)
    assert create(guarded, key="create-1").id != first.id


def test_an_error_raised_after_the_claim_releases_the_key(guarded: GuardedWorld) -> None:
    guarded.repo.fail_next_create = UnavailableError("database down")
    with pytest.raises(AppError):
        create(guarded, key="create-1")
    assert guarded.keys.records[(people.OWNER.uid, "create-1")].state == "failed"
    assert create(guarded, key="create-1").id in guarded.repo.streams


def _fingerprint_of(world: GuardedWorld, key: str) -> str:
    """The fingerprint the service records for BODY on POST /streams."""
    probe = GuardedWorld()
    probe.service.create(people.OWNER, BODY, idempotency_key=key)
    return probe.keys.records[(people.OWNER.uid, key)].fingerprint
