"""In-memory state of the Cloudflare Stream emulator: live inputs, videos, webhook, faults."""

from __future__ import annotations

import random
import secrets
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from emulators.cloudflare_stream.signing import Keyring


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _uid() -> str:
    return secrets.token_hex(16)


@dataclass
class LiveInputRecord:
    uid: str
    meta: dict[str, Any]
    recording: dict[str, Any]
    delete_recording_after_days: int | None
    enabled: bool
    stream_key: str
    whip_secret: str
    created: str = field(default_factory=_now)
    modified: str = field(default_factory=_now)
    status: str | None = None
    current_video: str | None = None
    prefer_low_latency: bool = False
    # Simulcast outputs by uid, in the order they were added (``emulators/.../outputs.py``).
    outputs: dict[str, OutputRecord] = field(default_factory=dict)


@dataclass
class OutputRecord:
    """A simulcast output: while the input is live over RTMP, enabled ones are relayed to
    ``url + "/" + stream_key``."""

    uid: str
    url: str
    stream_key: str
    enabled: bool = True

    def json(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "url": self.url,
            "streamKey": self.stream_key,
            "enabled": self.enabled,
        }


@dataclass
class VideoRecord:
    uid: str
    live_input: str | None
    meta: dict[str, Any]
    state: str
    ready_to_stream: bool = False
    duration: float = -1
    size: int = 0
    allowed_origins: list[str] = field(default_factory=list)
    created: str = field(default_factory=_now)
    modified: str = field(default_factory=_now)
    parts: list[str] = field(default_factory=list)
    error_reason: str = ""
    # ffprobe's answer once processed; -1 is Cloudflare's "unknown".
    width: int = -1
    height: int = -1
    require_signed_urls: bool = False
    # A clip (POST /stream/clip): the video it was cut from and its bounds in seconds.
    clipped_from: str | None = None
    clip_bounds: tuple[int, int] | None = None


@dataclass
class DownloadRecord:
    """A video's MP4 download (``/downloads``, type ``default``) while ffmpeg makes it."""

    status: str = "inprogress"  # inprogress | ready | error
    percent_complete: float = 0.0


@dataclass
class Fault:
    """One injected failure, for the next request matching ``method`` and ``path_suffix``.

    ``delay_s`` holds the request first; with no ``status`` it then goes through, so a client
    that gave up meanwhile does not know its write happened (the ambiguous timeout).
    """

    status: int | None
    retry_after_s: int | None = None
    method: str | None = None
    path_suffix: str | None = None
    delay_s: float = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path_suffix is None or path.endswith(self.path_suffix)
        )


# A request carrying this header is never hit by chaos faults: the chaos harness reads the
# ground truth with it while the backend's own calls keep meeting faults.
CHAOS_EXEMPT_HEADER = "X-Emulator-Chaos-Exempt"
SERVER_ERROR_STATUSES = (500, 502, 503, 504)


def _rate(key: str, value: Any) -> float:
    rate = float(value)
    if not 0 <= rate <= 1:
        raise ValueError(f"{key} must be between 0 and 1")
    return rate


def _whole(_key: str, value: Any) -> int:
    return int(value)


def _from_ms(_key: str, value: Any) -> float:
    return float(value) / 1000


def _control(key: str, read: Callable[[str, Any], float], default: float) -> Any:
    """A ``ChaosRates`` field that ``from_json`` sets from ``key`` by ``read`` (``default``,
    in the field's own unit, where the key is left out)."""
    return field(default=default, metadata={"control": (key, read)})


