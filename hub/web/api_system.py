"""The state of the hub for supervisors: channels, counts and quarantine."""

from __future__ import annotations

from aiohttp import web

from hub import quarantine
from hub.errors import NotFound
from hub.models import Role, to_dict
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


@routes.get("/api/quarantine", Role.SUPERVISOR)
async def list_quarantine(ctx: Ctx) -> web.StreamResponse:
    """Inbound items that could not be stored as messages, with the reason, newest first."""
    entries = await quarantine.entries(ctx.services.db)
    return respond({"items": [to_dict(e) for e in entries]})


@routes.get("/api/quarantine/{id}/raw", Role.SUPERVISOR)
async def quarantine_raw(ctx: Ctx) -> web.StreamResponse:
    """The quarantined bytes, as received, for inspection."""
    entry = await quarantine.entry(ctx.services.db, ctx.path_id())
    if entry.raw_sha256 is None:
        raise NotFound(f"quarantine entry {entry.id} kept no bytes")
    data = await ctx.services.blobs.get(entry.raw_sha256)
    return web.Response(
        body=data,
        content_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="quarantine-{entry.id}.bin"'},
    )
