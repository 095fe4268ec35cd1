"""The ``CreateQuota``, ``IdempotencyStore`` and ``MemorialDirectory`` contracts: the fakes
and Firestore alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from common.models.domain import Memorial
from common.ports import CreateQuota, CreateQuotaUsage, IdempotencyRecord, IdempotencyStore
from tests.integration.contract.conftest import Memorials

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


class Refused(Exception):
    """What a change raises to abort."""


# --- CreateQuota ----------------------------------------------------------------------------


def one_more(usage: CreateQuotaUsage) -> CreateQuotaUsage:
    at = NOW + timedelta(seconds=len(usage.creations))
    return CreateQuotaUsage(usage.creations + (at,), at + timedelta(hours=1))


def test_quota_usage_starts_empty_and_keeps_what_was_stored(quota: CreateQuota) -> None:
    seen: list[CreateQuotaUsage] = []

    def record(usage: CreateQuotaUsage) -> CreateQuotaUsage:
        seen.append(usage)
        return one_more(usage)

    first = quota.update("user-1", record)
    second = quota.update("user-1", record)

    assert seen[0] == CreateQuotaUsage()
    assert first == CreateQuotaUsage((NOW,), NOW + timedelta(hours=1))
    assert seen[-1] == first
    assert second.creations == (NOW, NOW + timedelta(seconds=1))
    assert quota.update("user-1", lambda u: u) == second  # no change: the stored usage
    assert quota.update("user-2", lambda u: u) == CreateQuotaUsage()  # per user


def test_quota_users_whose_uid_names_no_document_are_kept_apart(quota: CreateQuota) -> None:
    quota.update("a/b", one_more)
    assert quota.update("a/b", lambda u: u).creations == (NOW,)
    assert quota.update("a", lambda u: u) == CreateQuotaUsage()


def test_a_quota_change_that_raises_writes_nothing(quota: CreateQuota) -> None:
    stored = quota.update("user-1", one_more)

    def refuse(usage: CreateQuotaUsage) -> CreateQuotaUsage:
        raise Refused

    with pytest.raises(Refused):
        quota.update("user-1", refuse)
    assert quota.update("user-1", lambda u: u) == stored


def test_a_concurrent_quota_write_makes_the_change_run_again(quota: CreateQuota) -> None:
    seen: list[CreateQuotaUsage] = []

    def record(usage: CreateQuotaUsage) -> CreateQuotaUsage:
        seen.append(usage)
        if len(seen) == 1:  # another instance admits a creation meanwhile
            quota.update("user-1", one_more)
        return one_more(usage)

    result = quota.update("user-1", record)

    assert len(seen) >= 2 and len(seen[-1].creations) == 1
    assert len(result.creations) == 2  # neither creation is lost
    assert quota.update("user-1", lambda u: u) == result


# --- IdempotencyStore -----------------------------------------------------------------------


def record(stream_id: str = "stream-1", state: str = "pending") -> IdempotencyRecord:
    return IdempotencyRecord(
        fingerprint="sha256:body",
        stream_id=stream_id,
        state=state,  # type: ignore[arg-type]
        lease_until=NOW + timedelta(seconds=30),
        expires_at=NOW + timedelta(days=1),
    )


def test_a_key_starts_unknown_and_none_writes_nothing(keys: IdempotencyStore) -> None:
    seen: list[IdempotencyRecord | None] = []

    def look(current: IdempotencyRecord | None) -> IdempotencyRecord | None:
        seen.append(current)
        return None

    assert keys.update("user-1", "key-1", look) is None
    assert seen and all(s is None for s in seen)
    assert keys.update("user-1", "key-1", lambda r: r) is None


def test_a_key_keeps_its_record_per_user(keys: IdempotencyStore) -> None:
    claimed = keys.update("user-1", "key-1", lambda _: record())

    assert claimed == record()
    assert keys.update("user-1", "key-1", lambda r: r) == record()
    assert keys.update("user-1", "key-1", lambda _: None) == record()  # None: left as is
    assert keys.update("user-2", "key-1", lambda r: r) is None  # keys are per user
    assert keys.update("user-1", "key-2", lambda r: r) is None
    done = keys.update("user-1", "key-1", lambda _: record(state="done"))
    assert done == record(state="done")
    assert keys.update("user-1", "key-1", lambda r: r) == record(state="done")


def test_an_idempotency_change_that_raises_writes_nothing(keys: IdempotencyStore) -> None:
    keys.update("user-1", "key-1", lambda _: record())

    def refuse(current: IdempotencyRecord | None) -> IdempotencyRecord | None:
        raise Refused

    with pytest.raises(Refused):
        keys.update("user-1", "key-1", refuse)
    assert keys.update("user-1", "key-1", lambda r: r) == record()


def test_a_concurrent_claim_makes_the_change_run_again(keys: IdempotencyStore) -> None:
    seen: list[IdempotencyRecord | None] = []

    def claim(current: IdempotencyRecord | None) -> IdempotencyRecord | None:
        seen.append(current)
        if len(seen) == 1:  # another request claims the key meanwhile
            keys.update("user-1", "key-1", lambda _: record("stream-other"))
        return current or record("stream-mine")

    result = keys.update("user-1", "key-1", claim)

    assert len(seen) >= 2 and seen[-1] == record("stream-other")
    assert result == record("stream-other")  # the first claim wins; nothing overwrote it


# --- MemorialDirectory ----------------------------------------------------------------------


def test_a_memorial_reads_back_as_the_site_stored_it(memorials: Memorials) -> None:
    ada = Memorial(
        id="memorial-ada",
        owner_uid="family-uid",
        funeral_director_uid="director-uid",
        is_public=False,
        loved_one_name="Ada Lovelace",
    )
    bare = Memorial(id="memorial-bare", owner_uid="family-uid")
    memorials.add(ada)
    memorials.add(bare)

    assert memorials.directory.get("memorial-ada") == ada
    assert memorials.directory.get("memorial-bare") == bare
    assert memorials.directory.get("memorial-missing") is None


def test_memorials_read_together_are_each_as_read_alone(memorials: Memorials) -> None:
    ada = Memorial(id="memorial-ada", owner_uid="family-uid", is_public=False)
    bare = Memorial(id="memorial-bare", owner_uid="director-uid")
    memorials.add(ada)
    memorials.add(bare)

    both = memorials.directory.get_many(["memorial-bare", "memorial-missing", "memorial-ada"])

    assert both == {"memorial-ada": ada, "memorial-bare": bare, "memorial-missing": None}
    assert memorials.directory.get_many(["memorial-ada", "memorial-ada"]) == {"memorial-ada": ada}
    assert memorials.directory.get_many([]) == {}
