"""Storing arriving calls in batches, after the caller already has their answer.

The incoming-call webhook answers from reads alone; the call itself (an inbound message on
the caller's conversation, and its `calls` row) is written here, many calls per transaction.
The webhook's form stays on the message's meta (`webhook`) rather than in a raw blob file.
Leg events that reached the store before their call (another process, a crash) are adopted
when the call is written. `wait` lets later work on a call wait until it is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, Update, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.aio import cancel_and_wait
from hub.calls import legs
from hub.events import EventBus, event_row, record
from hub.inbox import Inbox
from hub.ingest import TRANSIENT
from hub.models import CallOutcome, ChannelKind, Direction, InboundMessage, IngestResult
from hub.sla.rings import AnswerTarget
from hub.store import bulk, schema

log = logging.getLogger(__name__)

MAX_BATCH = {"sqlite": 200, "postgresql": 500}
"""Most calls per transaction. Calls of one caller in a batch touch their conversation once, so larger
batches update fewer conversation rows (and their many index entries) per call; SQLite holds its one
write lock for the whole batch, so there batches stay shorter."""
MAX_QUEUE = 10_000
REMEMBERED = 10_000
"""Calls known to be stored, so that their status callbacks need not look."""
ATTEMPTS = 3
CALL_KEY = ("channel_account", "external_id")


@dataclass(slots=True)
class Arrival:
    """A call to store, where the caller went, and who waits for it."""

    call: Any
    route: str
    data: dict[str, Any]
    done: asyncio.Future[int] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class CallRecorder:
    """One background task that writes arriving calls in batches."""

    def __init__(self, inbox: Inbox, bus: EventBus, target: Callable[[str], AnswerTarget]) -> None:
        self.inbox = inbox
        self.bus = bus
        self.target = target
        self._queue: asyncio.Queue[Arrival] | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending: dict[tuple[str, str], Arrival] = {}
        self._stored: dict[tuple[str, str], None] = {}

    def submit(self, call: Any, route: str, **data: Any) -> asyncio.Future[int]:
        """Queue a call for storing; the future gives its id. Raise asyncio.QueueFull under overload."""
        if self._queue is None:
            self._queue = asyncio.Queue(MAX_QUEUE)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="call-recorder")
        arrival = Arrival(call, route, data)
        self._queue.put_nowait(arrival)
        self._pending[(call.account, call.call_sid)] = arrival
        return arrival.done

    async def store_now(self, call: Any, route: str, **data: Any) -> int:
        """Store one call at once, outside the batches; return its id."""
        arrival = Arrival(call, route, data)
        await self._store([arrival])
        return await arrival.done

    def is_stored(self, account: str, call_sid: str) -> bool:
        """Whether this process stored the call or saw it stored lately."""
        return (account, call_sid) in self._stored

    def remember(self, account: str, call_sid: str) -> None:
        """Note that a call is stored (the oldest notes go first)."""
        if len(self._stored) >= REMEMBERED:
            del self._stored[next(iter(self._stored))]
        self._stored[(account, call_sid)] = None

    async def wait(self, account: str, call_sid: str) -> None:
        """Return once the call is stored, if it is waiting to be."""
        arrival = self._pending.get((account, call_sid))
        if arrival is not None:
            await asyncio.shield(arrival.done)

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Store what is queued (for a while), then stop the task."""
        queue = self._queue
        if queue is not None and self._task is not None and not self._task.done():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_seconds):
                    await queue.join()
            if queue.qsize():
                log.error("stopping with %d calls not stored", queue.qsize())
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        most = MAX_BATCH[self.inbox.db.dialect]
        while True:
            batch = [await queue.get()]
            while len(batch) < most and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await self._store_all(batch)
            finally:
                for arrival in batch:
                    self._pending.pop((arrival.call.account, arrival.call.call_sid), None)
                    queue.task_done()

    async def _store_all(self, batch: list[Arrival]) -> None:
        """Store a batch; if it fails, store its calls one by one so one bad call loses no other."""
        try:
            await self._store(batch)
        except Exception:
            if len(batch) == 1:
                log.exception("call %s could not be stored", batch[0].call.call_sid)
                fail(batch[0])
                return
            log.warning("a batch of %d calls failed; storing them one by one", len(batch), exc_info=True)
            for arrival in batch:
                try:
                    await self._store([arrival])
                except Exception:
                    log.exception("call %s could not be stored", arrival.call.call_sid)
                    fail(arrival)

    async def _store(self, batch: list[Arrival]) -> None:
        messages = [_message(a.call) for a in batch]
        stored: list[tuple[int, list[dict[str, Any]]]] = []

        async def calls(conn: AsyncConnection, results: list[IngestResult]) -> None:
            stored.clear()
            teams = await _team_ids(conn, {a.call.team for a in batch})
            ids, adopted, events = await _insert_calls(conn, batch, results, teams)
            for arrival, call_id in zip(batch, ids, strict=True):
                if call_id in adopted:
                    adopted.discard(call_id)
                    call = (
                        await conn.execute(select(schema.calls).where(schema.calls.c.id == call_id))
                    ).one()
                    now = self.inbox.clock()
                    await legs.recompute(conn, call, self.target(arrival.call.line), now, None)
            stored.extend(zip(ids, events, strict=True))

        for attempt in range(ATTEMPTS):
            try:
                await self.inbox.ingest_many(messages, in_transaction=calls)
                break
            except TRANSIENT:
                if attempt == ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.2 * 2**attempt)
        for arrival, (call_id, events) in zip(batch, stored, strict=True):
            self.remember(arrival.call.account, arrival.call.call_sid)
            self.bus.publish(events)
            if not arrival.done.done():
                arrival.done.set_result(call_id)


