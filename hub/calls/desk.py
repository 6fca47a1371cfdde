"""The call desk: what the hub does with phone calls, whatever the provider.

A channel tells the desk a call arrived (`arrive`: the call is stored on the caller's
contact and conversation, and the desk says whom to ring, for how long, with which
greeting), where the caller went next (`ring_team`, `set_route`), and every leg's status
callback (`leg`: stored once, timing and outcome recomputed, agents' availability
followed). A call that ends missed or abandoned gets a callback task (P3, P6) and a
`call.missed` event for the triggers. A caller who waits in the queue past the line's
limit prompts the team once (`call.waiting_long`) and is owed a callback (P3); an available
agent takes a queued caller out of the queue. Agents transfer live calls (P4) and wrap them
up with a summary note (P5).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import inbox as inbox_ops
from hub import records
from hub.aio import OwnedTasks
from hub.calls import callbacks, legs, outbound
from hub.calls.callbacks import CallbackCall
from hub.calls.legs import LegUpdate
from hub.calls.lookup import CallerCache, KnownCaller, RingCache, caller_lookup
from hub.calls.recorder import CallRecorder
from hub.calls.routing import Ringable, TeamRing, agent_department, available_agent, team_ring
from hub.clock import Clock
from hub.errors import Conflict, Invalid, NotFound
from hub.events import EventBus, event_row, record
from hub.inbox import Inbox
from hub.models import Call, CallOutcome, ChannelKind, Identity
from hub.replies import TemplateReplies
from hub.rules import queue as rule_queue
from hub.sla.calls_to_make import close_callback, schedule_callback
from hub.sla.rings import ANSWERED
from hub.sla.service import SlaService
from hub.sla.tasks import customer_zone
from hub.store import Database, schema
from hub.templates import Templates
from hub.templates.stamps import Stamp

GREETING = "phone_greeting"
HOLD = "phone_hold"
GREETING_CACHE = 1000
UNANSWERED = frozenset({CallOutcome.MISSED, CallOutcome.ABANDONED})
CHANGES_RINGS = ("agent.", "team.", "conversation.assigned")
"""Events after which a team's ring list may differ: availability, membership, round-robin turns."""
CHANGES_CALLERS = (
    "contact.", "agent.updated", "conversation.assigned", "conversation.reopened",
    "conversation.status_changed",
)  # fmt: skip
"""Events after which a caller's contact, or the agent of their open call conversation, may differ."""


@runtime_checkable
class CallControl(Protocol):
    """A phone channel that can move a live call (the API looks for this on the call's channel).

    `name` is the channel's account, as its calls are stored under.
    """

    name: str

    async def transfer(self, plan: TransferPlan) -> None:
        """Announce the target to the caller, whisper to the target, and bridge once they accept."""

    async def pick_up(self, plan: QueuePickup) -> None:
        """Take a caller out of the queue and ring the agent; back to the queue if they do not answer."""

    async def call_back(self, plan: CallbackCall) -> str:
        """Ring the agent, then dial the customer from the line; return the provider's call id."""


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """A call as it arrives: the provider's id, the caller, the line and its team."""

    account: str
    call_sid: str
    caller: Identity
    line: str
    team: str
    arrived_at: datetime
    language: str = "en"
    raw: bytes | None = None


@dataclass(frozen=True, slots=True)
class CallPlan:
    """What the caller hears and whom the call rings, for how long; `contact_id` if the caller is known."""

    greeting: str
    ring: TeamRing
    window: timedelta
    contact_id: int | None


@dataclass(frozen=True, slots=True)
class TransferPlan:
    """A transfer the desk accepted: the live call and whom it goes to."""

    call_id: int
    account: str
    call_sid: str
    conversation_id: int
    line: str
    targets: tuple[Ringable, ...]
    target_name: str
    department: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class QueuePickup:
    """An agent taking a caller out of the queue, as the desk accepted it."""

    call_id: int
    account: str
    call_sid: str
    conversation_id: int
    line: str
    agent: Ringable


