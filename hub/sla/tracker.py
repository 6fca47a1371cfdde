"""Keeps SLA clocks in the store: cycles, the conversation's due times, events and wake-up timers.

`recompute` derives every cycle of a conversation from its history under the policy that
matches it now, writes what changed, and records `sla.warning`, `sla.breached` and
`sla.fulfilled` exactly once each: an event is written only by the statement that flips
its cycle's flag from empty, so two processes (or a timer and a recomputation) racing on
the same cycle record it once. Events carry the time the thing happened (a breach found
after downtime is dated at its deadline). One `sla.check` timer per conversation wakes
the tracker at the next warning or deadline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import scheduler
from hub.events import event_row, record
from hub.rules import queue as rule_queue
from hub.sla import followups, history, wakeups
from hub.sla.deadlines import Deadline, StepKind, deadlines
from hub.sla.history import History
from hub.sla.policy import Policy, PolicyBook
from hub.store import schema
from hub.store.upsert import upsert

CHECK = "sla.check"
PROMISE = "promise"
COMPUTED = (
    "policy", "team_id", "assignee_id", "started_at", "due_at", "warn_at", "fulfilled_at", "breached_at",
    "paused", "business_seconds",
)  # fmt: skip
FLIP_BATCH = 300
FLAGS = {"warning": "warned_event_at", "breached": "breached_event_at", "fulfilled": "fulfilled_event_at"}


@dataclass(frozen=True, slots=True)
class Cycle:
    """One computed cycle, as stored in `sla_cycles`."""

    conversation_id: int
    metric: str
    seq: int
    policy: str
    team_id: int | None
    assignee_id: int | None
    started_at: datetime
    due_at: datetime | None
    warn_at: datetime | None
    fulfilled_at: datetime | None
    breached_at: datetime | None
    paused: bool
    business_seconds: int | None

    @property
    def key(self) -> tuple[int, str, int]:
        """The cycle's primary key."""
        return (self.conversation_id, self.metric, self.seq)

    def values(self) -> tuple[Any, ...]:
        """The computed columns."""
        return tuple(getattr(self, c) for c in COMPUTED)

    def digest(self) -> str:
        """A short fingerprint of the computed columns, to write only cycles that changed."""
        return hashlib.blake2b(repr(self.values()).encode(), digest_size=8).hexdigest()

    def moments(self, now: datetime) -> dict[str, datetime]:
        """The events this cycle has earned by `now`, with when each happened."""
        out = {}
        if (
            self.warn_at
            and self.warn_at <= now
            and (self.fulfilled_at is None or self.fulfilled_at > self.warn_at)
        ):
            out["warning"] = self.warn_at
        if self.breached_at and self.breached_at <= now:
            out["breached"] = self.breached_at
        if self.fulfilled_at and self.fulfilled_at <= now:
            out["fulfilled"] = self.fulfilled_at
        return out

    def next_moment(self, now: datetime) -> datetime | None:
        """The next instant at which this cycle will earn an event."""
        if self.fulfilled_at is not None or self.paused:
            return None
        later = [t for t in (self.warn_at, self.due_at) if t is not None and t > now]
        return min(later, default=None)


def compute(h: History, book: PolicyBook, now: datetime) -> tuple[Policy | None, list[Cycle]]:
    """Every cycle of one conversation under the policy its facts select now."""
    policy = book.select(h.facts)
    cycles: list[Cycle] = []
    calendar = policy.calendar if policy else book.default_calendar
    if policy is not None:
        seqs: dict[str, int] = {}
        for d in deadlines(h.steps, policy.targets, calendar, now):
            seq = seqs.get(d.metric.value, 0)
            seqs[d.metric.value] = seq + 1
            cycles.append(_cycle(h, policy.name, d.metric.value, seq, d, calendar))
    warn_before = policy.targets.warn_before if policy else timedelta()
    replies = [s.at for s in h.steps if s.kind is StepKind.REPLY]
    for seq, promise in enumerate(sorted(h.promises, key=lambda p: p.at)):
        kept = next((at for at in replies if at > promise.at), None)
        breached = (
            promise.due_at
            if promise.due_at < (kept or now) or (kept is None and promise.due_at == now)
            else None
        )
        cycles.append(
            Cycle(
                h.conversation_id,
                PROMISE,
                seq,
                policy.name if policy else "",
                h.team_id,
                h.assignee_id,
                promise.at,
                promise.due_at,
                promise.due_at - warn_before if warn_before else None,
                kept,
                breached,
                False,
                _business_seconds(calendar, promise.at, kept),
            )
        )
    return policy, cycles


