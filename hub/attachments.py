"""Reading attachment records: one by id, or all of some messages."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import records
from hub.errors import NotFound
from hub.models import Attachment
from hub.store import Database, schema
from hub.store.rows import all_of, by_id


async def of_messages(conn: AsyncConnection, message_ids: Sequence[int]) -> dict[int, list[Attachment]]:
    """The attachments of these messages, by message id, in the order they were stored."""
    a = schema.attachments
    found: dict[int, list[Attachment]] = {}
    if not message_ids:
        return found
    for row in await all_of(conn, select(a).where(a.c.message_id.in_(message_ids)).order_by(a.c.id)):
        found.setdefault(row["message_id"], []).append(records.attachment(row))
    return found


async def one(db: Database, attachment_id: int) -> Attachment:
    """One attachment's record; raise NotFound."""
    async with db.read() as conn:
        return records.attachment(await by_id(conn, schema.attachments, attachment_id, "attachment"))


async def by_hash(db: Database, sha256: str) -> Attachment:
    """The first attachment stored with this content hash (inline mail images link by it); raise NotFound."""
    a = schema.attachments
    async with db.read() as conn:
        rows = await all_of(conn, select(a).where(a.c.sha256 == sha256).order_by(a.c.id).limit(1))
    if not rows:
        raise NotFound(f"no attachment has the content {sha256}")
    return records.attachment(rows[0])
