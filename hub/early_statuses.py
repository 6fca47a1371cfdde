"""Provider status reports that arrive before the send they report on has recorded its provider id."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.models import DeliveryResult, OutboundStatus
from hub.store import schema

log = logging.getLogger(__name__)

KEEP = timedelta(days=1)
"""How long a held report waits for its send; a send's own timeout is far shorter."""


async def hold(
    conn: AsyncConnection, account: str, provider_id: str, result: DeliveryResult, now: datetime
) -> bool:
    """Keep a report for an unknown id while a send on the account is under way; False if none is."""
    if not await sending_now(conn, account):
        return False
    e = schema.early_statuses
    stale = await conn.execute(delete(e).where(e.c.channel_account == account, e.c.received_at < now - KEEP))
    if stale.rowcount:
        log.warning(
            "%s: dropped %d status reports whose send never recorded their id", account, stale.rowcount
        )
    row = {
        "channel_account": account,
        "provider_id": provider_id,
        "status": result.status.value,
        "error": result.error,
        "received_at": now,
    }
    await conn.execute(insert(e), [row])
    return True


async def sending_now(conn: AsyncConnection, account: str) -> bool:
    """Whether a message of this account is being handed to its provider (its id not yet recorded)."""
    o = schema.outbox
    row = await conn.execute(
        select(o.c.id)
        .where(o.c.channel_account == account, o.c.status == OutboundStatus.SENDING.value)
        .limit(1)
    )
    return row.first() is not None


async def take(conn: AsyncConnection, account: str, provider_id: str) -> list[DeliveryResult]:
    """The reports held for this id, oldest first; they are removed."""
    e = schema.early_statuses
    rows = (
        await conn.execute(
            select(e.c.id, e.c.status, e.c.error)
            .where(e.c.channel_account == account, e.c.provider_id == provider_id)
            .order_by(e.c.id)
        )
    ).all()
    if not rows:
        return []
    await conn.execute(delete(e).where(e.c.id.in_([r.id for r in rows])))
    return [DeliveryResult(OutboundStatus(r.status), provider_id=provider_id, error=r.error) for r in rows]
