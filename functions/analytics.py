"""The family's audience figures after (or during) a service: peak viewers and minutes viewed.
``common/services/audience.py`` does the work."""

from __future__ import annotations

from common.http import REACHES_CLOUDFLARE, Ctx, Op, Reply
from common.services.audience import StreamAnalyticsView
from functions.paths import stream_function

ANALYTICS = {
    "GET": Op(
        "Peak viewers and minutes viewed of the stream (those who may edit it)",
        {200: StreamAnalyticsView},
        preloads=REACHES_CLOUDFLARE,
    )
}


@stream_function("/analytics", ANALYTICS, cache="anonymous")
def streamanalytics(ctx: Ctx) -> Reply:
    """GET answers from the stream (peak) and Cloudflare's analytics (minutes viewed)."""
    return ctx.services.audience.analytics(ctx.user, ctx.param("streamId"))
