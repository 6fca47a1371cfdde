"""The state of the hub for supervisors: channels, counts and quarantine."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from hub import quarantine
from hub.errors import ChannelError, ChannelUnavailable, Conflict, Invalid, NotFound
from hub.models import Role, to_dict
from hub.stats import collect
from hub.web.errors import ApiError
from hub.web.routing import Ctx, RouteTable, respond
from hub.web.schemas import Body, Query

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


class QuarantineQuery(Query):
    """Whether to list resolved items too."""

    resolved: bool = False


class DismissBody(Body):
    """Why the item is left out of the inbox."""

    reason: str = Field(min_length=1, max_length=1000)


@routes.get("/api/quarantine", Role.SUPERVISOR, query=QuarantineQuery)
async def list_quarantine(ctx: Ctx) -> web.StreamResponse:
    """Inbound items that could not be stored as messages, with the reason, newest first."""
    everything = ctx.query(QuarantineQuery).resolved
    entries = await quarantine.entries(ctx.services.db, unresolved_only=not everything)
    return respond({"items": [to_dict(e) for e in entries]})


@routes.post("/api/quarantine/{id}/reprocess", Role.SUPERVISOR)
async def reprocess_quarantined(ctx: Ctx) -> web.StreamResponse:
    """Read a quarantined item again with the current parser and store it exactly once."""
    entry = await quarantine.entry(ctx.services.db, ctx.path_id())
    if entry.resolved_at is not None:
        raise Conflict(f"quarantine entry {entry.id} is already resolved: {entry.resolution or 'resolved'}")
    channel = ctx.services.channels.get(entry.channel_account)
    if not isinstance(channel, quarantine.Reprocessor):
        raise Conflict(
            f"the channel {entry.channel_account} cannot read its items again (not configured, or not a "
            "channel that keeps what it received); dismiss the item with a reason instead"
        )
    try:
        done = await channel.reprocess(entry.id, agent_id=ctx.agent.id)
    except ChannelUnavailable as err:
        raise ApiError(503, f"cannot re-process now: {err}") from err
    except ChannelError as err:
        raise Invalid(f"still cannot be stored: {err}") from err
    return respond(to_dict(done))


@routes.post("/api/quarantine/{id}/dismiss", Role.SUPERVISOR, body=DismissBody)
async def dismiss_quarantined(ctx: Ctx) -> web.StreamResponse:
    """Resolve a quarantined item without storing it, for the reason given."""
    reason = ctx.body(DismissBody).reason
    entry = await quarantine.dismiss(
        ctx.services.db, ctx.path_id(), reason, ctx.services.clock(), agent_id=ctx.agent.id
    )
    return respond(to_dict(entry))


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
