"""schemathesis hooks (loaded through ``SCHEMATHESIS_HOOKS``): how to send our media types."""

from __future__ import annotations

import schemathesis

# An SDP offer is text on the wire.
schemathesis.serializer.alias("application/sdp", "text/plain")
