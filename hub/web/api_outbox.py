"""The outbox as supervisors see it: what is queued, sent or failed, and retrying failures."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from hub.models import OutboundStatus, Role, to_dict
from hub.web.routing import Ctx, RouteTable, respond
from hub.web.schemas import Offset, Query

routes = RouteTable("outbox")


class OutboxQuery(Query):
    """A status to show, and the page."""

    status: OutboundStatus | None = None
    limit: int = Field(100, ge=1, le=500)
    offset: Offset = 0


@routes.get("/api/outbox", Role.SUPERVISOR, query=OutboxQuery)
async def list_outbox(ctx: Ctx) -> web.StreamResponse:
    """Outbox entries, newest first, and the counts by status."""
    query = ctx.query(OutboxQuery)
    outbox = ctx.services.outbox
    entries = await outbox.entries(query.status, limit=query.limit, offset=query.offset)
    return respond({"items": [to_dict(e) for e in entries], "counts": await outbox.counts()})


@routes.post("/api/outbox/{id}/retry", Role.SUPERVISOR)
async def retry_outbox(ctx: Ctx) -> web.StreamResponse:
    """Queue a failed message again."""
    entry = await ctx.services.outbox.retry(ctx.path_id(), agent_id=ctx.agent.id)
    return respond(to_dict(entry))
