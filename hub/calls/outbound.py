"""Callback calls the hub places (P6): the agent's phone is the parent leg, the customer its child.

Such a call is stored as an outbound `calls` row when the provider accepts it; its legs'
status callbacks then arrive like an inbound call's. Its timing is the customer's: answered
when their leg is, ended when the agent's leg ends. It is `reached` when the customer
answered, `not_reached` when the call ended without that, and counts in no answer-speed
report (those are about inbound calls).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.calls import callbacks, legs
from hub.calls.callbacks import ROUTE
from hub.errors import Conflict
from hub.events import event_row, record
from hub.models import CallOutcome, Direction
from hub.sla import tasks
from hub.sla.rings import ANSWERED, ENDED, LegEvent, ordered
from hub.store import schema


@dataclass(frozen=True, slots=True)
class CallbackTiming:
    """When the agent's leg rang and the customer answered, when the call ended, and the outcome."""

    ringing_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    outcome: CallOutcome


def measure(parent_sid: str, events: list[LegEvent]) -> CallbackTiming:
    """The callback call's timing from its legs' events, in any order and with repeats."""
    timeline = ordered(events)
    parent = [e for e in timeline if e.call_sid == parent_sid]
    customer = [e for e in timeline if e.parent_sid == parent_sid]
    ringing_at = next((e.at for e in parent if e.status == "ringing"), None)
    answered_at = next((e.at for e in customer if e.status in ANSWERED), None)
    ended_at = next((e.at for e in parent if e.status in ENDED), None)
    if answered_at is not None:
        outcome = CallOutcome.REACHED
    elif ended_at is not None:
        outcome = CallOutcome.NOT_REACHED
    else:
        outcome = CallOutcome.RINGING
    return CallbackTiming(ringing_at, answered_at, ended_at, outcome)


async def insert(
    conn: AsyncConnection, plan: callbacks.CallbackCall, account: str, call_sid: str, now: datetime
) -> int:
    """Store the placed call; adopt leg events that reached the store before it."""
    c, v = schema.calls, schema.conversations
    contact_id = (
        await conn.execute(select(v.c.contact_id).where(v.c.id == plan.conversation_id))
    ).scalar_one()
    inserted = await conn.execute(
        c.insert().returning(c.c.id),
        {
            "conversation_id": plan.conversation_id, "contact_id": contact_id, "channel_account": account,
            "external_id": call_sid, "direction": Direction.OUTBOUND.value, "started_at": now,
            "outcome": CallOutcome.RINGING.value, "line": plan.line, "route": ROUTE,
        },
    )  # fmt: skip
    call_id = int(inserted.scalar_one())
    await legs.adopt(conn, account, [call_sid], {(account, call_sid): call_id})
    return call_id


async def recompute(conn: AsyncConnection, call: Any) -> tuple[CallbackTiming, bool]:
    """Write the call's timing and outcome; return them and whether the call ended with this update."""
    timing = measure(call.external_id, await legs.timeline(conn, call))
    values: dict[str, Any] = {
        "ringing_at": timing.ringing_at,
        "answered_at": timing.answered_at,
        "ended_at": timing.ended_at,
        "outcome": timing.outcome.value,
    }
    if timing.answered_at is not None:
        values["time_to_answer_seconds"] = (timing.answered_at - call.started_at).total_seconds()
        if timing.ended_at is not None:
            values["duration_seconds"] = max(0.0, (timing.ended_at - timing.answered_at).total_seconds())
    await conn.execute(update(schema.calls).where(schema.calls.c.id == call.id).values(**values))
    return timing, call.ended_at is None and timing.ended_at is not None


async def ended(
    conn: AsyncConnection, call: Any, timing: CallbackTiming, now: datetime
) -> list[dict[str, Any]]:
    """A reached customer's callback task is done; an unreached one stays open, and both are recorded."""
    placed = await _placement(conn, call)
    task_id = placed.get("task_id") if placed else None
    by = placed.get("agent") if placed else None
    kind = "call.callback_reached" if timing.outcome is CallOutcome.REACHED else "call.callback_not_reached"
    events = [event_row(kind, now, call.conversation_id, by, call_id=call.id, task_id=task_id)]
    await record(conn, events)
    if timing.outcome is CallOutcome.REACHED and task_id is not None:
        note = f"called back: the customer answered (call {call.id})"
        with contextlib.suppress(Conflict):  # an agent marked it done meanwhile
            events += await tasks.complete(conn, int(task_id), by, now, note)
    return events


async def _placement(conn: AsyncConnection, call: Any) -> dict[str, Any] | None:
    """The `call.callback_placed` event's data for this call: its task and the agent who placed it."""
    e = schema.events
    rows = await conn.execute(
        select(e.c.data).where(
            e.c.conversation_id == call.conversation_id, e.c.kind == "call.callback_placed"
        )
    )
    return next((dict(data) for (data,) in rows if data and data.get("call_id") == call.id), None)
