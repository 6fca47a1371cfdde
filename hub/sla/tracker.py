"""Keeps SLA clocks in the store: cycles, the conversation's due times, events and wake-up timers.

`recompute` derives every cycle of a conversation from its history under the policy that
matches it now, writes them, and records `sla.warning`, `sla.breached` and
`sla.fulfilled` exactly once each: an event is written only by the statement that inserts
its cycle with the flag set or flips the flag from empty, so two processes (or a timer and a
recomputation) racing on the same cycle record it once. Events carry the time the thing
happened (a breach found after downtime is dated at its deadline). One `sla.check` timer
per conversation wakes the tracker at the next warning or deadline. A conversation whose
inputs and stored state are unchanged (see `freshness`) is skipped.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Select, delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import scheduler
from hub.events import event_row, record
from hub.rules import queue as rule_queue
from hub.sla import followups, freshness, history, wakeups
from hub.sla.cycles import PROMISE, Cycle, Outlook, compute_under, outlook
from hub.sla.policy import PolicyBook
from hub.store import bulk, schema

CHECK = "sla.check"
T = TypeVar("T")
FLAGS = {"warning": "warned_event_at", "breached": "breached_event_at", "fulfilled": "fulfilled_event_at"}
DIGEST = 16
"""How much of the input digest a cycle row keeps (`sla_cycles.digest`)."""


class Tracker:
    """Recomputes conversations' SLA state in the caller's transaction."""

    def __init__(self, book: Callable[[], PolicyBook | None], clock: Callable[[], datetime]) -> None:
        self.book = book
        self.clock = clock
        self._keys: freshness.PolicyKeys | None = None

    async def recompute(
        self, conn: AsyncConnection, ids: Sequence[int], now: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Bring the given conversations' cycles, due times and timers up to date; return new events.

        Conversations whose inputs have not changed since their state was stored, and whose
        stored state still holds at `now`, are left as they are.
        """
        plan = await self.prepare(conn, ids, now, lock=True)
        return [] if plan is None else await self._write(conn, plan)

    async def prepare(
        self, conn: AsyncConnection, ids: Sequence[int], now: datetime | None = None, *, lock: bool = False
    ) -> Plan | None:
        """Read the conversations and compute what `apply` writes; None if nothing changed.

        Only reads: it may run on another connection than `apply`'s transaction (ahead of it,
        while an earlier batch is written). A change to a conversation's history after this
        read publishes an event, which recomputes that conversation again afterwards. With
        `lock` (in the write transaction itself) what is stored stays locked until it ends.
        """
        book = self.book()
        if book is None or not ids:
            return None
        now = now or self.clock()
        if self._keys is None or self._keys.book is not book:
            self._keys = freshness.PolicyKeys(book)
        keys = self._keys
        histories = await history.load(conn, ids)
        policies = {cid: book.select(h.facts) for cid, h in histories.items()}
        digests = {cid: freshness.digest(h, keys.key(policies[cid])) for cid, h in histories.items()}
        fresh, seen = await freshness.unchanged(conn, digests, now, lock=lock)
        changed = {cid: h for cid, h in histories.items() if cid not in fresh}
        computed = {cid: compute_under(h, policies[cid], book, now) for cid, h in changed.items()}
        if not computed:
            return None
        ahead = {cid: outlook(cycles, now) for cid, cycles in computed.items()}
        inputs = {cid: freshness.Stored(digests[cid], now, o.recheck_at) for cid, o in ahead.items()}
        wanted = {CHECK: _next_checks(ahead), **followups.wanted(changed, policies, book)}
        seen = {cid: seen[cid] for cid in computed if cid in seen}
        return Plan(now, computed, ahead, inputs, seen, wanted)

    async def apply(self, conn: AsyncConnection, plan: Plan) -> list[dict[str, Any]]:
        """Write a prepared recomputation in the caller's write transaction; return the new events.

        A conversation recomputed meanwhile (by another process, or a timer) is prepared again
        here first, so its newer state is not overwritten with what was read before.
        """
        stored = await freshness.seen(conn, plan.computed)
        moved = [cid for cid in plan.computed if stored.get(cid) != plan.seen.get(cid)]
        if moved:
            again = await self.prepare(conn, moved, plan.now, lock=True)
            plan = plan.without(moved).joined(again)
            if not plan.computed:
                return []
        return await self._write(conn, plan)

    async def _write(self, conn: AsyncConnection, plan: Plan) -> list[dict[str, Any]]:
        now, computed = plan.now, plan.computed
        existing, starts = await _existing(conn, list(computed))
        earned = _earned(computed, existing, now)
        inserted = await _write_cycles(conn, computed, plan.inputs, existing, starts, earned, now)
        events = await _record_moments(conn, earned, inserted, now)
        await _write_due(conn, plan.ahead)
        await wakeups.keep(conn, list(computed), plan.wanted, now)
        await freshness.save(conn, plan.inputs, plan.seen)
        return events

    async def fire(self, conn: AsyncConnection, timer: scheduler.Timer) -> list[dict[str, Any]]:
        """Scheduler handler for `sla.check`."""
        if timer.conversation_id is None:
            return []
        return await self.recompute(conn, [timer.conversation_id], max(self.clock(), timer.due_at))


