"""schemathesis hooks (loaded through ``SCHEMATHESIS_HOOKS``): how to send our media types."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.serializer("application/sdp")
def sdp_body(_context: schemathesis.SerializationContext, value: Any) -> dict[str, Any]:
    """An SDP offer is text on the wire, like ``text/plain``."""
    return {"data": value if isinstance(value, bytes) else str(value).encode()}
