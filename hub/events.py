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


Listener = Callable[[dict[str, Any]], None]
"""Called with each event as it is published; must be quick and must not wait."""


class EventBus:
    """Fan-out of event dicts to listeners and to subscribers' queues; a slow subscriber loses old events."""

    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._listeners: list[Listener] = []
        self._overflowed: set[asyncio.Queue[dict[str, Any]]] = set()

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        """A new queue that receives every event published from now on."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_LIMIT)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Stop delivering to a queue."""
        self._subscribers.discard(queue)
        self._overflowed.discard(queue)

    def listen(self, listener: Listener) -> None:
        """Call `listener` with every event published from now on, as it is published (nothing is lost)."""
        self._listeners.append(listener)

    def unlisten(self, listener: Listener) -> None:
        """Stop calling a listener."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def overflowed(self, queue: asyncio.Queue[dict[str, Any]]) -> bool:
        """Whether the queue lost events since the last time this was asked."""
        if queue in self._overflowed:
            self._overflowed.discard(queue)
            return True
        return False

    def publish(self, events: Iterable[dict[str, Any]]) -> None:
        """Deliver events to every listener and subscriber without waiting."""
        for event in events:
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:
                    log.exception("an event listener failed on %s", event.get("kind"))
            for queue in self._subscribers:
                if queue.full():
                    queue.get_nowait()
                    if queue not in self._overflowed:
                        self._overflowed.add(queue)
                        log.warning("an event subscriber fell behind; its oldest events are dropped")
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
