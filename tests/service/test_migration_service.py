"""The migration's store (on the client library) is built for administrators only."""

from __future__ import annotations

import pytest

from common.errors import FailedPreconditionError, PermissionDeniedError, UnauthenticatedError
from common.ports import StreamMigrationStore
from common.services.migration import MigrationService
from tests import people


def test_a_refused_caller_never_has_the_store_built() -> None:
    asked: list[bool] = []

    def store() -> StreamMigrationStore | None:
        asked.append(True)
        return None

    migration = MigrationService(store)
    with pytest.raises(UnauthenticatedError):
        migration.report(None)
    for user in (people.OWNER, people.FUNERAL_DIRECTOR, people.STRANGER):
        with pytest.raises(PermissionDeniedError):
            migration.apply(user, 10)
    assert asked == []

    # An administrator's call asks for it (here a deployment without one: a 412, not a 500).
    with pytest.raises(FailedPreconditionError):
        migration.report(people.ADMIN)
    assert asked == [True]
