"""Free loopback ports for the local servers."""

from __future__ import annotations

import socket


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports. Each socket stays bound until all are chosen: a port
    released at once may be handed out again, and two servers given one port would answer for
    each other (one serves, the other cannot bind)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
