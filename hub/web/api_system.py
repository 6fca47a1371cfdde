"""The state of the hub for supervisors: channels and counts."""

from __future__ import annotations

from aiohttp import web

from hub.models import Role
from hub.stats import collect
from hub.web.routing import Ctx, RouteTable, respond

routes = RouteTable("system")


@routes.get("/api/channels", Role.SUPERVISOR)
async def list_channels(ctx: Ctx) -> web.StreamResponse:
    """Each channel's name, kind and state (never its settings)."""
    items = [
        {"name": name, "kind": channel.kind, "state": channel.state().value}
        for name, channel in sorted(ctx.services.channels.items())
    ]
    return respond({"items": items})


@routes.get("/api/stats", Role.SUPERVISOR)
async def stats(ctx: Ctx) -> web.StreamResponse:
    """Counts of contacts, conversations, messages, quarantined items and the outbox."""
    return respond(await collect(ctx.services.db))
