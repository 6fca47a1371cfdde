"""The inbox: listing, reading and acting on conversations, and searching them."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from aiohttp import web
from pydantic import AwareDatetime, Field

from hub.inbox import ConversationFilter, SortOrder
from hub.models import ChannelKind, ConversationStatus, Priority, Role, to_dict
from hub.web.api_compose import FileIds, Via, files_for, route_for
from hub.web.errors import ValidationFailed
from hub.web.routing import Ctx, RouteTable, respond
from hub.web.schemas import Body, CommaList, Id, Limit, Offset, Query, Text

routes = RouteTable("conversations")

IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,100}$")
Tag = Annotated[str, Field(min_length=1, max_length=64)]


class ConversationQuery(Query):
    """Filters, order and page of the conversation list."""

    status: Annotated[tuple[ConversationStatus, ...], CommaList] = ()
    assignee: str | None = Field(
        None, pattern=r"^(me|unassigned|[1-9][0-9]{0,17})$", description="`me`, `unassigned` or an agent id"
    )
    team: Id | None = None
    channel: Annotated[tuple[ChannelKind, ...], CommaList] = ()
    tag: Tag | None = None
    contact: Id | None = None
    breached: bool = False
    q: str | None = Field(None, min_length=1, max_length=500)
    sort: SortOrder = SortOrder.UPDATED
    limit: Limit = 50
    offset: Offset = 0


class SearchQuery(Query):
    """A full-text search."""

    q: str = Field(min_length=1, max_length=500)
    limit: Limit = 50
    offset: Offset = 0


class ReplyBody(Body):
    """A reply to the customer, on the conversation's channel unless `via` names another of the
    contact's; `attachments` are upload ids; supervisors may override etiquette errors."""

    text: Text
    subject: str | None = Field(None, max_length=998)
    html: str | None = Field(None, max_length=2_000_000)
    override_reason: str | None = Field(None, min_length=3, max_length=500)
    whatsapp_template: str | None = Field(None, min_length=1, max_length=100)
    """An approved WhatsApp template (by its name in the channel's settings) to send instead of free text."""
    via: Via | None = None
    attachments: FileIds = Field(default_factory=list)


class DraftBody(Body):
    """A draft to check as the agent types."""

    text: str = Field(max_length=1_000_000)
    subject: str | None = Field(None, max_length=998)
    html: str | None = Field(None, max_length=2_000_000)
    whatsapp_template: str | None = Field(None, min_length=1, max_length=100)
    via: Via | None = None
    attachments: FileIds = Field(default_factory=list)


def _template_meta(name: str | None) -> dict[str, str] | None:
    return {"whatsapp_template": name} if name is not None else None


class NoteBody(Body):
    """An internal note."""

    text: Text


class AssignBody(Body):
    """`{"agent_id": id}` (null unassigns) or `{"team_id": id, "round_robin": true}`."""

    agent_id: Id | None = None
    team_id: Id | None = None
    round_robin: bool = False


class StatusBody(Body):
    """A new status; snoozing needs a time in the future."""

    status: ConversationStatus
    snoozed_until: AwareDatetime | None = None


class TagsBody(Body):
    """Tags to add and to remove."""

    add: list[Tag] = Field(default_factory=list, max_length=50)
    remove: list[Tag] = Field(default_factory=list, max_length=50)


class PriorityBody(Body):
    """A new priority."""

    priority: Literal["low", "normal", "high", "urgent"]


def conversation_filter(ctx: Ctx, query: ConversationQuery) -> ConversationFilter:
    """The inbox filter a list query asks for, `me` being the caller."""
    assignee_id = None
    if query.assignee == "me":
        assignee_id = ctx.agent.id
    elif query.assignee not in (None, "unassigned"):
        assignee_id = int(query.assignee)
    return ConversationFilter(
        statuses=query.status,
        assignee_id=assignee_id,
        unassigned=query.assignee == "unassigned",
        team_id=query.team,
        channels=query.channel,
        tag=query.tag,
        contact_id=query.contact,
        breached=query.breached,
        query=query.q,
        sort=query.sort,
        limit=query.limit,
        offset=query.offset,
    )


@routes.get("/api/conversations", Role.AGENT, query=ConversationQuery)
async def list_conversations(ctx: Ctx) -> web.StreamResponse:
    """A page of conversations matching the filters, and how many match in all."""
    query = ctx.query(ConversationQuery)
    flt = conversation_filter(ctx, query)
    items, total = await ctx.services.inbox.list(flt)
    return respond(
        {"items": [to_dict(c) for c in items], "total": total, "limit": query.limit, "offset": query.offset}
    )


@routes.get("/api/conversations/{id}", Role.AGENT)
async def get_conversation(ctx: Ctx) -> web.StreamResponse:
    """A conversation with its contact and timeline: messages, calls and events."""
    timeline = await ctx.services.inbox.timeline(ctx.path_id())
    contact = await ctx.services.contacts.get(timeline.conversation.contact_id)
    return respond(
        {
            "conversation": to_dict(timeline.conversation),
            "contact": to_dict(contact),
            "messages": [to_dict(m) for m in timeline.messages],
            "calls": [to_dict(c) for c in timeline.calls],
            "events": [to_dict(e) for e in timeline.events],
        }
    )


