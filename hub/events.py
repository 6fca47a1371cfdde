"""In-process publication of what happened, for websockets, rules and the SLA clock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from hub.store import bulk, schema

log = logging.getLogger(__name__)

QUEUE_LIMIT = 1000

Listener = Callable[[list[dict[str, Any]]], None]


class EventBus:
    """Fan-out of event dicts to subscribers' queues; a slow subscriber loses old events."""

    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._listeners: list[Listener] = []

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        """A new queue that receives every event published from now on."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_LIMIT)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Stop delivering to a queue."""
        self._subscribers.discard(queue)

    def listen(self, listener: Listener) -> None:
        """Call `listener` with every batch of events as it is published (it must not block or fail)."""
        self._listeners.append(listener)

    def publish(self, events: Iterable[dict[str, Any]]) -> None:
        """Hand events to the listeners at once, then to every subscriber without waiting."""
        events = list(events)
        if not events:
            return
        for listener in self._listeners:
            listener(events)
        for event in events:
            for queue in self._subscribers:
                if queue.full():
                    queue.get_nowait()
                    log.warning("event subscriber is slow; dropped its oldest event")
                queue.put_nowait(event)


def event_row(
    kind: str,
    at: datetime,
    conversation_id: int | None = None,
    agent_id: int | None = None,
    **data: Any,
) -> dict[str, Any]:
    """A row for the audit `events` table (also the shape published on the bus)."""
    return {"kind": kind, "at": at, "conversation_id": conversation_id, "agent_id": agent_id, "data": data}


async def record(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Write audit events in the caller's transaction."""
    await bulk.insert(conn, schema.events, rows)
