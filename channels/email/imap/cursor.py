"""Where a mailbox's sync stands: (account, mailbox) -> UIDVALIDITY, last UID, HIGHESTMODSEQ.

`save` takes the ingest transaction's connection, so the cursor moves in the same commit
as the messages it covers: after a crash the sync re-fetches and deduplicates, never skips.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.store import Database, schema
from hub.store.upsert import insert_ignore


@dataclass(frozen=True, slots=True)
class Cursor:
    """The last UID stored from a mailbox under one UIDVALIDITY, and the HIGHESTMODSEQ seen."""

    uidvalidity: int
    last_uid: int
    highest_modseq: int | None = None


async def load(db: Database, account: str, mailbox: str) -> Cursor | None:
    """The stored cursor of a mailbox, or None before its first sync."""
    c = schema.imap_cursors
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(c.c.uidvalidity, c.c.last_uid, c.c.highest_modseq).where(
                    c.c.channel_account == account, c.c.mailbox == mailbox
                )
            )
        ).first()
    return None if row is None else Cursor(row.uidvalidity, row.last_uid, row.highest_modseq)


async def save(conn: AsyncConnection, account: str, mailbox: str, cursor: Cursor, now: datetime) -> None:
    """Write the cursor inside the caller's transaction (insert or replace)."""
    c = schema.imap_cursors
    values = {
        "uidvalidity": cursor.uidvalidity,
        "last_uid": cursor.last_uid,
        "highest_modseq": cursor.highest_modseq,
        "updated_at": now,
    }
    await conn.execute(insert_ignore(conn, c), {"channel_account": account, "mailbox": mailbox, **values})
    await conn.execute(
        update(c).where(c.c.channel_account == account, c.c.mailbox == mailbox).values(**values)
    )


async def store(db: Database, account: str, mailbox: str, cursor: Cursor, now: datetime) -> None:
    """Write the cursor in a transaction of its own (for steps that store no message)."""
    async with db.write() as conn:
        await save(conn, account, mailbox, cursor, now)
