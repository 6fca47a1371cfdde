"""The persisted scheduler: timers stored with the data they belong to, fired at most once.

A timer is written in the same transaction as whatever needs it (a snooze, later an SLA
deadline or a callback), under a unique key, so scheduling twice is harmless. `Scheduler`
claims due timers (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the single-writer lock on
SQLite), then fires each in a transaction that also marks it fired: the handler's effects
and the "fired" mark commit together or not at all. Several hub processes may run a
scheduler each; every timer fires once. After downtime, overdue timers fire on start, oldest
first, and handlers receive the time the timer was due, so they can record what happened
when it happened. A round's timers are fired in transactions sized to take about
`fire_budget` seconds each, so that a backlog never holds SQLite's single write lock long
enough to delay inbound messages waiting for it. A timer may carry the timers that follow it
(`payload["next"]`, see `chain_row`): the first of them is written by the transaction that
finishes the timer (fired, or given up on), so a queue of many items keeps one pending row
and each item still fires once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.aio import backoff, cancel_and_wait, in_timed_chunks
from hub.clock import Clock, utcnow
from hub.events import EventBus
from hub.store import Database, schema
from hub.store.claims import claim
from hub.store.upsert import insert_ignore

log = logging.getLogger(__name__)

FIRST_FIRE_BATCH = 10
"""Timers in a round's first transaction, before their cost is known."""


@dataclass(frozen=True, slots=True)
class Timer:
    """A due item: what to do (`kind`), when, and for what."""

    id: int
    kind: str
    key: str
    due_at: datetime
    conversation_id: int | None
    payload: dict[str, Any]
    attempts: int


Handler = Callable[[AsyncConnection, Timer], Awaitable[list[dict[str, Any]]]]
"""Does a timer's work inside the transaction that marks it fired; returns events to publish."""


def timer_row(
    kind: str,
    due_at: datetime,
    key: str,
    *,
    conversation_id: int | None = None,
    payload: Mapping[str, Any] | None = None,
    now: datetime,
) -> dict[str, Any]:
    """A new pending timer's row, for writers that insert many timers in one statement."""
    return {
        "kind": kind,
        "key": key,
        "due_at": due_at,
        "conversation_id": conversation_id,
        "payload": dict(payload or {}),
        "status": "pending",
        "attempts": 0,
        "created_at": now,
    }


NEXT = "next"
"""Payload key of the timers that follow a timer: `[{"key", "due_at", "payload"}, ...]`, in order."""


def chain_row(
    kind: str,
    links: Sequence[tuple[datetime, str, Mapping[str, Any]]],
    *,
    conversation_id: int | None = None,
    now: datetime,
) -> dict[str, Any]:
    """One pending timer for a sequence of (due_at, key, payload): the first, carrying the rest."""
    (due_at, key, payload), rest = links[0], links[1:]
    if rest:
        payload = {
            **payload,
            NEXT: [{"key": k, "due_at": at.isoformat(), "payload": dict(p)} for at, k, p in rest],
        }
    return timer_row(kind, due_at, key, conversation_id=conversation_id, payload=payload, now=now)


def _follower(timer: Timer, now: datetime) -> dict[str, Any] | None:
    """The row of the timer that follows a finished one, if it carries any."""
    links = timer.payload.get(NEXT)
    if not links:
        return None
    rest = [(datetime.fromisoformat(x["due_at"]), x["key"], x["payload"]) for x in links]
    return chain_row(timer.kind, rest, conversation_id=timer.conversation_id, now=now)


async def _add_followers(conn: AsyncConnection, timers: Sequence[Timer], now: datetime) -> None:
    rows = [row for timer in timers if (row := _follower(timer, now)) is not None]
    if rows:
        await conn.execute(insert_ignore(conn, schema.timers), rows)


async def schedule(
    conn: AsyncConnection,
    kind: str,
    due_at: datetime,
    key: str,
    *,
    conversation_id: int | None = None,
    payload: Mapping[str, Any] | None = None,
    now: datetime,
) -> None:
    """Add a timer in the caller's transaction; a timer with the same key already there wins."""
    row = timer_row(kind, due_at, key, conversation_id=conversation_id, payload=payload, now=now)
    await conn.execute(insert_ignore(conn, schema.timers), row)


