"""Tasks with due times: callbacks (P3, P6), receipt checks (E2), fax confirmations (F3), follow-ups (C3).

A task is created once per key, with a `task.due` timer; when the timer fires and the task
is still open, `task.overdue` is recorded once. Callbacks are placed inside the customer's
daytime hours as well as the team's business hours: their due time is the callback target
counted only over time when both are open.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezones
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import scheduler
from hub.errors import Conflict, NotFound
from hub.events import event_row, record
from hub.sla.calendar import WEEKDAYS, BusinessCalendar
from hub.store import schema
from hub.store.upsert import insert_ignore

DUE = "task.due"
HORIZON = timedelta(days=30)


class TaskKind(enum.StrEnum):
    """What a task asks an agent to do."""

    CALLBACK = "callback"
    RECEIPT_CHECK = "receipt_check"
    FAX_CONFIRM = "fax_confirm"
    FOLLOW_UP = "follow_up"


async def create(
    conn: AsyncConnection,
    *,
    conversation_id: int,
    kind: TaskKind,
    key: str,
    due_at: datetime,
    now: datetime,
    not_before: datetime | None = None,
    assignee_id: int | None = None,
    payload: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Create a task once per key, with its due timer; return the `task.created` event (or none)."""
    t = schema.tasks
    created = await conn.execute(
        insert_ignore(conn, t).returning(t.c.id),
        {
            "conversation_id": conversation_id, "kind": kind.value, "key": key, "status": "open",
            "due_at": due_at, "not_before": not_before, "assignee_id": assignee_id,
            "payload": dict(payload or {}), "created_at": now,
        },
    )  # fmt: skip
    task_id = created.scalar()
    if task_id is None:
        return []
    await scheduler.schedule(conn, DUE, due_at, f"{DUE}:{task_id}", conversation_id=conversation_id, now=now)
    events = [
        event_row(
            "task.created",
            now,
            conversation_id,
            None,
            task_id=task_id,
            task=kind.value,
            due_at=due_at.isoformat(),
        )
    ]
    await record(conn, events)
    return events


async def complete(
    conn: AsyncConnection, task_id: int, by: int | None, now: datetime, note: str | None = None
) -> list[dict[str, Any]]:
    """Mark a task done; Conflict if it is not open."""
    t = schema.tasks
    row = (await conn.execute(select(t).where(t.c.id == task_id))).first()
    if row is None:
        raise NotFound(f"task {task_id} not found")
    done = await conn.execute(
        update(t)
        .where(t.c.id == task_id, t.c.status == "open")
        .values(status="done", done_at=now, done_by=by)
    )
    if done.rowcount == 0:
        raise Conflict(f"task {task_id} is {row.status}, not open")
    await scheduler.cancel(conn, f"{DUE}:{task_id}")
    events = [
        event_row(
            "task.done",
            now,
            row.conversation_id,
            by,
            task_id=task_id,
            task=row.kind,
            late=now > row.due_at,
            note=note,
        )
    ]
    await record(conn, events)
    return events


async def overdue(conn: AsyncConnection, timer: scheduler.Timer) -> list[dict[str, Any]]:
    """Scheduler handler for `task.due`: record `task.overdue` once if the task is still open."""
    t = schema.tasks
    task_id = int(timer.key.rsplit(":", 1)[1])
    flipped = await conn.execute(
        update(t)
        .where(t.c.id == task_id, t.c.status == "open", t.c.overdue_event_at.is_(None))
        .values(overdue_event_at=timer.due_at)
        .returning(t.c.kind, t.c.due_at)
    )
    row = flipped.first()
    if row is None:
        return []
    events = [
        event_row("task.overdue", row.due_at, timer.conversation_id, None, task_id=task_id, task=row.kind)
    ]
    await record(conn, events)
    return events


def customer_zone(timezone: str | None, phone: str | None, fallback: ZoneInfo) -> ZoneInfo:
    """The customer's time zone: the contact's, else the only one their phone number has, else ours."""
    if timezone:
        try:
            return ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    if phone:
        try:
            zones = phone_timezones.time_zones_for_number(phonenumbers.parse(phone))
        except phonenumbers.NumberParseException:
            zones = ()
        if len(zones) == 1 and zones[0] != "Etc/Unknown":
            return ZoneInfo(zones[0])
    return fallback


def daytime(zone: ZoneInfo, hours: str) -> BusinessCalendar:
    """Every day's daytime hours in the customer's zone."""
    return BusinessCalendar.build("customer daytime", str(zone), {d: [hours] for d in WEEKDAYS})


def callback_window(
    ours: BusinessCalendar, customer: BusinessCalendar, requested_at: datetime, target: timedelta
) -> tuple[datetime, datetime]:
    """(not before, due): the first instant both are open, and the target counted over common open time."""
    start: datetime | None = None
    left = target
    for a, b in _common(ours, customer, requested_at, requested_at + HORIZON):
        if start is None:
            start = a
        if b - a >= left:
            return start, a + left
        left -= b - a
    raise ValueError("no common time with the customer's daytime hours within 30 days")


def _common(
    one: BusinessCalendar, other: BusinessCalendar, start: datetime, end: datetime
) -> Iterator[tuple[datetime, datetime]]:
    theirs = list(other.spans(start, end))
    i = 0
    for a, b in one.spans(start, end):
        while i < len(theirs) and theirs[i][1] <= a:
            i += 1
        j = i
        while j < len(theirs) and theirs[j][0] < b:
            lo, hi = max(a, theirs[j][0]), min(b, theirs[j][1])
            if lo < hi:
                yield lo, hi
            j += 1


async def list_open(conn: AsyncConnection, conversation_id: int | None = None) -> list[dict[str, Any]]:
    """Open tasks, soonest due first."""
    t = schema.tasks
    query = select(t).where(t.c.status == "open").order_by(t.c.due_at, t.c.id)
    if conversation_id is not None:
        query = query.where(t.c.conversation_id == conversation_id)
    return [dict(r._mapping) for r in await conn.execute(query)]
