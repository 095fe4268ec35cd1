"""Run a probe in a fresh interpreter of the repository, where nothing is loaded yet (what a
function instance starts as), pointed at an emulator address nothing listens on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_fresh(probe: str) -> str:
    """The last line the probe printed (it fails the test, with its stderr, if it failed)."""
    env = {**os.environ, "FIRESTORE_EMULATOR_HOST": "127.0.0.1:9"}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]
