"""Events between hub processes on one PostgreSQL database, for every process's websockets.

Each process NOTIFYs its own bus's events on a channel named after the store's schema and
LISTENs on it (events waiting together go in one round trip, packed several to a
payload); what arrives from another process is published on `Services.peer_events`,
a bus only the websockets read, so no service acts twice on one event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from hub.aio import backoff, cancel_and_wait
from hub.events import EventBus
from hub.store import Database

log = logging.getLogger(__name__)

MAX_PAYLOAD = 7900
"""PostgreSQL refuses NOTIFY payloads of 8000 bytes or more."""
ENVELOPE = 64
"""Room for the origin and brackets around a payload's events."""
RECONNECT_MAX_SECONDS = 10.0
CHECK_SECONDS = 2.0
"""How often an idle relay checks that its connection (and so its LISTEN) is still there."""


def channel_name(schema: str | None) -> str:
    """The LISTEN/NOTIFY channel of a store (schemas are validated identifiers)."""
    return f"omnihub_events_{schema or 'public'}"


def dsn(db: Database) -> str:
    """The store's address as asyncpg takes it."""
    return db.url.set(drivername="postgresql").render_as_string(hide_password=False)


class PgEventRelay:
    """Sends this process's events to the others and hands theirs to `peer_events`."""

    def __init__(self, dsn: str, schema: str | None, bus: EventBus, peer_events: EventBus) -> None:
        self.dsn = dsn
        self.channel = channel_name(schema)
        self.bus = bus
        self.peer_events = peer_events
        self.origin = uuid.uuid4().hex
        self._own = self._envelope([])[: -len("[]}")]
        self._conn: Any = None
        self._queue: asyncio.Queue[dict[str, Any]] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect, listen, and begin forwarding this process's events."""
        await self._connect()
        self._queue = self.bus.subscribe()
        self._task = asyncio.create_task(self._forward(self._queue), name="event-relay")

    async def stop(self) -> None:
        """Stop forwarding and close the connection."""
        await cancel_and_wait(self._task)
        self._task = None
        if self._queue is not None:
            self.bus.unsubscribe(self._queue)
            self._queue = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                async with asyncio.timeout(3):
                    await conn.close()
            except (OSError, TimeoutError, asyncpg.PostgresError):
                conn.terminate()

    async def _connect(self) -> None:
        self._conn = await asyncpg.connect(self.dsn, timeout=10)
        await self._conn.add_listener(self.channel, self._received)

    async def _forward(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        failures = 0
        events: list[dict[str, Any]] = []
        while True:
            if not events:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(CHECK_SECONDS):
                        events.append(await queue.get())
            while not queue.empty():
                events.append(queue.get_nowait())
            try:
                if self._conn is None or self._conn.is_closed():
                    await self._connect()
                if events:
                    await self._notify(events)
                    events = []
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
                failures += 1
                if failures == 1:
                    log.warning("lost the event relay's connection (%s); reconnecting", err)
                await self._drop()
                await asyncio.sleep(backoff(failures, 0.2, RECONNECT_MAX_SECONDS))
                continue
            if failures:
                log.info("the event relay is connected again")
            failures = 0

    async def _notify(self, events: list[dict[str, Any]]) -> None:
        """NOTIFY the events in as few payloads as fit, in one round trip."""
        payloads: list[str] = []
        packed: list[str] = []
        size = 0
        for event in events:
            part = json.dumps(event, ensure_ascii=False, default=_jsonable)
            length = len(part.encode())
            if length > MAX_PAYLOAD - ENVELOPE:
                log.warning("event %s is too large to reach other processes", event.get("kind"))
                continue
            if packed and size + length + 1 > MAX_PAYLOAD - ENVELOPE:
                payloads.append(self._envelope(packed))
                packed, size = [], 0
            packed.append(part)
            size += length + 1
        if packed:
            payloads.append(self._envelope(packed))
        if payloads:
            await self._conn.executemany("SELECT pg_notify($1, $2)", [(self.channel, p) for p in payloads])

    def _envelope(self, parts: list[str]) -> str:
        return f'{{"o": "{self.origin}", "es": [{",".join(parts)}]}}'

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()

    def _received(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload.startswith(self._own):
            return
        try:
            data = json.loads(payload)
            if data["o"] == self.origin:
                return
            events = [dict(e) for e in data["es"]]
            for event in events:
                event["at"] = datetime.fromisoformat(event["at"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed event from another process")
            return
        self.peer_events.publish(events)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
