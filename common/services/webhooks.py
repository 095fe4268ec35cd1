"""Cloudflare's webhooks, already verified and read by the adapter, applied idempotently."""

from typing import cast

from common.models.base import Model
from common.ports import ProviderWebhooks
from common.services.provider_events import LIVE_EVENTS, LiveEvent, ProviderEventService


class WebhookReply(Model):
    """What we answer Cloudflare (it only looks at the status)."""

    success: bool = True
    message: str
    streamId: str | None = None


class WebhookService:
    """Entry point for both Cloudflare webhook systems."""

    def __init__(self, reports: ProviderEventService, events: ProviderWebhooks) -> None:
        self._reports = reports
        self._events = events

    def handle_video(self, signature: str | None, body: bytes) -> WebhookReply:
        """The Stream webhook: a video finished processing (ready or error)."""
        report = self._events.video_report(signature, body)
        uid = report.recording.video_uid
        outcome = self._reports.apply_video_event(report.recording, report.stream_hint)
        if outcome.stream_id is None:
            return WebhookReply(message="No stream uses this live input; ignored")
        if outcome.purged:
            return WebhookReply(
                message=f"Recording {uid} of a deleted stream deleted", streamId=outcome.stream_id
            )
        return WebhookReply(message=f"Recording {uid} recorded", streamId=outcome.stream_id)

    def handle_live_input(self, auth: str | None, body: bytes) -> WebhookReply:
        """Cloudflare Notifications: live input connected, disconnected or errored."""
        notice = self._events.live_input_notice(auth, body)
        if notice is None:
            return WebhookReply(message="Test notification received")
        if notice.event not in LIVE_EVENTS:
            return WebhookReply(message=f"Event {notice.event} ignored")
        event = cast(LiveEvent, notice.event)
        stream_id = self._reports.apply_live_event(notice.input_uid, event, notice.at, notice.issue)
        if stream_id is None:
            return WebhookReply(message="No stream uses this live input; ignored")
        return WebhookReply(message=f"{notice.event} applied", streamId=stream_id)
