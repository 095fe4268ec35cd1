"""What the viewer benchmarks share: a signed-in memorial owner, memorials and streams written
straight into the Firestore emulator (batched), and percentiles."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from google.cloud import firestore

from emulators.stack import PROJECT_ID, LocalStack

BATCH = 500  # Firestore's limit of writes per batch


@dataclass(frozen=True)
class Owner:
    uid: str
    bearer: dict[str, str]


def sign_up_owner(stack: LocalStack) -> Owner:
    """A new account in the Auth emulator, signed in (an ID token)."""
    reply = httpx.post(
        f"http://127.0.0.1:{stack.ports.auth}/identitytoolkit.googleapis.com/v1/"
        "accounts:signUp?key=bench",
        json={
            "email": f"owner-{uuid.uuid4().hex[:8]}@example.com",
            "password": "bench-pass",
            "returnSecureToken": True,
        },
    ).json()
    return Owner(uid=reply["localId"], bearer={"Authorization": f"Bearer {reply['idToken']}"})


def client() -> firestore.Client:
    """The Firestore emulator's client (``FIRESTORE_EMULATOR_HOST`` from the stack's env)."""
    return firestore.Client(project=PROJECT_ID)


def memorial_document(owner: Owner, name: str) -> dict[str, Any]:
    return {"ownerUid": owner.uid, "isPublic": True, "lovedOneName": name}


def new_stream(api: httpx.Client, owner: Owner, memorial: str) -> str:
    """A stream made through the API (so its document is exactly what the backend writes)."""
    reply = api.post(
        f"/api/memorials/{memorial}/streams", json={"title": "Service"}, headers=owner.bearer
    )
    reply.raise_for_status()
    stream_id: str = reply.json()["id"]
    return stream_id


def write_all(db: firestore.Client, documents: Iterable[tuple[str, dict[str, Any]]]) -> int:
    """Write ``(path, data)`` pairs in batches of ``BATCH``; returns how many were written."""
    written = 0
    batch = db.batch()
    for path, data in documents:
        batch.set(db.document(path), data)
        written += 1
        if written % BATCH == 0:
            batch.commit()
            batch = db.batch()
    if written % BATCH:
        batch.commit()
    return written


def percentile_ms(samples: list[float], q: float) -> float:
    """The ``q`` quantile of ``samples`` (seconds) in milliseconds (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000
