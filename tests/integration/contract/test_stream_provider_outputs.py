"""The ``StreamProvider`` contract for simulcast outputs: the fake and the Cloudflare adapter
against our Stream emulator answer alike (create, list, toggle, delete; what is refused, what
is not found)."""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr

from common.models.domain import LiveInput, LiveInputSpec
from common.ports import (
    OutputSpec,
    ProviderNotFoundError,
    ProviderRejectedError,
    StreamProvider,
)

MAX_OUTPUTS = 50
YOUTUBE = "rtmp://a.rtmp.youtube.com/live2"


def new_input(provider: StreamProvider) -> LiveInput:
    spec = LiveInputSpec(
        stream_id=f"stream-{uuid.uuid4().hex}",
        name="Outputs contract",
        recording_timeout_seconds=1,
        allowed_origins=(),
    )
    return provider.create_live_input(spec)


def spec(key: str = "uzya-f19y-g2g9-a2ee-51j2", *, enabled: bool = True) -> OutputSpec:
    return OutputSpec(YOUTUBE, SecretStr(key), enabled)


def test_an_output_is_created_listed_toggled_and_deleted(provider: StreamProvider) -> None:
    live_input = new_input(provider)
    assert provider.list_outputs(live_input.uid) == []

    first = provider.create_output(live_input.uid, spec())
    second = provider.create_output(live_input.uid, spec("second-key-0000", enabled=False))

    assert first.uid and first.uid != second.uid
    assert (first.url, first.enabled) == (YOUTUBE, True)
    assert first.stream_key.get_secret_value() == "uzya-f19y-g2g9-a2ee-51j2"
    assert second.enabled is False
    assert [o.uid for o in provider.list_outputs(live_input.uid)] == [first.uid, second.uid]

    toggled = provider.set_output_enabled(live_input.uid, second.uid, True)
    assert (toggled.uid, toggled.url, toggled.enabled) == (second.uid, YOUTUBE, True)
    assert toggled.stream_key.get_secret_value() == "second-key-0000"
    assert [o.enabled for o in provider.list_outputs(live_input.uid)] == [True, True]

    provider.delete_output(live_input.uid, first.uid)
    assert [o.uid for o in provider.list_outputs(live_input.uid)] == [second.uid]
    with pytest.raises(ProviderNotFoundError):
        provider.delete_output(live_input.uid, first.uid)


def test_outputs_of_an_unknown_input_are_not_found(provider: StreamProvider) -> None:
    missing = uuid.uuid4().hex
    with pytest.raises(ProviderNotFoundError):
        provider.list_outputs(missing)
    with pytest.raises(ProviderNotFoundError):
        provider.create_output(missing, spec())


def test_an_unknown_output_is_not_found(provider: StreamProvider) -> None:
    live_input = new_input(provider)
    with pytest.raises(ProviderNotFoundError):
        provider.set_output_enabled(live_input.uid, uuid.uuid4().hex, False)
    with pytest.raises(ProviderNotFoundError):
        provider.delete_output(live_input.uid, uuid.uuid4().hex)


def test_another_inputs_output_is_not_found_under_this_one(provider: StreamProvider) -> None:
    mine, theirs = new_input(provider), new_input(provider)
    output = provider.create_output(theirs.uid, spec())

    with pytest.raises(ProviderNotFoundError):
        provider.set_output_enabled(mine.uid, output.uid, False)
    assert provider.list_outputs(theirs.uid)[0].enabled is True


def test_a_url_that_is_not_rtmp_or_srt_is_refused(provider: StreamProvider) -> None:
    live_input = new_input(provider)
    with pytest.raises(ProviderRejectedError):
        provider.create_output(live_input.uid, OutputSpec("https://example.org/x", SecretStr("k")))
    assert provider.list_outputs(live_input.uid) == []


def test_an_input_holds_at_most_fifty_outputs(provider: StreamProvider) -> None:
    live_input = new_input(provider)
    for n in range(MAX_OUTPUTS):
        provider.create_output(live_input.uid, spec(f"key-{n:04d}"))

    with pytest.raises(ProviderRejectedError):
        provider.create_output(live_input.uid, spec("one-too-many"))
    assert len(provider.list_outputs(live_input.uid)) == MAX_OUTPUTS


def test_deleting_the_input_deletes_its_outputs(provider: StreamProvider) -> None:
    live_input = new_input(provider)
    provider.create_output(live_input.uid, spec())

    provider.delete_live_input(live_input.uid)

    with pytest.raises(ProviderNotFoundError):
        provider.list_outputs(live_input.uid)
