"""Each function in a functions-framework process of its own, as Cloud Run runs them.

A gateway in this mode shares nothing between functions (no module state, no caches, no
services container): a test that passed only because two functions shared a process fails.
The processes belong to the gateway's process group and end with it.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from emulators.free_ports import free_ports

# Headers a proxy must not forward (RFC 9110 §7.6.1) or that the WSGI server sets itself.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "host",
    }
)


class FunctionProcesses:
    """One functions-framework server per function, and a WSGI proxy to each."""

    def __init__(self, source: Path, functions: Iterable[tuple[str, str]]) -> None:
        """``functions``: (name, signature type) pairs."""
        self._ports: dict[str, int] = {}
        self._processes: list[subprocess.Popen[bytes]] = []
        executable = Path(sys.executable).with_name("functions-framework")
        chosen = list(functions)
        for (name, signature), port in zip(chosen, free_ports(len(chosen)), strict=True):
            self._ports[name] = port
            self._processes.append(
                subprocess.Popen(
                    [
                        str(executable),
                        f"--target={name}",
                        f"--source={source}",
                        f"--signature-type={signature}",
                        "--host=127.0.0.1",
                        f"--port={port}",
                    ],
                    env=os.environ.copy(),
                )
            )
        self._wait_until_listening()

    def _wait_until_listening(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        pending = dict(self._ports)
        while pending and time.monotonic() < deadline:
            for name, port in list(pending.items()):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    del pending[name]
                except OSError:
                    pass
            if any(process.poll() is not None for process in self._processes):
                raise RuntimeError("a function process exited while starting")
            time.sleep(0.2)
        if pending:
            raise RuntimeError(f"function processes not listening: {sorted(pending)}")

    def proxy(self, name: str, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Forward one WSGI request to the function's own process."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            key[5:].replace("_", "-").title(): value
            for key, value in environ.items()
            if key.startswith("HTTP_") and key[5:].replace("_", "-").lower() not in _HOP_BY_HOP
        }
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        # As Hosting does: the function is reached at its own host, the site's is forwarded.
        if environ.get("HTTP_HOST"):
            headers["X-Forwarded-Host"] = environ["HTTP_HOST"]
        headers["X-Forwarded-Proto"] = environ.get("wsgi.url_scheme", "http")
        path = quote(environ.get("PATH_INFO", "/").encode("latin-1"), safe="/:@!$&'()*+,;=-._~")
        if environ.get("QUERY_STRING"):
            path = f"{path}?{environ['QUERY_STRING']}"
        connection = http.client.HTTPConnection("127.0.0.1", self._ports[name], timeout=120)
        try:
            connection.request(environ["REQUEST_METHOD"], path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            if response.status not in (204, 304):
                kept.append(("Content-Length", str(len(payload))))
            start_response(f"{response.status} {response.reason}", kept)
            return [payload]
        finally:
            connection.close()

    def stop(self) -> None:
        for process in self._processes:
            process.terminate()
        for process in self._processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
