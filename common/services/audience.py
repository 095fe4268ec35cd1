"""The family's audience figures: who watched and for how long.

While live, the status monitor keeps ``viewerCount`` and its peak ``maxViewers`` on the stream
(Cloudflare's live viewer count, one read per check). After the service the family asks for
the analytics: that peak, and the minutes viewed of the stream's videos from Cloudflare's
GraphQL Analytics, which lag by minutes and are budgeted (cost-based, about 320 queries per
5 minutes per account), so each instance keeps an answer for ``cache_ttl_s``.
"""

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from common.access import Action
from common.models.base import Model
from common.models.domain import Stream, StreamStatus, User
from common.services.backends import BackendPorts, WithBackends

# Cloudflare answers at most 31 days per analytics query and keeps 90 days.
MAX_ANALYTICS_WINDOW = timedelta(days=31)


class StreamAnalyticsView(Model):
    """Reply of ``GET /streams/{id}/analytics``: peak concurrent viewers (as the status
    monitor saw them while live), viewers now, and minutes viewed of its videos over
    ``since``..``until`` (Cloudflare's estimate; it lags by a few minutes)."""

    streamId: str
    status: StreamStatus
    viewerCount: int
    peakViewers: int
    minutesViewed: float
    videoIds: list[str]
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class AudiencePolicy:
    """How long one instance reuses an analytics answer."""

    analytics_cache_ttl_s: float = 300


class AudienceService(WithBackends):
    """Analytics of a stream for those who may edit it."""

    def __init__(self, backends: BackendPorts, *, policy: AudiencePolicy) -> None:
        super().__init__(backends)
        self.policy = policy
        self._cache: dict[tuple[str, tuple[str, ...]], tuple[datetime, float]] = {}
        self._lock = threading.Lock()

    def analytics(self, user: User | None, stream_id: str) -> StreamAnalyticsView:
        """Peak viewers and minutes viewed; Cloudflare is asked only once the stream has been
        live, and at most once per stream per ``analytics_cache_ttl_s`` on this instance."""
        stream, _ = self._load(user, stream_id, Action.EDIT)
        uids = _media_uids(stream)
        since = None  # never live: nobody watched
        if stream.actual_start_time is not None:
            # Cloudflare books minutes to the minute they fall in: count from the whole minute.
            since = stream.created_at.replace(second=0, microsecond=0)
        until = None
        minutes = 0.0
        if since is not None and uids:
            until = min(self._clock.now(), since + MAX_ANALYTICS_WINDOW)
            minutes = self._minutes(stream.id, uids, since, until)
        return StreamAnalyticsView(
            streamId=stream.id,
            status=stream.status,
            viewerCount=stream.viewer_count,
            peakViewers=max(stream.max_viewers or 0, stream.viewer_count),
            minutesViewed=round(minutes, 2),
            videoIds=[uid for uid in uids if uid != stream.cloudflare_id],
            since=since,
            until=until,
        )

    def _minutes(
        self, stream_id: str, uids: tuple[str, ...], since: datetime, until: datetime
    ) -> float:
        key, now = (stream_id, uids), self._clock.now()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and (now - cached[0]).total_seconds() < (
            self.policy.analytics_cache_ttl_s
        ):
            return cached[1]
        minutes = self._provider.minutes_viewed(uids, since, until)
        with self._lock:
            self._cache[key] = (now, minutes)
        return minutes


def _media_uids(stream: Stream) -> tuple[str, ...]:
    """The stream's videos (each broadcast, reconnect and trim) and its live input: Cloudflare
    books minutes to a video uid; the input's is asked too in case live views go to it."""
    uids = [entry.video_uid for entry in stream.recordings]
    if stream.cloudflare_id:
        uids.append(stream.cloudflare_id)
    return tuple(dict.fromkeys(uids))
