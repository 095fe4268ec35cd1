"""The emulator's media side: nginx-rtmp ingest (RTMP in, live HLS out, FLV recordings),
turned into Cloudflare-style videos by ffmpeg, with Cloudflare's two webhook systems.

Lifecycle, as on Cloudflare: a publish on an input's stream key starts (or, within the input's
``recording.timeoutSeconds`` after a disconnect, continues) a ``live-inprogress`` video; once the
timeout passes without a reconnect the recording is processed and the video becomes ``ready``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from emulators.cloudflare_stream.outputs import Relays
from emulators.cloudflare_stream.state import (
    DeliveryPlan,
    DownloadRecord,
    EmulatorState,
    LiveInputRecord,
    VideoRecord,
)

log = logging.getLogger(__name__)

# Cloudflare does not document the platform default for timeoutSeconds=0; locally, be quick.
PLATFORM_DEFAULT_TIMEOUT_S = 5.0
RECORD_FILE_WAIT_S = 15.0


def nginx_config(media_dir: Path, rtmp_port: int, callback_base: str) -> str:
    """An nginx.conf for RTMP ingest on 127.0.0.1 with HLS and recording into ``media_dir``."""
    # Started as root, nginx would hand its workers to `nobody`, who cannot enter private
    # temporary directories; keep them as the user who started the stack.
    user = "user root root;" if os.geteuid() == 0 else ""
    return f"""
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
{user}
worker_processes 1;
error_log {media_dir}/nginx-error.log info;
pid {media_dir}/nginx.pid;
events {{ worker_connections 256; }}
rtmp {{
  server {{
    listen 127.0.0.1:{rtmp_port};
    chunk_size 4096;
    application live {{
      live on;
      hls on;
      hls_path {media_dir}/hls;
      hls_nested on;
      hls_fragment 1s;
      hls_playlist_length 10s;
      record all;
      record_path {media_dir}/rec;
      record_unique on;
      on_publish {callback_base}/on_publish;
      on_update {callback_base}/on_update;
      notify_update_timeout 2s;
      on_publish_done {callback_base}/on_publish_done;
      on_record_done {callback_base}/on_record_done;
    }}
  }}
}}
"""


def prepare_media_dir(media_dir: Path) -> None:
    """Directories nginx's unprivileged workers can write to."""
    for sub in ("hls", "rec", "videos"):
        path = media_dir / sub
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o777)


def sign_stream_webhook(secret: str, body: bytes, at: int) -> str:
    """Cloudflare's ``Webhook-Signature`` header value for ``body`` sent at unix time ``at``."""
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"time={at},sig1={digest}"


@dataclass
class WebhookFaults:
    drop_next: int = 0
    duplicate: bool = False


@dataclass
class _Delivery:
    entry: dict[str, Any]
    body: bytes
    headers: dict[str, str]
    copies: int


