"""One pending timer per conversation and kind, moved as the conversation changes."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.store import schema
from hub.store.upsert import insert_ignore

Wanted = tuple[datetime, Mapping[str, Any]]


def key_of(kind: str, conversation_id: int, at: datetime) -> str:
    """A wake-up's timer key: it carries the due time, so a moved wake-up is a new timer."""
    return f"{kind}:{conversation_id}:{at.isoformat()}"


async def keep(
    conn: AsyncConnection,
    ids: Collection[int],
    wanted: Mapping[str, Mapping[int, Wanted]],
    now: datetime,
) -> None:
    """Make the conversations' pending timers of each kind exactly the wanted ones, writing only changes.

    An unchanged wake-up is left alone, a moved one replaces the old, and one that comes
    back to a time it had before is revived rather than lost to the unique key.
    """
    t = schema.timers
    rows = await conn.execute(
        select(t.c.key).where(
            t.c.conversation_id.in_(ids), t.c.kind.in_(list(wanted)), t.c.status == "pending"
        )
    )
    pending = {r[0] for r in rows}
    new: list[dict[str, Any]] = []
    keep_keys: set[str] = set()
    for kind, by_conversation in wanted.items():
        for cid, (at, payload) in by_conversation.items():
            key = key_of(kind, cid, at)
            keep_keys.add(key)
            if key not in pending:
                new.append(
                    {"kind": kind, "key": key, "due_at": at, "conversation_id": cid, "payload": dict(payload),
                     "status": "pending", "attempts": 0, "created_at": now}
                )  # fmt: skip
    stale = list(pending - keep_keys)
    if stale:
        await conn.execute(
            update(t).where(t.c.key.in_(stale), t.c.status == "pending").values(status="cancelled")
        )
    if new:
        await conn.execute(insert_ignore(conn, t), new)
        await conn.execute(
            update(t)
            .where(and_(t.c.key.in_([r["key"] for r in new]), t.c.status == "cancelled"))
            .values(status="pending", attempts=0, claimed_by=None, claimed_until=None)
        )
