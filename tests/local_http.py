"""A small JSON HTTP server on 127.0.0.1 for adapter tests: it stands in for a Google API
(Firestore, the metadata server, Google's key endpoint, Identity Toolkit) and records what it
was asked."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# (method, path, lower-cased headers, body) -> (status, JSON body) or (status, body, headers)
Handler = Callable[[str, str, dict[str, str], bytes], tuple[Any, ...]]
Seen = list[tuple[str, str, dict[str, str]]]


@contextmanager
def serving(handle: Handler) -> Iterator[tuple[str, Seen]]:
    """A server answering with ``handle``; its origin and the requests it got."""
    seen: Seen = []

    class Answer(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {key.lower(): value for key, value in self.headers.items()}
            seen.append((self.command, self.path, headers))
            status, payload, *more = handle(self.command, self.path, headers, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **(more or [{}])[0]}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer  # noqa: N815 - BaseHTTPRequestHandler's names

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