@dataclass(frozen=True, slots=True)
class Plan:
    """A recomputation read and computed, not yet written."""

    now: datetime
    computed: dict[int, list[Cycle]]
    ahead: dict[int, Outlook]
    inputs: dict[int, freshness.Stored]
    seen: dict[int, freshness.Seen]
    """What was stored for the conversations when they were read (none: never computed)."""
    wanted: Mapping[str, Mapping[int, wakeups.Wanted]]

    def without(self, ids: Collection[int]) -> Plan:
        """The plan less some conversations."""
        drop = set(ids)

        def kept(by_id: Mapping[int, T]) -> dict[int, T]:
            return {cid: v for cid, v in by_id.items() if cid not in drop}

        wanted = {kind: kept(by_id) for kind, by_id in self.wanted.items()}
        return Plan(
            self.now, kept(self.computed), kept(self.ahead), kept(self.inputs), kept(self.seen), wanted
        )

    def joined(self, other: Plan | None) -> Plan:
        """This plan and another's conversations (computed at the same `now`)."""
        if other is None:
            return self
        kinds = {*self.wanted, *other.wanted}
        wanted = {kind: {**self.wanted.get(kind, {}), **other.wanted.get(kind, {})} for kind in kinds}
        return Plan(
            self.now,
            {**self.computed, **other.computed},
            {**self.ahead, **other.ahead},
            {**self.inputs, **other.inputs},
            {**self.seen, **other.seen},
            wanted,
        )


KEY = ["conversation_id", "metric", "seq"]
Key = tuple[int, str, int]
Flagged = dict[Key, frozenset[str]]
"""Stored cycles by key, with the events already recorded for each ("warning", "breached", "fulfilled")."""
Earned = dict[Key, tuple[Cycle, dict[str, datetime]]]
"""Cycles by key, with the events they have earned and not recorded yet, and when each happened."""


@bulk.statement
def _existing_query(pg: bool) -> Select[Any]:
    s = schema.sla_cycles
    return select(
        s.c.conversation_id,
        s.c.metric,
        s.c.seq,
        *(s.c[f].is_not(None) for f in FLAGS.values()),
        s.c.started_at,
    ).where(bulk.in_list(pg, s.c.conversation_id))


async def _existing(conn: AsyncConnection, ids: list[int]) -> tuple[Flagged, dict[Key, Any]]:
    """The stored cycles' recorded events, and their start times as the database holds them."""
    rows = await bulk.fetch(conn, _existing_query, ids=bulk.listed(conn, ids))
    flagged: Flagged = {}
    starts: dict[Key, Any] = {}
    for cid, metric, seq, w, b, f, started_at in rows:
        flagged[cid, metric, seq] = RECORDED[w, b, f]
        starts[cid, metric, seq] = started_at
    return flagged, starts


RECORDED = {
    flags: frozenset(what for what, on in zip(FLAGS, flags, strict=True) if on)
    for flags in itertools.product((False, True), repeat=len(FLAGS))
}
"""The events recorded for a cycle, by whether each of its flags is set (1 and 0 find True and False)."""


def _earned(computed: dict[int, list[Cycle]], existing: Flagged, now: datetime) -> Earned:
    """The events each cycle has earned by `now` and not recorded yet, with when each happened."""
    out: Earned = {}
    for cycles in computed.values():
        for c in cycles:
            got = c.moments(now)
            if got and (done := existing.get(c[:3])):
                got = {what: at for what, at in got.items() if what not in done}
            if got:
                out[c[:3]] = (c, got)
    return out


async def _write_cycles(
    conn: AsyncConnection,
    computed: dict[int, list[Cycle]],
    inputs: dict[int, freshness.Stored],
    existing: Flagged,
    starts: dict[Key, Any],
    earned: Earned,
    now: datetime,
) -> set[Key]:
    """Write every cycle; drop stored cycles that no longer exist unless an event was recorded for them.

    A new cycle is inserted with the flags of the events it has earned already set; the keys
    of those inserted so are returned (their events are recorded by that insert). A new
    cycle that another transaction inserted first is updated like a stored one.

    On SQLite, whose write lock keeps the stored cycles there until this transaction ends,
    a stored cycle that starts when it did is updated without its start, so its start index
    entry is left alone; on PostgreSQL another transaction may have removed it since, so it
    is upserted whole.
    """
    s = schema.sla_cycles
    encode = bulk.stamp_writer(conn)
    in_place = not bulk.is_pg(conn)
    moved: list[tuple[Any, ...]] = []
    kept_start: list[tuple[Any, ...]] = []
    new: list[tuple[Any, ...]] = []
    for cid, cycles in computed.items():
        digest = inputs[cid].digest[:DIGEST]
        for c in cycles:
            key = c[:3]
            if key in existing:
                if in_place and encode(c.started_at) == starts[key]:
                    kept_start.append((*c[:START], *c[START + 1 :], digest, now))
                else:
                    moved.append((*c, digest, now))
            else:
                got = earned[key][1] if key in earned else NO_MOMENTS
                warned, breached, fulfilled = (now if what in got else None for what in FLAGS)
                new.append((*c, digest, now, warned, breached, fulfilled))
    inserted = set(await bulk.insert_new(conn, s, new, columns=NEW_COLUMNS, keys=KEY))
    if len(inserted) < len(new):
        moved.extend(row[: len(CYCLE_COLUMNS)] for row in new if row[:3] not in inserted)
    await bulk.insert(
        conn, s, moved, columns=CYCLE_COLUMNS, on_conflict=KEY, update=CYCLE_COLUMNS[len(KEY) :]
    )
    await bulk.update(conn, s, KEY, kept_start, columns=SAME_START_COLUMNS)
    if not existing:
        return inserted
    wanted = {c[:3] for cycles in computed.values() for c in cycles}
    stale = [k for k, flags in existing.items() if k not in wanted and not flags]
    if stale:
        pk = tuple_(s.c.conversation_id, s.c.metric, s.c.seq)
        await conn.execute(delete(s).where(s.c.conversation_id.in_({k[0] for k in stale}), pk.in_(stale)))
    return inserted


