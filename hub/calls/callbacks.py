"""Calling a customer back from a callback task (P6): only inside their daytime, by an available agent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.calls.routing import Ringable, available_agent
from hub.errors import Conflict, NotFound
from hub.sla import tasks
from hub.sla.policy import PolicyBook
from hub.store import schema

ROUTE = "callback_call"
"""The `route` of a callback call (an inbound caller asking for a callback has route `callback`)."""


@dataclass(frozen=True, slots=True)
class CallbackCall:
    """A callback the desk accepted: the task, whom to call, from which line, and who calls."""

    task_id: int
    conversation_id: int
    account: str | None
    line: str | None
    customer: str
    agent: Ringable
    points: tuple[str, ...]


async def plan(
    conn: AsyncConnection, book: PolicyBook, task_id: int, agent_id: int, now: datetime
) -> CallbackCall:
    """Check a callback call; Conflict naming why it cannot be made now (P6: the customer's daytime)."""
    t = schema.tasks
    task = (await conn.execute(select(t).where(t.c.id == task_id))).first()
    if task is None:
        raise NotFound(f"task {task_id} not found")
    if task.kind != tasks.TaskKind.CALLBACK.value or task.status != "open":
        raise Conflict(f"task {task_id} is not an open callback")
    payload = task.payload or {}
    phone = payload.get("phone")
    if not phone:
        raise Conflict(f"task {task_id} has no phone number to call")
    zone = tasks.customer_zone(payload.get("customer_zone"), phone, book.default_calendar.timezone)
    hours = book.timers.customer_daytime
    if not tasks.daytime(zone, hours).is_open(now):
        local = now.astimezone(zone)
        raise Conflict(f"it is {local:%H:%M} for the customer ({zone}); call between {hours} their time (P6)")
    c = schema.calls
    ringing = await conn.execute(
        select(c.c.id).where(
            c.c.conversation_id == task.conversation_id, c.c.route == ROUTE, c.c.ended_at.is_(None)
        )
    )
    if (live := ringing.scalar()) is not None:
        raise Conflict(f"the customer is being called back already (call {live})")
    agent = await available_agent(conn, agent_id, "call")
    last = (
        await conn.execute(
            select(c.c.channel_account, c.c.line)
            .where(c.c.conversation_id == task.conversation_id)
            .order_by(c.c.started_at.desc(), c.c.id.desc())
            .limit(1)
        )
    ).first()
    points = tuple(str(p) for p in payload.get("points") or ())
    return CallbackCall(
        task.id, task.conversation_id, last.channel_account if last else None, last.line if last else None,
        str(phone), agent, points,
    )  # fmt: skip
