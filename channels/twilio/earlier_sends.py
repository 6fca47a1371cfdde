"""Finding a message an earlier attempt got Twilio to accept although its answer never arrived.

Twilio's Messages API takes no idempotency key. When a send's answer is lost (a timeout, a
dropped connection, a 5xx from a proxy after Twilio created the message), the retry first
lists the recent messages to the same number from the same sender and adopts one with the
same body, created since the reply was queued, that no other outbound message claims,
instead of sending the text again.
Template (Content API) sends cannot be compared by body and are sent again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from twilio.rest import Client
from twilio.rest.api.v2010.account.message import MessageInstance

from channels.twilio import rest
from hub.store import Database, schema

LOOKBACK = timedelta(hours=24)
"""How far back an earlier attempt's message is looked for at most."""
CLOCK_SKEW = timedelta(minutes=5)
"""How far Twilio's clock may be behind ours when comparing its creation time with our queue time."""
RECENT = 50
"""How many of the newest messages to the number are compared."""


async def accepted_before(
    client: Client,
    db: Database,
    account: str,
    params: Mapping[str, Any],
    now: datetime,
    queued_at: datetime | None = None,
) -> MessageInstance | None:
    """The message an earlier attempt with these parameters created, if Twilio has one nobody claims."""
    body = params.get("body")
    if body is None:
        return None
    query: dict[str, Any] = {"to": params["to"], "limit": RECENT}
    if "from_" in params:
        query["from_"] = params["from_"]
    found = await rest.call(client.messages.list_async(**query), f"{account}: looking for an earlier send")
    since = now - LOOKBACK if queued_at is None else max(now - LOOKBACK, queued_at - CLOCK_SKEW)
    same = [
        m
        for m in found
        if m.body == body and m.date_created is not None and m.date_created >= since and m.sid
    ]
    if not same:
        return None
    claimed = await _claimed(db, account, [m.sid for m in same if m.sid])
    return next((m for m in reversed(same) if m.sid not in claimed), None)


async def _claimed(db: Database, account: str, sids: list[str]) -> set[str]:
    o = schema.outbox
    async with db.read() as conn:
        rows = await conn.execute(
            select(o.c.provider_id).where(o.c.channel_account == account, o.c.provider_id.in_(sids))
        )
        return {r[0] for r in rows}
