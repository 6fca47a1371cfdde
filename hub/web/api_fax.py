"""Fax for agents: page previews of fax documents, and sending a failed fax again."""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy import select

from channels.fax.documents import DocumentError
from channels.fax.documents.preview import page_png
from hub import attachments
from hub.errors import Conflict, NotFound
from hub.models import ChannelKind, Role, to_dict
from hub.store import schema
from hub.web.routing import Ctx, RouteTable, respond

routes = RouteTable("fax")

PREVIEW_TYPES = ("application/pdf", "image/tiff")


@routes.get("/api/attachments/{id}/pages/{page}.png", Role.AGENT)
async def page_preview(ctx: Ctx) -> web.StreamResponse:
    """One page of a PDF or TIFF attachment as a PNG image (fax page previews)."""
    attachment = await attachments.one(ctx.services.db, ctx.path_id())
    if attachment.content_type.split(";")[0].strip().lower() not in PREVIEW_TYPES:
        raise NotFound(f"attachment {attachment.id} is not a PDF or TIFF document")
    data = await ctx.services.blobs.get(attachment.sha256)
    try:
        png = await asyncio.to_thread(page_png, data, ctx.path_id("page"))
    except DocumentError as err:
        raise NotFound(str(err)) from err
    return web.Response(
        body=png,
        content_type="image/png",
        headers={"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


@routes.post("/api/fax/messages/{id}/retry", Role.AGENT)
async def retry_fax(ctx: Ctx) -> web.StreamResponse:
    """Send a failed fax again (after the number or the line was fixed)."""
    o = schema.outbox
    async with ctx.services.db.read() as conn:
        row = (await conn.execute(select(o.c.id, o.c.channel).where(o.c.message_id == ctx.path_id()))).first()
    if row is None:
        raise NotFound(f"message {ctx.path_id()} is not an outgoing message")
    if row.channel != ChannelKind.FAX.value:
        raise Conflict(f"message {ctx.path_id()} is not a fax")
    entry = await ctx.services.outbox.retry(row.id, agent_id=ctx.agent.id)
    return respond(to_dict(entry))
