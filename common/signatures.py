"""Verification of Cloudflare's two webhook authentications (anchors §1.4 and §1.5), and the
header our local task queue authenticates with."""

from __future__ import annotations

import hashlib
import hmac
import re

from common.errors import UnauthenticatedError

# Locally the Cloud Tasks emulator mints no OIDC token: tasks carry a shared token instead
# (common/adapters/cloud_tasks.py sets it, common/http.py's task endpoints check it).
TASK_AUTH_HEADER = "X-Task-Auth"


def verify_stream_signature(
    header: str | None, body: bytes, secret: str, *, now: int, tolerance_s: int
) -> None:
    """Check ``Webhook-Signature: time=…,sig1=…`` (HMAC-SHA256 of ``time.body``).

    Raises:
        UnauthenticatedError: missing, malformed, stale or wrong signature.
    """
    if not header:
        raise UnauthenticatedError("Missing Webhook-Signature header")
    fields: dict[str, str] = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        fields[key] = value
    timestamp, signature = fields.get("time", ""), fields.get("sig1", "")
    # ASCII digits, and few of them: int() refuses "²" and numbers past 4300 digits.
    if not re.fullmatch(r"[0-9]{1,12}", timestamp) or not signature:
        raise UnauthenticatedError("Malformed Webhook-Signature header")
    if abs(now - int(timestamp)) > tolerance_s:
        raise UnauthenticatedError("Stale webhook signature")
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    if not hmac.compare_digest(expected.hexdigest(), signature):
        raise UnauthenticatedError("Invalid webhook signature")


def verify_shared_secret(presented: str | None, secret: str, header: str) -> None:
    """Constant-time check of a shared secret sent in ``header``."""
    if not presented or not hmac.compare_digest(presented.encode(), secret.encode()):
        raise UnauthenticatedError(f"Missing or invalid {header}")
