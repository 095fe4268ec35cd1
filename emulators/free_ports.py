"""The local servers' loopback ports: the usual ones (``make run``) and free ones (a stack of
its own for each test session, benchmark or chaos run)."""

from __future__ import annotations

import socket
from dataclasses import dataclass, fields


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


@dataclass(frozen=True)
class Ports:
    """Where each server of the local stack listens."""

    firestore: int
    auth: int
    auth_hub: int
    auth_logging: int
    cloudflare: int
    gateway: int
    rtmp: int
    tasks: int
    tasks_rest: int
    edge_gateway: int
    cdn: int

    @classmethod
    def free(cls) -> Ports:
        return cls(*free_ports(len(fields(cls))))


# ``make run`` serves on these, and each server's own command line defaults to its port here:
# the Firebase emulators' own defaults (the Auth emulator brings a hub and a logging port),
# the Stream emulator's API and RTMP ingest, the Hosting gateway with the edge proxy and the CDN
# beside it, and Cloud Tasks (its own gRPC API and the REST API our functions call).
_FIREBASE_PORTS = {"firestore": 8080, "auth": 9099, "auth_hub": 4400, "auth_logging": 4500}
_STREAM_PORTS = {"cloudflare": 8788, "rtmp": 1935}
_GATEWAY_PORTS = {"gateway": 5000, "edge_gateway": 5001, "cdn": 5002}
USUAL_PORTS = Ports(
    **_FIREBASE_PORTS, **_STREAM_PORTS, **_GATEWAY_PORTS, tasks=8123, tasks_rest=8124
)
