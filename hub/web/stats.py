"""Counts of what the hub holds, for `/api/stats`, the metrics and `omnihub stats --json`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from hub.models import ConversationStatus
from hub.services import Services
from hub.store import schema


async def collect_stats(services: Services) -> dict[str, Any]:
    """Contacts, conversations by status, messages per channel and direction, quarantine, outbox."""
    contacts, conversations, messages, quarantine = (
        schema.contacts, schema.conversations, schema.messages, schema.quarantine,
    )
    async with services.db.read() as conn:
        contact_count = (await conn.execute(
            select(func.count()).select_from(contacts).where(contacts.c.merged_into.is_(None))
        )).scalar_one()
        by_status: dict[str, int] = dict((await conn.execute(
            select(conversations.c.status, func.count()).group_by(conversations.c.status)
        )).all())
        per_channel = (await conn.execute(
            select(messages.c.channel, messages.c.direction, func.count())
            .group_by(messages.c.channel, messages.c.direction)
        )).all()
        quarantined = (await conn.execute(
            select(func.count()).select_from(quarantine).where(quarantine.c.resolved_at.is_(None))
        )).scalar_one()
    by_channel: dict[str, dict[str, int]] = {}
    for channel, direction, count in sorted(per_channel):
        by_channel.setdefault(channel, {})[direction] = count
    return {
        "contacts": contact_count,
        "conversations": {
            "total": sum(by_status.values()),
            **{s.value: by_status.get(s.value, 0) for s in ConversationStatus},
        },
        "messages": {
            "total": sum(sum(d.values()) for d in by_channel.values()),
            "by_channel": by_channel,
        },
        "quarantined": quarantined,
        "outbox": await services.outbox.counts(),
    }
