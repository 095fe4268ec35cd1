"""schemathesis drives every documented operation of the live stack with generated requests:
no 5xx, and every response matches the OpenAPI document (bounded examples, deterministic)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from common.openapi import openapi_document
from emulators.stack import LocalStack
from tests.integration.conftest import Caller

pytestmark = pytest.mark.emulator
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")


def test_generated_requests_find_no_server_error_and_no_schema_violation(
    stack: LocalStack, callers: dict[str, Caller], tmp_path: Path
) -> None:
    document = httpx.get(f"{stack.gateway_url}/openapi.json").json()
    # The gateway serves the document generated from the functions' declarations.
    assert document == openapi_document()

    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{stack.gateway_url}/openapi.json",
            "--checks",
            "not_a_server_error,response_schema_conformance,"
            "status_code_conformance,content_type_conformance",
            "--max-examples",
            "8",
            "--generation-deterministic",
            "--workers",
            "2",
            "--header",
            f"Authorization: Bearer {callers['owner'].id_token}",
            "--request-timeout",
            "30",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)},
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
