"""Funeral directors' event templates (sessions' titles, offsets and durations).
``common/services/memorial_events.py`` does the work."""

from __future__ import annotations

from common.http import Ctx, Op, Reply
from common.models.api import DeleteResponse
from common.models.event_api import (
    TemplateListResponse,
    TemplateRequest,
    TemplateView,
)
from functions.paths import unified_function

TEMPLATES = {
    "GET": Op("The caller's event templates", {200: TemplateListResponse}),
    "POST": Op("Create an event template", {200: TemplateView}, body=TemplateRequest),
}
TEMPLATE = {
    "PUT": Op("Replace an event template", {200: TemplateView}, body=TemplateRequest),
    "DELETE": Op("Delete an event template", {200: DeleteResponse}),
}


@unified_function("/templates", TEMPLATES)
def eventtemplates(ctx: Ctx) -> Reply:
    """GET lists the caller's templates; POST creates one (funeral directors, admins)."""
    if ctx.method == "POST":
        return ctx.services.memorial_events.create_template(ctx.user, ctx.body(TemplateRequest))
    return ctx.services.memorial_events.list_templates(ctx.user)


@unified_function("/templates/{templateId}", TEMPLATE)
def eventtemplate(ctx: Ctx) -> Reply:
    """PUT replaces a template; DELETE removes it (its owner or an admin)."""
    template_id = ctx.param("templateId")
    if ctx.method == "DELETE":
        return ctx.services.memorial_events.delete_template(ctx.user, template_id)
    return ctx.services.memorial_events.update_template(
        ctx.user, template_id, ctx.body(TemplateRequest)
    )