@routes.post("/api/conversations/{id}/reply", Role.AGENT, body=ReplyBody, status=202)
async def reply(ctx: Ctx) -> web.StreamResponse:
    """Queue a reply; the same Idempotency-Key again returns the first message."""
    body = ctx.body(ReplyBody)
    key = ctx.request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not IDEMPOTENCY_KEY.match(key):
        raise ValidationFailed(
            [{"error": "must be 1 to 100 visible ASCII characters", "field": IDEMPOTENCY_HEADER}]
        )
    cid = ctx.path_id()
    message = await ctx.services.composer.reply(
        cid,
        body.text,
        agent=ctx.agent,
        subject=body.subject,
        html=body.html,
        idempotency_key=f"web:{ctx.agent.id}:{key}" if key is not None else None,
        override_reason=body.override_reason,
        meta=_template_meta(body.whatsapp_template),
        via=await route_for(ctx.services, cid, body.via, files=bool(body.attachments)),
        files=await files_for(ctx, body.attachments),
    )
    return respond(to_dict(message), status=202)


@routes.post("/api/conversations/{id}/check", Role.AGENT, body=DraftBody)
async def check_draft(ctx: Ctx) -> web.StreamResponse:
    """The etiquette findings on a draft reply, in the agent's language, and the subject it would get."""
    body, cid = ctx.body(DraftBody), ctx.path_id()
    draft, findings = await ctx.services.composer.check(
        cid,
        body.text,
        body.subject,
        body.html,
        ctx.agent.language,
        _template_meta(body.whatsapp_template),
        via=await route_for(ctx.services, cid, body.via, files=bool(body.attachments)),
        files=await files_for(ctx, body.attachments),
    )
    return respond({"subject": draft.subject, "findings": [f.to_dict() for f in findings]})


@routes.post("/api/conversations/{id}/notes", Role.AGENT, body=NoteBody, status=201)
async def add_note(ctx: Ctx) -> web.StreamResponse:
    """Add an internal note."""
    note = await ctx.services.inbox.add_note(ctx.path_id(), ctx.agent.id, ctx.body(NoteBody).text)
    return respond(to_dict(note), status=201)


@routes.post("/api/conversations/{id}/assign", Role.AGENT, body=AssignBody)
async def assign(ctx: Ctx) -> web.StreamResponse:
    """Assign to an agent, unassign, or hand to a team's next available agent."""
    body = ctx.body(AssignBody)
    inbox, cid = ctx.services.inbox, ctx.path_id()
    if body.round_robin:
        if body.team_id is None:
            raise _invalid("round-robin assignment needs a team_id", "team_id")
        if body.agent_id is not None:
            raise _invalid("give either an agent_id or round_robin, not both", "agent_id")
        conversation = await inbox.assign_round_robin(cid, body.team_id, by=ctx.agent.id)
    else:
        if "agent_id" not in body.model_fields_set:
            raise _invalid("agent_id is required (null unassigns)", "agent_id")
        if body.team_id is not None:
            raise _invalid("team_id only goes with round_robin", "team_id")
        conversation = await inbox.assign(cid, body.agent_id, by=ctx.agent.id)
    return respond(to_dict(conversation))


@routes.post("/api/conversations/{id}/status", Role.AGENT, body=StatusBody)
async def set_status(ctx: Ctx) -> web.StreamResponse:
    """Open, set pending, snooze until a time, or resolve."""
    body = ctx.body(StatusBody)
    if body.status is ConversationStatus.SNOOZED:
        if body.snoozed_until is None:
            raise _invalid("snoozing needs snoozed_until", "snoozed_until")
        if body.snoozed_until <= ctx.services.clock():
            raise _invalid("must be in the future", "snoozed_until")
    elif body.snoozed_until is not None:
        raise _invalid("only a snoozed conversation has snoozed_until", "snoozed_until")
    conversation = await ctx.services.inbox.set_status(
        ctx.path_id(), body.status, by=ctx.agent.id, snoozed_until=body.snoozed_until
    )
    return respond(to_dict(conversation))


@routes.post("/api/conversations/{id}/tags", Role.AGENT, body=TagsBody)
async def set_tags(ctx: Ctx) -> web.StreamResponse:
    """Add and remove tags."""
    body = ctx.body(TagsBody)
    conversation = await ctx.services.inbox.set_tags(ctx.path_id(), body.add, body.remove, by=ctx.agent.id)
    return respond(to_dict(conversation))


@routes.post("/api/conversations/{id}/priority", Role.AGENT, body=PriorityBody)
async def set_priority(ctx: Ctx) -> web.StreamResponse:
    """Change the priority."""
    priority = Priority[ctx.body(PriorityBody).priority.upper()]
    conversation = await ctx.services.inbox.set_priority(ctx.path_id(), priority, by=ctx.agent.id)
    return respond(to_dict(conversation))


@routes.get("/api/search", Role.AGENT, query=SearchQuery)
async def search(ctx: Ctx) -> web.StreamResponse:
    """Conversations with a message matching the words (Chinese too), most recent first."""
    query = ctx.query(SearchQuery)
    found, total = await ctx.services.inbox.list(
        ConversationFilter(query=query.q, limit=query.limit, offset=query.offset)
    )
    return respond({"items": [to_dict(c) for c in found], "total": total})


def _invalid(message: str, field: str) -> ValidationFailed:
    return ValidationFailed([{"error": message, "field": field}])
