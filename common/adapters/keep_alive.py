"""Keep-alive connections to one origin on the standard library's HTTP client, one per
thread (``http.client`` connections are not thread-safe), for the REST adapters."""

from __future__ import annotations

import http.client
import threading
from urllib.parse import urlsplit


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
        self, method: str, path: str, body: bytes | None, headers: dict[str, str], timeout: float
    ) -> tuple[int, bytes]:
        """One request's status and body; status 0 when no answer came. A connection that
        fails is reopened at once, once: most often the server closed a kept-alive one."""
        for _ in range(2):
            connection = self.get()
            connection.timeout = max(timeout, 0.05)
            if connection.sock is not None:
                connection.sock.settimeout(connection.timeout)
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException):
                self.drop()
        return 0, b""
