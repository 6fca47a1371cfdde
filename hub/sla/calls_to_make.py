"""Calls owed to customers: callbacks after missed calls or on request (P3, P6), fax confirmations (F3)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.errors import Conflict, NotFound
from hub.models import IdentityKind
from hub.sla import history, tasks
from hub.sla.policy import PolicyBook
from hub.sla.tasks import TaskKind
from hub.store import schema


def callback_key(key: str) -> str:
    """The task key of the callback scheduled under `key`."""
    return f"callback:{key}"


async def close_callback(conn: AsyncConnection, key: str, now: datetime, note: str) -> list[dict[str, Any]]:
    """Mark the callback scheduled under `key` done, if it is still open (the customer was reached)."""
    t = schema.tasks
    found = await conn.execute(select(t.c.id).where(t.c.key == callback_key(key), t.c.status == "open"))
    task_id = found.scalar()
    if task_id is None:
        return []
    with contextlib.suppress(Conflict):  # an agent marked it done since it was read
        return await tasks.complete(conn, task_id, None, now, note)
    return []


async def schedule_callback(
    conn: AsyncConnection,
    book: PolicyBook,
    conversation_id: int,
    *,
    key: str,
    requested_at: datetime,
    now: datetime,
    points: Sequence[str] = (),
    reason: str | None = None,
) -> list[dict[str, Any]]:
    """A callback task placed inside both the team's hours and the customer's daytime (P6); once per key."""
    h = (await history.load(conn, [conversation_id])).get(conversation_id)
    if h is None:
        raise NotFound(f"conversation {conversation_id} not found")
    policy = book.select(h.facts)
    calendar = policy.calendar if policy else book.default_calendar
    target = (policy.callback if policy else None) or book.timers.callback_within
    timezone, phone = await _contact_zone_and_phone(conn, conversation_id)
    zone = tasks.customer_zone(timezone, phone, calendar.timezone)
    customer = tasks.daytime(zone, book.timers.customer_daytime)
    not_before, due_at = tasks.callback_window(calendar, customer, requested_at, target)
    return await tasks.create(
        conn,
        conversation_id=conversation_id,
        kind=TaskKind.CALLBACK,
        key=callback_key(key),
        due_at=due_at,
        not_before=not_before,
        now=now,
        assignee_id=h.assignee_id,
        payload={"points": list(points), "reason": reason, "phone": phone, "customer_zone": str(zone)},
    )


async def schedule_fax_confirmation(
    conn: AsyncConnection,
    book: PolicyBook,
    conversation_id: int,
    message_id: int,
    delivered_at: datetime,
    now: datetime,
) -> list[dict[str, Any]]:
    """A task to call and confirm a delivered fax arrived and is legible (F3); once per message."""
    h = (await history.load(conn, [conversation_id])).get(conversation_id)
    if h is None:
        raise NotFound(f"conversation {conversation_id} not found")
    policy = book.select(h.facts)
    calendar = policy.calendar if policy else book.default_calendar
    return await tasks.create(
        conn,
        conversation_id=conversation_id,
        kind=TaskKind.FAX_CONFIRM,
        key=f"fax_confirm:{message_id}",
        due_at=calendar.add(delivered_at, book.timers.fax_confirm_within),
        now=now,
        assignee_id=h.assignee_id,
        payload={"message_id": message_id},
    )


async def _contact_zone_and_phone(
    conn: AsyncConnection, conversation_id: int
) -> tuple[str | None, str | None]:
    c, ct, i = schema.conversations, schema.contacts, schema.identities
    row = (
        await conn.execute(
            select(ct.c.id, ct.c.timezone).join(c, c.c.contact_id == ct.c.id).where(c.c.id == conversation_id)
        )
    ).one()
    phone = (
        await conn.execute(
            select(i.c.address)
            .where(i.c.contact_id == row.id, i.c.kind == IdentityKind.PHONE.value)
            .order_by(i.c.id)
            .limit(1)
        )
    ).scalar()
    return row.timezone, phone
