"""The rule files as supervisors see them: the version in force and the last failed reload."""

from __future__ import annotations

from aiohttp import web

from hub.models import Role
from hub.web.routing import Ctx, RouteTable, respond

routes = RouteTable("rules")


@routes.get("/api/rules", Role.SUPERVISOR)
async def rules_status(ctx: Ctx) -> web.StreamResponse:
    """The loaded rules version, when it was loaded, and the problems of the last failed reload."""
    return respond(ctx.services.rules.status().to_dict())
