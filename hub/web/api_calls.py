"""Calls: look at one, take a caller out of the queue (P3), transfer a live one (P4), wrap one up (P5)."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from hub.calls import CallControl, QueuePickup
from hub.errors import ChannelError, Conflict
from hub.models import Role, to_dict
from hub.web.routing import Ctx, RouteTable, respond
from hub.web.schemas import Body, Id

routes = RouteTable("calls")


class TransferBody(Body):
    """Whom to transfer to (an agent or a team) and why; the target hears the reason."""

    agent_id: Id | None = None
    team: str | None = Field(None, min_length=1, max_length=100)
    reason: str = Field(min_length=1, max_length=300)


class WrapUpBody(Body):
    """The call's summary note: what was agreed and what happens next (P5)."""

    summary: str = Field("", max_length=20_000)


@routes.get("/api/calls/{id}", Role.AGENT)
async def get_call(ctx: Ctx) -> web.StreamResponse:
    """One call with its timing, outcome and wrap-up."""
    return respond(to_dict(await ctx.services.calls.get(ctx.path_id())))


@routes.post("/api/calls/{id}/take", Role.AGENT)
async def take_call(ctx: Ctx) -> web.StreamResponse:
    """Take a caller out of the queue: the hub rings this agent; 409 says why it cannot."""
    desk = ctx.services.calls
    plan = await desk.plan_pickup(ctx.path_id(), ctx.agent.id)
    try:
        await _pick_up(ctx.services.channels.get(plan.account), plan)
    except Exception as err:
        await desk.pickup_failed(plan)
        if isinstance(err, ChannelError):
            raise web.HTTPBadGateway(reason=f"the phone provider refused to move the call: {err}") from err
        raise
    await desk.picked_up(plan, ctx.agent.id)
    return respond({"call_id": plan.call_id, "agent_id": plan.agent.agent_id})


async def _pick_up(channel: object, plan: QueuePickup) -> None:
    if not isinstance(channel, CallControl):
        raise Conflict(f"the line {plan.account} cannot move calls")
    await channel.pick_up(plan)


@routes.post("/api/calls/{id}/transfer", Role.AGENT, body=TransferBody)
async def transfer_call(ctx: Ctx) -> web.StreamResponse:
    """Transfer a live call to an available agent or team; 409 says why a target cannot take it."""
    body = ctx.body(TransferBody)
    desk = ctx.services.calls
    plan = await desk.plan_transfer(
        ctx.path_id(), agent_id=body.agent_id, team=body.team, reason=body.reason, by=ctx.agent.id
    )
    channel = ctx.services.channels.get(plan.account)
    if not isinstance(channel, CallControl):
        raise Conflict(f"the line {plan.account} cannot transfer calls")
    try:
        await channel.transfer(plan)
    except ChannelError as err:
        raise web.HTTPBadGateway(reason=f"the phone provider refused the transfer: {err}") from err
    await desk.transferred(plan, ctx.agent.id)
    return respond(
        {"call_id": plan.call_id, "to": plan.target_name, "agents": [t.agent_id for t in plan.targets]}
    )


@routes.post("/api/calls/{id}/wrap-up", Role.AGENT, body=WrapUpBody)
async def wrap_up_call(ctx: Ctx) -> web.StreamResponse:
    """Close a call with a summary note, which joins the conversation; refused without one (P5)."""
    body = ctx.body(WrapUpBody)
    note_id = await ctx.services.calls.wrap_up(ctx.path_id(), ctx.agent.id, body.summary)
    return respond({"call_id": ctx.path_id(), "note_id": note_id})
