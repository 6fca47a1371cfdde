"""One timer row per conversation and kind, re-armed in place as the conversation changes."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.store import schema
from hub.store.upsert import insert_ignore

Wanted = tuple[datetime, Mapping[str, Any]]


def key_of(kind: str, conversation_id: int) -> str:
    """The timer key of a conversation's wake-up of one kind."""
    return f"{kind}:{conversation_id}"


async def keep(
    conn: AsyncConnection,
    ids: Collection[int],
    wanted: Mapping[str, Mapping[int, Wanted]],
    now: datetime,
) -> None:
    """Make each conversation's timer of each kind due when wanted (or cancelled), writing only changes.

    The row is reused: a fired or cancelled wake-up is armed again for a new time (a fired
    one is left alone while the wanted time is the one it fired for), so the timers table
    holds one row per conversation and kind however often deadlines move. A scheduler that
    claimed the old time no longer owns the row and leaves it alone.
    """
    t = schema.timers
    rows = await conn.execute(
        select(t.c.id, t.c.kind, t.c.conversation_id, t.c.status, t.c.due_at, t.c.payload).where(
            t.c.conversation_id.in_(ids), t.c.kind.in_(list(wanted))
        )
    )
    found = {(r.kind, r.conversation_id): r for r in rows}
    new: list[dict[str, Any]] = []
    rearm: list[dict[str, Any]] = []
    cancel: list[int] = []
    for kind, by_conversation in wanted.items():
        for cid in ids:
            row = found.get((kind, cid))
            want = by_conversation.get(cid)
            if want is None:
                if row is not None and row.status == "pending":
                    cancel.append(row.id)
                continue
            at, payload = want
            if row is None:
                new.append(
                    {"kind": kind, "key": key_of(kind, cid), "due_at": at, "conversation_id": cid,
                     "payload": dict(payload), "status": "pending", "attempts": 0, "created_at": now}
                )  # fmt: skip
            elif row.status == "cancelled" or row.due_at != at or row.payload != dict(payload):
                rearm.append({"row_id": row.id, "due": at, "body": dict(payload)})
    if cancel:
        await conn.execute(update(t).where(t.c.id.in_(cancel)).values(status="cancelled"))
    if rearm:
        await conn.execute(
            update(t)
            .where(t.c.id == bindparam("row_id"))
            .values(
                due_at=bindparam("due"),
                payload=bindparam("body"),
                status="pending",
                attempts=0,
                claimed_by=None,
                claimed_until=None,
                fired_at=None,
                last_error=None,
            ),
            rearm,
        )
    if new:
        await conn.execute(insert_ignore(conn, t), new)
