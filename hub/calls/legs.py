"""Leg events of calls: stored once each, then the call's timing and outcome recomputed from all of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.events import event_row, record
from hub.models import Availability, CallOutcome
from hub.sla.rings import ANSWERED, ENDED, AnswerTarget, CallTiming, LegEvent, measure
from hub.store import bulk, schema
from hub.store.upsert import insert_ignore

NO_SEQUENCE = -1


@dataclass(frozen=True, slots=True)
class LegUpdate:
    """One status callback of one leg, as a channel parsed it.

    `call_sid` is the leg's id; `parent_sid` the caller's call for an agent's leg (None for
    the caller's own leg); `agent` the user name whose device the leg rang, if known.
    """

    account: str
    call_sid: str
    status: str
    at: datetime
    parent_sid: str | None = None
    sequence: int | None = None
    agent: str | None = None
    duration_seconds: float | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LegResult:
    """What storing a leg event did: new or a replay, the call it belongs to, events recorded."""

    stored: bool
    call_id: int | None
    ended_now: bool = False
    events: tuple[dict[str, Any], ...] = ()


async def store(conn: AsyncConnection, leg: LegUpdate, now: datetime) -> tuple[bool, Any]:
    """Store a leg event once; return whether it was new and the call row (None for unknown calls)."""
    c, lg = schema.calls, schema.call_legs
    owner = leg.parent_sid or leg.call_sid
    call = (
        await conn.execute(select(c).where(c.c.channel_account == leg.account, c.c.external_id == owner))
    ).first()
    agent_id = None
    if leg.agent is not None:
        agent_id = (
            await conn.execute(select(schema.agents.c.id).where(schema.agents.c.username == leg.agent))
        ).scalar()
    inserted = await conn.execute(
        insert_ignore(conn, lg).returning(lg.c.id),
        {
            "channel_account": leg.account, "call_sid": leg.call_sid, "parent_sid": leg.parent_sid,
            "call_id": call.id if call is not None else None, "status": leg.status, "at": leg.at,
            "sequence": leg.sequence if leg.sequence is not None else NO_SEQUENCE,
            "agent_id": agent_id, "received_at": now, "data": dict(leg.data),
        },
    )  # fmt: skip
    return inserted.scalar() is not None, call


async def timeline(conn: AsyncConnection, call: Any) -> list[LegEvent]:
    """The call's leg events, with its arrival as the caller leg's first event."""
    lg, a = schema.call_legs, schema.agents
    rows = await conn.execute(
        select(lg.c.call_sid, lg.c.status, lg.c.at, lg.c.sequence, lg.c.parent_sid, a.c.id.label("agent"))
        .outerjoin(a, a.c.id == lg.c.agent_id)
        .where(lg.c.call_id == call.id)
    )
    events = [LegEvent(call.external_id, "initiated", call.started_at, -2)]
    events.extend(
        LegEvent(
            r.call_sid,
            r.status,
            r.at,
            r.sequence if r.sequence != NO_SEQUENCE else None,
            r.parent_sid,
            str(r.agent) if r.agent is not None else None,
        )
        for r in rows
    )
    return events


def outcome_of(timing: CallTiming, route: str | None) -> CallOutcome:
    """The call's outcome, with the route it took: unanswered calls sent to voicemail or queued."""
    if timing.answered_at is not None:
        return timing.outcome
    if route == "voicemail":
        return CallOutcome.VOICEMAIL
    if route == "queue" and timing.ended_at is not None:
        return CallOutcome.ABANDONED
    return timing.outcome


async def recompute(
    conn: AsyncConnection, call: Any, target: AnswerTarget, now: datetime, duration: float | None
) -> tuple[CallTiming, CallOutcome, bool]:
    """Write the call's timing and outcome; return them and whether the call ended with this update."""
    timing = measure(call.external_id, await timeline(conn, call), target, now)
    outcome = outcome_of(timing, call.route)
    answered_by = int(timing.answered_by) if timing.answered_by and timing.answered_by.isdigit() else None
    values: dict[str, Any] = {
        "ringing_at": timing.ringing_at,
        "answered_at": timing.answered_at,
        "ended_at": timing.ended_at,
        "answered_by": answered_by,
        "rings_to_answer": timing.rings,
        "time_to_answer_seconds": timing.time_to_answer.total_seconds() if timing.time_to_answer else None,
        "outcome": outcome.value,
    }
    if duration is not None:
        values["duration_seconds"] = duration
    elif timing.ended_at is not None and timing.answered_at is not None and call.duration_seconds is None:
        values["duration_seconds"] = (timing.ended_at - timing.answered_at).total_seconds()
    await conn.execute(update(schema.calls).where(schema.calls.c.id == call.id).values(**values))
    return timing, outcome, call.ended_at is None and timing.ended_at is not None


async def follow_agent(
    conn: AsyncConnection, leg: LegUpdate, call: Any, now: datetime
) -> list[dict[str, Any]]:
    """An agent whose leg is answered becomes busy and takes the conversation; available again after."""
    if leg.agent is None:
        return []
    a = schema.agents
    agent_id = (await conn.execute(select(a.c.id).where(a.c.username == leg.agent))).scalar()
    if agent_id is None:
        return []
    events: list[dict[str, Any]] = []
    if leg.status in ANSWERED and not await _leg_has(conn, call.id, leg.call_sid, ENDED):
        move = (Availability.AVAILABLE, Availability.BUSY, "agent.on_call")
    elif leg.status in ENDED and await _leg_has(conn, call.id, leg.call_sid, ANSWERED):
        move = (Availability.BUSY, Availability.AVAILABLE, "agent.off_call")
    else:
        move = None
    if move is not None:
        was, becomes, kind = move
        changed = await conn.execute(
            update(a)
            .where(a.c.id == agent_id, a.c.availability == was.value)
            .values(availability=becomes.value)
        )
        if changed.rowcount:
            events.append(event_row(kind, now, call.conversation_id, agent_id, call_id=call.id))
    await record(conn, events)
    return events


async def _leg_has(conn: AsyncConnection, call_id: int, call_sid: str, statuses: frozenset[str]) -> bool:
    lg = schema.call_legs
    found = await conn.execute(
        select(lg.c.id).where(
            lg.c.call_id == call_id, lg.c.call_sid == call_sid, lg.c.status.in_(sorted(statuses))
        )
    )
    return found.first() is not None


async def adopt(
    conn: AsyncConnection, account: str, sids: list[str], call_ids: dict[tuple[str, str], int]
) -> set[int]:
    """Give legs stored before their call (another process, a crash) their call; return those calls."""
    lg = schema.call_legs
    waiting = await bulk.fetch(conn, _waiting_query, account=account, sids=bulk.listed(conn, sids))
    owners: dict[int, list[int]] = {}
    for leg_id, call_sid, parent_sid in waiting:
        call_id = call_ids.get((account, parent_sid or call_sid))
        if call_id is not None:
            owners.setdefault(call_id, []).append(leg_id)
    for call_id, leg_ids in owners.items():
        await conn.execute(update(lg).where(lg.c.id.in_(leg_ids)).values(call_id=call_id))
    return set(owners)


@bulk.statement
def _waiting_query(pg: bool) -> Select[Any]:
    lg = schema.call_legs
    return select(lg.c.id, lg.c.call_sid, lg.c.parent_sid).where(
        lg.c.channel_account == bindparam("account"),
        lg.c.call_id.is_(None),
        or_(bulk.in_list(pg, lg.c.call_sid, "sids"), bulk.in_list(pg, lg.c.parent_sid, "sids")),
    )
