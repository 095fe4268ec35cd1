"""One contract per port, run against each implementation: the in-memory fake the service
tests use (tests/fakes) and the real adapter against the local stack's emulators.

Each fixture below is parametrised by implementation, so every contract test runs once per
implementation (``[fake]``, ``[firestore]``, ...). The adapters' parameters carry the
``emulator`` mark: ``-m "not emulator"`` runs the fakes alone, without starting the stack.
The stack itself is the integration suite's session fixture (this package sits under
tests/integration to share it): it starts once, and only when an adapter test runs.

A real adapter that breaks the contract is a product bug: its case is marked
``xfail(strict=True)`` with the root cause (see ``expect_failure``), never hidden in a fake.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from google.cloud import firestore
from pydantic import SecretStr

from common.adapters.cloud_tasks import CloudTasksQueue
from common.adapters.cloudflare.client import (
    CloudflareStreamClient,
    CloudflareStreamProvider,
    RetryPolicy,
)
from common.adapters.firestore.deferred import DeferredStreamRepository
from common.adapters.firestore.rest import FirestoreRest, RestMemorialDirectory, RestStreamReads
from common.adapters.firestore.rest_guards import RestCreateQuota, RestIdempotencyStore
from common.adapters.firestore.streams import FirestoreMemorialDirectory, FirestoreStreamRepository
from common.adapters.google_tokens import EmulatorToken
from common.models.domain import Memorial
from common.ports import (
    CreateQuota,
    IdempotencyStore,
    MemorialDirectory,
    StreamProvider,
    StreamRepository,
    SystemClock,
    TaskQueue,
)
from emulators.stack import ACCOUNT_ID, API_TOKEN, PROJECT_ID, LocalStack
from tests.fakes import (
    InMemoryCreateQuota,
    InMemoryIdempotencyStore,
    InMemoryMemorialDirectory,
    InMemoryStreamRepository,
    RecordingTaskQueue,
)
from tests.fakes.provider import FakeStreamProvider
from tests.tasks_api import tasks_api

# Where the Cloud Tasks adapter's tasks would go: nothing listens there, and every contract
# task is scheduled an hour ahead, so the emulator never dispatches one during the run.
NO_TARGET = "http://127.0.0.1:9"
TASKS_LOCATION = f"projects/{PROJECT_ID}/locations/us-central1"
Port = TypeVar("Port")


def implementations(*adapters: str) -> list[Any]:
    """Fixture parameters: the fake, then each adapter (which needs the local stack)."""
    return ["fake", *(pytest.param(name, marks=pytest.mark.emulator) for name in adapters)]


def expect_failure(request: pytest.FixtureRequest, *implementations: str, reason: str) -> None:
    """Mark the running contract test as a known, strict failure of these implementations."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and set(implementations) & set(callspec.params.values()):
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


def _name(prefix: str) -> str:
    """A collection or queue of this test alone."""
    return f"contract_{prefix}_{uuid.uuid4().hex[:10]}"


def rest_client() -> FirestoreRest:
    """The REST reader the functions build, pointed by FIRESTORE_EMULATOR_HOST as they are."""
    return FirestoreRest.from_environment(PROJECT_ID)


@pytest.fixture(
    params=implementations(
        "firestore",
        "firestore-with-legacy",
        "firestore-rest-reads",
        "rest-reads-with-legacy",
        "rest-updates",
        "rest-updates-with-legacy",
    )
)
def repo(request: pytest.FixtureRequest) -> StreamRepository:
    """``...-with-legacy`` also reads an (empty) legacy collection: the merging paths;
    ``...rest-reads...`` reads over the REST API (common/adapters/firestore/rest.py);
    ``rest-updates...`` updates over it (common/adapters/firestore/deferred.py)."""
    if request.param == "fake":
        return InMemoryStreamRepository()
    db: firestore.Client = request.getfixturevalue("db")
    collection = _name("streams")
    legacy = [f"{collection}_legacy"] if request.param.endswith("with-legacy") else []
    grpc_repo = FirestoreStreamRepository(db, collection, legacy)
    if "rest-reads" in request.param:  # the client library's writes, reads over REST
        reads = RestStreamReads(rest_client(), collection, legacy)
        return DeferredStreamRepository(lambda: grpc_repo, collection, reads=reads)
    if "rest-updates" in request.param:
        # As the functions are wired (common/bootstrap.py): reads and updates over REST, the
        # client library's repository for the other writes.
        rest = rest_client()
        reads = RestStreamReads(rest, collection, legacy)
        return DeferredStreamRepository(
            lambda: grpc_repo, collection, rest=rest, reads=reads, legacy_collections=legacy
        )
    return grpc_repo


