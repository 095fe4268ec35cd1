"""Cloudflare Stream's video webhook as the tests send it to our backend: the body Cloudflare
posts for a video of a live input, signed like the emulator signs it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from emulators.cloudflare_stream.media import sign_stream_webhook

__all__ = ["sign_stream_webhook", "video_webhook_body"]


def video_webhook_body(
    uid: str, live_input: str, state: str, created: datetime, delivery_base: str
) -> bytes:
    """The webhook body of video ``uid`` of ``live_input`` in ``state`` (``ready`` once
    processed, with its playback and thumbnail URLs under ``delivery_base``)."""
    ready = state == "ready"
    return json.dumps(
        {
            "uid": uid,
            "liveInput": live_input,
            "readyToStream": ready,
            "status": {"state": state},
            "duration": 120.0 if ready else -1,
            "created": created.isoformat(),
            "modified": (created + timedelta(seconds=90 if ready else 10)).isoformat(),
            "playback": {
                "hls": f"{delivery_base}/{uid}/manifest/video.m3u8",
                "dash": f"{delivery_base}/{uid}/manifest/video.mpd",
            },
            "thumbnail": f"{delivery_base}/{uid}/thumbnails/thumbnail.jpg",
            "meta": {"name": uid},
        }
    ).encode()