class CallDesk:
    """Calls on the hub's side; one per process, owning the tasks that finish slow recordings."""

    def __init__(
        self,
        db: Database,
        inbox: Inbox,
        bus: EventBus,
        sla: SlaService,
        templates: Templates,
        replies: TemplateReplies,
        clock: Clock,
    ) -> None:
        self.db = db
        self.inbox = inbox
        self.bus = bus
        self.sla = sla
        self.templates = templates
        self.replies = replies
        self.clock = clock
        self.recorder = CallRecorder(inbox, bus, sla.answer_target)
        self._rings = RingCache()
        self._callers = CallerCache()
        self._windows: dict[str, tuple[object, timedelta]] = {}
        self._greetings: dict[tuple[str | None, ...], tuple[Stamp, str]] = {}
        self.tasks = OwnedTasks("call")
        bus.listen(self.forget)

    def cache_counts(self) -> dict[str, tuple[int, int]]:
        """Hits and misses of the incoming-call path's caches since the start: callers and ring lists."""
        return {
            "callers": (self._callers.hits, self._callers.misses),
            "rings": (self._rings.hits, self._rings.misses),
        }

    def forget(self, event: dict[str, Any]) -> None:
        """Drop what the incoming-call path remembers that this event may have changed."""
        kind = str(event.get("kind", ""))
        if kind.startswith(CHANGES_RINGS):
            self._rings.clear()
        if kind.startswith(CHANGES_CALLERS):
            self._callers.clear()
        elif kind == "conversation.created":
            self._created(event.get("data") or {})

    def _created(self, data: dict[str, Any]) -> None:
        """A new call conversation may change the agent its contact's callers are told about."""
        channel, contact = data.get("channel"), data.get("contact")
        if channel is not None and channel != ChannelKind.VOICE.value:
            return
        if isinstance(contact, int):
            self._callers.forget_contact(contact)
        else:
            self._callers.clear()

    # Background work

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run work the desk owns until it finishes or the desk stops."""
        return self.tasks.spawn(work, name)

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Let pending recordings finish for a while, then cancel what is left."""
        await self.recorder.stop(grace_seconds)
        await self.tasks.stop(grace_seconds)

    # Arrival and routing

    async def plan(self, call: IncomingCall) -> CallPlan:
        """Whom the call rings, for how long, and the greeting, from memory or reads (the webhook's path)."""
        planned = self.plan_now(call)
        return planned if isinstance(planned, CallPlan) else await planned

    def plan_now(self, call: IncomingCall) -> CallPlan | Coroutine[Any, Any, CallPlan]:
        """`plan` at once when the caller and the ring list are remembered; else the reads to await."""
        known = self._callers.get(call.caller, call.account)
        ring = self._rings.get(call.team)
        if known is None or ring is None:
            return self._read_plan(call, known, ring)
        return self._planned(call, known, ring)

    async def _read_plan(
        self, call: IncomingCall, known: KnownCaller | None, ring: TeamRing | None
    ) -> CallPlan:
        callers, rings = self._callers.generation, self._rings.generation
        async with self.db.read() as conn:
            if known is None:
                found = await caller_lookup(conn, call.caller, call.account)
                known = self._callers.put(call.caller, call.account, found, callers)
            if ring is None:
                ring = self._rings.put(call.team, await team_ring(conn, call.team), rings)
        return self._planned(call, known, ring)

    def _planned(self, call: IncomingCall, known: KnownCaller, ring: TeamRing) -> CallPlan:
        greeting = self._greeting(call, known, ring)
        return CallPlan(greeting, ring, self._window(call.line), known.contact_id)

    def _window(self, line: str) -> timedelta:
        """The line's ring window under the SLA rules loaded now (remembered until they are replaced)."""
        book = self.sla.book
        cached = self._windows.get(line)
        if cached is not None and cached[0] is book:
            return cached[1]
        window = self.sla.answer_target(line).window
        self._windows[line] = (book, window)
        return window

    def record(self, call: IncomingCall, route: str = "agents", **data: Any) -> asyncio.Future[int]:
        """Store the call on the caller's conversation soon (batched); the future gives its id."""
        return self.recorder.submit(call, route, **data)

    async def arrive(self, call: IncomingCall) -> tuple[CallPlan, int]:
        """Plan the call and wait until it is stored (for callers that need its id at once)."""
        plan = await self.plan(call)
        return plan, await self.record(call)

    def _greeting(self, call: IncomingCall, known: KnownCaller, ring: TeamRing) -> str:
        zone = _zone(known.timezone, call.caller.address, self.replies.calendar_zone())
        key = (call.language, str(zone), known.name, known.agent, ring.name, ring.department)
        stamp = self._greeting_stamp(call.language)
        cached = self._greetings.get(key)
        if cached is not None and stamp is not None and cached[0] == stamp:
            return cached[1]
        ctx = self.replies.base_context(
            call.language, zone, customer=known.name, team=ring.name, department=ring.department,
            agent=known.agent,
        )  # fmt: skip
        text = self.templates.render(ChannelKind.VOICE, GREETING, call.language, "txt", ctx, tz=zone).text
        text = text.strip()
        if stamp is not None:
            if len(self._greetings) >= GREETING_CACHE:
                self._greetings.clear()
            self._greetings[key] = (stamp, text)
        return text

    def _greeting_stamp(self, lang: str) -> Stamp | None:
        """Which greeting file a render would use and its state on disk: a new stamp once it changed."""
        try:
            return self.templates.stamp(ChannelKind.VOICE, GREETING, lang, "txt")
        except Exception:  # noqa: BLE001 - the render that follows reports the template's error
            return None

    async def _render(self, conn: AsyncConnection, conversation_id: int, name: str, lang: str) -> str:
        ctx, _, zone = await self.replies.context(conn, conversation_id, lang, None)
        return self.templates.render(ChannelKind.VOICE, name, lang, "txt", ctx, tz=zone).text.strip()

    async def hold_message(self, account: str, call_sid: str, lang: str) -> str:
        """The hold announcement (P3) for a caller in the queue."""
        await self.recorder.wait(account, call_sid)
        async with self.db.read() as conn:
            call = await _call(conn, account, call_sid)
            return await self._render(conn, call.conversation_id, HOLD, lang)

    async def route_of(self, account: str, call_sid: str) -> str | None:
        """Where an unanswered caller went last."""
        await self.recorder.wait(account, call_sid)
        async with self.db.read() as conn:
            route: str | None = (await _call(conn, account, call_sid)).route
            return route

    async def ring_team(self, account: str, call_sid: str, team: str) -> TeamRing:
        """Move an unanswered call on to another team; return whom to ring."""
        await self.recorder.wait(account, call_sid)
        async with self.db.write() as conn:
            call = await _call(conn, account, call_sid)
            ring = await team_ring(conn, team)
            await conn.execute(
                update(schema.calls)
                .where(schema.calls.c.id == call.id)
                .values(route="team", team_id=ring.team_id)
            )
            events = [event_row("call.fallback", self.clock(), call.conversation_id, None, to=f"team:{team}")]
            await record(conn, events)
        self.bus.publish(events)
        return ring

    async def set_route(self, account: str, call_sid: str, route: str, **data: Any) -> None:
        """Record where an unanswered caller went (`queue`, `voicemail`, `callback`)."""
        await self.recorder.wait(account, call_sid)
        now = self.clock()
        async with self.db.write() as conn:
            call = await _call(conn, account, call_sid)
            await conn.execute(update(schema.calls).where(schema.calls.c.id == call.id).values(route=route))
            events = [event_row("call.fallback", now, call.conversation_id, None, to=route, **data)]
            await record(conn, events)
            if route == "callback":
                events += await self._callback(conn, call, now, reason="the caller asked to be called back")
        self.bus.publish(events)

    # The queue (P3)

    async def queue_waited(self, account: str, call_sid: str, waited_seconds: int) -> None:
        """A queued caller waited past the line's limit: prompt the team and owe a callback, once (P3)."""
        await self.recorder.wait(account, call_sid)
        async with self.db.read() as conn:
            if (await _call(conn, account, call_sid)).queue_prompted_at is not None:
                return
        now = self.clock()
        c = schema.calls
        async with self.db.write() as conn:
            call = await _call(conn, account, call_sid)
            flipped = await conn.execute(
                update(c)
                .where(c.c.id == call.id, c.c.queue_prompted_at.is_(None))
                .values(queue_prompted_at=now)
            )
            if flipped.rowcount != 1:
                return
            events = [
                event_row(
                    "call.waiting_long", now, call.conversation_id, None, call_id=call.id, line=call.line,
                    team_id=call.team_id, waited_seconds=waited_seconds,
                )
            ]  # fmt: skip
            await record(conn, events)
            await rule_queue.enqueue(conn, events, now)
            reason = f"the caller waited {waited_seconds} s in the queue"
            events += await self._callback(conn, call, now, reason=reason)
        self.bus.publish(events)

    async def plan_pickup(self, call_id: int, agent_id: int) -> QueuePickup:
        """Claim a queued caller for an agent; Conflict naming why when the call or agent cannot."""
        c = schema.calls
        async with self.db.write() as conn:
            call = await _call_by_id(conn, call_id)
            agent = await available_agent(conn, agent_id, "take the call")
            claimed = await conn.execute(
                update(c)
                .where(c.c.id == call_id, c.c.route == "queue", c.c.ended_at.is_(None))
                .values(route="agents")
            )
            if claimed.rowcount != 1:
                state = "has ended" if call.ended_at is not None else "is not waiting in the queue"
                raise Conflict(f"call {call_id} {state}")
        return QueuePickup(
            call.id, call.channel_account, call.external_id, call.conversation_id, call.line or "", agent
        )

    async def picked_up(self, plan: QueuePickup, by: int) -> None:
        """Record that a queued caller was handed to an agent."""
        now = self.clock()
        events = [
            event_row(
                "call.picked_up", now, plan.conversation_id, by, call_id=plan.call_id,
                agent=plan.agent.agent_id,
            )
        ]  # fmt: skip
        async with self.db.write() as conn:
            await record(conn, events)
        self.bus.publish(events)

    async def plan_callback(self, task_id: int, agent_id: int) -> CallbackCall:
        """Check a callback call of a task (P6); Conflict naming why it cannot be made now."""
        book = self.sla.book
        if book is None:
            raise Conflict("no SLA rules are loaded: the customer's daytime is unknown")
        async with self.db.read() as conn:
            return await callbacks.plan(conn, book, task_id, agent_id, self.clock())

    async def called_back(self, plan: CallbackCall, account: str, call_sid: str, by: int) -> int:
        """Store the callback call the provider is placing (its agent's phone rings first); its id."""
        now = self.clock()
        async with self.db.write() as conn:
            call_id = await outbound.insert(conn, plan, account, call_sid, now)
            events = [
                event_row(
                    "call.callback_placed", now, plan.conversation_id, by, task_id=plan.task_id,
                    agent=plan.agent.agent_id, call_id=call_id, call_sid=call_sid, to=plan.customer,
                )
            ]  # fmt: skip
            await record(conn, events)
            call = await _call(conn, account, call_sid)
            timing, ended_now = await outbound.recompute(conn, call)
            if ended_now:
                events += await outbound.ended(conn, call, timing, now)
        self.bus.publish(events)
        return call_id

    async def pickup_failed(self, plan: QueuePickup) -> None:
        """The provider refused to move the caller: they are still in the queue."""
        c = schema.calls
        async with self.db.write() as conn:
            await conn.execute(
                update(c).where(c.c.id == plan.call_id, c.c.route == "agents").values(route="queue")
            )

    # Leg events

    async def leg(self, leg: LegUpdate, arrival: IncomingCall | None = None) -> legs.LegResult:
        """Store a status callback once and recompute its call, storing the call first if it is missing."""
        await self.recorder.wait(leg.account, leg.parent_sid or leg.call_sid)
        if arrival is not None:
            await self.ensure_stored(arrival)
        now = self.clock()
        async with self.db.write() as conn:
            stored, call = await legs.store(conn, leg, now)
            if call is None:
                events = [
                    event_row(
                        "call.unknown_callback", now, None, None, account=leg.account, call_sid=leg.call_sid,
                        parent_sid=leg.parent_sid, status=leg.status, duplicate=not stored,
                    )
                ]  # fmt: skip
                await record(conn, events)
                return legs.LegResult(stored, None, events=tuple(events))
            if not stored:
                return legs.LegResult(False, call.id)
            if call.route == callbacks.ROUTE:
                ended_now, events = await self._callback_leg(conn, leg, call, now)
            else:
                ended_now, events = await self._caller_leg(conn, leg, call, now)
        self.bus.publish(events)
        return legs.LegResult(True, call.id, ended_now, tuple(events))

    async def _caller_leg(
        self, conn: AsyncConnection, leg: LegUpdate, call: Any, now: datetime
    ) -> tuple[bool, list[dict[str, Any]]]:
        """A leg of an incoming call: timing against the answer SLA, the answering agent, the outcome."""
        target = self.sla.answer_target(call.line or "")
        duration = leg.duration_seconds if leg.parent_sid is None else None
        _, outcome, ended_now = await legs.recompute(conn, call, target, now, duration)
        events = await legs.follow_agent(conn, leg, call, now)
        if leg.status in ANSWERED and leg.agent is not None:
            events += await self._take(conn, call, leg.agent, now)
            if call.queue_prompted_at is not None:
                events += await close_callback(conn, _callback_of(call), now, "the caller was answered")
        if ended_now:
            events += await self._ended(conn, call, outcome, now)
        return ended_now, events

    async def _callback_leg(
        self, conn: AsyncConnection, leg: LegUpdate, call: Any, now: datetime
    ) -> tuple[bool, list[dict[str, Any]]]:
        """A leg of a callback call: the agent busy while on it, the task done once the customer answers."""
        timing, ended_now = await outbound.recompute(conn, call)
        events = await legs.follow_agent(conn, leg, call, now)
        if ended_now:
            events += await outbound.ended(conn, call, timing, now)
        return ended_now, events

    async def ensure_stored(self, arrival: IncomingCall) -> None:
        """Store a call now unless it is stored or queued (idempotent: a call is stored once by its id)."""
        await self.recorder.wait(arrival.account, arrival.call_sid)
        if self.recorder.is_stored(arrival.account, arrival.call_sid):
            return
        c = schema.calls
        async with self.db.read() as conn:
            found = await conn.execute(
                select(c.c.id).where(
                    c.c.channel_account == arrival.account, c.c.external_id == arrival.call_sid
                )
            )
            if found.first() is not None:
                self.recorder.remember(arrival.account, arrival.call_sid)
                return
        await self.recorder.store_now(arrival, "agents")

    async def _take(
        self, conn: AsyncConnection, call: Any, username: str, now: datetime
    ) -> list[dict[str, Any]]:
        """The answering agent gets the conversation (and the round-robin turn)."""
        a, tm, t = schema.agents, schema.team_members, schema.teams
        agent_id = (await conn.execute(select(a.c.id).where(a.c.username == username))).scalar()
        conv = (
            await conn.execute(
                select(schema.conversations.c.assignee_id).where(
                    schema.conversations.c.id == call.conversation_id
                )
            )
        ).scalar()
        if agent_id is None or conv == agent_id:
            return []
        if call.team_id is not None:
            seq = (await conn.execute(select(t.c.assign_seq).where(t.c.id == call.team_id))).scalar_one()
            await conn.execute(update(t).where(t.c.id == call.team_id).values(assign_seq=seq + 1))
            await conn.execute(
                update(tm)
                .where(tm.c.team_id == call.team_id, tm.c.agent_id == agent_id)
                .values(last_assigned_seq=seq + 1)
            )
        events = await inbox_ops.set_assignee(
            conn, call.conversation_id, agent_id, None, now, call_id=call.id
        )
        await rule_queue.enqueue(conn, events, now)
        return events

    async def _ended(
        self, conn: AsyncConnection, call: Any, outcome: CallOutcome, now: datetime
    ) -> list[dict[str, Any]]:
        events = [
            event_row("call.ended", now, call.conversation_id, None, call_id=call.id, outcome=outcome.value)
        ]
        if outcome in UNANSWERED and call.route != "callback":
            missed = event_row(
                "call.missed", now, call.conversation_id, None, call_id=call.id, outcome=outcome.value
            )
            events.append(missed)
            await rule_queue.enqueue(conn, [missed], now)
            await record(conn, events)
            return events + await self._callback(conn, call, now, reason=f"{outcome.value} call")
        await record(conn, events)
        return events

    async def _callback(
        self, conn: AsyncConnection, call: Any, now: datetime, reason: str
    ) -> list[dict[str, Any]]:
        book = self.sla.book
        if book is None:
            events = [
                event_row(
                    "call.callback_not_scheduled", now, call.conversation_id, None, call_id=call.id,
                    reason="no SLA rules are loaded",
                )
            ]  # fmt: skip
            await record(conn, events)
            return events
        return await schedule_callback(
            conn, book, call.conversation_id, key=_callback_of(call), requested_at=call.started_at, now=now,
            points=[f"{reason} on {call.line}"], reason=reason,
        )  # fmt: skip

    # Transfer and wrap-up

    async def plan_transfer(
        self, call_id: int, *, agent_id: int | None, team: str | None, reason: str, by: int
    ) -> TransferPlan:
        """Check a transfer of a live call (P4); Conflict naming why when the target cannot take it."""
        if (agent_id is None) == (team is None):
            raise Invalid("name either an agent or a team to transfer to", "agent_id")
        async with self.db.read() as conn:
            call = await _call_by_id(conn, call_id)
            if call.ended_at is not None:
                raise Conflict(f"call {call_id} has ended")
            if call.answered_at is None:
                raise Conflict(f"call {call_id} is not answered yet: nobody holds it to transfer")
            if call.route == callbacks.ROUTE:
                raise Conflict(f"call {call_id} is a callback call: the agent who placed it keeps it")
            if agent_id is not None:
                target = await available_agent(conn, agent_id, "transfer")
                if target.agent_id == call.answered_by:
                    raise Conflict("cannot transfer a call to the agent who holds it")
                targets: tuple[Ringable, ...] = (target,)
                name, department = target.display_name, await agent_department(conn, target.agent_id)
            else:
                assert team is not None
                ring = await team_ring(conn, team)
                if ring.team_id is None:
                    raise NotFound(f"team {team!r} does not exist")
                targets = tuple(r for r in ring.agents if r.agent_id != call.answered_by)
                if not targets:
                    raise Conflict(f"cannot transfer: nobody in {team} is available")
                name, department = ring.name, ring.department
        return TransferPlan(
            call.id, call.channel_account, call.external_id, call.conversation_id, call.line or "", targets,
            name, department,
            reason,
        )  # fmt: skip

    async def get(self, call_id: int) -> Call:
        """One call with its timing, outcome and wrap-up; NotFound if there is none."""
        async with self.db.read() as conn:
            return records.call((await _call_by_id(conn, call_id))._mapping)

    async def caller_of(self, call_id: int) -> str:
        """Who is calling on a call, as the whisper announces them (kept out of URLs)."""
        c, m = schema.calls, schema.messages
        async with self.db.read() as conn:
            found = await conn.execute(
                select(m.c.sender)
                .join(c, (c.c.channel_account == m.c.channel_account) & (c.c.external_id == m.c.external_id))
                .where(c.c.id == call_id)
            )
            return found.scalar() or "an unknown caller"

    async def transferred(self, plan: TransferPlan, by: int) -> None:
        """Record that a transfer was handed to the provider."""
        now = self.clock()
        events = [
            event_row(
                "call.transferred", now, plan.conversation_id, by, call_id=plan.call_id, to=plan.target_name,
                agents=[t.agent_id for t in plan.targets], reason=plan.reason,
            )
        ]  # fmt: skip
        async with self.db.write() as conn:
            await record(conn, events)
        self.bus.publish(events)

    async def wrap_up(self, call_id: int, agent_id: int, summary: str) -> int:
        """Close a call with its summary (P5), which becomes a note in the conversation; return its id."""
        if not summary.strip():
            raise Invalid("a call cannot be wrapped up without a summary note (P5)", "summary")
        now = self.clock()
        async with self.db.write() as conn:
            call = await _call_by_id(conn, call_id)
            if call.wrapped_up_at is not None:
                raise Conflict(f"call {call_id} is already wrapped up")
            note_id, events = await inbox_ops.insert_note(
                conn, call.conversation_id, agent_id, f"Call summary: {summary.strip()}", now
            )
            await conn.execute(
                update(schema.calls)
                .where(schema.calls.c.id == call_id)
                .values(wrapped_up_at=now, summary_note_id=note_id)
            )
            wrapped = event_row(
                "call.wrapped_up", now, call.conversation_id, agent_id, call_id=call_id, note_id=note_id
            )
            await record(conn, [wrapped])
        self.bus.publish([*events, wrapped])
        return note_id


@functools.lru_cache(maxsize=4096)
def _zone(timezone: str | None, phone: str, fallback: ZoneInfo) -> ZoneInfo:
    return customer_zone(timezone, phone, fallback)


def _callback_of(call: Any) -> str:
    """The key of the callback a call may owe (missed, abandoned, asked for, waited too long)."""
    return f"call:{call.id}"


async def _call_by_id(conn: AsyncConnection, call_id: int) -> Any:
    call = (await conn.execute(select(schema.calls).where(schema.calls.c.id == call_id))).first()
    if call is None:
        raise NotFound(f"call {call_id} does not exist")
    return call


async def _call(conn: AsyncConnection, account: str, call_sid: str) -> Any:
    c = schema.calls
    call = (
        await conn.execute(select(c).where(c.c.channel_account == account, c.c.external_id == call_sid))
    ).first()
    if call is None:
        raise NotFound(f"no call {call_sid} on {account}")
    return call
