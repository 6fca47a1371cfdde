"""The SLA clock at run time: recomputes conversations as they change, and all of them on new rules."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from hub.aio import cancel_and_wait, in_timed_chunks
from hub.clock import Clock
from hub.events import EventBus
from hub.models import ConversationStatus
from hub.rules.conditions import Facts
from hub.sla.policy import PolicyBook
from hub.sla.rings import AnswerTarget
from hub.sla.tracker import Tracker
from hub.store import Database, schema

log = logging.getLogger(__name__)

BATCH = {"sqlite": 2000, "postgresql": 10_000}
"""Most conversations recomputed per transaction: SQLite holds its one write lock that long;
PostgreSQL scans for a batch as cheaply as it looks up, so fewer, larger batches are faster there."""
FIRST_BATCH = 20
SETTLE_SECONDS = 0.05
"""How long changes gather before a recomputation, so a burst is recomputed in one go."""
MOST_SETTLE_SECONDS = 1.0
"""Under sustained changes they gather as long as the last recomputation took (up to this), so that
a conversation changing all the time is not read again and again, and recomputing takes at most
about half of the process's time."""
WRITE_BUDGET = {"sqlite": 0.02, "postgresql": 0.25}
"""Seconds a recomputation transaction should take: on SQLite short, so inbound messages get the write
lock between; PostgreSQL has no such lock, and a busy event loop (webhooks under load) stretches every
transaction's time, which there would shrink batches to one conversation and its ten round trips."""
FULL_BUDGET = {"sqlite": 0.2, "postgresql": 10.0}
"""The same for recomputing every open conversation (start, rules change): larger chunks, fewer
commits; PostgreSQL has no single write lock to share, so there batches take their full size."""
FULL_LANES = {"sqlite": 1, "postgresql": 2}
"""Batches of a full recomputation in flight at once. Each is read and computed outside the write
transaction (see `Tracker.prepare`); on PostgreSQL one batch is computed here while the server
writes another. On SQLite the driver's thread steps reads row by row, taking Python's lock back
after each row, which a busy event loop makes it wait for: two batches at once took 15% longer."""


class SlaService:
    """Owns the tracker, a bus subscription and one background task."""

    def __init__(self, db: Database, bus: EventBus, clock: Clock, book: PolicyBook | None = None) -> None:
        self.db = db
        self.bus = bus
        self.clock = clock
        self._book = book
        self.tracker = Tracker(lambda: self._book, clock)
        self._dirty: set[int] = set()
        self._full = asyncio.Event()
        self._wake = asyncio.Event()
        self._following = False
        self._task: asyncio.Task[None] | None = None

    @property
    def book(self) -> PolicyBook | None:
        """The policies in force."""
        return self._book

    def answer_target(self, line: str) -> AnswerTarget:
        """How fast calls on a phone line must be answered (P1): the matching policy's, else the default."""
        if self._book is None:
            return AnswerTarget()
        facts = Facts(
            channel="voice", mailbox=line, subject="", body="", sender="", language="", tags=frozenset(),
            priority="normal", status="open", team=None, assignee=None, in_business_hours=None,
            contact_name=None,
        )  # fmt: skip
        policy = self._book.select(facts)
        return policy.answer if policy is not None else self._book.answer

    def set_book(self, book: PolicyBook) -> None:
        """Adopt new policies and recompute every open conversation under them."""
        self._book = book
        self._full.set()
        self._wake.set()

    def start(self) -> None:
        """Begin following the bus, with a full recomputation first."""
        if self._task is not None and not self._task.done():
            return
        if not self._following:
            self.bus.listen(self._noticed)
            self._following = True
        self._full.set()
        self._wake.set()
        self._task = asyncio.create_task(self._run(), name="sla")

    async def stop(self) -> None:
        """Stop following the bus."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        if self._following:
            self.bus.unlisten(self._noticed)
            self._following = False

    async def recompute(self, ids: list[int]) -> list[dict[str, Any]]:
        """Recompute some conversations now, in batches; publish and return the events."""

        async def batch(chunk: Sequence[int]) -> list[dict[str, Any]]:
            return await self.db.write_again_on_conflict(
                lambda conn: self.tracker.recompute(conn, list(chunk))
            )

        dialect = self.db.dialect
        chunks = await in_timed_chunks(
            ids, batch, budget=WRITE_BUDGET[dialect], first=FIRST_BATCH, most=BATCH[dialect]
        )
        events = [e for chunk in chunks for e in chunk]
        self.bus.publish(events)
        return events

    async def recompute_all(self) -> int:
        """Recompute every conversation that is not resolved; return how many."""
        c = schema.conversations
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(c.c.id).where(c.c.status != ConversationStatus.RESOLVED.value).order_by(c.c.id)
            )
            ids = [r[0] for r in rows]
        dialect = self.db.dialect

        async def batch(chunk: Sequence[int]) -> list[dict[str, Any]]:
            async with self.db.read() as conn:
                plan = await self.tracker.prepare(conn, chunk)
            if plan is None:
                return []
            return await self.db.write_again_on_conflict(lambda conn: self.tracker.apply(conn, plan))

        chunks = await in_timed_chunks(
            ids,
            batch,
            budget=FULL_BUDGET[dialect],
            first=FIRST_BATCH,
            most=BATCH[dialect],
            lanes=FULL_LANES[dialect],
        )
        self.bus.publish([e for chunk in chunks for e in chunk])
        return len(ids)

    async def _run(self) -> None:
        settle = SETTLE_SECONDS
        while True:
            await self._wake.wait()
            await asyncio.sleep(settle)
            self._wake.clear()
            began = time.monotonic()
            try:
                if self._full.is_set():
                    self._full.clear()
                    self._dirty.clear()
                    await self.recompute_all()
                if self._dirty:
                    ids, self._dirty = sorted(self._dirty), set()
                    await self.recompute(ids)
            except Exception:
                log.exception("SLA recomputation failed; it is retried on the next change")
            busy = self._wake.is_set()
            settle = (
                min(max(SETTLE_SECONDS, time.monotonic() - began), MOST_SETTLE_SECONDS)
                if busy
                else SETTLE_SECONDS
            )

    def _noticed(self, event: dict[str, Any]) -> None:
        cid = event.get("conversation_id")
        if cid is not None and not str(event.get("kind", "")).startswith(("sla.", "promise.")):
            self._dirty.add(cid)
            self._wake.set()
