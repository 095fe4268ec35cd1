"""The playback service over fakes: what is on now, signed only where it must be, the
memorial's privacy followed lazily (and only once), and Cloudflare trouble never keeping a
viewer from a token."""

from __future__ import annotations

import jwt
import pytest

from common.errors import UnavailableError
from common.models.api import StreamCreateRequest
from common.models.domain import RecordingEntry, StreamStatus
from common.ports import ProviderUnavailableError
from common.services.playback import PlaybackService
from tests import people
from tests.conftest import World
from tests.fakes import InMemoryCreateQuota, InMemoryInvitationStore, local_playback_tokens


@pytest.fixture
def world() -> World:
    return World()


def service(world: World) -> PlaybackService:
    return PlaybackService(
        repo=world.repo,
        memorials=world.memorials,
        tokens=local_playback_tokens(world.clock),
        live_inputs=world.live_inputs,
        invitations=InMemoryInvitationStore(),
        attempts=InMemoryCreateQuota(),
        clock=world.clock,
        delivery_base="https://customer-test.cloudflarestream.com",
        site_origin="https://tributestream.com",
    )


def private_stream(world: World) -> str:
    request = StreamCreateRequest(title="Service", isPublic=False)  # type: ignore[call-arg]
    return world.service.create(people.OWNER, request).id


def sub_of(url: str) -> str:
    token = url.split("/")[3]
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


def test_a_new_private_stream_gets_a_signed_live_input(world: World) -> None:
    stream_id = private_stream(world)
    stored = world.repo.get(stream_id)
    assert stored is not None and stored.cloudflare_id
    assert stored.signed_urls is True
    assert world.provider.inputs[stored.cloudflare_id][0].require_signed_urls is True


def test_after_the_service_the_primary_recording_is_signed(world: World) -> None:
    stream_id = private_stream(world)
    entry = RecordingEntry(video_uid="video-9", state="ready", ready=True)
    update = {
        "status": StreamStatus.COMPLETED,
        "recording_ready": True,
        "video_id": "video-9",
        "recordings": (entry,),
    }
    world.repo.update(stream_id, lambda s: s.model_copy(update=update))

    answer = service(world).playback(people.OWNER, stream_id)

    assert answer.source == "recording"
    assert sub_of(answer.hlsUrl) == "video-9"
    assert answer.expiresAt is not None and answer.expiresAt > world.clock.now()


def test_a_memorials_privacy_is_applied_once_then_costs_no_call(world: World) -> None:
    stream_id = world.new_stream(people.OWNER)[0].id
    world.repo.update(
        stream_id, lambda s: s.model_copy(update={"memorial_id": people.PRIVATE_MEMORIAL.id})
    )
    playback = service(world)

    playback.playback(people.MEMORIAL_OWNER, stream_id)
    calls = list(world.provider.calls)
    playback.playback(people.MEMORIAL_OWNER, stream_id)

    assert "set_input_allowed_origins" in calls
    assert world.provider.calls == calls  # nothing more once Cloudflare was told


def test_cloudflare_trouble_still_gives_a_token_and_is_tried_again(world: World) -> None:
    stream_id = world.new_stream(people.OWNER)[0].id
    world.repo.update(
        stream_id, lambda s: s.model_copy(update={"memorial_id": people.PRIVATE_MEMORIAL.id})
    )
    world.provider.fail("set_input_allowed_origins", ProviderUnavailableError("down"))
    playback = service(world)

    answer = playback.playback(people.MEMORIAL_OWNER, stream_id)

    assert answer.requiresToken is True
    stored = world.repo.get(stream_id)
    assert stored is not None and stored.signed_urls is False
    playback.playback(people.MEMORIAL_OWNER, stream_id)
    stored = world.repo.get(stream_id)
    assert stored is not None and stored.signed_urls is True


def test_a_public_stream_never_asks_the_signer(world: World) -> None:
    stream_id = world.new_stream(people.OWNER)[0].id

    class Refusing:
        def sign(self, media_uid: str, *, downloadable: bool = False) -> object:
            raise UnavailableError("must not be called")

    playback = service(world)
    playback._tokens = Refusing()  # type: ignore[assignment]  # noqa: SLF001
    answer = playback.playback(None, stream_id)
    assert answer.requiresToken is False and answer.expiresAt is None
