"""Quarantine: inbound data the hub could not store as a message, kept with its bytes and a reason.

A supervisor resolves an item either by having its channel read it again (`Reprocessor`,
e.g. after a parser fix: it is stored exactly once, and the item names the message), or by
dismissing it with a reason. Both are audited; an item is resolved once.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import records
from hub.errors import Conflict
from hub.events import event_row
from hub.events import record as record_events
from hub.models import InboundMessage
from hub.store import BlobStore, Database, schema
from hub.store.rows import all_of, by_id


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    """One quarantined item, as supervisors see it."""

    id: int
    channel_account: str
    external_id: str | None
    reason: str
    raw_sha256: str | None
    size: int | None
    created_at: datetime
    resolved_at: datetime | None
    resolution: str | None = None
    resolved_by: int | None = None
    message_id: int | None = None


@dataclass(frozen=True, slots=True)
class Reprocessed:
    """What re-processing an item did: the message it became (None for a delivery report
    recorded on our outgoing mail), whether that message was already stored, and the item."""

    entry: QuarantineEntry
    message_id: int | None
    conversation_id: int | None
    duplicate: bool


@runtime_checkable
class Reprocessor(Protocol):
    """A channel that can read its quarantined items again."""

    async def reprocess(self, quarantine_id: int, *, agent_id: int | None = None) -> Reprocessed:
        """Read the item again and store it exactly once, resolving it in the same transaction;
        raise ChannelError saying why if it still cannot be read (it stays in quarantine),
        Conflict if it is already resolved."""


def message_payload(message: InboundMessage) -> bytes:
    """The provider's raw bytes if the channel kept them, else the whole message as JSON."""
    if message.raw is not None:
        return message.raw
    data = dataclasses.asdict(message)
    data.pop("raw")
    data["attachments"] = [{**a, "data": base64.b64encode(a["data"]).decode()} for a in data["attachments"]]
    return json.dumps(data, default=repr, ensure_ascii=False).encode()


async def record(
    db: Database,
    blobs: BlobStore,
    *,
    channel_account: str,
    external_id: str | None,
    reason: str,
    payload: bytes,
    now: datetime,
) -> int:
    """Keep the payload out of line and a row saying why; return the row's id."""
    sha = await blobs.put(payload)
    async with db.write() as conn:
        return int(
            (
                await conn.execute(
                    insert(schema.quarantine).returning(schema.quarantine.c.id),
                    {
                        "channel_account": channel_account,
                        "external_id": external_id[:998] if external_id else None,
                        "reason": reason[:4000],
                        "raw_sha256": sha,
                        "size": len(payload),
                        "created_at": now,
                    },
                )
            ).scalar_one()
        )


async def settle(
    conn: AsyncConnection,
    quarantine_id: int,
    now: datetime,
    *,
    resolution: str,
    agent_id: int | None = None,
    message_id: int | None = None,
    conversation_id: int | None = None,
    kind: str = "quarantine.reprocessed",
) -> dict[str, Any]:
    """Resolve an unresolved item and audit it as `kind`, in the caller's transaction; return the
    audit event. Raise NotFound, or Conflict if it was resolved already (e.g. concurrently)."""
    q = schema.quarantine
    done = await conn.execute(
        update(q)
        .where(q.c.id == quarantine_id, q.c.resolved_at.is_(None))
        .values(resolved_at=now, resolution=resolution[:4000], resolved_by=agent_id, message_id=message_id)
    )
    if done.rowcount == 0:
        row = await by_id(conn, q, quarantine_id, "quarantine entry")
        raise Conflict(
            f"quarantine entry {quarantine_id} is already resolved: {row['resolution'] or 'resolved'}"
        )
    event = event_row(
        kind,
        now,
        conversation_id,
        agent_id,
        quarantine_id=quarantine_id,
        resolution=resolution,
        message_id=message_id,
    )
    await record_events(conn, [event])
    return event


async def dismiss(
    db: Database, quarantine_id: int, reason: str, now: datetime, agent_id: int | None = None
) -> QuarantineEntry:
    """Resolve an item without storing it, for the reason given; raise NotFound or Conflict."""
    async with db.write() as conn:
        await settle(
            conn,
            quarantine_id,
            now,
            resolution=f"dismissed: {reason}",
            agent_id=agent_id,
            kind="quarantine.dismissed",
        )
    return await entry(db, quarantine_id)


async def holds(db: Database, channel_account: str, external_id: str) -> bool:
    """Whether the quarantine already holds this item of this account (redelivered bad input is kept once)."""
    q = schema.quarantine
    async with db.read() as conn:
        row = await conn.execute(
            select(q.c.id)
            .where(q.c.channel_account == channel_account, q.c.external_id == external_id)
            .limit(1)
        )
        return row.first() is not None


async def entries(db: Database, *, unresolved_only: bool = True, limit: int = 100) -> list[QuarantineEntry]:
    """Quarantined items, newest first (only those still to deal with, unless asked)."""
    q = schema.quarantine
    stmt = select(q).order_by(q.c.id.desc()).limit(limit)
    if unresolved_only:
        stmt = stmt.where(q.c.resolved_at.is_(None))
    async with db.read() as conn:
        rows = await all_of(conn, stmt)
    return [_entry(r) for r in rows]


async def entry(db: Database, quarantine_id: int) -> QuarantineEntry:
    """One quarantined item; raise NotFound."""
    async with db.read() as conn:
        row = await by_id(conn, schema.quarantine, quarantine_id, "quarantine entry")
    return _entry(row)


def _entry(row: Any) -> QuarantineEntry:
    return records.from_row(QuarantineEntry, row)