@dataclass(frozen=True)
class Memorials:
    """A memorial directory under test and how to put a memorial in it (the site's job)."""

    directory: MemorialDirectory
    add: Callable[[Memorial], None]


@pytest.fixture(params=implementations("firestore", "firestore-rest"))
def memorials(request: pytest.FixtureRequest) -> Memorials:
    if request.param == "fake":
        fake = InMemoryMemorialDirectory()
        return Memorials(fake, lambda m: fake.memorials.__setitem__(m.id, m))
    db: firestore.Client = request.getfixturevalue("db")
    collection = db.collection(_name("memorials"))

    def add(memorial: Memorial) -> None:
        # The fields the memorial site writes (tests/integration/conftest.py create_memorial).
        collection.document(memorial.id).set(
            {
                "ownerUid": memorial.owner_uid,
                "funeralDirectorUid": memorial.funeral_director_uid,
                "isPublic": memorial.is_public,
                "lovedOneName": memorial.loved_one_name,
            }
        )

    if request.param == "firestore-rest":
        return Memorials(RestMemorialDirectory(rest_client(), collection.id), add)
    return Memorials(FirestoreMemorialDirectory(db, collection.id), add)


def fake_or_adapter(
    request: pytest.FixtureRequest,
    fake: Callable[[], Port],
    adapter: Callable[[LocalStack], contextlib.AbstractContextManager[Port]],
) -> Iterator[Port]:
    """A fixture's implementation: the fake, or the adapter over the local stack (closed after
    the test)."""
    if request.param == "fake":
        yield fake()
        return
    with adapter(request.getfixturevalue("stack")) as real:
        yield real


@contextlib.contextmanager
def cloudflare_provider(stack: LocalStack) -> Iterator[StreamProvider]:
    client = CloudflareStreamClient(
        api_base=f"{stack.cloudflare_url}/client/v4",
        account_id=ACCOUNT_ID,
        api_token=SecretStr(API_TOKEN),
        retry=RetryPolicy(0),
    )
    try:
        yield CloudflareStreamProvider(client)
    finally:
        client.close()


@contextlib.contextmanager
def cloud_tasks_queue(stack: LocalStack) -> Iterator[TaskQueue]:
    """The Cloud Tasks adapter on a queue of its own in the emulator, deleted afterwards."""
    api = tasks_api(stack)
    queue = f"{TASKS_LOCATION}/queues/{_name('tasks').replace('_', '-')}"
    assert api("POST", f"/v2/{TASKS_LOCATION}/queues", {"name": queue})[0] == 200
    try:
        yield CloudTasksQueue(api.origin, EmulatorToken(), queue, NO_TARGET, SystemClock())
    finally:
        api("DELETE", f"/v2/{queue}", None)


@pytest.fixture(params=implementations("cloudflare"))
def provider(request: pytest.FixtureRequest) -> Iterator[StreamProvider]:
    yield from fake_or_adapter(request, FakeStreamProvider, cloudflare_provider)


@pytest.fixture(params=implementations("cloud-tasks"))
def tasks(request: pytest.FixtureRequest) -> Iterator[TaskQueue]:
    yield from fake_or_adapter(request, RecordingTaskQueue, cloud_tasks_queue)


@pytest.fixture(params=implementations("firestore-rest"))
def quota(request: pytest.FixtureRequest) -> CreateQuota:
    if request.param == "fake":
        return InMemoryCreateQuota()
    return RestCreateQuota(*_rest_collection(request, "quota"))


@pytest.fixture(params=implementations("firestore-rest"))
def keys(request: pytest.FixtureRequest) -> IdempotencyStore:
    if request.param == "fake":
        return InMemoryIdempotencyStore()
    return RestIdempotencyStore(*_rest_collection(request, "keys"))


def _rest_collection(request: pytest.FixtureRequest, prefix: str) -> tuple[FirestoreRest, str]:
    """The REST client, against the running stack, and a collection of this test alone."""
    request.getfixturevalue("stack")
    return rest_client(), _name(prefix)
