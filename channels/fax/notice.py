"""F1: tell the contact on their e-mail or SMS conversation that a fax is coming, through the outbox."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from hub.events import EventBus
from hub.models import ChannelKind
from hub.outbox import queue_reply
from hub.store import Database, schema
from hub.templates import Templates

NOTICE_CHANNELS = (ChannelKind.EMAIL.value, ChannelKind.SMS.value)
TEMPLATE = "fax_notice"


async def other_conversation(db: Database, fax_conversation_id: int) -> tuple[int, ChannelKind] | None:
    """The contact's most recent e-mail or SMS conversation, if they have one."""
    c = schema.conversations
    contact = select(c.c.contact_id).where(c.c.id == fax_conversation_id).scalar_subquery()
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(c.c.id, c.c.channel)
                .where(c.c.contact_id == contact, c.c.channel.in_(NOTICE_CHANNELS))
                .order_by(c.c.last_message_at.desc().nulls_last(), c.c.id.desc())
                .limit(1)
            )
        ).first()
    return (int(row.id), ChannelKind(row.channel)) if row else None


async def queue_notice(
    db: Database,
    bus: EventBus,
    templates: Templates,
    *,
    fax_conversation_id: int,
    fax_message_id: int,
    key: str,
    cover: Mapping[str, Any],
    lang: str,
    tz: ZoneInfo | str,
    now: datetime,
) -> int | None:
    """Queue the notice once per fax (`key`); the conversation it went on, or None if there is none."""
    found = await other_conversation(db, fax_conversation_id)
    if found is None:
        return None
    conversation_id, channel = found
    text = templates.render(channel, TEMPLATE, lang, "txt", {"fax": dict(cover)}, tz=tz).text
    try:
        async with db.write() as conn:
            events = await queue_reply(
                conn,
                conversation_id,
                text,
                key=f"fax-notice:{key}",
                agent_id=None,
                subject=None,
                html=None,
                automatic=True,
                meta={"fax_notice_for": fax_message_id},
                audit={},
                now=now,
            )
    except IntegrityError:
        return conversation_id
    bus.publish(events)
    return conversation_id
