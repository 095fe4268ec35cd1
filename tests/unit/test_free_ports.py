"""Local servers get distinct ports: two given one port would answer for each other."""

from __future__ import annotations

import socket

from emulators.free_ports import free_ports


def test_the_ports_of_one_call_are_distinct_and_free() -> None:
    ports = free_ports(40)
    assert len(set(ports)) == 40
    for port in ports[:5]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # released: a server can take it
