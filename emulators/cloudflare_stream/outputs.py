"""Simulcast outputs of the emulator's live inputs, relayed for real.

As on Cloudflare (``stream-live/simulcasting``), a live input may have up to 50 outputs, each an
RTMP(S) or SRT URL with a stream key; while a broadcast arrives over RTMP, every enabled output
gets a copy of it at ``url + "/" + streamKey``. Here each relay is one ffmpeg reading the input
back from the local nginx-rtmp server (``-c copy``, no re-encoding) and pushing it on. Enabling
an output mid-broadcast starts its relay, disabling or deleting it stops it, and the broadcast
ending stops them all. Browser (WHIP) broadcasts are never relayed: Cloudflare does not
simulcast WebRTC inputs.

Only processes started here are stopped, each by its own ``Popen`` handle.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from emulators.cloudflare_stream.state import EmulatorState, OutputRecord

log = logging.getLogger(__name__)

MAX_OUTPUTS = 50
OUTPUT_SCHEMES = ("rtmp", "rtmps", "srt")
# nginx-rtmp accepts the publish only once its on_publish callback has answered: wait that out.
RELAY_START_DELAY_S = 0.3
RELAY_RESTART_MAX_S = 5.0
STOP_GRACE_S = 5.0


def output_problem(body: Any) -> str | None:
    """Why a ``POST /live_inputs/{uid}/outputs`` body is refused (Cloudflare's 400), if it is."""
    if not isinstance(body, dict):
        return "Invalid request body"
    url, key = body.get("url"), body.get("streamKey")
    if not isinstance(url, str) or not url:
        return "url is required"
    if not isinstance(key, str):
        return "streamKey is required"
    if "enabled" in body and not isinstance(body["enabled"], bool):
        return "enabled must be a boolean"
    parts = urlsplit(url)
    if parts.scheme not in OUTPUT_SCHEMES or not parts.hostname:
        return "url must be an rtmp://, rtmps:// or srt:// URL"
    return None


def new_output(body: dict[str, Any]) -> OutputRecord:
    return OutputRecord(
        uid=secrets.token_hex(16),
        url=str(body["url"]),
        stream_key=str(body["streamKey"]),
        enabled=body.get("enabled", True) is not False,
    )


def relay_command(source: str, output: OutputRecord) -> list[str]:
    """The ffmpeg that copies ``source`` to ``output`` as Cloudflare would send it."""
    # A second of probing, not ffmpeg's five: the destination sees the broadcast at once.
    argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin"]
    argv += ["-analyzeduration", "1000000", "-i", source]
    argv += ["-map", "0", "-c", "copy"]
    if output.url.startswith("srt://"):
        separator = "&" if "?" in output.url else "?"
        return [*argv, "-f", "mpegts", f"{output.url}{separator}streamid={output.stream_key}"]
    return [*argv, "-f", "flv", f"{output.url.rstrip('/')}/{output.stream_key}"]


@dataclass
class _Relay:
    """One output's ffmpeg, started again (with a growing pause) if it exits while wanted: a
    destination that refuses a moment is tried again, as Cloudflare keeps trying."""

    argv: list[str]
    log_path: Path
    _stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        pause = RELAY_START_DELAY_S
        while not self._stopping.wait(pause):
            with self._lock:
                if self._stopping.is_set():
                    return
                with self.log_path.open("ab") as errors:
                    self._process = subprocess.Popen(  # noqa: S603 - our own argv
                        self.argv,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=errors,
                    )
                self.starts += 1
                process = self._process
            code = process.wait()
            if not self._stopping.is_set():
                # Not the argv: its last word carries the stream key.
                log.warning("relay %s exited with %s; starting it again", self.log_path.stem, code)
            pause = min(RELAY_RESTART_MAX_S, max(1.0, pause * 2))

    def stop(self) -> None:
        """Stop relaying: the ffmpeg started here ends (SIGTERM, then SIGKILL)."""
        self._stopping.set()
        with self._lock:
            process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_GRACE_S)


@dataclass
class Relays:
    """Which outputs are being relayed: those enabled on an input that is live over RTMP."""

    state: EmulatorState
    log_dir: Path
    _live: set[str] = field(default_factory=set)
    _running: dict[tuple[str, str], _Relay] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def input_live(self, input_uid: str) -> None:
        """An RTMP publisher is on the input: relay it to every enabled output."""
        with self._lock:
            self._live.add(input_uid)
        self.sync(input_uid)

    def input_ended(self, input_uid: str) -> None:
        """The publisher left (or the input is gone): every relay of the input stops."""
        with self._lock:
            self._live.discard(input_uid)
        self.sync(input_uid)

    def sync(self, input_uid: str) -> None:
        """Start the relays the input's enabled outputs want, stop those none wants."""
        with self.state.lock:
            live_input = self.state.live_inputs.get(input_uid)
            outputs = dict(live_input.outputs) if live_input is not None else {}
            source = f"{self.state.rtmp_base}{live_input.stream_key}" if live_input else ""
        with self._lock:
            live = input_uid in self._live
            wanted = {uid for uid, o in outputs.items() if o.enabled} if live else set()
            mine = {key for key in self._running if key[0] == input_uid}
            ending = [self._running.pop(key) for key in mine if key[1] not in wanted]
            for output_uid in wanted - {key[1] for key in mine}:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                relay = _Relay(
                    relay_command(source, outputs[output_uid]),
                    self.log_dir / f"{input_uid}-{output_uid}.log",
                )
                self._running[(input_uid, output_uid)] = relay
                relay.start()
        for relay in ending:
            relay.stop()

    def relaying(self, input_uid: str) -> list[str]:
        """The outputs of the input being relayed now (the emulator's control API)."""
        with self._lock:
            return [output for (uid, output) in self._running if uid == input_uid]

    def stop_all(self) -> None:
        """Stop every relay (the emulator is stopping)."""
        with self._lock:
            self._live.clear()
            ending = list(self._running.values())
            self._running.clear()
        for relay in ending:
            relay.stop()