async def cancel(conn: AsyncConnection, key: str) -> bool:
    """Cancel a pending timer in the caller's transaction; False if there was none."""
    t = schema.timers
    done = await conn.execute(
        update(t).where(t.c.key == key, t.c.status == "pending").values(status="cancelled")
    )
    return bool(done.rowcount)


class Scheduler:
    """Fires due timers through their kind's handler; owns one background task."""

    def __init__(
        self,
        db: Database,
        handlers: Mapping[str, Handler],
        clock: Clock = utcnow,
        *,
        bus: EventBus | None = None,
        poll_seconds: float = 1.0,
        batch: int = 500,
        lease_seconds: float = 60.0,
        max_attempts: int = 5,
        worker_id: str | None = None,
        fire_batch: int = 200,
        prune_kinds: frozenset[str] = frozenset(),
        keep_fired: timedelta = timedelta(days=7),
        prune_every: timedelta = timedelta(hours=1),
        fire_budget: float = 0.02,
    ) -> None:
        self.db = db
        self.handlers = dict(handlers)
        self.clock = clock
        self.bus = bus
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts
        self.worker_id = worker_id or uuid.uuid4().hex[:16]
        self.fire_batch = fire_batch
        self.prune_kinds = prune_kinds
        self.keep_fired = keep_fired
        self.prune_every = prune_every
        self.fire_budget = fire_budget
        self.wake = asyncio.Event()
        self.lag: timedelta = timedelta()
        self._pruned_at: datetime | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start firing timers."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="scheduler")

    async def stop(self) -> None:
        """Stop; a timer being fired either commits or stays pending for the next run."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            self.wake.clear()
            try:
                fired = await self.run_due()
                await self._prune_now_and_then()
            except Exception:
                log.exception("scheduler round failed; trying again shortly")
                fired = 0
            if fired:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.poll_seconds)

    async def run_due(self) -> int:
        """Claim and fire one round of due timers, oldest first; return how many were handled."""
        timers = await self._claim()
        await in_timed_chunks(
            timers, self._fire_batch, budget=self.fire_budget, first=FIRST_FIRE_BATCH, most=self.fire_batch
        )
        return len(timers)

    async def prune(self, limit: int = 5000) -> int:
        """Delete up to `limit` finished timers of the prunable kinds older than `keep_fired`."""
        if not self.prune_kinds:
            return 0
        t = schema.timers
        before = self.clock() - self.keep_fired
        old = (
            select(t.c.id)
            .where(
                t.c.kind.in_(sorted(self.prune_kinds)),
                t.c.status.in_(("fired", "cancelled")),
                t.c.due_at < before,
                or_(t.c.fired_at.is_(None), t.c.fired_at < before),
            )
            .limit(limit)
        )
        async with self.db.write() as conn:
            done = await conn.execute(delete(t).where(t.c.id.in_(old.scalar_subquery())))
        return int(done.rowcount or 0)

    async def _prune_now_and_then(self) -> None:
        now = self.clock()
        if self._pruned_at is not None and now - self._pruned_at < self.prune_every:
            return
        self._pruned_at = now
        pruned = await self.prune()
        if pruned:
            log.info("pruned %d finished timers older than %s", pruned, self.keep_fired)

    async def pending(self) -> int:
        """How many timers wait to fire."""
        t = schema.timers
        async with self.db.read() as conn:
            return int(
                (
                    await conn.execute(select(func.count()).select_from(t).where(t.c.status == "pending"))
                ).scalar_one()
            )

    async def _claim(self) -> list[Timer]:
        now = self.clock()
        t = schema.timers
        due = and_(
            t.c.status == "pending",
            t.c.due_at <= now,
            or_(t.c.claimed_until.is_(None), t.c.claimed_until < now),
        )
        values = {
            "claimed_by": self.worker_id,
            "claimed_until": now + self.lease,
            "attempts": t.c.attempts + 1,
        }
        async with self.db.write() as conn:
            rows = await claim(conn, t, due, [t.c.due_at, t.c.id], self.batch, values)
        return [
            Timer(
                r["id"],
                r["kind"],
                r["key"],
                r["due_at"],
                r["conversation_id"],
                dict(r["payload"] or {}),
                r["attempts"],
            )
            for r in rows
        ]

    async def _fire_batch(self, timers: Sequence[Timer]) -> None:
        """Fire timers in one transaction; if any handler fails, again one savepoint per timer."""
        try:
            published = await self._fire_together(timers)
        except Exception:  # noqa: BLE001
            published = None
        if published is None:
            published, failed = await self._fire_apart(timers)
        else:
            failed = []
        if self.bus is not None:
            self.bus.publish(published)
        for timer, error in failed:
            await self._failed(timer, error)

    async def _fire_together(self, timers: Sequence[Timer]) -> list[dict[str, Any]]:
        """The fast path: mark the whole batch fired with one statement and run every handler."""
        t = schema.timers
        published: list[dict[str, Any]] = []
        async with self.db.write() as conn:
            now = self.clock()
            marked = await conn.execute(
                update(t)
                .where(
                    t.c.id.in_([x.id for x in timers]),
                    t.c.claimed_by == self.worker_id,
                    t.c.status == "pending",
                )
                .values(status="fired", fired_at=now, claimed_by=None, claimed_until=None)
                .returning(t.c.id)
            )
            mine = {row[0] for row in marked}
            await _add_followers(conn, [x for x in timers if x.id in mine], now)
            for timer in timers:
                if timer.id in mine:
                    published.extend(await self.handlers.get(timer.kind, _unknown_kind)(conn, timer))
                    self.lag = max(timedelta(), now - timer.due_at)
        return published

    async def _fire_apart(
        self, timers: Sequence[Timer]
    ) -> tuple[list[dict[str, Any]], list[tuple[Timer, str]]]:
        """The careful path: each timer in a savepoint, so a failing handler undoes only its own work."""
        t = schema.timers
        published: list[dict[str, Any]] = []
        failed: list[tuple[Timer, str]] = []
        try:
            async with self.db.write() as conn:
                for timer in timers:
                    handler = self.handlers.get(timer.kind, _unknown_kind)
                    try:
                        async with conn.begin_nested():
                            now = self.clock()
                            done = await conn.execute(
                                update(t)
                                .where(
                                    t.c.id == timer.id,
                                    t.c.claimed_by == self.worker_id,
                                    t.c.status == "pending",
                                )
                                .values(status="fired", fired_at=now, claimed_by=None, claimed_until=None)
                            )
                            if done.rowcount == 0:
                                continue
                            await _add_followers(conn, [timer], now)
                            published.extend(await handler(conn, timer))
                        self.lag = max(timedelta(), now - timer.due_at)
                    except Exception as err:  # noqa: BLE001
                        failed.append((timer, f"{type(err).__name__}: {err}"))
        except Exception as err:  # noqa: BLE001
            published.clear()
            failed = [(timer, f"{type(err).__name__}: {err}") for timer in timers]
        return published, failed

    async def _failed(self, timer: Timer, error: str) -> None:
        t = schema.timers
        now = self.clock()
        if timer.attempts >= self.max_attempts:
            log.error(
                "timer %s (%s) failed %d times; giving up: %s", timer.key, timer.kind, timer.attempts, error
            )
            values: dict[str, Any] = {"status": "failed", "last_error": error, "fired_at": now}
        else:
            log.warning("timer %s (%s) failed; retrying: %s", timer.key, timer.kind, error)
            retry_at = now + timedelta(seconds=backoff(timer.attempts, 1.0, 300.0))
            values = {"last_error": error, "claimed_until": retry_at}
        async with self.db.write() as conn:
            done = await conn.execute(
                update(t).where(t.c.id == timer.id, t.c.claimed_by == self.worker_id).values(**values)
            )
            if done.rowcount and values.get("status") == "failed":
                await _add_followers(conn, [timer], now)


async def _unknown_kind(conn: AsyncConnection, timer: Timer) -> list[dict[str, Any]]:
    raise LookupError(f"no handler for timers of kind {timer.kind!r}")
