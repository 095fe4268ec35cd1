"""The README's curl tour, run as a reader runs it (twice in a row), and the seed it starts with."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import firebase_admin
import pytest
from firebase_admin import auth
from google.cloud import firestore

from common.settings import Settings
from emulators.stack import PROJECT_ID, LocalStack
from tests.integration.conftest import run_beside, stored

ROOT = Path(__file__).resolve().parents[2]
TOUR_HEADING = "## A 5-minute tour with curl"
# The tour prints one JSON reply per line, in this order.
TOUR_REPLIES = ("owner view", "director view", "anonymous view", "start", "live listing", "stop")
# A seed of its own, so that this test and the tour's default memorial stay apart.
SEED_ARGS = (
    "--name",
    "Seed Test",
    "--owner-email",
    "seed-family@example.com",
    "--director-email",
    "seed-director@example.com",
)


def tour_script() -> str:
    """Every ```sh block of the tour section, in order, as one script (one shell session)."""
    readme = (ROOT / "README.md").read_text()
    assert TOUR_HEADING in readme
    section = readme.split(TOUR_HEADING, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)
    assert blocks, "the tour has no ```sh block"
    return "\n".join(blocks)


def run_tour(stack: LocalStack) -> dict[str, dict[str, Any]]:
    # -e and pipefail: a step that fails (a curl, a missing JSON field) fails the run here,
    # where an interactive shell would only print the error and go on.
    completed = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", tour_script()],
        cwd=ROOT,
        env={**os.environ, **stack.env, "API": stack.gateway_url},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    assert len(lines) == len(TOUR_REPLIES), completed.stdout
    return {name: json.loads(line) for name, line in zip(TOUR_REPLIES, lines, strict=True)}


def assert_tour_replies(replies: dict[str, dict[str, Any]]) -> None:
    owner = replies["owner view"]
    stream_id, stream_key = owner["id"], owner["streamKey"]
    assert stream_key and owner["memorialId"]
    assert replies["director view"]["id"] == stream_id
    assert replies["director view"]["streamKey"] == stream_key
    anonymous = replies["anonymous view"]
    assert anonymous["id"] == stream_id
    assert "streamKey" not in anonymous and "streamUrl" not in anonymous
    start = replies["start"]
    assert (start["streamId"], start["status"], start["streamKey"]) == (
        stream_id,
        "live",
        stream_key,
    )
    assert start["streamUrl"].startswith("rtmp://127.0.0.1:")
    live = replies["live listing"]["liveStreams"]
    assert stream_id in {s["id"] for s in live}
    assert not any("streamKey" in s for s in live)
    assert (replies["stop"]["streamId"], replies["stop"]["status"]) == (stream_id, "completed")


def test_readme_tour_runs_twice_in_a_row(stack: LocalStack) -> None:
    first = run_tour(stack)
    second = run_tour(stack)

    assert_tour_replies(first)
    assert_tour_replies(second)
    assert first["owner view"]["memorialId"] == second["owner view"]["memorialId"]
    assert first["owner view"]["id"] != second["owner view"]["id"]


def run_seed(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    return run_beside(stack, [sys.executable, "-m", "emulators.seed", *args])


def seed_exports(stack: LocalStack, *args: str) -> dict[str, str]:
    """What ``eval "$(python -m emulators.seed ...)"`` would set."""
    completed = run_seed(stack, *args)
    assert completed.returncode == 0, completed.stderr
    exports: dict[str, str] = {}
    for line in completed.stdout.splitlines():
        keyword, assignment = shlex.split(line)
        assert keyword == "export"
        name, value = assignment.split("=", 1)
        exports[name] = value
    assert set(exports) == {"MEMORIAL_ID", "OWNER_TOKEN", "DIRECTOR_TOKEN"}
    return exports


@pytest.fixture(scope="module")
def auth_app(stack: LocalStack) -> Iterator[firebase_admin.App]:
    app = firebase_admin.initialize_app(options={"projectId": PROJECT_ID}, name="readme-tour")
    yield app
    firebase_admin.delete_app(app)


def test_seed_twice_updates_the_same_memorial_and_users(
    stack: LocalStack, db: firestore.Client, auth_app: firebase_admin.App
) -> None:
    first = seed_exports(stack, *SEED_ARGS)
    memorial = db.collection(Settings().memorials_collection).document(first["MEMORIAL_ID"])
    created = stored(memorial)
    second = seed_exports(stack, *SEED_ARGS)

    assert second["MEMORIAL_ID"] == first["MEMORIAL_ID"] == "celebration-of-life-for-seed-test"
    owner_uid = auth.get_user_by_email("seed-family@example.com", app=auth_app).uid
    director_uid = auth.get_user_by_email("seed-director@example.com", app=auth_app).uid
    for exports in (first, second):
        owner_claims = auth.verify_id_token(exports["OWNER_TOKEN"], app=auth_app)
        director_claims = auth.verify_id_token(exports["DIRECTOR_TOKEN"], app=auth_app)
        assert (owner_claims["uid"], owner_claims["role"]) == (owner_uid, "owner")
        assert (director_claims["uid"], director_claims["role"]) == (
            director_uid,
            "funeral_director",
        )
    assert stored(memorial) == created
    assert created["ownerUid"] == owner_uid
    assert created["funeralDirectorUid"] == director_uid
    assert created["isPublic"] is True
    assert created["lovedOneName"] == "Seed Test"
    assert created["slug"] == created["fullSlug"] == "celebration-of-life-for-seed-test"


def test_seed_private_and_public_flip_the_memorial(stack: LocalStack, db: firestore.Client) -> None:
    memorial_id = seed_exports(stack, *SEED_ARGS, "--private")["MEMORIAL_ID"]
    memorial = db.collection(Settings().memorials_collection).document(memorial_id)
    assert stored(memorial)["isPublic"] is False

    assert seed_exports(stack, *SEED_ARGS, "--public")["MEMORIAL_ID"] == memorial_id
    assert stored(memorial)["isPublic"] is True


def test_seed_refuses_an_emulator_address_off_this_machine(stack: LocalStack) -> None:
    refused = run_seed(stack, *SEED_ARGS, "--firestore-host", "10.1.2.3:8080")

    assert refused.returncode == 1
    assert refused.stdout == ""
    assert "not on this machine" in refused.stderr
