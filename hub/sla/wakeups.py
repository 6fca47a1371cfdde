"""One timer row per conversation and kind, re-armed in place as the conversation changes."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.scheduler import timer_row
from hub.store import bulk, schema

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
    encode, payload_of = bulk.stamp_writer(conn), bulk.json_reader(conn)
    found = {
        (kind, cid): (row_id, status, due_at, payload)
        for row_id, kind, cid, status, due_at, payload in await bulk.fetch(
            conn, _found_query, ids=bulk.listed(conn, list(ids)), kinds=bulk.listed(conn, list(wanted))
        )
    }
    new: list[dict[str, Any]] = []
    rearm: list[dict[str, Any]] = []
    cancel: list[tuple[int, str]] = []
    for kind, by_conversation in wanted.items():
        for cid in ids:
            row = found.get((kind, cid))
            want = by_conversation.get(cid)
            if want is None:
                if row is not None and row[1] == "pending":
                    cancel.append((row[0], "cancelled"))
                continue
            at, payload = want
            if row is None:
                new.append(
                    timer_row(kind, at, key_of(kind, cid), conversation_id=cid, payload=payload, now=now)
                )
            elif row[1] == "cancelled" or row[2] != encode(at) or payload_of(row[3]) != dict(payload):
                rearm.append(
                    {"id": row[0], "due_at": at, "payload": dict(payload), "status": "pending", "attempts": 0,
                     "claimed_by": None, "claimed_until": None, "fired_at": None, "last_error": None}
                )  # fmt: skip
    t = schema.timers
    await bulk.update(conn, t, ["id"], cancel, columns=("id", "status"))
    await bulk.update(conn, t, ["id"], rearm)
    await bulk.insert(conn, t, new, on_conflict=[], mostly_new=True)


@bulk.statement
def _found_query(pg: bool) -> Select[Any]:
    t = schema.timers
    return select(t.c.id, t.c.kind, t.c.conversation_id, t.c.status, t.c.due_at, t.c.payload).where(
        bulk.in_list(pg, t.c.conversation_id), bulk.in_list(pg, t.c.kind, "kinds")
    )
