"""How fast the inbox list answers over 100,000 conversations, filtered and sorted by SLA due.

For each database (SQLite file, PostgreSQL schema) the benchmark fills a store with N
conversations (five channels, four statuses, a tenth unassigned, due times spread around
now, a customer and a message each), then runs what `GET /api/inbox` runs (the filtered,
sorted page of 50, the total count, the customers' names and the last messages) for
several filters R times each, and prints p50 and p95 per filter. PostgreSQL is vacuumed
after the fill, as autovacuum would have done to a table of that age, so that counts can
use index-only scans.

Usage: python bench/inbox_query.py [--conversations 100000] [--repeat 100] [--pg DSN]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.inbox import ConversationFilter, Inbox, SortOrder  # noqa: E402
from hub.models import ChannelKind, ConversationStatus  # noqa: E402
from hub.store import BlobStore, Database, schema  # noqa: E402
from hub.store.migrate import upgrade  # noqa: E402
from hub.web.ui.reads import list_details  # noqa: E402

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
CHANNELS = [ChannelKind.EMAIL, ChannelKind.CHAT, ChannelKind.SMS, ChannelKind.VOICE, ChannelKind.FAX]
STATUSES = [
    ConversationStatus.OPEN,
    ConversationStatus.PENDING,
    ConversationStatus.RESOLVED,
    ConversationStatus.SNOOZED,
]
AGENTS = 40
CHUNK = 5000

FILTERS: dict[str, ConversationFilter] = {
    "open, by due": ConversationFilter(statuses=(ConversationStatus.OPEN,), sort=SortOrder.DUE),
    "open+pending, by due": ConversationFilter(
        statuses=(ConversationStatus.OPEN, ConversationStatus.PENDING), sort=SortOrder.DUE
    ),
    "mine, by due": ConversationFilter(assignee_id=7, sort=SortOrder.DUE),
    "unassigned open, by due": ConversationFilter(
        unassigned=True, statuses=(ConversationStatus.OPEN,), sort=SortOrder.DUE
    ),
    "email open, by due": ConversationFilter(
        channels=(ChannelKind.EMAIL,), statuses=(ConversationStatus.OPEN,), sort=SortOrder.DUE
    ),
    "breached, by due": ConversationFilter(breached=True, sort=SortOrder.DUE),
    "all, latest": ConversationFilter(),
}


async def fill(db: Database, count: int) -> None:
    rng = random.Random(8)
    async with db.write() as conn:
        await conn.execute(
            insert(schema.agents),
            [
                {"id": i, "username": f"agent{i}", "display_name": f"Agent {i}", "role": 1, "created_at": NOW}
                for i in range(1, AGENTS + 1)
            ],
        )
    for start in range(1, count + 1, CHUNK):
        ids = range(start, min(start + CHUNK, count + 1))
        contacts, identities, conversations, messages = [], [], [], []
        for i in ids:
            channel = rng.choice(CHANNELS)
            created = NOW - timedelta(minutes=rng.randint(0, 60 * 24 * 90))
            contacts.append({"id": i, "name": f"Customer {i}", "created_at": created})
            identities.append({"contact_id": i, "kind": "email", "address": f"c{i}@example.com"})
            conversations.append(
                {
                    "id": i,
                    "contact_id": i,
                    "channel": channel.value,
                    "channel_account": f"demo-{channel.value}",
                    "subject": f"Order #{40000 + i}",
                    "status": rng.choices(STATUSES, weights=[3, 3, 12, 1])[0].value,
                    "priority": rng.randint(0, 3),
                    "assignee_id": None if rng.random() < 0.1 else rng.randint(1, AGENTS),
                    "due_at": NOW + timedelta(minutes=rng.randint(-600, 6000))
                    if rng.random() < 0.8
                    else None,
                    "promise_due_at": NOW + timedelta(hours=rng.randint(-24, 72))
                    if rng.random() < 0.2
                    else None,
                    "created_at": created,
                    "updated_at": created + timedelta(minutes=5),
                    "last_message_at": created,
                    "last_inbound_at": created,
                }
            )
            messages.append(
                {
                    "conversation_id": i,
                    "direction": "in",
                    "channel": channel.value,
                    "channel_account": f"demo-{channel.value}",
                    "external_id": f"m-{i}",
                    "text": "My order has not arrived yet; the tracking page shows no update since Monday.",
                    "meta": {},
                    "created_at": created,
                }
            )
        async with db.write() as conn:
            for table, rows in (
                (schema.contacts, contacts),
                (schema.identities, identities),
                (schema.conversations, conversations),
                (schema.messages, messages),
            ):
                await conn.execute(insert(table), rows)
    if db.dialect == "postgresql":
        async with db.engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await auto.exec_driver_sql("VACUUM ANALYZE")


async def page(inbox: Inbox, db: Database, flt: ConversationFilter) -> None:
    items, _total = await inbox.list(flt)
    await list_details(db, [c.id for c in items], sorted({c.contact_id for c in items}))


async def measure(db: Database, repeat: int) -> dict[str, list[float]]:
    inbox = Inbox(db, BlobStore(Path(tempfile.gettempdir()) / "omnihub-bench-blobs"), clock=lambda: NOW)
    timings: dict[str, list[float]] = {}
    for name, flt in FILTERS.items():
        await page(inbox, db, flt)
        runs = []
        for _ in range(repeat):
            started = time.perf_counter()
            await page(inbox, db, flt)
            runs.append((time.perf_counter() - started) * 1000)
        timings[name] = sorted(runs)
    return timings


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


async def run(name: str, url: str, schema_name: str | None, args: Any) -> None:
    db = Database(url, schema=schema_name)
    try:
        await upgrade(db)
        started = time.perf_counter()
        await fill(db, args.conversations)
        print(f"{name}: {args.conversations:,} conversations filled in {time.perf_counter() - started:.0f} s")
        for label, runs in (await measure(db, args.repeat)).items():
            print(f"  {label:<26} p50 {pct(runs, 50):7.1f} ms   p95 {pct(runs, 95):7.1f} ms")
    finally:
        await db.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument(
        "--pg", default=os.environ.get("OMNIHUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    )
    args = parser.parse_args()
    print(f"inbox list page of 50 with total, names and previews, {args.repeat} runs per filter")
    with tempfile.TemporaryDirectory() as tmp:
        await run("sqlite", f"sqlite+aiosqlite:///{tmp}/bench.db", None, args)
    schema_name = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        conn = await asyncpg.connect(args.pg, timeout=5)
    except (OSError, asyncpg.PostgresError) as err:
        print(f"PostgreSQL not reachable ({err}); SQLite only")
        return
    await conn.execute(f"CREATE SCHEMA {schema_name}")
    try:
        await run("postgresql", args.pg.replace("postgresql://", "postgresql+asyncpg://"), schema_name, args)
    finally:
        await conn.execute(f"DROP SCHEMA {schema_name} CASCADE")
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
