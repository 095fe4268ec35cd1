"""The admin migration of stream documents written by earlier backends (``/api/streams/migrate``).

``GET`` reports what would change; ``POST`` applies it, at most ``limit`` documents per call.
Each document migrates atomically and an already-migrated one needs nothing, so the migration
is idempotent and resumable: call ``POST`` again until ``done``.
"""

from collections.abc import Callable

from common.errors import FailedPreconditionError, PermissionDeniedError, UnauthenticatedError
from common.models.base import Model
from common.models.domain import User
from common.ports import PendingMigration, StreamMigrationStore

REPORTED_CHANGES = 500


class MigrationChange(Model):
    streamId: str
    collection: str
    actions: list[str]


class MigrationReport(Model):
    """What the migration found (and, for ``POST``, did)."""

    success: bool = True
    dryRun: bool
    pending: int
    migrated: int
    remaining: int
    skipped: int
    done: bool
    message: str
    changes: list[MigrationChange]


class MigrationService:
    """Moves legacy stream documents into the current collection and shape; admins only."""

    def __init__(self, store: Callable[[], StreamMigrationStore | None]) -> None:
        """``store`` is asked for once an administrator calls: the client library it is
        built on is loaded by the migration alone, not by the refusal of anyone else."""
        self._store = store

    def report(self, user: User | None) -> MigrationReport:
        pending = self._pending(user)
        return _report(pending, migrated=[], dry_run=True)

    def apply(self, user: User | None, limit: int) -> MigrationReport:
        pending = self._pending(user)
        batch = [item for item in pending if not item.conflict][:limit]
        for item in batch:
            self._store_or_fail().apply_migration(item)
        return _report(pending, migrated=batch, dry_run=False)

    def _pending(self, user: User | None) -> list[PendingMigration]:
        if user is None:
            raise UnauthenticatedError("Authentication required")
        if not user.is_administrator:
            raise PermissionDeniedError("Admin access required")
        return self._store_or_fail().pending_migrations()

    def _store_or_fail(self) -> StreamMigrationStore:
        store = self._store()
        if store is None:
            raise FailedPreconditionError("This deployment has no stream store to migrate")
        return store


def _report(
    pending: list[PendingMigration], *, migrated: list[PendingMigration], dry_run: bool
) -> MigrationReport:
    conflicts = sum(1 for item in pending if item.conflict)
    remaining = len(pending) - conflicts - len(migrated)
    shown = pending if dry_run else [*migrated, *(i for i in pending if i.conflict)]
    if dry_run:
        message = f"{len(pending) - conflicts} documents would change; nothing was written"
    else:
        message = f"Migrated {len(migrated)} documents; {remaining} remain"
    return MigrationReport(
        dryRun=dry_run,
        pending=len(pending) - conflicts,
        migrated=len(migrated),
        remaining=remaining,
        skipped=conflicts,
        done=remaining == 0,
        message=message,
        changes=[
            MigrationChange(streamId=i.stream_id, collection=i.collection, actions=list(i.actions))
            for i in shown[:REPORTED_CHANGES]
        ],
    )
