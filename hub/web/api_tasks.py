"""Tasks agents owe customers: callbacks, receipt checks, fax confirmations and follow-ups."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hub.calls import CallControl
from hub.errors import ChannelError, Conflict
from hub.models import Role
from hub.sla import tasks
from hub.web.routing import Ctx, RouteTable, respond

routes = RouteTable("tasks")


class TaskQuery(BaseModel):
    """Optionally one conversation's tasks."""

    model_config = ConfigDict(extra="forbid")

    conversation_id: int | None = Field(None, ge=1)


class DoneBody(BaseModel):
    """What was done, for the record."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=2000)


def _shown(row: dict[str, object]) -> dict[str, object]:
    return {
        k: (v.isoformat() if hasattr(v, "isoformat") else v)
        for k, v in row.items()
        if k != "overdue_event_at"
    }


@routes.get("/api/tasks", Role.AGENT, query=TaskQuery)
async def list_tasks(ctx: Ctx) -> web.StreamResponse:
    """Open tasks, soonest due first."""
    q = ctx.query(TaskQuery)
    async with ctx.services.db.read() as conn:
        rows = await tasks.list_open(conn, q.conversation_id)
    return respond({"items": [_shown(r) for r in rows]})


@routes.post("/api/tasks/{id}/call", Role.AGENT)
async def call_back(ctx: Ctx) -> web.StreamResponse:
    """Call the customer of a callback task now: the agent's phone rings, then the customer's (P6);
    409 says why not (outside the customer's daytime, agent not available, no phone line)."""
    desk = ctx.services.calls
    plan = await desk.plan_callback(ctx.path_id(), ctx.agent.id)
    channels = ctx.services.channels
    named = channels.get(plan.account) if plan.account else None
    channel = (
        named
        if isinstance(named, CallControl)
        else next((c for c in channels.values() if isinstance(c, CallControl)), None)
    )
    if channel is None:
        raise Conflict("no phone line of this hub can place calls")
    try:
        call_sid = await channel.call_back(plan)
    except ChannelError as err:
        raise web.HTTPBadGateway(reason=f"the phone provider refused the call: {err}") from err
    call_id = await desk.called_back(plan, channel.name, call_sid, ctx.agent.id)
    return respond({"task_id": plan.task_id, "call_id": call_id, "call_sid": call_sid, "to": plan.customer})


@routes.post("/api/tasks/{id}/done", Role.AGENT, body=DoneBody)
async def complete_task(ctx: Ctx) -> web.StreamResponse:
    """Mark a task done, with an optional note."""
    body = ctx.body(DoneBody)
    now = ctx.services.clock()
    async with ctx.services.db.write() as conn:
        events = await tasks.complete(conn, ctx.path_id(), ctx.agent.id, now, body.note)
    ctx.services.bus.publish(events)
    return respond({"id": ctx.path_id(), "status": "done"})
