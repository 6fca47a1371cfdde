"""The triggers at run time: scheduler handlers that evaluate and apply them exactly once.

`rules.event` timers (queued by `hub.rules.queue` with each event) and `rules.time` timers
(the time-based `unreplied_after` / `waiting_since` triggers, scheduled here when the
conversation changes) are fired by the persisted scheduler, which runs the handler in the
transaction that marks the timer fired: a trigger's effects and the fact that it fired
commit together, once, whichever hub process fires it. A time-based timer re-checks, when
it fires, that what it waited for still holds (no reply since, same status since).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.clock import Clock, utcnow
from hub.errors import NotFound
from hub.models import Direction
from hub.rules import queue
from hub.rules.actions import Events, ReplySender, apply
from hub.rules.conditions import Facts, load_facts
from hub.rules.interest import STATUS_EVENTS, waits_on
from hub.rules.loader import RuleSet
from hub.rules.triggers import EVENTS, RuleEvent, Trigger, candidates, evaluate
from hub.scheduler import Handler, Timer, timer_row
from hub.store import schema
from hub.store.upsert import insert_ignore

log = logging.getLogger(__name__)


class RuleEngine:
    """Evaluates the current rule set for queued events and due time-based triggers."""

    def __init__(
        self, rules: Callable[[], RuleSet], replies: ReplySender | None = None, clock: Clock = utcnow
    ) -> None:
        self.rules = rules
        self.replies = replies
        self.clock = clock

    def handlers(self) -> dict[str, Handler]:
        """The scheduler handlers, by timer kind."""
        return {queue.RULE_EVENT: self.on_event, queue.RULE_TIME: self.on_time}

    async def on_event(self, conn: AsyncConnection, timer: Timer) -> Events:
        """Evaluate the triggers for one queued event and apply what fires."""
        cid = timer.conversation_id
        if cid is None:
            return []
        ruleset = self.rules()
        kind = str(timer.payload.get("event"))
        data: dict[str, Any] = dict(timer.payload.get("data") or {})
        depth = int(timer.payload.get("depth") or 0)
        message_id = data.get("message_id") if kind == "message.received" else None
        happened: list[RuleEvent] = []
        if data.get("new_conversation"):
            happened.append(
                RuleEvent("conversation.created", f"{timer.key}:created", cid, timer.due_at, message_id)
            )
        if kind in EVENTS:
            happened.append(RuleEvent(kind, timer.key, cid, timer.due_at, message_id, data=data))
        out: Events = []
        facts: Facts | None = None
        exists = False
        for event in happened:
            if not candidates(ruleset.triggers.triggers, event):
                continue
            if facts is None:
                try:
                    facts = await load_facts(conn, cid, event.message_id, None, event.at)
                except NotFound:
                    return []
                exists = True
            fired, events = await self._apply(conn, ruleset, event, depth, facts)
            out.extend(events)
            if fired:
                facts = None
        waiting = [
            t for t in ruleset.triggers.triggers
            if t.timed is not None and t.enabled and waits_on(t.timed.kind, kind, data)
        ]  # fmt: skip
        if not waiting:
            return out
        if not exists and not await _exists(conn, cid):
            return []
        out.extend(await self._schedule_timed(conn, waiting, timer, data))
        return out

    async def on_time(self, conn: AsyncConnection, timer: Timer) -> Events:
        """Fire a time-based trigger if its condition still holds and the trigger is unchanged."""
        cid = timer.conversation_id
        if cid is None or not await _exists(conn, cid):
            return []
        ruleset = self.rules()
        payload = timer.payload
        trigger = next((t for t in ruleset.triggers.triggers if t.name == payload.get("trigger")), None)
        timed = trigger.timed if trigger is not None else None
        if (
            timed is None
            or timed.kind != payload.get("kind")
            or timed.after.total_seconds() != payload.get("after")
        ):
            return []
        anchor = datetime.fromisoformat(str(payload["anchor"]))
        if timed.kind == "unreplied_after":
            still = await _unreplied(conn, cid, int(payload["message_id"]), anchor)
        else:
            still = await _waiting(conn, cid, str(payload["status"]), anchor)
        if not still:
            return []
        event = RuleEvent(timed.kind, timer.key, cid, timer.due_at, trigger=trigger.name if trigger else None)
        return await self._run(conn, ruleset, event, int(payload.get("depth") or 0))

    async def _run(self, conn: AsyncConnection, ruleset: RuleSet, event: RuleEvent, depth: int) -> Events:
        assert event.conversation_id is not None
        if not candidates(ruleset.triggers.triggers, event):
            return []
        facts = await load_facts(conn, event.conversation_id, event.message_id, None, event.at)
        return (await self._apply(conn, ruleset, event, depth, facts))[1]

    async def _apply(
        self, conn: AsyncConnection, ruleset: RuleSet, event: RuleEvent, depth: int, facts: Facts
    ) -> tuple[int, Events]:
        """Run the triggers that fire on these facts; how many fired, and what they did."""
        assert event.conversation_id is not None
        out: Events = []
        firings = evaluate(ruleset, event, facts, event.at)
        for firing in firings:
            now = max(self.clock(), event.at)
            events = await apply(conn, event.conversation_id, firing, event, now, self.replies)
            if depth + 1 > queue.MAX_DEPTH:
                log.warning(
                    "trigger %s: its effects are not evaluated again (chain of %d)", firing.trigger, depth
                )
            await queue.enqueue(conn, events, now, depth=depth + 1)
            out.extend(events)
        return len(firings), out

    async def _schedule_timed(
        self, conn: AsyncConnection, waiting: Sequence[Trigger], timer: Timer, data: dict[str, Any]
    ) -> Events:
        """Start the time-based triggers that wait on this event."""
        cid = timer.conversation_id
        rows = []
        status: str | None = None
        for trigger in waiting:
            timed = trigger.timed
            assert timed is not None
            payload: dict[str, Any] = {
                "trigger": trigger.name,
                "kind": timed.kind,
                "after": timed.after.total_seconds(),
                "anchor": timer.due_at.isoformat(),
            }
            if timed.kind == "unreplied_after":
                key = f"rules:time:{trigger.name}:message:{data['message_id']}"
                payload["message_id"] = data["message_id"]
            else:
                if status is None:
                    status = await _status(conn, cid)
                key = f"rules:time:{trigger.name}:{timer.key}"
                payload["status"] = status
            due = timer.due_at + timed.after
            rows.append(
                timer_row(queue.RULE_TIME, due, key, conversation_id=cid, payload=payload, now=self.clock())
            )
        if rows:
            await conn.execute(insert_ignore(conn, schema.timers), rows)
        return []


async def _exists(conn: AsyncConnection, cid: int) -> bool:
    c = schema.conversations
    return (await conn.execute(select(c.c.id).where(c.c.id == cid))).first() is not None


async def _status(conn: AsyncConnection, cid: int | None) -> str:
    c = schema.conversations
    return str((await conn.execute(select(c.c.status).where(c.c.id == cid))).scalar_one())


async def _unreplied(conn: AsyncConnection, cid: int, message_id: int, anchor: datetime) -> bool:
    """No human reply since the message, and no newer message from the customer."""
    m = schema.messages
    later = await conn.execute(
        select(func.count())
        .select_from(m)
        .where(
            m.c.conversation_id == cid,
            (
                (m.c.direction == Direction.OUTBOUND.value)
                & m.c.automatic.is_(False)
                & (m.c.created_at >= anchor)
            )
            | ((m.c.direction == Direction.INBOUND.value) & (m.c.id > message_id)),
        )
    )
    return int(later.scalar_one()) == 0


async def _waiting(conn: AsyncConnection, cid: int, status: str, anchor: datetime) -> bool:
    """The conversation still has the status, unchanged and without a reply since the anchor."""
    if await _status(conn, cid) != status:
        return False
    e = schema.events
    later = await conn.execute(
        select(func.count())
        .select_from(e)
        .where(e.c.conversation_id == cid, e.c.kind.in_(STATUS_EVENTS), e.c.at > anchor)
    )
    return int(later.scalar_one()) == 0
