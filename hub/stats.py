"""Counts of what the hub holds, for `omnihub stats` and the supervisor API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from hub.models import ConversationStatus, OutboundStatus
from hub.store import Database, schema


async def collect(db: Database) -> dict[str, Any]:
    """Contacts, conversations by status, messages per channel and direction, quarantine, outbox."""
    c, m, o, q = schema.conversations, schema.messages, schema.outbox, schema.quarantine
    async with db.read() as conn:
        contacts = (
            await conn.execute(
                select(func.count())
                .select_from(schema.contacts)
                .where(schema.contacts.c.merged_into.is_(None))
            )
        ).scalar_one()
        by_status: dict[str, int] = dict(
            (await conn.execute(select(c.c.status, func.count()).group_by(c.c.status))).all()
        )
        per_channel = (
            await conn.execute(
                select(m.c.channel, m.c.direction, func.count()).group_by(m.c.channel, m.c.direction)
            )
        ).all()
        quarantined = (
            await conn.execute(select(func.count()).select_from(q).where(q.c.resolved_at.is_(None)))
        ).scalar_one()
        outbox: dict[str, int] = dict(
            (await conn.execute(select(o.c.status, func.count()).group_by(o.c.status))).all()
        )
    messages: dict[str, dict[str, int]] = {}
    for channel, direction, count in per_channel:
        messages.setdefault(channel, {})[direction] = count
    return {
        "contacts": contacts,
        "conversations": {
            "total": sum(by_status.values()),
            **{s.value: by_status.get(s.value, 0) for s in ConversationStatus},
        },
        "messages": {
            "total": sum(sum(d.values()) for d in messages.values()),
            "by_channel": {ch: dict(sorted(d.items())) for ch, d in sorted(messages.items())},
        },
        "quarantined": quarantined,
        "outbox": {s.value: outbox.get(s.value, 0) for s in OutboundStatus},
    }