CYCLE_COLUMNS = (*Cycle._fields, "digest", "updated_at")
START = Cycle._fields.index("started_at")
SAME_START_COLUMNS = tuple(c for c in CYCLE_COLUMNS if c != "started_at")
NEW_COLUMNS = (*CYCLE_COLUMNS, *FLAGS.values())
NO_MOMENTS: dict[str, datetime] = {}


async def _record_moments(
    conn: AsyncConnection, earned: Earned, inserted: set[Key], now: datetime
) -> list[dict[str, Any]]:
    """Record the earned events: of cycles inserted with their flags set, and where this flips the flag."""
    events = []
    isoformat = _isoformats()
    candidates: dict[str, dict[Key, tuple[Cycle, datetime]]] = {what: {} for what in FLAGS}
    for key, (cycle, got) in earned.items():
        for what, at in got.items():
            if key in inserted:
                events.append(_event(cycle, what, at, isoformat))
            else:
                candidates[what][key] = (cycle, at)
    for what, wanted in candidates.items():
        flipped = await bulk.set_where_null(conn, schema.sla_cycles, FLAGS[what], now, KEY, list(wanted))
        for cid, metric, seq in flipped:
            cycle, at = wanted[(cid, metric, seq)]
            events.append(_event(cycle, what, at, isoformat))
    events.sort(key=lambda e: e["at"])
    await record(conn, events)
    await rule_queue.enqueue(conn, events, now)
    return events


def _event(c: Cycle, what: str, at: datetime, isoformat: Callable[[datetime], str]) -> dict[str, Any]:
    return event_row(
        (PROMISE_KINDS if c.metric == PROMISE else SLA_KINDS)[what],
        at,
        c.conversation_id,
        None,
        metric=c.metric,
        cycle=c.seq,
        policy=c.policy,
        due_at=isoformat(c.due_at) if c.due_at else None,
        within_target=c.breached_at is None,
    )


SLA_KINDS = {what: f"sla.{what}" for what in FLAGS}
PROMISE_KINDS = {"warning": "promise.at_risk", "breached": "promise.broken", "fulfilled": "promise.kept"}


def _isoformats() -> Callable[[datetime], str]:
    """`datetime.isoformat`, each UTC instant formatted once (a cycle's events share its due time)."""
    memo: dict[datetime, str] = {}

    def isoformat(at: datetime) -> str:
        if at.tzinfo is not UTC:
            return at.isoformat()
        text = memo.get(at)
        if text is None:
            text = memo[at] = at.isoformat()
        return text

    return isoformat


@bulk.statement
def _due_query(pg: bool) -> Select[Any]:
    c = schema.conversations
    return select(c.c.id, c.c.due_at, c.c.promise_due_at).where(bulk.in_list(pg, c.c.id))


async def _write_due(conn: AsyncConnection, ahead: dict[int, Outlook]) -> None:
    """Set the conversations' due times that moved, each column only where it moved (fewer index writes)."""
    encode = bulk.stamp_writer(conn)
    both, due, promise = [], [], []
    for cid, due_at, promise_due_at in await bulk.fetch(conn, _due_query, ids=bulk.listed(conn, list(ahead))):
        o = ahead[cid]
        due_moved, promise_moved = encode(o.due_at) != due_at, encode(o.promise_due_at) != promise_due_at
        if due_moved and promise_moved:
            both.append((cid, o.due_at, o.promise_due_at))
        elif due_moved:
            due.append((cid, o.due_at))
        elif promise_moved:
            promise.append((cid, o.promise_due_at))
    c = schema.conversations
    await bulk.update(conn, c, ["id"], both, columns=("id", "due_at", "promise_due_at"))
    await bulk.update(conn, c, ["id"], due, columns=("id", "due_at"))
    await bulk.update(conn, c, ["id"], promise, columns=("id", "promise_due_at"))


def _next_checks(ahead: dict[int, Outlook]) -> dict[int, wakeups.Wanted]:
    return {cid: (o.check_at, {}) for cid, o in ahead.items() if o.check_at is not None}
