"""F1: tell the contact on their e-mail or SMS conversation that a fax is coming, checked like any reply."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from hub.events import EventBus
from hub.models import ChannelKind
from hub.replies import TemplateReplies
from hub.store import Database, schema

NOTICE_CHANNELS = (ChannelKind.EMAIL.value, ChannelKind.SMS.value)
TEMPLATE = "fax_notice"


async def other_conversation(db: Database, fax_conversation_id: int) -> int | None:
    """The contact's most recent e-mail or SMS conversation, if they have one."""
    c = schema.conversations
    contact = select(c.c.contact_id).where(c.c.id == fax_conversation_id).scalar_subquery()
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(c.c.id)
                .where(c.c.contact_id == contact, c.c.channel.in_(NOTICE_CHANNELS))
                .order_by(c.c.last_message_at.desc().nulls_last(), c.c.id.desc())
                .limit(1)
            )
        ).first()
    return int(row.id) if row else None


async def queue_notice(
    db: Database,
    bus: EventBus,
    replies: TemplateReplies,
    *,
    fax_conversation_id: int,
    fax_message_id: int,
    key: str,
    cover: Mapping[str, Any],
    lang: str,
    now: datetime,
) -> int | None:
    """Queue the notice once per fax (`key`), checked like any automatic reply; the conversation it
    went on (or was blocked on, with a `rules.reply_blocked` event saying why), or None if there is none."""
    conversation_id = await other_conversation(db, fax_conversation_id)
    if conversation_id is None:
        return None
    try:
        async with db.write() as conn:
            events = await replies.queue_checked(
                conn, conversation_id, TEMPLATE, now, key=f"fax-notice:{key}", lang=lang,
                extra={"fax": dict(cover)}, meta={"fax_notice_for": fax_message_id},
            )  # fmt: skip
    except IntegrityError:
        return conversation_id
    bus.publish(events)
    return conversation_id
