"""What the reply composer offers: the channels to answer on, templates, and file uploads."""

from __future__ import annotations

import asyncio

from aiohttp import web
from pydantic import Field

from hub import reply_routes, uploads
from hub.errors import PayloadTooLarge, TemplateError
from hub.models import ChannelKind, Role
from hub.reply_routes import ReplyRoute
from hub.services import Services
from hub.templates.picker import offered
from hub.web.errors import ValidationFailed
from hub.web.routing import Ctx, RouteTable, respond
from hub.web.schemas import Body, Id, Query

routes = RouteTable("compose")

MAX_FILES = 10


class Via(Body):
    """Another route for a reply: a channel account and the contact's address on it."""

    account: str = Field(min_length=1, max_length=100)
    to: str = Field(min_length=1, max_length=320)


class TemplateBody(Body):
    """A template to render into the draft, for the channel the reply goes on."""

    template: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    channel: ChannelKind | None = None


class UploadQuery(Query):
    """The uploaded file's name (the body is the file, its Content-Type the file's type)."""

    filename: str = Field(min_length=1, max_length=1000)


FileIds = list[Id]


async def route_for(
    services: Services, conversation_id: int, via: Via | None, *, files: bool
) -> ReplyRoute | None:
    """The route a reply asks for, checked against the conversation's routes.

    Without `via`, the conversation's own route when files go along (to know whether it carries
    them), else None.
    """
    if via is None and not files:
        return None
    conversation = await services.inbox.conversation(conversation_id)
    async with services.db.read() as conn:
        found = await reply_routes.routes(conn, services.channels, conversation)
    if via is None:
        return next((r for r in found if r.current), None)
    return reply_routes.choose(found, via.account, via.to)


async def files_for(ctx: Ctx, ids: FileIds) -> list[uploads.Upload]:
    """The caller's own uploads with these ids."""
    if len(ids) > MAX_FILES:
        raise ValidationFailed([{"error": f"at most {MAX_FILES} files", "field": "attachments"}])
    return await uploads.owned(ctx.services.db, ctx.agent.id, ids)


@routes.get("/api/conversations/{id}/compose", Role.AGENT)
async def compose_options(ctx: Ctx) -> web.StreamResponse:
    """The channels and addresses this conversation can be answered on, and the reply templates."""
    services, cid = ctx.services, ctx.path_id()
    conversation = await services.inbox.conversation(cid)
    async with services.db.read() as conn:
        found = await reply_routes.routes(conn, services.channels, conversation)
        lang = await services.replies.language(conn, cid)
    channels = {conversation.channel, *(r.channel for r in found)}
    names = await asyncio.to_thread(
        lambda: {c.value: offered(services.templates, c, lang) for c in sorted(channels)}
    )
    return respond(
        {
            "routes": [r.to_dict() for r in found],
            "language": lang,
            "templates": names,
            "max_upload_bytes": uploads.MAX_UPLOAD_BYTES,
        }
    )


@routes.post("/api/conversations/{id}/template", Role.AGENT, body=TemplateBody)
async def render_template(ctx: Ctx) -> web.StreamResponse:
    """A reply template rendered with the conversation's context, to insert into the draft."""
    body, services, cid = ctx.body(TemplateBody), ctx.services, ctx.path_id()
    await services.inbox.conversation(cid)
    try:
        async with services.db.read() as conn:
            text, subject, lang = await services.replies.for_agent(
                conn, cid, body.template, body.channel, ctx.agent.display_name
            )
    except TemplateError as err:
        raise ValidationFailed([{"error": str(err), "field": "template"}]) from None
    return respond({"template": body.template, "language": lang, "text": text, "subject": subject})


@routes.post("/api/uploads", Role.AGENT, query=UploadQuery, status=201)
async def upload(ctx: Ctx) -> web.StreamResponse:
    """Keep a file to attach to a reply (the body is the file); 413 over the size limit."""
    request = ctx.request
    if request.content_length is not None and request.content_length > uploads.MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(f"the file is over the limit of {uploads.MAX_UPLOAD_BYTES} bytes")
    data = await request.read()
    if not data:
        raise ValidationFailed([{"error": "the file is empty", "field": "body"}])
    stored = await uploads.store(
        ctx.services.db,
        ctx.services.blobs,
        ctx.agent.id,
        ctx.query(UploadQuery).filename,
        request.content_type,
        data,
        ctx.services.clock(),
    )
    return respond(
        {
            "id": stored.id,
            "filename": stored.filename,
            "content_type": stored.content_type,
            "size": stored.size,
        },
        status=201,
    )
