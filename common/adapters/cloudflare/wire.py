"""Tolerant readers of Cloudflare Stream's JSON (unknown fields ignored, both status shapes)."""

from datetime import datetime
from typing import Any

from pydantic import ConfigDict

from common.models.base import Model
from common.models.domain import LiveConnection, Recording


class _Wire(Model):
    model_config = ConfigDict(extra="ignore")


class CfMessage(_Wire):
    code: int | None = None
    message: str = ""


class CfEnvelope(_Wire):
    success: bool = False
    errors: list[CfMessage] = []
    messages: list[Any] = []
    result: Any = None


class CfUrlAndKey(_Wire):
    url: str | None = None
    streamKey: str | None = None


class CfUrl(_Wire):
    url: str | None = None


class CfStatusCurrent(_Wire):
    state: str | None = None
    reason: str | None = None


class CfStatusObject(_Wire):
    current: CfStatusCurrent | None = None


_CONNECTED = {"connected", "reconnected"}


class CfLiveInput(_Wire):
    uid: str
    meta: dict[str, Any] = {}
    created: datetime | None = None
    modified: datetime | None = None
    rtmps: CfUrlAndKey | None = None
    webRTC: CfUrl | None = None
    webRTCPlayback: CfUrl | None = None
    recording: dict[str, Any] | None = None
    # Absent from the 2024 schema: absent means enabled (its default).
    enabled: bool | None = None
    deleteRecordingAfterDays: float | None = None
    # Documented as a string enum, seen in production as {current: {state}}: anchors §1.2.
    status: str | CfStatusObject | None = None

    def connection(self) -> LiveConnection:
        if self.enabled is False:
            return "disconnected"  # a disabled input takes no publisher, whatever it says
        if isinstance(self.status, CfStatusObject):
            state = self.status.current.state if self.status.current else None
        else:
            state = self.status
        if state in _CONNECTED:
            return "connected"
        if state == "reconnecting":
            return "reconnecting"
        if state == "new_configuration_accepted":
            # Reported after a change of the input's settings (its privacy, its origins), also
            # while an encoder is sending: it says nothing of the connection (the provider
            # reads that from the input's videos instead).
            return "unknown"
        return "disconnected"


class CfOutput(_Wire):
    """A simulcast output of a live input (``/live_inputs/{uid}/outputs``)."""

    # A malformed answer's validation error must not quote the stream key into a log.
    model_config = ConfigDict(hide_input_in_errors=True)

    uid: str
    url: str = ""
    streamKey: str = ""
    enabled: bool = True


class CfLiveInputRow(_Wire):
    uid: str
    meta: dict[str, Any] = {}
    created: datetime | None = None


class CfLiveInputList(_Wire):
    liveInputs: list[CfLiveInputRow] = []
    total: int | None = None


class CfVideoStatus(_Wire):
    state: str = "unknown"
    errorReasonCode: str | None = None


class CfPlayback(_Wire):
    hls: str | None = None
    dash: str | None = None


class CfVideo(_Wire):
    uid: str
    liveInput: str | None = None
    readyToStream: bool = False
    status: CfVideoStatus | None = None
    duration: float | None = None
    size: int | None = None
    playback: CfPlayback | None = None
    thumbnail: str | None = None
    created: datetime | None = None
    modified: datetime | None = None
    meta: dict[str, Any] = {}
    # A clip: the video it was cut from (``clippedFromVideoUID`` in the clip call's answer).
    clippedFrom: str | None = None
    clippedFromVideoUID: str | None = None

    def to_recording(self) -> Recording:
        return Recording(
            video_uid=self.uid,
            live_input_uid=self.liveInput,
            state=self.status.state if self.status else "unknown",
            ready_to_stream=self.readyToStream,
            duration=self.duration if self.duration is not None and self.duration >= 0 else None,
            size=self.size,
            hls_url=self.playback.hls if self.playback else None,
            dash_url=self.playback.dash if self.playback else None,
            thumbnail_url=self.thumbnail,
            created=self.created,
            modified=self.modified,
            clipped_from=self.clippedFrom or self.clippedFromVideoUID,
        )


class CfDownload(_Wire):
    status: str = "inprogress"
    url: str | None = None
    percentComplete: float = 0


class CfDownloads(_Wire):
    """``/stream/{uid}/downloads``: ``{}`` until one is made, then one per type."""

    default: CfDownload | None = None


class CfNotificationError(_Wire):
    code: str = "ERR_UNKNOWN"
    message: str = ""


class CfNotificationErrored(_Wire):
    error: CfNotificationError | None = None


class CfNotificationData(_Wire):
    input_id: str
    event_type: str
    updated_at: datetime | None = None
    live_input_errored: CfNotificationErrored | None = None


class CfNotification(_Wire):
    """A Cloudflare Notifications webhook for ``stream_live_notifications`` (anchors §1.5)."""

    name: str = ""
    data: CfNotificationData | None = None
    ts: int | None = None


class CfLiveViewers(_Wire):
    """``/<input uid>/views`` on the delivery host: ``{"liveViewers": n}``."""

    liveViewers: int | None = None


class CfMinutesViewed(_Wire):
    minutesViewed: float = 0


class CfMinutesViewedGroup(_Wire):
    """One row of ``streamMinutesViewedAdaptiveGroups``: its ``sum`` and ``dimensions``."""

    sum: CfMinutesViewed = CfMinutesViewed()
    dimensions: dict[str, Any] = {}


class CfAnalyticsAccount(_Wire):
    streamMinutesViewedAdaptiveGroups: list[CfMinutesViewedGroup] = []


class CfAnalyticsViewer(_Wire):
    accounts: list[CfAnalyticsAccount] = []


class CfAnalyticsData(_Wire):
    """``data`` of a GraphQL Analytics answer (``{data, errors}``, not the REST envelope)."""

    viewer: CfAnalyticsViewer | None = None


class CfGraphqlAnswer(_Wire):
    data: CfAnalyticsData | None = None
    errors: list[CfMessage] | None = None
