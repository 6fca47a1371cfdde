"""How long recomputing SLA deadlines takes for 100,000 open conversations, and the scheduler's lag.

For each database (SQLite file, PostgreSQL schema) the benchmark:
1. fills the store with N open conversations in bulk: one customer message each, a reply
   on a third of them, a customer follow-up on some, a pending spell on a tenth, tags on
   a fifth (so two policies match), spread over two working weeks;
2. times `SlaService.recompute_all()` three times: the first computation (every cycle,
   event and wake-up written), the same rules again (every history read, nothing computed
   or written), and after a rules change that moves every deadline (every conversation
   recomputed, every cycle rewritten), with this process's CPU time next to the wall time
   (the database server's own CPU is not in it); what exists before the first one is frozen
   out of the garbage collector's sight, as `omnihub run` does once the hub has started;
   events are queued for the triggers as the shipped rules (`rules/`) ask;
3. schedules timers due at 1,000 a second for `--seconds` seconds and runs the real
   scheduler on the real clock, with a handler that writes one event per timer; prints
   the lag (fired - due) median, p99 and max.

Usage: python bench/sla.py [--conversations 100000] [--seconds 10] [--skip-pg] [--skip-sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncConnection

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.clock import utcnow  # noqa: E402
from hub.events import EventBus  # noqa: E402
from hub.rules import queue as rule_queue  # noqa: E402
from hub.rules.interest import wanted_kinds  # noqa: E402
from hub.rules.loader import load_ruleset  # noqa: E402
from hub.runtime import freeze_objects  # noqa: E402
from hub.scheduler import Scheduler, Timer  # noqa: E402
from hub.sla.calendar import BusinessCalendar  # noqa: E402
from hub.sla.policy import PolicyBook, SlaFile  # noqa: E402
from hub.sla.report import percentile  # noqa: E402
from hub.sla.service import SlaService  # noqa: E402
from hub.store import Database, schema  # noqa: E402
from hub.store.migrate import upgrade  # noqa: E402

START = datetime(2026, 11, 9, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
CHUNK = 5000


def policies(scale: float) -> PolicyBook:
    """Two policies (VIP by tag, then everyone) on a London calendar with a lunch break and holidays."""
    hours = {d: ["09:00-12:30", "13:30-17:30"] for d in ("mon", "tue", "wed", "thu", "fri")}
    calendar = BusinessCalendar.build("default", "Europe/London", hours, country="GB", subdivision="ENG")
    minutes = lambda m: f"{round(m * scale)}m"  # noqa: E731
    data = {
        "policies": [
            {
                "name": "vip",
                "when": {"all": [{"field": "tags", "operator": "contains", "value": "vip"}]},
                "first_response": minutes(30),
                "next_response": minutes(60),
                "resolution": minutes(480),
            },
            {
                "name": "standard",
                "first_response": minutes(120),
                "next_response": minutes(240),
                "periodic_update": minutes(960),
                "resolution": minutes(2400),
            },
        ]
    }
    return PolicyBook.build(SlaFile.model_validate(data), {"default": calendar})


async def fill(db: Database, count: int) -> None:
    """N open conversations with their messages, status events and tags, in bulk."""
    rng = random.Random(11)
    span = (NOW - START).total_seconds()
    for base in range(0, count, CHUNK):
        contacts, conversations, messages, events, tags = [], [], [], [], []
        for cid in range(base + 1, min(base + CHUNK, count) + 1):
            at = START + timedelta(seconds=rng.random() * span * 0.9)
            contacts.append({"id": cid, "name": f"Customer {cid}", "language": "en", "created_at": at})
            status = "pending" if rng.random() < 0.1 else "open"
            conversations.append(
                {
                    "id": cid,
                    "contact_id": cid,
                    "channel": "email",
                    "channel_account": "support",
                    "subject": f"Order {cid}",
                    "status": status,
                    "priority": 1,
                    "created_at": at,
                    "updated_at": at,
                    "last_message_at": at,
                    "last_inbound_at": at,
                }
            )
            messages.append(_message(cid, "in", at, False))
            if rng.random() < 0.33:
                reply = at + timedelta(minutes=rng.randint(5, 600))
                messages.append(_message(cid, "out", reply, False))
                if rng.random() < 0.5:
                    messages.append(
                        _message(cid, "in", reply + timedelta(minutes=rng.randint(5, 900)), False)
                    )
            if status == "pending":
                events.append(
                    {
                        "at": at + timedelta(minutes=30),
                        "kind": "conversation.status_changed",
                        "conversation_id": cid,
                        "agent_id": None,
                        "data": {"old": "open", "new": "pending"},
                    }
                )
            if rng.random() < 0.2:
                tags.append({"conversation_id": cid, "tag": "vip"})
        async with db.write() as conn:
            await conn.execute(insert(schema.contacts), contacts)
            await conn.execute(insert(schema.conversations), conversations)
            await conn.execute(insert(schema.messages), messages)
            if events:
                await conn.execute(insert(schema.events), events)
            if tags:
                await conn.execute(insert(schema.conversation_tags), tags)


def _message(cid: int, direction: str, at: datetime, automatic: bool) -> dict[str, Any]:
    return {
        "conversation_id": cid,
        "direction": direction,
        "channel": "email",
        "channel_account": "support",
        "external_id": None,
        "sender": f"c{cid}@example.com",
        "subject": f"Order {cid}",
        "text": "Where is my parcel? It was due on Monday.",
        "automatic": automatic,
        "meta": {},
        "created_at": at,
    }


async def recompute_times(db: Database) -> list[tuple[str, float, float]]:
    """Wall and CPU seconds (this process) for: first computation, unchanged rules, changed rules."""
    service = SlaService(db, EventBus(), lambda: NOW, policies(1.0))
    freeze_objects()
    out = []
    for label, book in (
        ("first computation", None),
        ("same rules again", None),
        ("rules changed", policies(1.5)),
    ):
        if book is not None:
            service.set_book(book)
        started, cpu = time.perf_counter(), time.process_time()
        done = await service.recompute_all()
        out.append(
            (f"{label} ({done:,} conversations)", time.perf_counter() - started, time.process_time() - cpu)
        )
        print(_line(*out[-1]), flush=True)
    return out


async def scheduler_lag(db: Database, seconds: int) -> tuple[float, float, float, int]:
    """Median, p99 and max lag in ms at 1,000 due timers a second; and how many fired."""
    lags: list[float] = []
    total = seconds * 1000
    all_fired = asyncio.Event()
    async with db.write() as conn:
        await conn.execute(delete(schema.timers))

    async def handler(conn: AsyncConnection, timer: Timer) -> list[dict[str, Any]]:
        lags.append((utcnow() - timer.due_at).total_seconds() * 1000)
        if len(lags) >= total:
            all_fired.set()
        await conn.execute(
            insert(schema.events),
            {
                "at": timer.due_at,
                "kind": "bench.fired",
                "conversation_id": None,
                "agent_id": None,
                "data": {},
            },
        )
        return []

    first_due = utcnow() + timedelta(seconds=3)
    async with db.write() as conn:
        rows = [
            {
                "kind": "bench",
                "key": f"bench:{i}",
                "due_at": first_due + timedelta(milliseconds=i),
                "payload": {},
                "status": "pending",
                "attempts": 0,
                "created_at": utcnow(),
                "conversation_id": None,
            }
            for i in range(total)
        ]
        await conn.execute(insert(schema.timers), rows)
    runner = Scheduler(db, {"bench": handler}, poll_seconds=0.05)
    runner.start()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_fired.wait(), seconds + 60)
    await runner.stop()
    ordered = sorted(lags)
    return (
        percentile(ordered, 0.5) or 0,
        percentile(ordered, 0.99) or 0,
        ordered[-1] if ordered else 0,
        len(lags),
    )


def _line(what: str, wall: float, cpu: float) -> str:
    return f"  recompute, {what:<45} {wall:6.2f} s wall, {cpu:6.2f} s CPU"


async def run_on(
    db: Database, count: int, seconds: int
) -> tuple[list[tuple[str, float, float]], tuple[float, ...]]:
    await upgrade(db)
    rule_queue.listen(db, wanted_kinds(load_ruleset(ROOT / "rules").triggers.triggers))
    started = time.perf_counter()
    await fill(db, count)
    print(f"  filled {count:,} conversations in {time.perf_counter() - started:.1f} s", flush=True)
    times = await recompute_times(db)
    lag = await scheduler_lag(db, seconds)
    print(
        f"  scheduler at 1,000 due/s: {lag[3]:,} fired, lag median {lag[0]:.0f} ms, p99 {lag[1]:.0f} ms",
        flush=True,
    )
    await db.dispose()
    return times, lag


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    results = []
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            print("SQLite", flush=True)
            db = Database(f"sqlite+aiosqlite:///{tmp}/sla.db")
            results.append(("SQLite", *await run_on(db, args.conversations, args.seconds)))
    if not args.skip_pg:
        print("PostgreSQL", flush=True)
        name = f"bench_{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(args.pg)
        try:
            await conn.execute(f"CREATE SCHEMA {name}")
            url = args.pg.replace("postgresql://", "postgresql+asyncpg://", 1)
            results.append(
                ("PostgreSQL", *await run_on(Database(url, schema=name), args.conversations, args.seconds))
            )
        finally:
            await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
            await conn.close()
    for label, times, (p50, p99, worst, fired) in results:
        print(f"\n{label}")
        for row in times:
            print(_line(*row))
        lag = f"lag median {p50:.0f} ms, p99 {p99:.0f} ms, max {worst:.0f} ms"
        print(f"  scheduler at 1,000 due/s: {fired:,} fired, {lag}")


if __name__ == "__main__":
    asyncio.run(main())
