"""Counts in a sliding window, shared by every instance through a ``CreateQuota`` store: the
creation rate limit and the wrong invitation codes."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from common.ports import CreateQuotaUsage

# How many of the latest counts' ids a record keeps: a write whose answer was lost is run
# again within seconds, long before this many other counts of the same user land.
RECENT_COUNTS = 10


class WindowFull(Exception):  # noqa: N818 - a verdict, not a failure
    """``limit`` counts are in the window already; one leaves it in ``retry_after_s``."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"the window is full for {retry_after_s} s")
        self.retry_after_s = retry_after_s


def counted_once(
    usage: CreateQuotaUsage, count_id: str, now: datetime, window: timedelta, limit: int
) -> CreateQuotaUsage:
    """``usage`` with one more count at ``now`` (those older than ``window`` dropped), or
    ``usage`` itself where ``count_id`` is counted already: that very write landed but its
    answer was lost, and the store runs the change again on what it reads back."""
    if count_id in usage.recent_counts:
        return usage
    recent = tuple(sorted(t for t in usage.creations if t > now - window))
    if len(recent) >= limit:
        frees_at = recent[len(recent) - limit] + window
        raise WindowFull(max(1, math.ceil((frees_at - now).total_seconds())))
    counts = (*usage.recent_counts, count_id)[-RECENT_COUNTS:]
    return CreateQuotaUsage((*recent, now), now + window, counts)
