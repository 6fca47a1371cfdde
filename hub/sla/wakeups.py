"""One pending timer per conversation and kind, moved as the conversation changes."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import and_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.store import schema
from hub.store.upsert import insert_ignore

Wanted = tuple[datetime, Mapping[str, Any]]


async def keep(
    conn: AsyncConnection,
    kind: str,
    ids: Collection[int],
    wanted: Mapping[int, Wanted],
    now: datetime,
) -> None:
    """Make each conversation's pending `kind` timer the wanted one (or none), without losing a fired one.

    Keys carry the due time, so an unchanged wake-up is left alone, a moved one replaces
    the old, and one that comes back to an earlier time is revived rather than lost.
    """
    t = schema.timers
    keys = {cid: f"{kind}:{cid}:{at.isoformat()}" for cid, (at, _) in wanted.items()}
    stale = update(t).where(t.c.kind == kind, t.c.status == "pending", t.c.conversation_id.in_(ids))
    if keys:
        stale = stale.where(t.c.key.not_in(list(keys.values())))
    await conn.execute(stale.values(status="cancelled"))
    if not keys:
        return
    rows = [
        {"kind": kind, "key": keys[cid], "due_at": at, "conversation_id": cid, "payload": dict(payload),
         "status": "pending", "attempts": 0, "created_at": now}
        for cid, (at, payload) in wanted.items()
    ]  # fmt: skip
    await conn.execute(insert_ignore(conn, t), rows)
    await conn.execute(
        update(t)
        .where(and_(t.c.key.in_(list(keys.values())), t.c.status == "cancelled"))
        .values(status="pending", attempts=0, claimed_by=None, claimed_until=None)
    )
