"""Counting in a sliding window: a count run again on what it wrote (its answer was lost)
recognises itself, even after other counts landed, and the window refuses past its limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from common.ports import CreateQuotaUsage
from common.services.rate_windows import RECENT_COUNTS, WindowFull, counted_once

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)


def test_a_count_run_again_on_what_it_wrote_counts_once() -> None:
    once = counted_once(CreateQuotaUsage(), "mine", NOW, WINDOW, limit=1)
    # Another request's count lands between the lost answer and the re-read.
    other = counted_once(once, "theirs", NOW, WINDOW, limit=5)
    assert counted_once(once, "mine", NOW, WINDOW, limit=1) is once  # not refused at 1
    assert counted_once(other, "mine", NOW, WINDOW, limit=5) is other
    assert other.creations == (NOW, NOW) and other.recent_counts == ("mine", "theirs")


def test_counts_older_than_the_window_leave_it_and_a_full_window_says_when_one_frees() -> None:
    old = CreateQuotaUsage((NOW - WINDOW, NOW - timedelta(minutes=4)), None)
    usage = counted_once(old, "a", NOW, WINDOW, limit=2)
    assert usage.creations == (NOW - timedelta(minutes=4), NOW)
    assert usage.expires_at == NOW + WINDOW
    with pytest.raises(WindowFull) as full:
        counted_once(usage, "b", NOW, WINDOW, limit=2)
    assert full.value.retry_after_s == 6 * 60


def test_a_record_keeps_the_ids_of_its_latest_counts_only() -> None:
    usage = CreateQuotaUsage()
    for number in range(RECENT_COUNTS + 3):
        usage = counted_once(usage, f"count-{number}", NOW, WINDOW, limit=100)
    assert len(usage.recent_counts) == RECENT_COUNTS
    assert usage.recent_counts[-1] == f"count-{RECENT_COUNTS + 2}"
    assert len(usage.creations) == RECENT_COUNTS + 3
