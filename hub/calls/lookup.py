"""Reads on the incoming-call path: who is calling, and a short-lived cache of whom a team rings."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.calls.routing import TeamRing
from hub.models import ChannelKind, ConversationStatus, Identity
from hub.store import schema

RING_CACHE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class KnownCaller:
    """What the hub knows about a caller: the contact, and the agent of their open call conversation."""

    contact_id: int | None = None
    name: str | None = None
    timezone: str | None = None
    agent: str | None = None


def _lookup_statement() -> Select[Any]:
    i, ct, c, a = schema.identities, schema.contacts, schema.conversations, schema.agents
    agent = (
        select(a.c.display_name)
        .join(c, c.c.assignee_id == a.c.id)
        .where(
            c.c.contact_id == ct.c.id,
            c.c.channel == ChannelKind.VOICE.value,
            c.c.channel_account == bindparam("account"),
            c.c.status == ConversationStatus.OPEN.value,
        )
        .order_by(c.c.updated_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(ct.c.id, ct.c.name, ct.c.timezone, agent.label("agent"))
        .join(i, i.c.contact_id == ct.c.id)
        .where(i.c.kind == bindparam("kind"), i.c.address == bindparam("address"))
    )


LOOKUP = _lookup_statement()
"""Built once: this runs on every incoming call. Merges move identities and conversations to
the surviving contact, so the identity leads to it directly."""


async def caller_lookup(conn: AsyncConnection, caller: Identity, account: str) -> KnownCaller:
    """The caller's contact and, where one is assigned, the agent of their open conversation on this line."""
    params = {"kind": caller.kind.value, "address": caller.address, "account": account}
    row = (await conn.execute(LOOKUP, params)).first()
    if row is None:
        return KnownCaller()
    return KnownCaller(row.id, row.name, row.timezone, row.agent)


class RingCache:
    """Teams' ring lists for a second: an agent's change of availability shows within that time."""

    def __init__(self, seconds: float = RING_CACHE_SECONDS) -> None:
        self.seconds = seconds
        self._entries: dict[str, tuple[float, TeamRing]] = {}

    def get(self, team: str) -> TeamRing | None:
        """A team's ring list if it is fresh."""
        found = self._entries.get(team)
        if found is None or time.monotonic() - found[0] > self.seconds:
            return None
        return found[1]

    def put(self, team: str, ring: TeamRing) -> TeamRing:
        """Remember a team's ring list."""
        self._entries[team] = (time.monotonic(), ring)
        return ring

    def clear(self) -> None:
        """Forget every team's list (an agent went on or off a call)."""
        self._entries.clear()
