"""``migratestreams``: admins see what the migration of legacy documents would change (GET)
and apply it in batches (POST ``?limit=``) until ``done``."""

from __future__ import annotations

import pytest

from common.ports import PendingMigration
from tests import people
from tests.functions.calls import bearer, client, error, ok
from tests.functions.conftest import MVP, Backend

PATHS = ("/api/streams/migrate", f"{MVP}/streams/migrate")


def pending(stream_id: str, *, conflict: bool = False) -> PendingMigration:
    return PendingMigration(
        stream_id=stream_id,
        collection="mvp_two_streams",
        actions=("move to streams", "remove streamKey"),
        conflict=conflict,
        handle=None,
    )


@pytest.fixture
def legacy(backend: Backend) -> Backend:
    backend.migrations.pending = [
        pending("old-1"),
        pending("old-2"),
        pending("old-3", conflict=True),
    ]
    return backend


@pytest.mark.parametrize("path", PATHS)
def test_an_admin_reads_what_the_migration_would_change(legacy: Backend, path: str) -> None:
    body = ok(client("migratestreams").get(path, headers=bearer(people.ADMIN)))

    assert body["success"] is True
    assert body["dryRun"] is True
    assert body["pending"] == 2
    assert body["skipped"] == 1
    assert body["migrated"] == 0
    assert body["done"] is False
    assert [c["streamId"] for c in body["changes"]] == ["old-1", "old-2", "old-3"]
    assert body["changes"][0] == {
        "streamId": "old-1",
        "collection": "mvp_two_streams",
        "actions": ["move to streams", "remove streamKey"],
    }
    assert legacy.migrations.applied == []


@pytest.mark.parametrize("path", PATHS)
def test_an_admin_applies_the_migration_in_batches_until_done(legacy: Backend, path: str) -> None:
    first = ok(client("migratestreams").post(f"{path}?limit=1", headers=bearer(people.ADMIN)))
    second = ok(client("migratestreams").post(path, headers=bearer(people.ADMIN)))

    assert (first["dryRun"], first["migrated"], first["remaining"], first["done"]) == (
        False,
        1,
        1,
        False,
    )
    assert (second["migrated"], second["remaining"], second["done"]) == (1, 0, True)
    assert legacy.migrations.applied == ["old-1", "old-2"]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_only_admins_migrate(legacy: Backend, method: str) -> None:
    path = PATHS[0]

    error(client("migratestreams").open(path, method=method), 401, "unauthenticated")
    for user in (people.OWNER, people.MEMORIAL_OWNER):
        error(client("migratestreams").open(path, method=method, headers=bearer(user)), 403)
    assert legacy.migrations.applied == []


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=all"])
def test_a_bad_batch_size_is_a_400(legacy: Backend, query: str) -> None:
    response = client("migratestreams").post(f"{PATHS[0]}?{query}", headers=bearer(people.ADMIN))

    error(response, 400, "invalid-argument")
    assert legacy.migrations.applied == []
    error(client("migratestreams").delete(PATHS[0], headers=bearer(people.ADMIN)), 405)
