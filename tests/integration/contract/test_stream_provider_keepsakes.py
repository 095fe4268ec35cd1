"""The ``StreamProvider`` contract for keepsakes (MP4 downloads, clips, reading one video): the
fake and the Cloudflare adapter against our Stream emulator (a real broadcast there) answer
alike. Where the emulator's ffmpeg takes time, ``finish`` waits; the fake is told to finish."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from common.models.domain import ClipSpec, LiveInputSpec, Recording
from common.ports import ProviderNotFoundError, ProviderRejectedError, StreamProvider
from emulators.stack import LocalStack
from tests.fakes.provider import FakeStreamProvider
from tests.integration.test_broadcast_e2e import push, wait_for

BROADCAST_S = 4


@pytest.fixture(scope="module")
def broadcast_video() -> dict[str, Recording]:
    """The emulator's ready recording of one real broadcast, made once for the module."""
    return {}


@pytest.fixture
def ready_video(
    request: pytest.FixtureRequest, provider: StreamProvider, broadcast_video: dict[str, Recording]
) -> Recording:
    """A ready recording of a live input, as each implementation has one."""
    if isinstance(provider, FakeStreamProvider):
        recording = Recording(
            video_uid=f"video-{uuid.uuid4().hex[:8]}",
            live_input_uid="input-x",
            state="ready",
            ready_to_stream=True,
            duration=float(BROADCAST_S),
            created=datetime.now(UTC),
        )
        provider.recordings.setdefault("input-x", []).append(recording)
        return recording
    if "video" not in broadcast_video:
        stack: LocalStack = request.getfixturevalue("stack")
        spec = LiveInputSpec(
            stream_id=f"stream-{uuid.uuid4().hex}",
            name="Keepsakes contract",
            recording_timeout_seconds=1,
            allowed_origins=(),
        )
        live_input = provider.create_live_input(spec)
        key = live_input.stream_key.get_secret_value()
        assert push(stack.rtmp_url, key, BROADCAST_S).wait(timeout=60) == 0
        broadcast_video["video"] = wait_for(
            lambda: next((r for r in provider.list_recordings(live_input.uid) if r.is_ready), None),
            90,
            "the broadcast's recording",
        )
    return broadcast_video["video"]


def finish(provider: StreamProvider, check: Callable[[], Any], what: str) -> Any:
    """What ``check`` answers once the provider's work is done (the fake finishes at once)."""
    if not isinstance(provider, FakeStreamProvider):
        return wait_for(check, 90, what)
    for uid in list(provider.downloads):
        provider.progress_download(uid)
    for uid in list(provider.clips):
        provider.finish_clip(uid)
    return check()


def clip_spec(source: Recording, start: int, end: int) -> ClipSpec:
    return ClipSpec(
        source_uid=source.video_uid,
        start_time_seconds=start,
        end_time_seconds=end,
        stream_id="stream-keepsakes",
        name="trimmed",
        require_signed_urls=False,
        allowed_origins=("example.com",),
    )


def test_missing_videos_have_no_keepsakes(provider: StreamProvider) -> None:
    missing = uuid.uuid4().hex
    with pytest.raises(ProviderNotFoundError):
        provider.get_recording(missing)
    with pytest.raises(ProviderNotFoundError):
        provider.create_download(missing)
    with pytest.raises(ProviderNotFoundError):
        provider.get_download(missing)
    with pytest.raises(ProviderNotFoundError):
        provider.clip_recording(ClipSpec(**clip_spec_fields(missing)))


def clip_spec_fields(source_uid: str) -> dict[str, Any]:
    return {
        "source_uid": source_uid,
        "start_time_seconds": 0,
        "end_time_seconds": 1,
        "stream_id": "s",
        "name": "n",
    }


def test_a_download_is_made_once_and_becomes_ready(
    provider: StreamProvider, ready_video: Recording
) -> None:
    uid = ready_video.video_uid
    first = provider.create_download(uid)
    again = provider.create_download(uid)

    assert first.state in ("inprogress", "ready")
    assert first.url is not None and first.url.endswith(f"/{uid}/downloads/default.mp4")
    assert again.url == first.url
    done = finish(
        provider,
        lambda: (d := provider.get_download(uid)) is not None and d.state == "ready" and d,
        "the download",
    )
    assert (done.percent_complete, done.url) == (100, first.url)


def test_a_clip_is_a_new_video_without_live_input_cut_to_its_bounds(
    provider: StreamProvider, ready_video: Recording
) -> None:
    clip = provider.clip_recording(clip_spec(ready_video, 1, 3))
    try:
        assert clip.video_uid != ready_video.video_uid
        assert (clip.clipped_from, clip.live_input_uid, clip.is_ready) == (
            ready_video.video_uid,
            None,
            False,
        )
        assert clip.state in ("queued", "inprogress")
        ready = finish(
            provider,
            lambda: (r := provider.get_recording(clip.video_uid)).state in ("ready", "error") and r,
            "the clip",
        )
        assert ready.is_ready and ready.clipped_from == ready_video.video_uid
        assert ready.duration is not None and abs(ready.duration - 2) <= 1
        assert provider.get_download(clip.video_uid) is None  # none asked for yet
        if ready_video.live_input_uid:
            listed = provider.list_recordings(ready_video.live_input_uid)
            assert clip.video_uid not in {r.video_uid for r in listed}
    finally:
        provider.delete_recording(clip.video_uid)
    with pytest.raises(ProviderNotFoundError):
        provider.get_recording(clip.video_uid)


@pytest.mark.parametrize(("start", "end"), [(3, 2), (0, 10_000)])
def test_clip_bounds_outside_the_video_are_rejected(
    provider: StreamProvider, ready_video: Recording, start: int, end: int
) -> None:
    with pytest.raises(ProviderRejectedError):
        provider.clip_recording(clip_spec(ready_video, start, end))
