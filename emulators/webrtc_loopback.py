"""Keep local WebRTC peers on 127.0.0.1.

aioice gathers host candidates from every interface except loopback; this machine's only
other address must never carry our traffic, so ICE is restricted to the loopback address.
"""

from __future__ import annotations

import aioice.ice


def _loopback_only(use_ipv4: bool, use_ipv6: bool) -> list[str]:  # noqa: ARG001 - aioice API
    return ["127.0.0.1"] if use_ipv4 else []


def pin_ice_to_loopback() -> None:
    """Make every later ICE gathering in this process offer 127.0.0.1 only."""
    aioice.ice.get_host_addresses = _loopback_only