@dataclass
class Webhooks:
    """Delivers the Stream webhook (HMAC-signed) and live-input notifications (shared secret).

    Under chaos (``state.chaos``) a delivery may be dropped, sent twice, or held back until the
    next delivery to the same URL about the same live input has gone out (reordered: the later
    event overtakes it; deliveries about other inputs, or to other destinations, which a real
    pipeline would not order against it anyway, leave it held)."""

    state: EmulatorState
    faults: WebhookFaults = field(default_factory=WebhookFaults)
    delivered: list[dict[str, Any]] = field(default_factory=list)
    # Held back for reordering, by destination URL and the live input (or video) it is about.
    _held: dict[tuple[str, str], _Delivery] = field(default_factory=dict)

    def video_event(self, video: VideoRecord) -> None:
        subscription = self.state.webhook
        if subscription is None:
            return
        body = json.dumps(self.state.video_json(video)).encode()
        headers = {
            "Content-Type": "application/json",
            "Webhook-Signature": sign_stream_webhook(
                subscription["secret"], body, int(time.time())
            ),
        }
        subject = video.live_input or video.uid
        self._send("stream", subscription["notificationUrl"], body, headers, subject=subject)

    def live_input_event(self, live_input: LiveInputRecord, event_type: str, **extra: Any) -> None:
        targets = self.state.live_notification_targets(live_input.uid, event_type)
        if not targets:
            return
        updated_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        data = {
            "notification_name": "Stream Live Input",
            "input_id": live_input.uid,
            "event_type": event_type,
            "updated_at": updated_at,
            **extra,
        }
        for policy, destination in targets:
            payload = {
                "name": policy.get("name") or "Stream Live Input",
                "text": f"Notification type: Stream Live Input\nInput ID: {live_input.uid}\n"
                f"Event type: {event_type}\nUpdated at: {updated_at}",
                "data": data,
                "ts": int(time.time()),
            }
            headers = {"Content-Type": "application/json"}
            if destination.get("secret"):
                headers["cf-webhook-auth"] = destination["secret"]
            self._send(
                "notification",
                destination["url"],
                json.dumps(payload).encode(),
                headers,
                {"destination": destination["id"], "policy": policy["id"], "event": event_type},
                subject=live_input.uid,
            )

    def _send(
        self,
        kind: str,
        url: str,
        body: bytes,
        headers: dict[str, str],
        about: dict[str, Any] | None = None,
        *,
        subject: str,
    ) -> None:
        """Deliver now, or as chaos has it; ``subject`` is the live input (or video) the
        delivery is about."""
        entry = {"kind": kind, "url": url, "subject": subject, **(about or {})}
        with self.state.lock:
            if self.faults.drop_next > 0:
                self.faults.drop_next -= 1
                self.delivered.append({**entry, "dropped": True})
                return
            chaos = self.state.chaos
            plan = chaos.delivery_plan() if chaos is not None else DeliveryPlan()
            if plan.drop:
                self.delivered.append({**entry, "dropped": True})
                return
            if plan.duplicate:
                entry["duplicated"] = True
            delivery = _Delivery(
                entry, body, headers, 2 if self.faults.duplicate or plan.duplicate else 1
            )
            # This delivery overtakes the one held back for its URL and subject, which follows.
            batch = [delivery]
            held_key = (url, subject)
            if held_key in self._held:
                batch.append(self._held.pop(held_key))
            elif plan.reorder and chaos is not None:
                entry["reordered"] = True
                self._held[held_key] = delivery
                release = threading.Timer(
                    chaos.rates.reorder_max_s, self._release, (held_key, delivery)
                )
                release.daemon = True
                release.start()
                return
        threading.Thread(target=self._deliver, args=(batch,), daemon=True).start()

    def release_held(self) -> None:
        """Send now the deliveries held back for reordering: the faults they were held under are
        being replaced, and they must not overtake (or be overtaken by) the next test's."""
        with self.state.lock:
            held = list(self._held.values())
            self._held.clear()
        if held:
            threading.Thread(target=self._deliver, args=(held,), daemon=True).start()

    def _release(self, held_key: tuple[str, str], delivery: _Delivery) -> None:
        """Send a held delivery that no later one overtook in time."""
        with self.state.lock:
            if self._held.get(held_key) is not delivery:
                return
            del self._held[held_key]
        self._deliver([delivery])

    def _deliver(self, batch: list[_Delivery]) -> None:
        for delivery in batch:
            entry = delivery.entry
            for _ in range(delivery.copies):
                try:
                    status = httpx.post(
                        entry["url"], content=delivery.body, headers=delivery.headers, timeout=10
                    ).status_code
                except httpx.HTTPError as exc:
                    status = None
                    log.warning("webhook to %s failed: %s", entry["url"], exc)
                with self.state.lock:
                    self.delivered.append({**entry, "status": status})


