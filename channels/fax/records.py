"""What the fax channel reads and writes in the store beside ingest and the outbox's own records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from hub.events import EventBus, event_row, record
from hub.models import Direction, IdentityKind, OutboundStatus
from hub.rules import queue as rule_queue
from hub.sla import calls_to_make
from hub.sla.policy import PolicyBook
from hub.store import Database, schema


@dataclass(frozen=True, slots=True)
class Addressee:
    """Who an outgoing fax is for and from, as the cover page names them."""

    contact_name: str | None
    language: str | None
    timezone: str | None
    phone: str | None
    email: str | None
    author: str | None


async def received_before(db: Database, account: str, fax_id: str) -> bool:
    """Whether a received fax with this id is already stored (its media need not be fetched again)."""
    m = schema.messages
    async with db.read() as conn:
        row = await conn.execute(
            select(m.c.id).where(m.c.channel_account == account, m.c.external_id == fax_id).limit(1)
        )
        return row.first() is not None


async def announce_received(
    db: Database, bus: EventBus, conversation_id: int, message_id: int, pages: int, now: datetime
) -> None:
    """Record `fax.received` for the triggers (F4) and the agents' screens."""
    events = [event_row("fax.received", now, conversation_id, message_id=message_id, pages=pages)]
    async with db.write() as conn:
        await record(conn, events)
        await rule_queue.enqueue(conn, events, now)
    bus.publish(events)


async def mark_delivered(
    db: Database,
    bus: EventBus,
    book: PolicyBook | None,
    *,
    account: str,
    fax_id: str,
    pages: int | None,
    now: datetime,
) -> int | None:
    """Note the delivered pages on the message and create the confirm-receipt task (F3); the message id.

    Providers deliver status events at least once: a repeated delivered event changes nothing
    (the first one's time and pages stay, and the conversation is not loaded again for the task).
    """
    o, m = schema.outbox, schema.messages
    events: list[dict[str, Any]] = []
    async with db.write() as conn:
        row = (
            await conn.execute(
                select(o.c.message_id, o.c.conversation_id, m.c.meta)
                .join(m, m.c.id == o.c.message_id)
                .where(
                    o.c.channel_account == account,
                    o.c.provider_id == fax_id,
                    o.c.status == OutboundStatus.DELIVERED.value,
                )
            )
        ).first()
        if row is None:
            return None
        meta = dict(row.meta or {})
        if "delivered_at" in (meta.get("fax") or {}):
            return int(row.message_id)
        meta["fax"] = {**(meta.get("fax") or {}), "delivered_pages": pages, "delivered_at": now.isoformat()}
        await conn.execute(update(m).where(m.c.id == row.message_id).values(meta=meta))
        if book is not None:
            events = await calls_to_make.schedule_fax_confirmation(
                conn, book, row.conversation_id, row.message_id, now, now
            )
    bus.publish(events)
    return int(row.message_id)


async def addressee(db: Database, conversation_id: int, message_id: int) -> Addressee:
    """The contact's name, language, zone, phone and e-mail, and the reply's author."""
    c, ct, i, m, a = schema.conversations, schema.contacts, schema.identities, schema.messages, schema.agents
    async with db.read() as conn:
        contact = (
            await conn.execute(
                select(ct.c.id, ct.c.name, ct.c.language, ct.c.timezone)
                .join(c, c.c.contact_id == ct.c.id)
                .where(c.c.id == conversation_id)
            )
        ).one()
        identities = (
            await conn.execute(
                select(i.c.kind, i.c.address).where(i.c.contact_id == contact.id).order_by(i.c.id)
            )
        ).all()
        author = (
            await conn.execute(
                select(a.c.display_name)
                .join(m, m.c.author_id == a.c.id)
                .where(m.c.id == message_id, m.c.direction == Direction.OUTBOUND.value)
            )
        ).scalar()
    first = {
        kind: next((r.address for r in identities if r.kind == kind.value), None) for kind in IdentityKind
    }
    return Addressee(
        contact_name=contact.name,
        language=contact.language,
        timezone=contact.timezone,
        phone=first[IdentityKind.PHONE],
        email=first[IdentityKind.EMAIL],
        author=author,
    )


async def keep_document(db: Database, message_id: int, sha256: str, pages: int) -> None:
    """Note the sent document (its blob) and its page count on the outgoing message."""
    m = schema.messages
    async with db.write() as conn:
        meta = (await conn.execute(select(m.c.meta).where(m.c.id == message_id))).scalar()
        merged = dict(meta or {})
        merged["fax"] = {**(merged.get("fax") or {}), "document_sha256": sha256, "pages": pages}
        await conn.execute(update(m).where(m.c.id == message_id).values(meta=merged))
