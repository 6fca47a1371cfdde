"""Contacts: looking them up, correcting them, merging duplicates."""

from __future__ import annotations

import asyncio
import zoneinfo

from aiohttp import web
from pydantic import Field

from hub.models import Role, to_dict
from hub.web.errors import ValidationFailed
from hub.web.routing import Ctx, RouteTable, respond
from hub.web.schemas import Body, Id, Language, Limit, Name, Offset, Query

routes = RouteTable("contacts")


class ContactQuery(Query):
    """A name or address fragment, and the page."""

    q: str | None = Field(None, min_length=1, max_length=200)
    limit: Limit = 50
    offset: Offset = 0


class ContactPatch(Body):
    """Corrections to a contact."""

    name: Name | None = None
    language: Language | None = None
    timezone: str | None = Field(None, min_length=1, max_length=64)


class MergeBody(Body):
    """The contact to merge into."""

    into: Id


@routes.get("/api/contacts", Role.AGENT, query=ContactQuery)
async def list_contacts(ctx: Ctx) -> web.StreamResponse:
    """Contacts, newest first, optionally matching a name or address fragment."""
    query = ctx.query(ContactQuery)
    found = await ctx.services.contacts.list(query.q, limit=query.limit, offset=query.offset)
    return respond({"items": [to_dict(c) for c in found]})


@routes.get("/api/contacts/{id}", Role.AGENT)
async def get_contact(ctx: Ctx) -> web.StreamResponse:
    """One contact with its identities."""
    return respond(to_dict(await ctx.services.contacts.get(ctx.path_id())))


@routes.patch("/api/contacts/{id}", Role.AGENT, body=ContactPatch)
async def update_contact(ctx: Ctx) -> web.StreamResponse:
    """Change a contact's name, language or time zone."""
    body = ctx.body(ContactPatch)
    if not body.model_dump(exclude_none=True):
        return respond(to_dict(await ctx.services.contacts.get(ctx.path_id())))
    if body.timezone is not None and not await asyncio.to_thread(_known_zone, body.timezone):
        raise ValidationFailed([{"error": "not a known IANA time zone", "field": "timezone"}])
    contact = await ctx.services.contacts.update(
        ctx.path_id(), name=body.name, language=body.language, timezone=body.timezone
    )
    return respond(to_dict(contact))


@routes.post("/api/contacts/{id}/merge", Role.SUPERVISOR, body=MergeBody)
async def merge_contact(ctx: Ctx) -> web.StreamResponse:
    """Merge this contact into another; returns the contact that remains."""
    target = await ctx.services.contacts.merge(ctx.path_id(), ctx.body(MergeBody).into, agent_id=ctx.agent.id)
    return respond(to_dict(target))


def _known_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True
