"""Handing events to the triggers: a `rules.event` timer per event, in the event's own transaction.

Whatever records an event a trigger could react to calls `enqueue` in the same transaction.
The scheduler then fires each timer once (`hub.rules.engine` evaluates the triggers and
applies their actions in the transaction that marks the timer fired), so every event is
seen by the triggers exactly once, with several hub processes and across crashes. A
conversation's events queued together (an SLA recomputation records several) are one
chain: one pending timer for the first, which carries the others, each written when the
one before it fires (see `hub.scheduler.chain_row`).

Once a hub has told the queue which kinds its rule set can react to (`listen`), events of
other kinds are not queued for that store: the shipped rules, for instance, have no trigger
on `sla.*` events, so an SLA recomputation queues nothing. Until then every kind in `QUEUED`
is. Hub processes sharing a store load the same rule files; one that reloads them a moment
before another may, for that moment, queue (or leave out) a kind the other's rules differ on.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.scheduler import chain_row, timer_row
from hub.store import Database, bulk, schema

RULE_EVENT = "rules.event"
RULE_TIME = "rules.time"
QUEUED = frozenset(
    {
        "message.received",
        "conversation.status_changed",
        "conversation.reopened",
        "conversation.assigned",
        "message.queued",
        "sla.warning",
        "sla.breached",
        "call.missed",
        "call.waiting_long",
        "voicemail.received",
        "fax.received",
    }
)
"""Event kinds that reach the rule engine (`conversation.created` travels with its first message)."""
MAX_DEPTH = 5
"""Events caused by triggers' actions are queued again up to this depth, so triggers cannot loop."""


_listening: WeakKeyDictionary[Engine, frozenset[str]] = WeakKeyDictionary()


def listen(db: Database, kinds: frozenset[str]) -> None:
    """From now on queue, for this store, only events of these kinds (those its triggers react to)."""
    _listening[db.engine.sync_engine] = QUEUED & kinds


def event_key(event: dict[str, Any]) -> str:
    """The timer key, also the event's id in audit records: stable for a received message."""
    if _stable(event):
        return f"rules:event:message:{event['data']['message_id']}"
    return next(unique_keys())


def unique_keys() -> Iterator[str]:
    """New event keys: the time, a random part, and a count, so keys made together sort together."""
    stem = _stem()
    return (f"{stem}{n:06x}" for n in itertools.count())


def _stem() -> str:
    return f"rules:event:{time.time_ns():016x}{os.urandom(8).hex()}"


def _stable(event: dict[str, Any]) -> bool:
    """Whether the event's key is derived from what it is about, so queueing it twice is harmless."""
    return event["kind"] == "message.received" and (event.get("data") or {}).get("message_id") is not None


async def enqueue(
    conn: AsyncConnection,
    events: Sequence[dict[str, Any]],
    now: datetime,
    *,
    new_conversations: frozenset[int] = frozenset(),
    depth: int = 0,
) -> int:
    """Queue the events triggers may react to; `new_conversations` were created by these messages."""
    if depth > MAX_DEPTH:
        return 0
    wanted = _listening.get(conn.sync_engine, QUEUED)
    rows = []
    chains: dict[int, list[tuple[datetime, str, dict[str, Any]]]] = {}
    first_message: set[int] = set()
    keys = unique_keys()
    for event in events:
        kind, cid = event["kind"], event.get("conversation_id")
        if kind not in wanted or cid is None:
            continue
        data = {k: v for k, v in (event.get("data") or {}).items() if v is None or isinstance(v, PLAIN)}
        if kind == "message.received" and cid in new_conversations and cid not in first_message:
            first_message.add(cid)
            data["new_conversation"] = True
        payload = {"event": kind, "data": data, "depth": depth}
        if _stable(event):
            rows.append(
                timer_row(
                    RULE_EVENT, event["at"], event_key(event), conversation_id=cid, payload=payload, now=now
                )
            )
        else:
            chains.setdefault(cid, []).append((event["at"], next(keys), payload))
    queued = len(rows) + sum(len(links) for links in chains.values())
    heads = []
    for cid, links in chains.items():
        links.sort(key=_due)
        heads.append(chain_row(RULE_EVENT, links, conversation_id=cid, now=now))
    await bulk.insert(conn, schema.timers, rows, on_conflict=[])
    await bulk.insert(conn, schema.timers, heads)
    return queued


def _due(link: tuple[datetime, str, dict[str, Any]]) -> datetime:
    return link[0]


PLAIN = (str, int, float, bool, list, dict)