def _cycle(h: History, policy: str, metric: str, seq: int, d: Deadline, calendar: Any) -> Cycle:
    return Cycle(
        conversation_id=h.conversation_id,
        metric=metric,
        seq=seq,
        policy=policy,
        team_id=h.team_id,
        assignee_id=h.assignee_id,
        started_at=d.started_at,
        due_at=d.due_at,
        warn_at=d.warn_at,
        fulfilled_at=d.fulfilled_at,
        breached_at=d.breached_at,
        paused=d.paused,
        business_seconds=_business_seconds(calendar, d.started_at, d.fulfilled_at),
    )


def _business_seconds(calendar: Any, start: datetime, end: datetime | None) -> int | None:
    if end is None:
        return None
    return int(calendar.business_time(start, end).total_seconds())


class Tracker:
    """Recomputes conversations' SLA state in the caller's transaction."""

    def __init__(self, book: Callable[[], PolicyBook | None], clock: Callable[[], datetime]) -> None:
        self.book = book
        self.clock = clock

    async def recompute(
        self, conn: AsyncConnection, ids: Sequence[int], now: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Bring the given conversations' cycles, due times and timers up to date; return new events."""
        book = self.book()
        if book is None or not ids:
            return []
        now = now or self.clock()
        histories = await history.load(conn, ids)
        policies: dict[int, Policy | None] = {}
        computed: dict[int, list[Cycle]] = {}
        for cid, h in histories.items():
            policies[cid], computed[cid] = compute(h, book, now)
        existing = await _existing(conn, list(histories))
        await _write_cycles(conn, computed, existing, now)
        events = await _record_moments(conn, computed, existing, now)
        await _write_due(conn, computed, now)
        wanted = {CHECK: _next_checks(computed, now), **followups.wanted(histories, policies, book)}
        await wakeups.keep(conn, list(histories), wanted, now)
        return events

    async def fire(self, conn: AsyncConnection, timer: scheduler.Timer) -> list[dict[str, Any]]:
        """Scheduler handler for `sla.check`."""
        if timer.conversation_id is None:
            return []
        return await self.recompute(conn, [timer.conversation_id], max(self.clock(), timer.due_at))


async def _existing(conn: AsyncConnection, ids: list[int]) -> dict[tuple[int, str, int], Any]:
    s = schema.sla_cycles
    columns = [s.c.conversation_id, s.c.metric, s.c.seq, s.c.digest, *(s.c[f] for f in FLAGS.values())]
    rows = await conn.execute(select(*columns).where(s.c.conversation_id.in_(ids)))
    return {(r.conversation_id, r.metric, r.seq): r for r in rows}


async def _write_cycles(
    conn: AsyncConnection,
    computed: dict[int, list[Cycle]],
    existing: dict[tuple[int, str, int], Any],
    now: datetime,
) -> None:
    s = schema.sla_cycles
    changed = []
    wanted: set[tuple[int, str, int]] = set()
    for cycles in computed.values():
        for c in cycles:
            wanted.add(c.key)
            old = existing.get(c.key)
            digest = c.digest()
            if old is None or old.digest != digest:
                row = dict(zip(COMPUTED, c.values(), strict=True))
                row.update(
                    conversation_id=c.conversation_id,
                    metric=c.metric,
                    seq=c.seq,
                    digest=digest,
                    updated_at=now,
                )
                changed.append(row)
    if changed:
        columns = [*COMPUTED, "digest", "updated_at"]
        await conn.execute(upsert(conn, s, ["conversation_id", "metric", "seq"], columns), changed)
    stale = [
        k
        for k, row in existing.items()
        if k not in wanted and not (row.warned_event_at or row.breached_event_at or row.fulfilled_event_at)
    ]
    if stale:
        key = tuple_(s.c.conversation_id, s.c.metric, s.c.seq)
        await conn.execute(delete(s).where(s.c.conversation_id.in_({k[0] for k in stale}), key.in_(stale)))


async def _record_moments(
    conn: AsyncConnection,
    computed: dict[int, list[Cycle]],
    existing: dict[tuple[int, str, int], Any],
    now: datetime,
) -> list[dict[str, Any]]:
    s = schema.sla_cycles
    earned: dict[str, dict[tuple[int, str, int], tuple[Cycle, datetime]]] = {what: {} for what in FLAGS}
    for cycles in computed.values():
        for c in cycles:
            old = existing.get(c.key)
            for what, at in c.moments(now).items():
                if old is None or getattr(old, FLAGS[what]) is None:
                    earned[what][c.key] = (c, at)
    events = []
    key = tuple_(s.c.conversation_id, s.c.metric, s.c.seq)
    for what, candidates in earned.items():
        keys = list(candidates)
        for start in range(0, len(keys), FLIP_BATCH):
            chunk = keys[start : start + FLIP_BATCH]
            flipped = await conn.execute(
                update(s)
                .where(
                    s.c.conversation_id.in_({k[0] for k in chunk}), key.in_(chunk), s.c[FLAGS[what]].is_(None)
                )
                .values({FLAGS[what]: now})
                .returning(s.c.conversation_id, s.c.metric, s.c.seq)
            )
            for row in flipped:
                cycle, at = candidates[(row[0], row[1], row[2])]
                events.append(_event(cycle, what, at))
    events.sort(key=lambda e: e["at"])
    await record(conn, events)
    await rule_queue.enqueue(conn, events, now)
    return events


def _event(c: Cycle, what: str, at: datetime) -> dict[str, Any]:
    kind = f"promise.{ {'warning': 'at_risk', 'breached': 'broken', 'fulfilled': 'kept'}[what] }"
    if c.metric != PROMISE:
        kind = f"sla.{what}"
    return event_row(
        kind,
        at,
        c.conversation_id,
        None,
        metric=c.metric,
        cycle=c.seq,
        policy=c.policy,
        due_at=c.due_at.isoformat() if c.due_at else None,
        within_target=c.breached_at is None,
    )


async def _write_due(conn: AsyncConnection, computed: dict[int, list[Cycle]], now: datetime) -> None:
    c = schema.conversations
    rows = await conn.execute(select(c.c.id, c.c.due_at, c.c.promise_due_at).where(c.c.id.in_(computed)))
    changes = []
    for cid, due_at, promise_due_at in rows:
        cycles = computed[cid]
        new_due = _earliest(x for x in cycles if x.metric != PROMISE)
        new_promise = _earliest(x for x in cycles if x.metric == PROMISE)
        if (new_due, new_promise) != (due_at, promise_due_at):
            changes.append({"cid": cid, "due": new_due, "promise": new_promise})
    if changes:
        await conn.execute(
            update(c)
            .where(c.c.id == bindparam("cid"))
            .values(due_at=bindparam("due"), promise_due_at=bindparam("promise")),
            changes,
        )


def _earliest(cycles: Iterable[Cycle]) -> datetime | None:
    return min(
        (x.due_at for x in cycles if x.fulfilled_at is None and not x.paused and x.due_at), default=None
    )


def _next_checks(computed: dict[int, list[Cycle]], now: datetime) -> dict[int, wakeups.Wanted]:
    wanted: dict[int, wakeups.Wanted] = {}
    for cid, cycles in computed.items():
        at = min((m for c in cycles if (m := c.next_moment(now)) is not None), default=None)
        if at is not None:
            wanted[cid] = (at, {})
    return wanted
