"""Cloudflare's webhooks: authenticated, parsed, then applied idempotently."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, SecretStr, ValidationError

from common import safe_json
from common.adapters.cloudflare.wire import CfNotification, CfVideo
from common.errors import InvalidArgumentError, UnauthenticatedError
from common.models.domain import StreamIssue
from common.ports import Clock
from common.services.recordings import LiveEvent, RecordingService
from common.signatures import verify_shared_secret, verify_stream_signature

log = logging.getLogger(__name__)
_LIVE_EVENTS: frozenset[str] = frozenset(
    {"live_input.connected", "live_input.disconnected", "live_input.errored"}
)


class WebhookReply(BaseModel):
    """What we answer Cloudflare (it only looks at the status)."""

    success: bool = True
    message: str
    streamId: str | None = None


@dataclass(frozen=True)
class WebhookSecrets:
    """The Stream webhook signing secret and the Notifications shared secret."""

    stream_signing: SecretStr | None
    notifications: SecretStr | None
    tolerance_s: int = 300


class WebhookService:
    """Entry point for both Cloudflare webhook systems."""

    def __init__(self, recordings: RecordingService, secrets: WebhookSecrets, clock: Clock):
        self._recordings = recordings
        self._secrets = secrets
        self._clock = clock

    def handle_video(self, signature: str | None, body: bytes) -> WebhookReply:
        """The Stream webhook: a video finished processing (ready or error)."""
        if self._secrets.stream_signing is None:
            raise UnauthenticatedError("Stream webhook secret is not configured")
        verify_stream_signature(
            signature,
            body,
            self._secrets.stream_signing.get_secret_value(),
            now=int(self._clock.now().timestamp()),
            tolerance_s=self._secrets.tolerance_s,
        )
        video = _parse(CfVideo, body)
        hint = video.meta.get("streamId")
        outcome = self._recordings.apply_video_event(
            video.to_recording(), str(hint) if hint else None
        )
        if outcome.stream_id is None:
            return WebhookReply(message="No stream uses this live input; ignored")
        if outcome.purged:
            return WebhookReply(
                message=f"Recording {video.uid} of a deleted stream deleted",
                streamId=outcome.stream_id,
            )
        return WebhookReply(message=f"Recording {video.uid} recorded", streamId=outcome.stream_id)

    def handle_live_input(self, auth: str | None, body: bytes) -> WebhookReply:
        """Cloudflare Notifications: live input connected, disconnected or errored."""
        if self._secrets.notifications is None:
            raise UnauthenticatedError("Notifications secret is not configured")
        verify_shared_secret(
            auth, self._secrets.notifications.get_secret_value(), "cf-webhook-auth"
        )
        data = _parse(CfNotification, body).data
        if data is None:
            # Cloudflare posts a test message when the destination is created.
            return WebhookReply(message="Test notification received")
        if data.event_type not in _LIVE_EVENTS:
            return WebhookReply(message=f"Event {data.event_type} ignored")
        at = data.updated_at or self._clock.now()
        issue = None
        if data.live_input_errored and data.live_input_errored.error:
            error = data.live_input_errored.error
            issue = StreamIssue(code=error.code, message=error.message or error.code, at=at)
        event: LiveEvent = data.event_type  # type: ignore[assignment]
        stream_id = self._recordings.apply_live_event(data.input_id, event, at, issue)
        if stream_id is None:
            return WebhookReply(message="No stream uses this live input; ignored")
        return WebhookReply(message=f"{data.event_type} applied", streamId=stream_id)


ModelT = TypeVar("ModelT", bound=BaseModel)


def _parse(model: type[ModelT], body: bytes) -> ModelT:
    """The (already authenticated) body as ``model``; anything else is a 400, never a 500."""
    try:
        return model.model_validate(safe_json.loads(body))
    except safe_json.JsonTooDeepError as exc:
        raise InvalidArgumentError(f"Webhook body is not the expected JSON ({exc})") from exc
    except (ValueError, ValidationError) as exc:
        raise InvalidArgumentError("Webhook body is not the expected JSON") from exc
