"""Simulcast outputs over fakes: who may manage them, what a bad destination is told, keys that
are never shown whole, the 50-output limit, and streams without a live input yet."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import timedelta

import pytest
from pydantic import SecretStr

from common.errors import (
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
    UnavailableError,
)
from common.models.domain import Stream, StreamStatus
from common.models.outputs import MAX_OUTPUTS, OutputCreate, OutputUpdate
from common.ports import (
    IdempotencyRecord,
    LiveOutput,
    OutputSpec,
    ProviderRejectedError,
    ProviderUnavailableError,
)
from common.services.simulcast import WHIP_NOTE, SimulcastService, key_hint, platform_of
from tests import people
from tests.conftest import World
from tests.fakes import InMemoryIdempotencyStore

YOUTUBE = "rtmp://a.rtmp.youtube.com/live2"
YOUTUBE_KEY = "uzya-f19y-g2g9-a2ee-51j2"


class Simulcast(World):
    """The other service tests' world with the simulcast service and one stream on the public
    memorial (its creator OWNER, HELPER named on it)."""

    def __init__(self) -> None:
        super().__init__()
        self.claims = InMemoryIdempotencyStore()
        self.simulcast = SimulcastService(
            self.backends, live_inputs=self.live_inputs, claims=self.claims
        )
        self.stream_id, self.input_uid = self.new_memorial_stream()

    def add(self, url: str = YOUTUBE, key: str = YOUTUBE_KEY, **more: object) -> str:
        request = OutputCreate.model_validate({"url": url, "streamKey": key, **more})
        return self.simulcast.add(people.OWNER, self.stream_id, request).id

    def stream(self) -> Stream:
        stored = self.repo.get(self.stream_id)
        assert stored is not None
        return stored


@pytest.fixture
def sim() -> Simulcast:
    return Simulcast()


def test_adding_an_output_sends_url_and_key_to_cloudflare_and_answers_only_a_hint(
    sim: Simulcast,
) -> None:
    view = sim.simulcast.add(
        people.OWNER, sim.stream_id, OutputCreate(url=f"{YOUTUBE}/", streamKey=f" {YOUTUBE_KEY} ")
    )

    (stored,) = sim.provider.outputs[sim.input_uid].values()
    assert stored.url == YOUTUBE  # the trailing slash goes: Cloudflare adds "/" + key itself
    assert stored.stream_key.get_secret_value() == YOUTUBE_KEY
    assert stored.enabled is True
    assert view.id == stored.uid and view.streamId == sim.stream_id
    assert view.streamKeyHint == "…51j2"
    assert view.platform == "youtube" and view.note is None
    assert YOUTUBE_KEY not in view.model_dump_json()


def test_the_list_masks_every_key_and_keeps_the_order_outputs_were_added(sim: Simulcast) -> None:
    first = sim.add()
    second = sim.add(
        "rtmps://live-api-s.facebook.com:443/rtmp/", "FB-1234567890-0-Abcdefgh", enabled=False
    )

    listed = sim.simulcast.list(people.FUNERAL_DIRECTOR, sim.stream_id)

    assert [o.id for o in listed.outputs] == [first, second]
    assert [o.platform for o in listed.outputs] == ["youtube", "facebook"]
    assert [o.enabled for o in listed.outputs] == [True, False]
    assert listed.maxOutputs == MAX_OUTPUTS
    text = listed.model_dump_json()
    assert YOUTUBE_KEY not in text and "FB-1234567890-0-Abcdefgh" not in text


def test_a_short_key_shows_nothing_of_itself() -> None:
    assert key_hint(SecretStr("abc123")) == "…"
    assert key_hint(SecretStr("0123456789ab")) == "…89ab"


@pytest.mark.parametrize(
    ("url", "platform"),
    [
        ("rtmp://a.rtmp.youtube.com/live2", "youtube"),
        ("rtmps://live-api-s.facebook.com:443/rtmp", "facebook"),
        ("rtmp://live.twitch.tv/app", "twitch"),
        ("rtmp://ingest.example.org/live", "custom"),
        ("rtmp://notyoutube.com/live", "custom"),
    ],
)
def test_the_platform_is_inferred_from_the_host(url: str, platform: str) -> None:
    assert platform_of(url) == platform


@pytest.mark.parametrize(
    ("url", "key", "field", "says"),
    [
        ("https://a.rtmp.youtube.com/live2", YOUTUBE_KEY, "url", "rtmp:// or rtmps://"),
        ("srt://srt.example.org:9000", YOUTUBE_KEY, "url", "got srt://"),
        ("a.rtmp.youtube.com/live2", YOUTUBE_KEY, "url", "no rtmp:// prefix"),
        ("rtmp:///live2", YOUTUBE_KEY, "url", "no server name"),
        ("rtmp://user:pw@example.org/live", YOUTUBE_KEY, "url", "not in the URL"),
        ("rtmp://example.org/live?key=1", YOUTUBE_KEY, "url", "query"),
        ("rtmp://example.org:port/live", YOUTUBE_KEY, "url", "port"),
        ("rtmp://example.org/li ve", YOUTUBE_KEY, "url", "spaces"),
        ("rtmp://[::1/live", YOUTUBE_KEY, "url", "not a valid URL"),
        (YOUTUBE, "   ", "streamKey", "empty"),
        (YOUTUBE, "ab cd", "streamKey", "spaces"),
    ],
)
def test_a_destination_that_is_not_an_rtmp_server_and_key_is_a_400_saying_why(
    sim: Simulcast, url: str, key: str, field: str, says: str
) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        sim.add(url, key)

    assert says in raised.value.message
    assert raised.value.details == {"field": field}
    assert key not in raised.value.message or not key.strip()
    assert sim.provider.outputs.get(sim.input_uid, {}) == {}


def test_the_same_destination_twice_is_a_conflict_naming_the_first(sim: Simulcast) -> None:
    first = sim.add()

    with pytest.raises(ConflictError) as raised:
        sim.add(f"{YOUTUBE}/", YOUTUBE_KEY)

    assert raised.value.details == {"outputId": first}
    assert len(sim.provider.outputs[sim.input_uid]) == 1


def test_at_most_fifty_outputs_per_stream(sim: Simulcast) -> None:
    for n in range(MAX_OUTPUTS):
        sim.add("rtmp://relay.example.org/live", f"key-number-{n:04d}")

    with pytest.raises(ConflictError, match="at most 50"):
        sim.add("rtmp://relay.example.org/live", "one-key-too-many")

    assert len(sim.provider.outputs[sim.input_uid]) == MAX_OUTPUTS


def test_disabling_and_enabling_an_output_toggles_it_at_cloudflare(sim: Simulcast) -> None:
    output = sim.add()

    off = sim.simulcast.set_enabled(
        people.HELPER, sim.stream_id, output, OutputUpdate(enabled=False)
    )
    assert off.enabled is False
    assert sim.provider.outputs[sim.input_uid][output].enabled is False

    on = sim.simulcast.set_enabled(people.HELPER, sim.stream_id, output, OutputUpdate(enabled=True))
    assert on.enabled is True and on.streamKeyHint == "…51j2"


def test_removing_an_output_deletes_it_at_cloudflare(sim: Simulcast) -> None:
    output = sim.add()

    removed = sim.simulcast.remove(people.MEMORIAL_OWNER, sim.stream_id, output)

    assert (removed.id, removed.streamId, removed.deleted) == (output, sim.stream_id, True)
    assert sim.provider.outputs[sim.input_uid] == {}
    with pytest.raises(NotFoundError, match="no such output"):
        sim.simulcast.remove(people.OWNER, sim.stream_id, output)


def test_another_streams_output_is_not_found_on_this_one(sim: Simulcast) -> None:
    _, other_input = sim.new_stream(people.OWNER, "Other service")
    others = sim.provider.create_output(
        other_input, OutputSpec(YOUTUBE, SecretStr(YOUTUBE_KEY))
    ).uid

    with pytest.raises(NotFoundError):
        sim.simulcast.set_enabled(people.OWNER, sim.stream_id, others, OutputUpdate(enabled=False))
    with pytest.raises(NotFoundError):
        sim.simulcast.remove(people.OWNER, sim.stream_id, others)
    assert sim.provider.outputs[other_input][others].enabled is True


def test_only_those_who_may_edit_the_stream_manage_its_outputs(sim: Simulcast) -> None:
    output = sim.add()
    request = OutputCreate(url=YOUTUBE, streamKey="another-key-5678")

    with pytest.raises(PermissionDeniedError):
        sim.simulcast.list(people.STRANGER, sim.stream_id)
    with pytest.raises(PermissionDeniedError):
        sim.simulcast.add(people.STRANGER, sim.stream_id, request)
    with pytest.raises(PermissionDeniedError):
        sim.simulcast.set_enabled(
            people.STRANGER, sim.stream_id, output, OutputUpdate(enabled=False)
        )
    with pytest.raises(PermissionDeniedError):
        sim.simulcast.remove(people.STRANGER, sim.stream_id, output)
    with pytest.raises(UnauthenticatedError):
        sim.simulcast.list(None, sim.stream_id)
    assert len(sim.provider.outputs[sim.input_uid]) == 1


def test_an_unknown_stream_is_not_found(sim: Simulcast) -> None:
    with pytest.raises(NotFoundError):
        sim.simulcast.list(people.OWNER, "no-such-stream")


def test_a_stream_without_a_live_input_gets_one_when_its_first_output_is_added(
    sim: Simulcast,
) -> None:
    sim.repo.update(sim.stream_id, lambda s: s.model_copy(update={"cloudflare_id": None}))
    assert sim.simulcast.list(people.OWNER, sim.stream_id).outputs == []

    output = sim.add()

    live_input = sim.stream().cloudflare_id
    assert live_input is not None and live_input != sim.input_uid
    assert output in sim.provider.outputs[live_input]
    assert sim.repo.get_credentials(sim.stream_id) is not None


def test_a_cancelled_service_gets_no_output_and_no_live_input(sim: Simulcast) -> None:
    cancelled = {"status": StreamStatus.CANCELLED, "cloudflare_id": None}
    sim.repo.update(sim.stream_id, lambda s: s.model_copy(update=cancelled))
    inputs_before = set(sim.provider.inputs)

    with pytest.raises(ConflictError, match="cancelled"):
        sim.add()

    assert sim.stream().cloudflare_id is None
    assert set(sim.provider.inputs) == inputs_before


def test_a_browser_broadcast_is_said_not_to_be_simulcast(sim: Simulcast) -> None:
    output = sim.add()
    sim.repo.update(sim.stream_id, lambda s: s.model_copy(update={"ingest_protocol": "whip"}))

    listed = sim.simulcast.list(people.OWNER, sim.stream_id)
    toggled = sim.simulcast.set_enabled(
        people.OWNER, sim.stream_id, output, OutputUpdate(enabled=True)
    )

    assert listed.note == WHIP_NOTE and listed.outputs[0].note == WHIP_NOTE
    assert toggled.note == WHIP_NOTE and "WHIP" in WHIP_NOTE


def test_a_cloudflare_outage_on_create_is_a_503_and_adds_nothing(sim: Simulcast) -> None:
    sim.provider.fail("create_output", ProviderUnavailableError("Cloudflare 503", status=503))

    with pytest.raises(ProviderUnavailableError):
        sim.add()

    assert sim.provider.outputs.get(sim.input_uid, {}) == {}


def test_cloudflare_refusing_an_output_is_a_400_for_the_caller(sim: Simulcast) -> None:
    sim.provider.fail("create_output", ProviderRejectedError("invalid url", status=400))

    with pytest.raises(InvalidArgumentError, match="Cloudflare refused this output"):
        sim.add()


def test_a_scheme_in_capitals_reaches_cloudflare_in_small_letters(sim: Simulcast) -> None:
    sim.add("RTMPS://live-api-s.facebook.com:443/rtmp")
    (stored,) = sim.provider.outputs[sim.input_uid].values()
    assert stored.url == "rtmps://live-api-s.facebook.com:443/rtmp"


def test_only_the_family_sends_a_private_service_to_other_platforms(sim: Simulcast) -> None:
    sim.repo.update(sim.stream_id, lambda s: s.model_copy(update={"signed_urls": True}))
    request = OutputCreate(url=YOUTUBE, streamKey=YOUTUBE_KEY)
    # The memorial's funeral director manages the stream, but does not take it away.
    with pytest.raises(PermissionDeniedError, match="Only the family"):
        sim.simulcast.add(people.FUNERAL_DIRECTOR, sim.stream_id, request)
    output = sim.simulcast.add(people.MEMORIAL_OWNER, sim.stream_id, request).id
    off = OutputUpdate(enabled=False)
    sim.simulcast.set_enabled(people.FUNERAL_DIRECTOR, sim.stream_id, output, off)
    with pytest.raises(PermissionDeniedError):
        sim.simulcast.set_enabled(
            people.FUNERAL_DIRECTOR, sim.stream_id, output, OutputUpdate(enabled=True)
        )
    assert sim.provider.outputs[sim.input_uid][output].enabled is False


def test_no_key_reaches_the_log(sim: Simulcast, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        output = sim.add()
        sim.simulcast.set_enabled(people.OWNER, sim.stream_id, output, OutputUpdate(enabled=False))
        sim.simulcast.remove(people.OWNER, sim.stream_id, output)

    assert caplog.records
    assert all(YOUTUBE_KEY not in r.getMessage() for r in caplog.records)
    stored = LiveOutput("x", YOUTUBE, SecretStr(YOUTUBE_KEY), True)
    assert YOUTUBE_KEY not in repr(stored)
    assert YOUTUBE_KEY not in repr(OutputCreate(url=YOUTUBE, streamKey=YOUTUBE_KEY))


def test_a_double_click_adds_one_output_and_tells_the_second_request_to_wait(
    sim: Simulcast,
) -> None:
    # Cloudflare takes its time over the first create, as a double click meets it.
    creating, may_answer = threading.Event(), threading.Event()
    create = sim.provider.create_output

    def slow_create(live_input_uid: str, spec: OutputSpec) -> LiveOutput:
        if not creating.is_set():
            creating.set()
            assert may_answer.wait(10)
        return create(live_input_uid, spec)

    sim.provider.create_output = slow_create  # type: ignore[method-assign]
    first: list[str] = []
    adding = threading.Thread(target=lambda: first.append(sim.add()))
    adding.start()
    assert creating.wait(10)

    with pytest.raises(ConflictError, match="being added") as second:
        sim.add()
    may_answer.set()
    adding.join(10)

    assert second.value.retry_after_s is not None and 1 <= second.value.retry_after_s <= 30
    assert list(sim.provider.outputs[sim.input_uid]) == first
    # Once the first is done, the same destination is the usual conflict naming it.
    with pytest.raises(ConflictError) as again:
        sim.add()
    assert again.value.details == {"outputId": first[0]}


def test_a_failed_add_lets_the_retry_through(sim: Simulcast) -> None:
    sim.provider.fail("create_output", ProviderUnavailableError("Cloudflare 503", status=503))
    with pytest.raises(ProviderUnavailableError):
        sim.add()

    assert sim.add() in sim.provider.outputs[sim.input_uid]


def test_a_claim_its_request_never_released_lapses(sim: Simulcast) -> None:
    sim.claims.fail_updates = [None, UnavailableError("Firestore is down")]  # claim, release
    first = sim.add()
    sim.provider.outputs[sim.input_uid].pop(first)  # removed at Cloudflare meanwhile

    with pytest.raises(ConflictError, match="being added"):
        sim.add()
    sim.clock.advance(31)
    assert sim.add() in sim.provider.outputs[sim.input_uid]


def test_a_claim_names_the_destination_by_digest_never_by_its_key(sim: Simulcast) -> None:
    sim.add()

    assert sim.claims.records
    for (scope, key), record in sim.claims.records.items():
        assert YOUTUBE_KEY not in f"{scope}{key}{record}"
        assert scope == f"simulcast:{sim.stream_id}" and record.state == "done"


def test_a_request_whose_claim_lapsed_leaves_the_next_claim_alone(sim: Simulcast) -> None:
    create = sim.provider.create_output
    later: list[IdempotencyRecord] = []

    def create_after_the_claim_lapsed(live_input_uid: str, spec: OutputSpec) -> LiveOutput:
        # Cloudflare answers after the lease: by then another request holds the claim.
        sim.clock.advance(31)
        ((scope, key), held), *_ = sim.claims.records.items()
        another = replace(held, lease_until=sim.clock.now() + timedelta(seconds=30))
        sim.claims.update(scope, key, lambda _held: another)
        later.append(another)
        return create(live_input_uid, spec)

    sim.provider.create_output = create_after_the_claim_lapsed  # type: ignore[method-assign]
    sim.add()

    assert list(sim.claims.records.values()) == later  # still pending, as the other holds it