@dataclass
class Broadcasts:
    """Turns nginx-rtmp callbacks into Cloudflare live-input and video state."""

    state: EmulatorState
    media_dir: Path
    webhooks: Webhooks
    _timers: dict[str, threading.Timer] = field(default_factory=dict)
    # Simulcast: RTMP broadcasts relayed to the inputs' enabled outputs.
    relays: Relays = field(init=False)

    def __post_init__(self) -> None:
        self.relays = Relays(self.state, self.media_dir / "relays")

    def on_publish(self, stream_key: str) -> bool:
        with self.state.lock:
            live_input = self.state.input_by_key(stream_key)
            if live_input is None or not live_input.enabled:
                return False
            timer = self._timers.pop(live_input.uid, None)
            if timer is not None:
                timer.cancel()
            live_input.status = "connected"
            current = self.state.videos.get(live_input.current_video or "")
            if live_input.recording.get("mode") == "automatic" and current is None:
                current = self.state.new_video(live_input)
                live_input.current_video = current.uid
        self.relays.input_live(live_input.uid)
        self.webhooks.live_input_event(live_input, "live_input.connected")
        return True

    def on_webrtc_connected(self, input_uid: str) -> None:
        """A WHIP publisher is on air: live, but (as on Cloudflare) never recorded."""
        self._webrtc_status(input_uid, "connected", "live_input.connected")

    def on_webrtc_disconnected(self, input_uid: str) -> None:
        self._webrtc_status(input_uid, "client_disconnect", "live_input.disconnected")

    def _webrtc_status(self, input_uid: str, status: str, event: str) -> None:
        with self.state.lock:
            live_input = self.state.live_inputs.get(input_uid)
            if live_input is None:
                return
            live_input.status = status
        self.webhooks.live_input_event(live_input, event)

    def on_publish_done(self, stream_key: str) -> None:
        with self.state.lock:
            live_input = self.state.input_by_key(stream_key)
            if live_input is None:
                return
            live_input.status = "client_disconnect"
            video_uid = live_input.current_video
            timeout = float(live_input.recording.get("timeoutSeconds") or 0)
        self.relays.input_ended(live_input.uid)
        self.webhooks.live_input_event(live_input, "live_input.disconnected")
        if video_uid is not None:
            timer = threading.Timer(
                timeout or PLATFORM_DEFAULT_TIMEOUT_S, self._finalize, (live_input.uid, video_uid)
            )
            timer.daemon = True
            with self.state.lock:
                self._timers[live_input.uid] = timer
            timer.start()

    def on_record_done(self, stream_key: str, path: str) -> None:
        with self.state.lock:
            live_input = self.state.input_by_key(stream_key)
            video = self.state.videos.get(live_input.current_video or "") if live_input else None
            if video is not None:
                video.parts.append(path)

    def live_playlist_dir(self, live_input: LiveInputRecord) -> Path:
        return self.media_dir / "hls" / live_input.stream_key

    def video_dir(self, video_uid: str) -> Path:
        return self.media_dir / "videos" / video_uid

    def _finalize(self, input_uid: str, video_uid: str) -> None:
        with self.state.lock:
            self._timers.pop(input_uid, None)
            live_input = self.state.live_inputs.get(input_uid)
            if live_input is not None and live_input.current_video == video_uid:
                live_input.current_video = None
            video = self.state.videos.get(video_uid)
        if video is None:
            return
        self._process(video, lambda: self._transcode(video))

    def _process(self, video: VideoRecord, work: Callable[[], None]) -> None:
        """``work`` makes the video (``inprogress`` until then); the Stream webhook follows."""
        self._set_state(video, "inprogress")
        try:
            work()
        except (OSError, subprocess.CalledProcessError, ValueError) as exc:
            log.error("processing video %s failed: %s", video.uid, exc)
            with self.state.lock:
                video.state = "error"
                video.error_reason = "ERR_MALFORMED_VIDEO"
        self.webhooks.video_event(video)

    def start_clip(self, clip: VideoRecord, source: VideoRecord) -> None:
        """Cut ``clip`` (queued, with its bounds) from ``source``'s recording, in the
        background: re-encoded, so the cut is frame-accurate rather than on keyframes."""
        threading.Thread(
            target=self._process, args=(clip, lambda: self._cut(clip, source)), daemon=True
        ).start()

    def _cut(self, clip: VideoRecord, source: VideoRecord) -> None:
        start, end = clip.clip_bounds or (0, 0)
        out = self.video_dir(clip.uid)
        out.mkdir(parents=True, exist_ok=True)
        recording = self.video_dir(source.uid) / "recording.mp4"
        _ffmpeg(
            ["-ss", str(start), "-i", str(recording), "-t", str(end - start), "-map", "0"]
            + ["-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-pix_fmt", "yuv420p"]
            + ["-c:a", "aac", "-movflags", "+faststart", str(out / "recording.mp4")]
        )
        self._package(clip, out)

    def download_path(self, video_uid: str) -> Path:
        return self.video_dir(video_uid) / "default.mp4"

    def start_download(self, video: VideoRecord, record: DownloadRecord) -> None:
        """Make ``video``'s MP4 download (a remux of its HLS) in the background, reporting
        ffmpeg's progress in ``record``."""
        threading.Thread(target=self._make_download, args=(video, record), daemon=True).start()

    def _make_download(self, video: VideoRecord, record: DownloadRecord) -> None:
        partial = self.video_dir(video.uid) / "default.partial.mp4"

        def progress(seconds: float) -> None:
            with self.state.lock:
                done = 100 * seconds / video.duration if video.duration > 0 else 0
                record.percent_complete = round(min(99.0, max(record.percent_complete, done)), 3)

        try:
            _ffmpeg_progress(
                ["-i", str(self.video_dir(video.uid) / "video.m3u8"), "-map", "0", "-c", "copy"]
                + ["-bsf:a", "aac_adtstoasc", "-movflags", "+faststart", str(partial)],
                progress,
            )
            partial.replace(self.download_path(video.uid))
        except (OSError, subprocess.CalledProcessError) as exc:
            log.error("making the download of %s failed: %s", video.uid, exc)
            with self.state.lock:
                record.status = "error"
            return
        with self.state.lock:
            record.status, record.percent_complete = "ready", 100.0
            deleted = self.state.downloads.get(video.uid) is not record
        if deleted:  # DELETE /downloads came while ffmpeg ran
            self.download_path(video.uid).unlink(missing_ok=True)

    def _set_state(self, video: VideoRecord, state: str) -> None:
        with self.state.lock:
            video.state = state
            video.modified = datetime.now(UTC).isoformat().replace("+00:00", "Z")

    def _transcode(self, video: VideoRecord) -> None:
        parts = self._wait_for_parts(video)
        out = self.video_dir(video.uid)
        out.mkdir(parents=True, exist_ok=True)
        listing = out / "parts.txt"
        listing.write_text("".join(f"file '{p}'\n" for p in parts))
        _ffmpeg(
            [
                "-f",
                "concat",
                "-safe",
                "0",
                "-i",
                str(listing),
                "-c",
                "copy",
                str(out / "recording.mp4"),
            ]
        )
        self._package(video, out)

    def _package(self, video: VideoRecord, out: Path) -> None:
        """HLS, DASH and a thumbnail from ``out/recording.mp4``; the video becomes ready."""
        _ffmpeg(
            [
                "-i",
                str(out / "recording.mp4"),
                "-c",
                "copy",
                "-f",
                "hls",
                "-hls_time",
                "2",
                "-hls_playlist_type",
                "vod",
                "-hls_segment_filename",
                str(out / "seg_%03d.ts"),
                str(out / "video.m3u8"),
            ]
        )
        # DASH from the same recording (fragmented MP4 segments beside the manifest), as
        # Cloudflare serves both `playback.hls` and `playback.dash` for every video.
        _ffmpeg(
            [
                "-i",
                str(out / "recording.mp4"),
                "-map",
                "0",
                "-c",
                "copy",
                "-f",
                "dash",
                "-seg_duration",
                "2",
                "-use_template",
                "1",
                "-use_timeline",
                "1",
                "-init_seg_name",
                "init-$RepresentationID$.m4s",
                "-media_seg_name",
                "chunk-$RepresentationID$-$Number%05d$.m4s",
                str(out / "video.mpd"),
            ]
        )
        _ffmpeg(
            [
                "-i",
                str(out / "recording.mp4"),
                "-frames:v",
                "1",
                str(out / "thumbnail.jpg"),
            ]
        )
        duration = _probe_duration(out / "recording.mp4")
        width, height = _probe_resolution(out / "recording.mp4")
        with self.state.lock:
            video.duration = round(duration, 3)
            video.width, video.height = width, height
            video.size = (out / "recording.mp4").stat().st_size
            video.ready_to_stream = True
        self._set_state(video, "ready")

    def _wait_for_parts(self, video: VideoRecord) -> list[str]:
        deadline = time.monotonic() + RECORD_FILE_WAIT_S
        while time.monotonic() < deadline:
            with self.state.lock:
                parts = [p for p in video.parts if Path(p).exists()]
            if parts:
                return parts
            time.sleep(0.2)
        raise ValueError(f"no recording file arrived for video {video.uid}")


