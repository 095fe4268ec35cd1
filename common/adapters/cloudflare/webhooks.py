"""Cloudflare's two webhook systems, authenticated and read into domain events.

Like stripe-python's ``Webhook.construct_event``: the raw body and its authentication header go
in, a verified event comes out, or an error the HTTP layer renders (401 for authentication, 400
for a body that is not the expected JSON, never a 500).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, SecretStr, ValidationError

from common import safe_json
from common.adapters.cloudflare.wire import CfNotification, CfVideo
from common.errors import InvalidArgumentError, UnauthenticatedError
from common.models.domain import LiveInputNotice, StreamIssue, VideoReport
from common.ports import Clock
from common.signatures import verify_shared_secret, verify_stream_signature


@dataclass(frozen=True)
class WebhookSecrets:
    """The Stream webhook signing secret and the Notifications shared secret."""

    stream_signing: SecretStr | None
    notifications: SecretStr | None
    tolerance_s: int = 300


class CloudflareWebhooks:
    """``ProviderWebhooks`` for Cloudflare Stream (HMAC-signed) and Notifications (shared
    secret in ``cf-webhook-auth``)."""

    def __init__(self, secrets: WebhookSecrets, clock: Clock) -> None:
        self._secrets = secrets
        self._clock = clock

    def video_report(self, signature: str | None, body: bytes) -> VideoReport:
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
        return VideoReport(recording=video.to_recording(), stream_hint=str(hint) if hint else None)

    def live_input_notice(self, auth: str | None, body: bytes) -> LiveInputNotice | None:
        if self._secrets.notifications is None:
            raise UnauthenticatedError("Notifications secret is not configured")
        verify_shared_secret(
            auth, self._secrets.notifications.get_secret_value(), "cf-webhook-auth"
        )
        data = _parse(CfNotification, body).data
        if data is None:
            return None  # the test message Cloudflare posts when a destination is created
        at = data.updated_at or self._clock.now()
        issue = None
        errored = data.live_input_errored
        if errored is not None and errored.error is not None:
            error = errored.error
            issue = StreamIssue(code=error.code, message=error.message or error.code, at=at)
        return LiveInputNotice(input_uid=data.input_id, event=data.event_type, at=at, issue=issue)


ModelT = TypeVar("ModelT", bound=BaseModel)


def _parse(model: type[ModelT], body: bytes) -> ModelT:
    """The (already authenticated) body as ``model``; anything else is a 400, never a 500."""
    try:
        return model.model_validate(safe_json.loads(body))
    except safe_json.JsonTooDeepError as exc:
        raise InvalidArgumentError(f"Webhook body is not the expected JSON ({exc})") from exc
    except (ValueError, ValidationError) as exc:
        raise InvalidArgumentError("Webhook body is not the expected JSON") from exc
