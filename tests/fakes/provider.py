"""The video platform in memory: live inputs, recordings, keepsakes, outputs and WHIP, with
failures that can be queued per operation (it answers like the Cloudflare emulator: the
contract suite in tests/integration/contract runs both)."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import datetime

from pydantic import SecretStr

from common import ports
from common.models import domain
from tests.fakes import FixedClock

# Cloudflare's limit of outputs per live input, and the schemes it relays to.
MAX_OUTPUTS = 50
OUTPUT_SCHEMES = ("rtmp://", "rtmps://", "srt://")


class FakeStreamProvider:
    """``StreamProvider`` in memory, with failures that can be queued per operation; it
    answers like the Cloudflare emulator (contract suite: tests/integration/contract)."""

    def __init__(self, clock: FixedClock | None = None) -> None:
        self.clock = clock or FixedClock()
        self.inputs: dict[str, tuple[domain.LiveInputSpec, domain.LiveInput]] = {}
        self.recordings: dict[str, list[domain.Recording]] = {}
        self.failures: dict[str, list[ports.ProviderError]] = {}
        self.create_succeeds_before_failing = False
        self.created: dict[str, datetime] = {}
        self.origins: dict[str, tuple[str, ...]] = {}
        self.signed: dict[str, bool] = {}  # media uid -> requires signed URLs
        self.disabled: set[str] = set()  # inputs that refuse publishers
        self.whip_offers: list[tuple[str, str]] = []
        self.whip_ended: list[str] = []
        self.whip_resources: dict[str, str] = {}  # session resource URL -> live input uid
        self.calls: list[str] = []
        # Clips (never listed by an input's videos, as at Cloudflare) and MP4 downloads.
        self.clips: dict[str, domain.Recording] = {}
        self.clip_specs: dict[str, domain.ClipSpec] = {}
        self.downloads: dict[str, domain.DownloadStatus] = {}
        # Audience: live viewers per input, minutes viewed per video, and the analytics asked.
        self.viewers: dict[str, int] = {}
        self.minutes: dict[str, float] = {}
        self.minutes_asked: list[tuple[tuple[str, ...], datetime, datetime]] = []
        # Simulcast outputs per input, in the order added (as the emulator lists them).
        self.outputs: dict[str, dict[str, ports.LiveOutput]] = {}
        self._ids = itertools.count(1)

    def fail(self, operation: str, error: ports.ProviderError) -> None:
        self.failures.setdefault(operation, []).append(error)

    def _maybe_fail(self, operation: str) -> None:
        self.calls.append(operation)
        queued = self.failures.get(operation)
        if queued:
            raise queued.pop(0)

    def create_live_input(self, spec: domain.LiveInputSpec) -> domain.LiveInput:
        uid = f"input-{next(self._ids)}"
        live_input = domain.LiveInput(
            uid=uid,
            rtmp_url="rtmp://ingest.test/live/",
            stream_key=SecretStr(f"key-{uid}"),
            whip_url=SecretStr(f"https://ingest.test/secret-{uid}/webRTC/publish"),
            whep_url=f"https://ingest.test/{uid}/webRTC/play",
            connection="disconnected",
            stream_id=spec.stream_id,
        )
        self.created[uid] = self.clock.now()
        self.signed[uid] = spec.require_signed_urls
        if self.create_succeeds_before_failing:
            self.inputs[uid] = (spec, live_input)
        self._maybe_fail("create_live_input")
        self.inputs[uid] = (spec, live_input)
        return live_input

    def get_live_input(self, uid: str) -> domain.LiveInput:
        self._maybe_fail("get_live_input")
        if uid not in self.inputs:
            raise ports.ProviderNotFoundError(uid, status=404)
        return self.inputs[uid][1]

    def find_live_inputs(self, stream_id: str) -> list[ports.TaggedLiveInput]:
        self._maybe_fail("find_live_inputs")
        return [
            ports.TaggedLiveInput(uid, self.created.get(uid))
            for uid, (spec, _) in self.inputs.items()
            if spec.stream_id == stream_id
        ]

    def delete_live_input(self, uid: str) -> None:
        self._maybe_fail("delete_live_input")
        if self.inputs.pop(uid, None) is None:
            raise ports.ProviderNotFoundError(uid, status=404)
        self.outputs.pop(uid, None)

    def _outputs_of(self, live_input_uid: str) -> dict[str, ports.LiveOutput]:
        if live_input_uid not in self.inputs:
            raise ports.ProviderNotFoundError(live_input_uid, status=404)
        return self.outputs.setdefault(live_input_uid, {})

    def list_outputs(self, live_input_uid: str) -> list[ports.LiveOutput]:
        self._maybe_fail("list_outputs")
        return list(self._outputs_of(live_input_uid).values())

    def create_output(self, live_input_uid: str, spec: ports.OutputSpec) -> ports.LiveOutput:
        self._maybe_fail("create_output")
        outputs = self._outputs_of(live_input_uid)
        if not spec.url.startswith(OUTPUT_SCHEMES):
            raise ports.ProviderRejectedError("output url must be rtmp(s) or srt (400)", status=400)
        if len(outputs) >= MAX_OUTPUTS:
            raise ports.ProviderRejectedError(
                "too many outputs for this live input (400)", status=400
            )
        uid = f"output-{next(self._ids)}"
        output = ports.LiveOutput(uid, spec.url, spec.stream_key, spec.enabled)
        outputs[uid] = output
        return output

    def set_output_enabled(
        self, live_input_uid: str, output_uid: str, enabled: bool
    ) -> ports.LiveOutput:
        self._maybe_fail("set_output_enabled")
        outputs = self._outputs_of(live_input_uid)
        if output_uid not in outputs:
            raise ports.ProviderNotFoundError(output_uid, status=404)
        outputs[output_uid] = dataclasses.replace(outputs[output_uid], enabled=enabled)
        return outputs[output_uid]

    def delete_output(self, live_input_uid: str, output_uid: str) -> None:
        self._maybe_fail("delete_output")
        if self._outputs_of(live_input_uid).pop(output_uid, None) is None:
            raise ports.ProviderNotFoundError(output_uid, status=404)

    def delete_recording(self, video_uid: str) -> None:
        self._maybe_fail("delete_recording")
        self.downloads.pop(video_uid, None)
        if self.clips.pop(video_uid, None) is not None:
            return
        for uid, videos in self.recordings.items():
            kept = [v for v in videos if v.video_uid != video_uid]
            if len(kept) != len(videos):
                self.recordings[uid] = kept
                return
        raise ports.ProviderNotFoundError(video_uid, status=404)

    def list_recordings(self, live_input_uid: str) -> list[domain.Recording]:
        self._maybe_fail("list_recordings")
        return list(self.recordings.get(live_input_uid, []))

    def set_input_enabled(self, uid: str, enabled: bool) -> None:
        self._maybe_fail("set_input_enabled")
        if uid not in self.inputs:
            raise ports.ProviderNotFoundError(uid, status=404)
        if enabled:
            self.disabled.discard(uid)
            return
        self.disabled.add(uid)
        spec, live_input = self.inputs[uid]
        # Disabling ends what is on air, as Cloudflare does.
        self.inputs[uid] = (spec, live_input.model_copy(update={"connection": "disconnected"}))

    def set_input_allowed_origins(
        self, uid: str, rules: ports.InputRecordingRules
    ) -> tuple[str, ...]:
        self._maybe_fail("set_input_allowed_origins")
        if uid not in self.inputs:
            raise ports.ProviderNotFoundError(uid, status=404)
        self.origins[uid] = rules.allowed_origins
        self.signed[uid] = rules.require_signed_urls
        return rules.allowed_origins

    def set_video_signed_urls(self, video_uid: str, required: bool) -> None:
        self._maybe_fail("set_video_signed_urls")
        if not any(v.video_uid == video_uid for vs in self.recordings.values() for v in vs):
            raise ports.ProviderNotFoundError(video_uid, status=404)
        self.signed[video_uid] = required

    def set_video_allowed_origins(self, video_uid: str, origins: tuple[str, ...]) -> None:
        self._maybe_fail("set_video_allowed_origins")
        if not any(v.video_uid == video_uid for vs in self.recordings.values() for v in vs):
            raise ports.ProviderNotFoundError(video_uid, status=404)
        self.origins[video_uid] = origins

    def _video(self, video_uid: str) -> domain.Recording:
        everything = [*self.clips.values(), *(v for vs in self.recordings.values() for v in vs)]
        found = next((v for v in everything if v.video_uid == video_uid), None)
        if found is None:
            raise ports.ProviderNotFoundError(video_uid, status=404)
        return found

    def create_download(self, video_uid: str) -> domain.DownloadStatus:
        self._maybe_fail("create_download")
        if not self._video(video_uid).is_ready:
            raise ports.ProviderRejectedError("Video is not ready (400)", status=400)
        current = self.downloads.get(video_uid)
        if current is None or current.state == "error":
            url = f"https://delivery.test/{video_uid}/downloads/default.mp4"
            current = self.downloads[video_uid] = domain.DownloadStatus(state="inprogress", url=url)
        return current

    def get_download(self, video_uid: str) -> domain.DownloadStatus | None:
        self._maybe_fail("get_download")
        self._video(video_uid)
        return self.downloads.get(video_uid)

    def progress_download(
        self, video_uid: str, state: domain.DownloadProgress = "ready", percent: float = 100
    ) -> None:
        """Cloudflare's work on a download: ``state`` reached at ``percent``."""
        current = self.downloads[video_uid]
        self.downloads[video_uid] = current.model_copy(
            update={"state": state, "percent_complete": percent}
        )

    def get_recording(self, video_uid: str) -> domain.Recording:
        self._maybe_fail("get_recording")
        return self._video(video_uid)

    def clip_recording(self, spec: domain.ClipSpec) -> domain.Recording:
        self._maybe_fail("clip_recording")
        source = self._video(spec.source_uid)
        if not (source.is_ready and source.duration is not None):
            raise ports.ProviderRejectedError(
                "the video to clip from is not ready (400)", status=400
            )
        if not 0 <= spec.start_time_seconds < spec.end_time_seconds <= source.duration:
            raise ports.ProviderRejectedError("clip bounds out of range (400)", status=400)
        uid = f"clip-{next(self._ids)}"
        clip = domain.Recording(
            video_uid=uid,
            live_input_uid=None,
            state="queued",
            ready_to_stream=False,
            created=self.clock.now(),
            modified=self.clock.now(),
            clipped_from=source.video_uid,
        )
        self.clips[uid] = clip
        self.clip_specs[uid] = spec
        return clip

    def live_viewers(self, live_input_uid: str) -> int | None:
        self._maybe_fail("live_viewers")
        return self.viewers.get(live_input_uid, 0) if live_input_uid in self.inputs else None

    def minutes_viewed(
        self, video_uids: tuple[str, ...], since: datetime, until: datetime
    ) -> float:
        self._maybe_fail("minutes_viewed")
        self.minutes_asked.append((video_uids, since, until))
        return sum(self.minutes.get(uid, 0.0) for uid in video_uids)

    def finish_clip(self, video_uid: str, state: str = "ready") -> domain.Recording:
        """Cloudflare has cut the clip (or failed to): it is ``state`` now."""
        spec, now = self.clip_specs[video_uid], self.clock.now()
        ready = state == "ready"
        duration = float(spec.end_time_seconds - spec.start_time_seconds)
        hls = f"https://delivery.test/{video_uid}/manifest/video.m3u8"
        finished = self.clips[video_uid].model_copy(
            update={
                "state": state,
                "ready_to_stream": ready,
                "duration": duration if ready else None,
                "hls_url": hls if ready else None,
                "modified": now,
            }
        )
        self.clips[video_uid] = finished
        return finished

    def whip_offer(self, whip_url: SecretStr, offer_sdp: str) -> domain.WhipAnswer:
        self._maybe_fail("whip_offer")
        url = whip_url.get_secret_value()
        uid = next((u for u, (_, i) in self.inputs.items() if i.whip_url == whip_url), None)
        if uid is None:
            raise ports.ProviderNotFoundError("WHIP resource not found", status=404)
        if uid in self.disabled:
            raise ports.ProviderRejectedError("WHIP endpoint refused (403): disabled", status=403)
        if not offer_sdp.startswith("v=0"):
            raise ports.ProviderRejectedError(
                "WHIP endpoint refused (400): not an SDP offer", status=400
            )
        self.whip_offers.append((url, offer_sdp))
        resource_url = f"{url}/s{next(self._ids)}"
        self.whip_resources[resource_url] = uid
        return domain.WhipAnswer(sdp="v=0\r\nanswer", resource_url=resource_url)

    def whip_end(self, resource_url: str) -> None:
        self._maybe_fail("whip_end")
        if self.whip_resources.pop(resource_url, None) not in self.inputs:
            raise ports.ProviderNotFoundError("WHIP resource not found", status=404)
        self.whip_ended.append(resource_url)