@dataclass(frozen=True)
class ChaosRates:
    """Probabilities of each fault, per API request or per webhook delivery, and their sizes.

    A timeout holds the request ``timeout_s`` (longer than the client's read timeout) and then
    carries it out, as an overloaded edge would: the caller does not know its write happened.
    A reordered delivery is held until the next delivery to the same URL about the same live
    input has gone out (at most ``reorder_max_s``), so the later event overtakes it.
    """

    seed: int
    server_error: float = _control("serverErrorRate", _rate, 0.0)
    rate_limited: float = _control("rateLimitRate", _rate, 0.0)
    retry_after_s: int = _control("retryAfter", _whole, 1)
    timeout: float = _control("timeoutRate", _rate, 0.0)
    timeout_s: float = _control("timeoutMs", _from_ms, 7.0)
    webhook_drop: float = _control("webhookDropRate", _rate, 0.0)
    webhook_duplicate: float = _control("webhookDuplicateRate", _rate, 0.0)
    webhook_reorder: float = _control("webhookReorderRate", _rate, 0.0)
    reorder_max_s: float = _control("reorderMaxMs", _from_ms, 8.0)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ChaosRates:
        """From the ``chaos`` object of ``POST /__emulator/faults`` (camelCase, ms): each field
        from the key its ``_control`` names, in field order, so the first bad value is the one
        refused."""
        seed = int(body.get("seed", 0))
        values: dict[str, Any] = {}
        for entry in fields(cls):
            if "control" in entry.metadata:
                key, read = entry.metadata["control"]
                if key in body:
                    values[entry.name] = read(key, body[key])
        return cls(seed, **values)


@dataclass(frozen=True)
class DeliveryPlan:
    """What chaos does to one webhook delivery."""

    drop: bool = False
    duplicate: bool = False
    reorder: bool = False


@dataclass
class Chaos:
    """Seeded, probabilistic faults. API requests and webhook deliveries draw from separate
    generators seeded from ``rates.seed``, so the sequence of decisions of each is the same on
    every run with that seed (which request meets which decision follows arrival order)."""

    rates: ChaosRates
    api_random: random.Random = field(init=False)
    webhook_random: random.Random = field(init=False)
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.api_random = random.Random(f"{self.rates.seed}:api")  # noqa: S311 - not crypto
        self.webhook_random = random.Random(f"{self.rates.seed}:webhooks")  # noqa: S311

    def api_fault(self) -> Fault | None:
        """The fault for the next API request, if any (one draw per request)."""
        draw = self.api_random.random()
        status = self.api_random.choice(SERVER_ERROR_STATUSES)
        rates = self.rates
        if draw < rates.server_error:
            self.counts["api_5xx"] += 1
            return Fault(status)
        draw -= rates.server_error
        if draw < rates.rate_limited:
            self.counts["api_429"] += 1
            return Fault(429, retry_after_s=rates.retry_after_s)
        draw -= rates.rate_limited
        if draw < rates.timeout:
            self.counts["api_timeout"] += 1
            return Fault(None, delay_s=rates.timeout_s)
        self.counts["api_ok"] += 1
        return None

    def delivery_plan(self) -> DeliveryPlan:
        """What happens to the next webhook delivery (three draws per delivery)."""
        drop, duplicate, reorder = (self.webhook_random.random() for _ in range(3))
        dropped = drop < self.rates.webhook_drop
        plan = DeliveryPlan(
            drop=dropped,
            duplicate=not dropped and duplicate < self.rates.webhook_duplicate,
            reorder=not dropped and reorder < self.rates.webhook_reorder,
        )
        for name in ("drop", "duplicate", "reorder"):
            if getattr(plan, name):
                self.counts[f"webhook_{name}"] += 1
        self.counts["webhooks"] += 1
        return plan


