"""Reads on the incoming-call path: who is calling and whom a team rings, with their in-memory caches.

Both caches are emptied by the events that change what they hold (`CallDesk.forget`); an
age limit covers changes no event of this process tells about (another process's writes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.calls.routing import TeamRing
from hub.models import ChannelKind, ConversationStatus, Identity
from hub.store import schema

RING_CACHE_SECONDS = 5.0
CALLER_CACHE_SECONDS = 30.0
CALLER_CACHE_SIZE = 50_000


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


class CallerCache:
    """Known callers by line account and identity, for a while at most."""

    def __init__(self, seconds: float = CALLER_CACHE_SECONDS, size: int = CALLER_CACHE_SIZE) -> None:
        self.seconds = seconds
        self.size = size
        self._entries: dict[tuple[str, str, str], tuple[float, KnownCaller]] = {}
        self._by_contact: dict[int, set[tuple[str, str, str]]] = {}
        self.generation = 0
        """Counts clears: a read that began before one must not be remembered."""
        self.hits = 0
        self.misses = 0

    def get(self, caller: Identity, account: str) -> KnownCaller | None:
        """What is remembered about a caller, if it is fresh."""
        found = self._entries.get((account, caller.kind.value, caller.address))
        if found is None or time.monotonic() - found[0] > self.seconds:
            self.misses += 1
            return None
        self.hits += 1
        return found[1]

    def put(self, caller: Identity, account: str, known: KnownCaller, generation: int) -> KnownCaller:
        """Remember a known caller read at `generation` unless a clear came since; start over when full."""
        if generation != self.generation or known.contact_id is None:
            return known
        if len(self._entries) >= self.size:
            self.clear()
        key = (account, caller.kind.value, caller.address)
        self._entries[key] = (time.monotonic(), known)
        self._by_contact.setdefault(known.contact_id, set()).add(key)
        return known

    def forget_contact(self, contact_id: int) -> None:
        """Forget a contact's entries (callers nobody knows are never remembered: any write may add them)."""
        self.generation += 1
        for key in self._by_contact.pop(contact_id, ()):
            self._entries.pop(key, None)

    def clear(self) -> None:
        """Forget every caller (a contact, conversation or agent name changed)."""
        self.generation += 1
        self._entries.clear()
        self._by_contact.clear()


class RingCache:
    """Teams' ring lists, emptied when availability, membership or round-robin turns change."""

    def __init__(self, seconds: float = RING_CACHE_SECONDS) -> None:
        self.seconds = seconds
        self._entries: dict[str, tuple[float, TeamRing]] = {}
        self.generation = 0
        """Counts clears: a read that began before one must not be remembered."""
        self.hits = 0
        self.misses = 0

    def get(self, team: str) -> TeamRing | None:
        """A team's ring list if it is fresh."""
        found = self._entries.get(team)
        if found is None or time.monotonic() - found[0] > self.seconds:
            self.misses += 1
            return None
        self.hits += 1
        return found[1]

    def put(self, team: str, ring: TeamRing, generation: int) -> TeamRing:
        """Remember a team's ring list read at `generation` unless a clear came since."""
        if generation == self.generation:
            self._entries[team] = (time.monotonic(), ring)
        return ring

    def clear(self) -> None:
        """Forget every team's list (availability, membership or round-robin turns changed)."""
        self.generation += 1
        self._entries.clear()
