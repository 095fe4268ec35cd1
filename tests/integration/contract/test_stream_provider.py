"""The ``StreamProvider`` contract: the fake and the Cloudflare adapter (against our Stream
emulator) answer alike."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from common.models.domain import LiveInput, LiveInputSpec
from common.ports import (
    InputRecordingRules,
    ProviderNotFoundError,
    ProviderRejectedError,
    StreamProvider,
)


def spec(stream_id: str | None = None) -> LiveInputSpec:
    return LiveInputSpec(
        stream_id=stream_id or f"stream-{uuid.uuid4().hex}",
        name="Funeral service",
        recording_timeout_seconds=60,
        allowed_origins=("example.com",),
    )


def rules(origins: tuple[str, ...]) -> InputRecordingRules:
    return InputRecordingRules(allowed_origins=origins, timeout_seconds=60)


@pytest.fixture
def live_input(provider: StreamProvider) -> Iterator[LiveInput]:
    """A fresh live input, deleted afterwards."""
    made = provider.create_live_input(spec())
    yield made
    with contextlib.suppress(ProviderNotFoundError):
        provider.delete_live_input(made.uid)


def test_a_created_input_has_credentials_and_reads_back_disconnected(
    provider: StreamProvider,
) -> None:
    wanted = spec()
    made = provider.create_live_input(wanted)
    try:
        assert made.uid and made.rtmp_url and made.stream_key.get_secret_value()
        assert made.whip_url.get_secret_value().endswith("/webRTC/publish")
        assert made.stream_id == wanted.stream_id
        read = provider.get_live_input(made.uid)
        assert read.uid == made.uid and read.stream_id == wanted.stream_id
        assert read.connection == "disconnected"
        assert read.rtmp_url == made.rtmp_url and read.stream_key == made.stream_key
        assert read.whip_url == made.whip_url
    finally:
        provider.delete_live_input(made.uid)


def test_inputs_are_found_by_the_stream_id_they_are_tagged_with(
    provider: StreamProvider,
) -> None:
    stream_id = f"stream-{uuid.uuid4().hex}"
    first = provider.create_live_input(spec(stream_id))
    second = provider.create_live_input(spec(stream_id))
    other = provider.create_live_input(spec())
    try:
        found = provider.find_live_inputs(stream_id)
        assert sorted(f.uid for f in found) == sorted([first.uid, second.uid])
        assert all(f.created is not None for f in found)
        assert provider.find_live_inputs(f"stream-{uuid.uuid4().hex}") == []
    finally:
        for made in (first, second, other):
            provider.delete_live_input(made.uid)


def test_a_deleted_input_is_gone(provider: StreamProvider, live_input: LiveInput) -> None:
    provider.delete_live_input(live_input.uid)

    with pytest.raises(ProviderNotFoundError):
        provider.get_live_input(live_input.uid)
    with pytest.raises(ProviderNotFoundError):
        provider.delete_live_input(live_input.uid)
    assert provider.find_live_inputs(str(live_input.stream_id)) == []


def test_a_missing_input_is_not_found(provider: StreamProvider) -> None:
    missing = f"missing{uuid.uuid4().hex}"
    with pytest.raises(ProviderNotFoundError):
        provider.get_live_input(missing)
    with pytest.raises(ProviderNotFoundError):
        provider.delete_live_input(missing)
    with pytest.raises(ProviderNotFoundError):
        provider.set_input_allowed_origins(missing, rules(("example.com",)))


def test_a_new_input_has_no_recordings(provider: StreamProvider, live_input: LiveInput) -> None:
    assert provider.list_recordings(live_input.uid) == []


def test_a_missing_recording_is_not_found(provider: StreamProvider) -> None:
    missing = f"video{uuid.uuid4().hex}"
    with pytest.raises(ProviderNotFoundError):
        provider.delete_recording(missing)
    with pytest.raises(ProviderNotFoundError):
        provider.set_video_allowed_origins(missing, ("example.com",))


def test_allowed_origins_of_an_input_are_replaced_and_returned(
    provider: StreamProvider, live_input: LiveInput
) -> None:
    origins = ("example.com", "*.example.org")

    assert provider.set_input_allowed_origins(live_input.uid, rules(origins)) == origins
    assert provider.set_input_allowed_origins(live_input.uid, rules(())) == ()


def test_a_whip_offer_that_is_no_sdp_is_rejected(
    provider: StreamProvider, live_input: LiveInput
) -> None:
    with pytest.raises(ProviderRejectedError):
        provider.whip_offer(live_input.whip_url, "not an offer")


def test_whip_to_a_deleted_input_is_not_found(
    provider: StreamProvider, live_input: LiveInput
) -> None:
    provider.delete_live_input(live_input.uid)

    with pytest.raises(ProviderNotFoundError):
        provider.whip_offer(live_input.whip_url, "v=0\r\n")
    with pytest.raises(ProviderNotFoundError):
        provider.whip_end(f"{live_input.whip_url.get_secret_value()}/no-such-session")


def test_ending_an_unknown_whip_session_is_not_found(
    provider: StreamProvider, live_input: LiveInput
) -> None:
    with pytest.raises(ProviderNotFoundError):
        provider.whip_end(f"{live_input.whip_url.get_secret_value()}/no-such-session")
    with pytest.raises(ProviderNotFoundError):
        provider.whip_offer(SecretStr(f"{live_input.whip_url.get_secret_value()}x"), "v=0\r\n")