def _ffmpeg(arguments: list[str]) -> None:
    """ffmpeg, overwriting its outputs and saying only what went wrong."""
    _run(["ffmpeg", "-y", "-loglevel", "error", *arguments])


def _ffmpeg_progress(arguments: list[str], on_progress: Callable[[float], None]) -> None:
    """Like ``_ffmpeg``, calling ``on_progress`` with the seconds written so far."""
    if shutil.which("ffmpeg") is None:
        raise OSError("ffmpeg is not installed")
    argv = ["ffmpeg", "-y", "-loglevel", "error", "-nostats", "-progress", "pipe:1", *arguments]
    with subprocess.Popen(  # noqa: S603
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        for line in process.stdout or ():
            key, _, value = line.strip().partition("=")
            if key == "out_time_us" and value.isdigit():
                on_progress(int(value) / 1_000_000)
        errors = process.stderr.read() if process.stderr else ""
        process.wait(timeout=600)
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, argv, stderr=errors)


def _run(argv: list[str]) -> None:
    if shutil.which(argv[0]) is None:
        raise OSError(f"{argv[0]} is not installed")
    subprocess.run(argv, check=True, capture_output=True, timeout=600)  # noqa: S603


def _ffprobe(path: Path, *selection: str) -> str:
    """ffprobe's answer about ``path`` to ``selection`` (its -select_streams/-show_entries/-of
    arguments), stripped."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", *selection, str(path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout.strip()


def _probe_duration(path: Path) -> float:
    duration = _ffprobe(
        path, "-show_entries", "format=duration", "-of", "default=noprint_wrappers=1:nokey=1"
    )
    return float(duration)


def _probe_resolution(path: Path) -> tuple[int, int]:
    """The first video stream's width and height; (-1, -1), Cloudflare's "unknown", if none."""
    answer = _ffprobe(
        path, "-select_streams", "v:0", "-show_entries", "stream=width,height", "-of", "csv=p=0"
    )
    fields = answer.split(",")
    if len(fields) < 2 or not all(f.strip().isdigit() for f in fields[:2]):
        return -1, -1
    return int(fields[0]), int(fields[1])