@dataclass
class EmulatorState:
    """Everything the emulator knows; one lock guards it all."""

    account_id: str
    api_token: str
    public_base: str
    rtmp_base: str
    lock: threading.RLock = field(default_factory=threading.RLock)
    live_inputs: dict[str, LiveInputRecord] = field(default_factory=dict)
    videos: dict[str, VideoRecord] = field(default_factory=dict)
    webhook: dict[str, str] | None = None
    # Notifications (alerting v3): webhook destinations and the policies that route to them.
    notification_destinations: dict[str, dict[str, Any]] = field(default_factory=dict)
    notification_policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    whip_requests: list[dict[str, Any]] = field(default_factory=list)
    latency_s: float = 0.0
    pending_faults: list[Fault] = field(default_factory=list)
    request_count: int = 0
    chaos: Chaos | None = None
    # Signed URLs' keys (POST /stream/keys, and the one /token signs with); MP4 downloads.
    keyring: Keyring = field(default_factory=Keyring)
    downloads: dict[str, DownloadRecord] = field(default_factory=dict)

    def new_live_input(self, body: dict[str, Any]) -> LiveInputRecord:
        record = LiveInputRecord(
            uid=_uid(),
            meta=dict(body.get("meta") or {}),
            recording=recording_settings(body.get("recording")),
            delete_recording_after_days=body.get("deleteRecordingAfterDays"),
            enabled=body.get("enabled", True) is not False,
            prefer_low_latency=body.get("preferLowLatency") is True,
            stream_key=secrets.token_hex(16) + "k" + secrets.token_hex(7),
            whip_secret=secrets.token_hex(16) + secrets.token_hex(16),
        )
        with self.lock:
            self.live_inputs[record.uid] = record
        return record

    def input_by_key(self, stream_key: str) -> LiveInputRecord | None:
        with self.lock:
            return next((r for r in self.live_inputs.values() if r.stream_key == stream_key), None)

    def new_video(self, live_input: LiveInputRecord) -> VideoRecord:
        stamp = datetime.now(UTC).strftime("%d %b %y %H:%M UTC")
        name = f"{live_input.meta.get('name', live_input.uid)} {stamp}"
        video = VideoRecord(
            uid=_uid(),
            live_input=live_input.uid,
            meta={**live_input.meta, "name": name},
            state="live-inprogress",
            allowed_origins=list(live_input.recording.get("allowedOrigins") or []),
            require_signed_urls=live_input.recording.get("requireSignedURLs") is True,
        )
        with self.lock:
            self.videos[video.uid] = video
        return video

    def new_clip(self, source: VideoRecord, body: dict[str, Any]) -> VideoRecord:
        """A queued video cut from ``source`` (``POST /stream/clip``): its own uid, no live
        input, and the body's ``allowedOrigins``/``requireSignedURLs``/``meta`` (schema
        defaults when absent, not the source's)."""
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else None
        video = VideoRecord(
            uid=_uid(),
            live_input=None,
            meta=dict(meta or {"name": f"{source.meta.get('name', source.uid)} (clip)"}),
            state="queued",
            allowed_origins=[str(o) for o in body.get("allowedOrigins") or []],
            require_signed_urls=body.get("requireSignedURLs") is True,
            clipped_from=source.uid,
            clip_bounds=(int(body["startTimeSeconds"]), int(body["endTimeSeconds"])),
        )
        with self.lock:
            self.videos[video.uid] = video
        return video

    def live_notification_targets(
        self, input_uid: str, event_type: str
    ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(policy, destination) pairs a live-input event goes to: as on Cloudflare, only
        webhook destinations named by an enabled ``stream_live_notifications`` policy whose
        ``input_id`` and ``event_type`` filters (when set) match."""
        targets: list[tuple[dict[str, Any], dict[str, Any]]] = []
        with self.lock:
            for policy in self.notification_policies.values():
                if not policy["enabled"] or policy["alert_type"] != LIVE_ALERT_TYPE:
                    continue
                filters = policy.get("filters") or {}
                if filters.get("input_id") and input_uid not in filters["input_id"]:
                    continue
                if filters.get("event_type") and event_type not in filters["event_type"]:
                    continue
                seen: set[str] = set()
                for mechanism in (policy.get("mechanisms") or {}).get("webhooks") or []:
                    destination = self.notification_destinations.get(str(mechanism.get("id")))
                    if destination is not None and destination["id"] not in seen:
                        seen.add(destination["id"])
                        targets.append((dict(policy), dict(destination)))
        return targets

    def live_input_row(self, record: LiveInputRecord) -> dict[str, Any]:
        """The fields a list of live inputs carries (no credentials, as on Cloudflare)."""
        row: dict[str, Any] = {
            "uid": record.uid,
            "created": record.created,
            "modified": record.modified,
            "meta": record.meta,
            "enabled": record.enabled,
        }
        if record.delete_recording_after_days is not None:
            row["deleteRecordingAfterDays"] = record.delete_recording_after_days
        return row

    def live_input_json(self, record: LiveInputRecord) -> dict[str, Any]:
        return {
            **self.live_input_row(record),
            "recording": record.recording,
            "preferLowLatency": record.prefer_low_latency,
            "status": record.status,
            "rtmps": {"url": self.rtmp_base, "streamKey": record.stream_key},
            "rtmpsPlayback": {"url": self.rtmp_base, "streamKey": f"play{record.stream_key}"},
            "srt": {
                "url": "srt://127.0.0.1:778",
                "streamId": record.uid,
                "passphrase": record.stream_key,
            },
            "srtPlayback": {
                "url": "srt://127.0.0.1:778",
                "streamId": f"play{record.uid}",
                "passphrase": record.stream_key,
            },
            "webRTC": {"url": f"{self.public_base}/{record.whip_secret}/webRTC/publish"},
            "webRTCPlayback": {"url": f"{self.public_base}/{record.uid}/webRTC/play"},
        }

    def video_json(self, video: VideoRecord) -> dict[str, Any]:
        base = f"{self.public_base}/{video.uid}"
        fields = {
            "uid": video.uid,
            "creator": None,
            "meta": video.meta,
            "created": video.created,
            "modified": video.modified,
            "uploaded": video.created,
            "size": video.size,
            "duration": video.duration,
            "input": {"width": video.width, "height": video.height},
            "readyToStream": video.ready_to_stream,
            "readyToStreamAt": video.modified if video.ready_to_stream else None,
            "preview": f"{base}/watch",
            "thumbnail": f"{base}/thumbnails/thumbnail.jpg",
            "thumbnailTimestampPct": 0,
            "playback": {
                "hls": f"{base}/manifest/video.m3u8",
                "dash": f"{base}/manifest/video.mpd",
            },
            "status": {
                "state": video.state,
                "pctComplete": "100.000000" if video.state == "ready" else "0.000000",
                "errorReasonCode": video.error_reason,
                "errorReasonText": "The recording could not be processed"
                if video.error_reason
                else "",
            },
            "allowedOrigins": video.allowed_origins,
            "requireSignedURLs": video.require_signed_urls,
            "scheduledDeletion": None,
            "liveInput": video.live_input,
            "clippedFrom": video.clipped_from,
            "maxDurationSeconds": None,
            "uploadExpiry": None,
            "watermark": None,
        }
        # Cloudflare omits unset optional fields; the schema does not allow them as null.
        return {key: value for key, value in fields.items() if value is not None}


LIVE_ALERT_TYPE = "stream_live_notifications"
DELETE_AFTER_DAYS_MIN = 30
DELETE_AFTER_DAYS_MAX = 1096


def invalid_delete_after_days(body: dict[str, Any]) -> str | None:
    """Why ``deleteRecordingAfterDays`` in ``body`` is refused (30 to 1096, or null), if it is."""
    if "deleteRecordingAfterDays" not in body or body["deleteRecordingAfterDays"] is None:
        return None
    days = body["deleteRecordingAfterDays"]
    if isinstance(days, bool) or not isinstance(days, int | float):
        return "deleteRecordingAfterDays must be a number"
    if not DELETE_AFTER_DAYS_MIN <= days <= DELETE_AFTER_DAYS_MAX:
        return (
            f"deleteRecordingAfterDays must be between {DELETE_AFTER_DAYS_MIN} and "
            f"{DELETE_AFTER_DAYS_MAX} days"
        )
    return None


def invalid_prefer_low_latency(body: dict[str, Any]) -> str | None:
    if "preferLowLatency" in body and not isinstance(body["preferLowLatency"], bool):
        return "preferLowLatency must be a boolean"
    return None


def recording_settings(raw: Any) -> dict[str, Any]:
    """Cloudflare's defaults for the ``recording`` object, overlaid with what was sent."""
    settings: dict[str, Any] = {
        "mode": "off",
        "timeoutSeconds": 0,
        "requireSignedURLs": False,
        "allowedOrigins": [],
        "hideLiveViewerCount": False,
    }
    if isinstance(raw, dict):
        settings.update({k: v for k, v in raw.items() if k in settings})
    settings["allowedOrigins"] = settings["allowedOrigins"] or []
    return settings
