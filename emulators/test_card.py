"""A synthetic RTMP encoder: ffmpeg pushing a test card and a tone, as OBS would (H.264 +
AAC, 1 s GOP). Used by the tests and the benchmarks to broadcast to the local stack."""

from __future__ import annotations

import subprocess


def push_test_card(rtmp_url: str, stream_key: str, seconds: float) -> subprocess.Popen[bytes]:
    """Start broadcasting to ``rtmp_url + stream_key`` for ``seconds``; returns the encoder."""
    return subprocess.Popen(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=640x360:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            str(seconds),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-tune",
            "zerolatency",
            "-g",
            "30",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-f",
            "flv",
            f"{rtmp_url}{stream_key}",
        ],
    )