def fail(arrival: Arrival) -> None:
    """Fail whoever waits for a call that could not be stored."""
    if not arrival.done.done():
        arrival.done.set_exception(RuntimeError(f"call {arrival.call.call_sid} could not be stored"))
        arrival.done.exception()


def _message(call: Any) -> InboundMessage:
    return InboundMessage(
        channel=ChannelKind.VOICE,
        channel_account=call.account,
        external_id=call.call_sid,
        sender=call.caller,
        text=f"Phone call from {call.caller.address} to {call.line}",
        received_at=call.arrived_at,
        language=call.language,
        meta={"line": call.line, "call": True, **_webhook(call.raw)},
    )


def _webhook(raw: bytes | None) -> dict[str, str]:
    """The webhook's form, kept on the message row (a raw blob file per call cost more than the rest)."""
    return {"webhook": raw.decode(errors="replace")} if raw else {}


@bulk.statement
def _teams_query(pg: bool) -> Select[Any]:
    t = schema.teams
    return select(t.c.name, t.c.id).where(bulk.in_list(pg, t.c.name, "names"))


@bulk.statement
def _calls_query(pg: bool) -> Select[Any]:
    c = schema.calls
    return select(c.c.external_id, c.c.id).where(
        c.c.channel_account == bindparam("account"), bulk.in_list(pg, c.c.external_id, "sids")
    )


@bulk.statement
def _team_update(pg: bool) -> Update:
    conv = schema.conversations
    return (
        update(conv)
        .where(bulk.in_list(pg, conv.c.id), conv.c.team_id.is_(None))
        .values(team_id=bindparam("team"))
    )


async def _team_ids(conn: AsyncConnection, names: set[str]) -> dict[str, int]:
    return dict(await bulk.fetch(conn, _teams_query, names=bulk.listed(conn, sorted(names))))


async def _insert_calls(
    conn: AsyncConnection, batch: list[Arrival], results: list[IngestResult], teams: dict[str, int]
) -> tuple[list[int], set[int], list[list[dict[str, Any]]]]:
    """Insert a batch's call rows once each; return their ids, those adopting earlier legs, their events."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for arrival, result in zip(batch, results, strict=True):
        call = arrival.call
        rows.setdefault(
            (call.account, call.call_sid),
            {
                "conversation_id": result.conversation_id, "contact_id": result.contact_id,
                "channel_account": call.account, "external_id": call.call_sid,
                "direction": Direction.INBOUND.value, "started_at": call.arrived_at,
                "outcome": CallOutcome.RINGING.value, "line": call.line, "team_id": teams.get(call.team),
                "route": arrival.route,
            },
        )  # fmt: skip
    by_key = await _insert_rows(conn, rows)
    adopted: set[int] = set()
    for account, sids in _by_account(rows).items():
        adopted |= await legs.adopt(conn, account, sids, by_key)
    by_team: dict[int, set[int]] = {}
    for row in rows.values():
        if row["team_id"] is not None:
            by_team.setdefault(row["team_id"], set()).add(row["conversation_id"])
    for team_id, conversations in by_team.items():
        await bulk.execute(conn, _team_update, ids=bulk.listed(conn, sorted(conversations)), team=team_id)
    events: list[list[dict[str, Any]]] = []
    for arrival, result in zip(batch, results, strict=True):
        own: list[dict[str, Any]] = []
        if arrival.route != "agents" and not result.duplicate:
            own.append(
                event_row(
                    "call.fallback", arrival.call.arrived_at, result.conversation_id, None,
                    to=arrival.route, **arrival.data,
                )
            )  # fmt: skip
        events.append(own)
    await record(conn, [e for own in events for e in own])
    ids = [by_key[(a.call.account, a.call.call_sid)] for a in batch]
    return ids, adopted, events


async def _insert_rows(
    conn: AsyncConnection, rows: dict[tuple[str, str], dict[str, Any]]
) -> dict[tuple[str, str], int]:
    """Insert the call rows not stored yet; return every row's id by (account, CallSid).

    PostgreSQL hands back the new rows' ids as it inserts them; only calls stored before are
    looked up (a lookup by many CallSids can scan the account's calls while the table's
    statistics are stale).
    """
    c = schema.calls
    by_key: dict[tuple[str, str], int] = {}
    if bulk.is_pg(conn):
        columns = tuple(next(iter(rows.values())))
        values = [tuple(row.values()) for row in rows.values()]
        inserted = await bulk.insert_new(
            conn, c, values, columns=columns, keys=CALL_KEY, returning=(*CALL_KEY, "id")
        )
        by_key.update({(account, sid): call_id for account, sid, call_id in inserted})
    else:
        await bulk.insert(conn, c, list(rows.values()), on_conflict=[])
    for account, sids in _by_account([key for key in rows if key not in by_key]).items():
        found = await bulk.fetch(conn, _calls_query, account=account, sids=bulk.listed(conn, sids))
        by_key.update({(account, sid): call_id for sid, call_id in found})
    return by_key


def _by_account(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for account, sid in keys:
        found.setdefault(account, []).append(sid)
    return found
