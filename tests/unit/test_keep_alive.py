"""The REST adapters' one request with its connection: a kept-alive connection the server closed
is reopened at once, but a request that timed out is not sent again, and no try outlives the
deadline."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from common.adapters.keep_alive import KeepAliveConnections

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


@contextmanager
def raw_server(
    *, answer: bool, close_after_answer: bool = False, answers: int | None = None
) -> Iterator[tuple[str, list[bytes]]]:
    """A server that reads each request and answers it (or never does, or only the first
    ``answers``); its origin and the requests it received."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []
    open_connections: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            open_connections.append(connection)
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    def handle(connection: socket.socket) -> None:
        connection.settimeout(5)
        try:
            while request := connection.recv(65536):
                received.append(request)
                if answer and (answers is None or len(received) <= answers):
                    connection.sendall(ANSWER)
                    if close_after_answer:
                        connection.close()
                        return
        except OSError:
            return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", received
    finally:
        stop.set()
        thread.join(2)
        for connection in open_connections:
            connection.close()
        listener.close()


def requests(received: list[bytes]) -> list[bytes]:
    """The request lines among what the server read (a body may come in a chunk of its own)."""
    lines = [chunk.split(b" HTTP/1.1", 1)[0] for chunk in received]
    return [line for line in lines if line.split(b" ")[0] in {b"GET", b"POST"}]


def test_a_connection_the_server_closed_is_reopened_and_the_request_sent_again() -> None:
    with raw_server(answer=True, close_after_answer=True) as (origin, received):
        connections = KeepAliveConnections(origin, 5.0)
        first = connections.exchange("GET", "/a", None, {}, time.monotonic() + 5)
        time.sleep(0.1)  # the server has closed the kept connection by now
        second = connections.exchange("GET", "/b", None, {}, time.monotonic() + 5)
    assert first == second == (200, b"{}")
    assert requests(received) == [b"GET /a", b"GET /b"]


def test_a_request_that_timed_out_is_not_sent_again_and_ends_by_the_deadline() -> None:
    with raw_server(answer=False) as (origin, received):
        connections = KeepAliveConnections(origin, 5.0)
        began = time.monotonic()
        status = connections.exchange("POST", "/commit", b"{}", {}, began + 0.3)
        took = time.monotonic() - began
    assert status == (0, b"")
    assert requests(received) == [b"POST /commit"]  # not resent: it may have landed
    assert took < 2.0  # the deadline, not the 5 s attempt timeout (with room for a slow CI)


def test_a_timeout_on_a_kept_alive_connection_is_not_sent_again() -> None:
    with raw_server(answer=True, answers=1) as (origin, received):
        connections = KeepAliveConnections(origin, 5.0)
        assert connections.exchange("GET", "/a", None, {}, time.monotonic() + 5) == (200, b"{}")
        status = connections.exchange("POST", "/commit", b"{}", {}, time.monotonic() + 0.3)
    assert status == (0, b"")
    assert requests(received) == [b"GET /a", b"POST /commit"]  # a timeout is not a closed line


def test_a_deadline_already_past_sends_nothing() -> None:
    with raw_server(answer=True) as (origin, received):
        connections = KeepAliveConnections(origin, 5.0)
        assert connections.exchange("GET", "/a", None, {}, time.monotonic() - 1) == (0, b"")
    assert received == []
