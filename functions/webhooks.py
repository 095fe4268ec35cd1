"""Cloudflare's two webhook systems: the Stream webhook (recordings) and Notifications
(live inputs). ``common/services/webhooks.py`` verifies and applies them.
"""

from __future__ import annotations

import functions_framework

from common.http import Ctx, Op, Reply, http_endpoint
from common.services.webhooks import WebhookReply


@functions_framework.http
@http_endpoint(
    ("/api/webhooks/cloudflare/recording",),
    {
        "POST": Op(
            "Cloudflare Stream webhook",
            {200: WebhookReply},
            body=dict,
            headers=("Webhook-Signature",),
        )
    },
)
def cloudflarerecordingwebhook(ctx: Ctx) -> Reply:
    """POST from Cloudflare's Stream webhook (signed): a recording is ready or failed."""
    return ctx.services.webhooks.handle_video(ctx.header("Webhook-Signature"), ctx.raw_body)


@functions_framework.http
@http_endpoint(
    ("/api/webhooks/cloudflare/live-input",),
    {
        "POST": Op(
            "Cloudflare Notifications", {200: WebhookReply}, body=dict, headers=("cf-webhook-auth",)
        )
    },
)
def cloudflareliveinputwebhook(ctx: Ctx) -> Reply:
    """POST from Cloudflare Notifications: a live input connected, disconnected or errored."""
    return ctx.services.webhooks.handle_live_input(ctx.header("cf-webhook-auth"), ctx.raw_body)
