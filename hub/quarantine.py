"""Quarantine: inbound data the hub could not store as a message, kept with its bytes and a reason."""

from __future__ import annotations

import base64
import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from hub import records
from hub.errors import NotFound
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


async def resolve(db: Database, quarantine_id: int, now: datetime) -> None:
    """Mark an item as dealt with (e.g. re-processed into the inbox); raise NotFound."""
    q = schema.quarantine
    async with db.write() as conn:
        done = await conn.execute(update(q).where(q.c.id == quarantine_id).values(resolved_at=now))
    if done.rowcount == 0:
        raise NotFound(f"no quarantine entry {quarantine_id}")


async def entries(db: Database, *, unresolved_only: bool = True, limit: int = 100) -> list[QuarantineEntry]:
    """Quarantined items, newest first."""
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
