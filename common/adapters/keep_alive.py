"""Keep-alive connections to one origin on the standard library's HTTP client, one per
thread (``http.client`` connections are not thread-safe), for the REST adapters."""

from __future__ import annotations

import http.client
import ssl
import threading
import time
from urllib.parse import urlsplit

# How a kept-alive connection the server closed fails on its next request.
CLOSED_BY_SERVER = (
    http.client.RemoteDisconnected,
    BrokenPipeError,
    ConnectionResetError,
    ConnectionAbortedError,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
)


class KeepAliveConnections:
    """The calling thread's connection to ``origin`` (``http://host:port`` or ``https://…``),
    opened on first use and kept until dropped."""

    def __init__(self, origin: str, timeout_s: float) -> None:
        parts = urlsplit(origin)
        self.netloc = parts.netloc
        self._kind = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        self._timeout_s = timeout_s
        self._local = threading.local()

    def get(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._kind(self.netloc, timeout=self._timeout_s)
            self._local.connection = connection
        return connection

    def drop(self) -> None:
        """Close the thread's connection (the server closed it, or it failed)."""
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def exchange(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str], deadline: float
    ) -> tuple[int, bytes]:
        """One request's status and body; status 0 when no answer came (by ``deadline``, a
        ``time.monotonic()`` value, each try within the attempt timeout). A kept-alive
        connection the server had closed is reopened and the request sent again at once,
        once; a request that timed out or failed on a fresh connection is not resent."""
        for _ in range(2):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return 0, b""
            connection = self.get()
            reused = connection.sock is not None
            connection.timeout = min(self._timeout_s, remaining)
            if connection.sock is not None:
                connection.sock.settimeout(connection.timeout)
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, response.read()
            except CLOSED_BY_SERVER:
                self.drop()
                if not reused:
                    return 0, b""
            except (OSError, http.client.HTTPException):
                self.drop()
                return 0, b""
        return 0, b""
