"""Product choices every stream service applies (from settings, wired in one place)."""

from __future__ import annotations

from dataclasses import dataclass

from common.ports import InputRecordingRules
from common.services.create_guards import CreateLimits


@dataclass(frozen=True)
class StreamPolicy:
    """Product choices applied to every new live input."""

    delivery_base: str
    recording_timeout_seconds: int
    allowed_origins: tuple[str, ...]
    delete_recording_after_days: int | None = None
    orphan_sweep_delay_s: float = 120
    whip_session_ttl_s: int = 24 * 3600
    create_limits: CreateLimits = CreateLimits()

    def recording_rules(self, *, require_signed_urls: bool) -> InputRecordingRules:
        """The recording settings every live input gets (signed URLs for private streams)."""
        return InputRecordingRules(
            allowed_origins=self.allowed_origins,
            timeout_seconds=self.recording_timeout_seconds,
            require_signed_urls=require_signed_urls,
        )
