"""Calls to the local Cloud Tasks emulator's REST API, as Google's REST clients make them."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from common.adapters.google_tokens import EMULATOR_TOKEN
from emulators.stack import LocalStack


@dataclass(frozen=True)
class TasksApi:
    origin: str
    token: str | None = EMULATOR_TOKEN

    def __call__(self, method: str, path: str, payload: Any) -> tuple[int, dict[str, Any]]:
        """The status and JSON body of one request (errors included)."""
        headers = {"Content-Type": "application/json"}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        body = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(  # noqa: S310 - a loopback URL
            f"{self.origin}{path}", data=body, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())


def tasks_api(stack: LocalStack, token: str | None = EMULATOR_TOKEN) -> TasksApi:
    return TasksApi(f"http://127.0.0.1:{stack.ports.tasks_rest}", token)
