"""What the inbox list shows besides the conversation: the customer's name and the last words."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from hub.models import Direction
from hub.store import Database, schema
from hub.store.rows import all_of, by_id

PREVIEW_CHARS = 140


async def list_details(db: Database, conversation_ids: list[int], contact_ids: list[int]) -> dict[str, Any]:
    """Contact names and addresses, and each conversation's latest customer or agent message."""
    if not conversation_ids:
        return {"contacts": {}, "previews": {}}
    ct, idt, m = schema.contacts, schema.identities, schema.messages
    latest = (
        select(func.max(m.c.id).label("id"))
        .where(m.c.conversation_id.in_(conversation_ids), m.c.direction != Direction.NOTE.value)
        .group_by(m.c.conversation_id)
    )
    async with db.read() as conn:
        people = await all_of(conn, select(ct.c.id, ct.c.name).where(ct.c.id.in_(contact_ids)))
        addresses = await all_of(
            conn,
            select(idt.c.contact_id, idt.c.kind, idt.c.address)
            .where(idt.c.contact_id.in_(contact_ids))
            .order_by(idt.c.id),
        )
        last = await all_of(
            conn,
            select(m.c.conversation_id, m.c.text, m.c.direction, m.c.created_at).where(
                m.c.id.in_(latest.scalar_subquery())
            ),
        )
    first_address: dict[int, str] = {}
    for row in addresses:
        first_address.setdefault(row["contact_id"], row["address"])
    contacts = {
        str(row["id"]): {"name": row["name"], "address": first_address.get(row["id"])} for row in people
    }
    previews = {
        str(row["conversation_id"]): {
            "text": " ".join(row["text"].split())[:PREVIEW_CHARS],
            "direction": row["direction"],
        }
        for row in last
    }
    return {"contacts": contacts, "previews": previews}


async def message_html(db: Database, message_id: int) -> str | None:
    """A message's sanitised HTML (None if it has none); NotFound if there is no such message."""
    async with db.read() as conn:
        row = await by_id(conn, schema.messages, message_id, "message")
    html: str | None = row["html"]
    return html
