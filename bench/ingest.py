"""Messages per second through `Inbox.ingest()` next to a raw bulk INSERT of the same rows.

For each database (SQLite file, PostgreSQL schema) the benchmark:
1. ingests N realistic messages (e-mail threads, SMS, chat; English and Chinese; a few
   thousand senders) through `Inbox.ingest()` from 4,000 concurrent callers, each sending
   its next message once the last one was stored, as webhook senders and mailbox syncs do;
2. reads back every row the pipeline wrote (contacts, identities, conversations, messages,
   references, search index) and bulk-INSERTs the same rows into a fresh database of the
   same kind in one transaction, which is the ceiling for storing that data;
3. prints both rates and their ratio in one table.

Usage: python bench/ingest.py [--messages 20000] [--pg postgresql://postgres@127.0.0.1/test]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import insert, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.inbox import Inbox  # noqa: E402
from hub.models import ChannelKind, Identity, IdentityKind, InboundMessage  # noqa: E402
from hub.store import BlobStore, Database, schema  # noqa: E402
from hub.store.migrate import upgrade  # noqa: E402

EN = [
    "My order has not arrived yet and the tracking page shows no update since Monday.",
    "Could you send me the invoice for last month again? The PDF was empty.",
    "I was charged twice for the same subscription, please refund one payment.",
    "The replacement part fits, thank you for the quick help!",
    "Can I change the delivery address for order 44871 to my office?",
]
ZH = [
    "您好，我的快递已经一周没有更新了，请帮我查一下。",
    "上个月的发票还没有收到，麻烦再发一次。",
    "同一笔订单被扣了两次款，请尽快退款。",
    "谢谢你们的帮助，问题已经解决了。",
    "请问可以把收货地址改成公司地址吗？",
]
CALLERS = 4000
TABLES = [schema.contacts, schema.identities, schema.conversations, schema.messages, schema.message_refs]


def messages(count: int, seed: int = 7) -> list[InboundMessage]:
    """A realistic mix: 60% e-mail (a third of them replies), 25% SMS, 15% chat."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    out: list[InboundMessage] = []
    emails: list[str] = []
    for i in range(count):
        at = start + timedelta(seconds=i * 7)
        body = " ".join(rng.choice(ZH if rng.random() < 0.4 else EN) for _ in range(rng.randint(2, 12)))
        roll = rng.random()
        if roll < 0.6:
            ext = f"<{uuid.UUID(int=rng.getrandbits(128))}@mail.example.com>"
            refs = (rng.choice(emails),) if emails and rng.random() < 0.33 else ()
            out.append(
                InboundMessage(
                    ChannelKind.EMAIL,
                    "support",
                    ext,
                    Identity(IdentityKind.EMAIL, f"customer{rng.randrange(3000)}@example.com"),
                    body,
                    at,
                    subject=("Re: " if refs else "") + f"Order {rng.randrange(10**5)}",
                    reply_refs=refs,
                    own_refs=(ext,),
                    sender_name="Customer",
                )
            )
            emails.append(ext)
        elif roll < 0.85:
            out.append(
                InboundMessage(
                    ChannelKind.SMS,
                    "sms-main",
                    f"SM{uuid.UUID(int=rng.getrandbits(128)).hex}",
                    Identity(IdentityKind.PHONE, f"+1415555{rng.randrange(10**4):04d}"),
                    body[:600],
                    at,
                )
            )
        else:
            out.append(
                InboundMessage(
                    ChannelKind.CHAT,
                    "webchat",
                    f"chat-{i}",
                    Identity(IdentityKind.CHAT, f"visitor-{rng.randrange(1500)}"),
                    body[:500],
                    at,
                )
            )
    return out


async def pipeline_rate(db: Database, batch: list[InboundMessage], blobs: Path) -> float:
    """Messages per second through `ingest()` from concurrent callers."""
    await upgrade(db)
    inbox = Inbox(db, BlobStore(blobs))
    inbox.start()
    started = time.perf_counter()
    pending = iter(batch)

    async def caller() -> None:
        for message in pending:
            await inbox.ingest(message)

    await asyncio.gather(*(caller() for _ in range(CALLERS)))
    elapsed = time.perf_counter() - started
    await inbox.stop()
    return len(batch) / elapsed


async def dump_rows(db: Database) -> dict[str, list[dict[str, Any]]]:
    """Every row the pipeline wrote, table by table, plus the search index."""
    out: dict[str, list[dict[str, Any]]] = {}
    async with db.read() as conn:
        for table in TABLES:
            out[table.name] = [dict(r) for r in (await conn.execute(select(table))).mappings()]
        if db.is_sqlite:
            rows = await conn.execute(text("SELECT rowid AS id, terms FROM message_fts"))
        else:
            rows = await conn.execute(text("SELECT message_id AS id, terms::text AS terms FROM message_fts"))
        out["message_fts"] = [dict(r) for r in rows.mappings()]
    return out


async def raw_rate(db: Database, rows: dict[str, list[dict[str, Any]]], count: int) -> float:
    """Messages per second for one bulk INSERT transaction of the same rows."""
    await upgrade(db)
    fts = (
        text("INSERT INTO message_fts(rowid, terms) VALUES (:id, :terms)")
        if db.is_sqlite
        else text("INSERT INTO message_fts(message_id, terms) VALUES (:id, CAST(:terms AS tsvector))")
    )
    started = time.perf_counter()
    async with db.write() as conn:
        for table in TABLES:
            if rows[table.name]:
                await conn.execute(insert(table), rows[table.name])
        await conn.execute(fts, rows["message_fts"])
    return count / (time.perf_counter() - started)


async def on_sqlite(batch: list[InboundMessage]) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        first = Database(f"sqlite+aiosqlite:///{tmp}/pipeline.db")
        rate = await pipeline_rate(first, batch, Path(tmp) / "blobs")
        rows = await dump_rows(first)
        await first.dispose()
        second = Database(f"sqlite+aiosqlite:///{tmp}/raw.db")
        raw = await raw_rate(second, rows, len(batch))
        await second.dispose()
    return rate, raw


async def on_postgres(batch: list[InboundMessage], dsn: str) -> tuple[float, float]:
    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    schemas = [f"bench_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    conn = await asyncpg.connect(dsn)
    try:
        for name in schemas:
            await conn.execute(f"CREATE SCHEMA {name}")
        with tempfile.TemporaryDirectory() as tmp:
            first = Database(url, schema=schemas[0])
            rate = await pipeline_rate(first, batch, Path(tmp))
            rows = await dump_rows(first)
            await first.dispose()
        second = Database(url, schema=schemas[1])
        raw = await raw_rate(second, rows, len(batch))
        await second.dispose()
    finally:
        for name in schemas:
            await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        await conn.close()
    return rate, raw


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--skip-pg", action="store_true")
    args = parser.parse_args()
    batch = messages(args.messages)
    results = [("SQLite", *await on_sqlite(batch))]
    if not args.skip_pg:
        results.append(("PostgreSQL", *await on_postgres(batch, args.pg)))
    print(f"ingest of {args.messages} messages (contact resolution, threading, search index, store)")
    print(f"{'database':<12} {'ingest() msg/s':>15} {'raw INSERT msg/s':>17} {'ratio':>7}")
    for name, rate, raw in results:
        print(f"{name:<12} {rate:>15,.0f} {raw:>17,.0f} {rate / raw:>7.2f}")


if __name__ == "__main__":
    asyncio.run(main())
