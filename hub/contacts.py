"""Contacts: resolving identities to contacts, looking them up, and merging duplicates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import records
from hub.clock import Clock, utcnow
from hub.errors import Conflict, NotFound
from hub.events import EventBus, event_row, record
from hub.models import Contact, Identity
from hub.store import Database, bulk, ids, schema
from hub.store.rows import all_of, by_id

MAX_MERGE_DEPTH = 32


@bulk.statement
def _merged_query(pg: bool) -> Select[Any]:
    ct = schema.contacts
    return select(ct.c.id, ct.c.merged_into).where(bulk.in_list(pg, ct.c.id), ct.c.merged_into.is_not(None))


@bulk.statement
def _identities_query(pg: bool) -> Select[Any]:
    """The contact of each (kind, address) pair (`kinds` and `addresses` in step; NULL if none).

    On PostgreSQL one lookup on the unique (address, kind) index per pair: the two lists matched
    separately were planned, on stale statistics, as every identity of the kind compared against
    every address (6 ms for 200 callers among 200 identities, growing with both).
    """
    idt = schema.identities
    if pg:
        pairs = bulk.zipped(kinds=idt.c.kind, addresses=idt.c.address)
        contact = select(idt.c.contact_id).where(
            idt.c.address == pairs.c.addresses, idt.c.kind == pairs.c.kinds
        )
        return select(pairs.c.kinds, pairs.c.addresses, contact.scalar_subquery())
    return select(idt.c.kind, idt.c.address, idt.c.contact_id).where(
        bulk.in_list(pg, idt.c.address, "addresses"), bulk.in_list(pg, idt.c.kind, "kinds")
    )


async def canonical_ids(conn: AsyncConnection, ids: Iterable[int]) -> dict[int, int]:
    """Map each contact id to the contact it was (transitively) merged into, or itself."""
    result = {i: i for i in ids}
    pending = set(result.values())
    for _ in range(MAX_MERGE_DEPTH):
        if not pending:
            break
        moved = dict(await bulk.fetch(conn, _merged_query, ids=bulk.listed(conn, sorted(pending))))
        for start, current in result.items():
            if current in moved:
                result[start] = moved[current]
        pending = set(moved.values())
    return result


async def resolve(
    conn: AsyncConnection,
    wanted: Mapping[Identity, tuple[str | None, str | None]],
    now: datetime,
) -> dict[Identity, int]:
    """Find or create the contact of each identity; `wanted` gives (name, language) for new ones."""
    if not wanted:
        return {}
    idt = schema.identities
    keys = sorted({(i.kind.value, i.address) for i in wanted})
    rows = await bulk.fetch(
        conn,
        _identities_query,
        kinds=bulk.listed(conn, [kind for kind, _ in keys]),
        addresses=bulk.listed(conn, [address for _, address in keys]),
    )
    found = {(kind, address): contact_id for kind, address, contact_id in rows if contact_id is not None}
    missing = [i for i in wanted if (i.kind.value, i.address) not in found]
    if missing:
        new_ids = await ids.reserve(conn, schema.contacts, len(missing))
        created = list(zip(missing, new_ids, strict=True))
        await bulk.insert(
            conn,
            schema.contacts,
            [(cid, wanted[i][0], wanted[i][1], now) for i, cid in created],
            columns=("id", "name", "language", "created_at"),
        )
        await bulk.insert(
            conn,
            idt,
            [(cid, i.kind.value, i.address) for i, cid in created],
            columns=("contact_id", "kind", "address"),
        )
        found.update({(i.kind.value, i.address): cid for i, cid in zip(missing, new_ids, strict=True)})
    canonical = await canonical_ids(conn, set(found.values()))
    return {i: canonical[found[(i.kind.value, i.address)]] for i in wanted}


class ContactService:
    """Reading, editing and merging contacts."""

    def __init__(self, db: Database, clock: Clock = utcnow, bus: EventBus | None = None) -> None:
        self.db = db
        self.clock = clock
        self.bus = bus if bus is not None else EventBus()

    async def get(self, contact_id: int) -> Contact:
        """One contact with its identities; raise NotFound."""
        async with self.db.read() as conn:
            row = await by_id(conn, schema.contacts, contact_id, "contact")
            idents = await all_of(
                conn,
                select(schema.identities)
                .where(schema.identities.c.contact_id == contact_id)
                .order_by(schema.identities.c.id),
            )
        return records.contact(row, idents)

    async def list(self, query: str | None = None, limit: int = 50, offset: int = 0) -> list[Contact]:
        """Contacts not merged away, optionally matching a name or address fragment."""
        c, i = schema.contacts, schema.identities
        stmt = select(c).where(c.c.merged_into.is_(None)).order_by(c.c.id.desc())
        if query:
            pattern = f"%{query.lower()}%"
            stmt = stmt.where(
                or_(
                    func.lower(c.c.name).like(pattern),
                    c.c.id.in_(select(i.c.contact_id).where(i.c.address.like(pattern))),
                )
            )
        async with self.db.read() as conn:
            rows = await all_of(conn, stmt.limit(limit).offset(offset))
            ids = [r["id"] for r in rows]
            idents = (
                (await conn.execute(select(i).where(i.c.contact_id.in_(ids)).order_by(i.c.id)))
                .mappings()
                .all()
            )
        by_contact: dict[int, list[object]] = {}
        for ident in idents:
            by_contact.setdefault(ident["contact_id"], []).append(ident)
        return [records.contact(r, by_contact.get(r["id"], [])) for r in rows]  # type: ignore[arg-type]

    async def update(
        self,
        contact_id: int,
        *,
        name: str | None = None,
        language: str | None = None,
        timezone: str | None = None,
    ) -> Contact:
        """Change a contact's name, language or time zone."""
        values = {
            k: v
            for k, v in {"name": name, "language": language, "timezone": timezone}.items()
            if v is not None
        }
        if not values:
            return await self.get(contact_id)
        async with self.db.write() as conn:
            done = await conn.execute(
                update(schema.contacts).where(schema.contacts.c.id == contact_id).values(**values)
            )
            if done.rowcount == 0:
                raise NotFound(f"contact {contact_id} does not exist")
        self.bus.publish([event_row("contact.updated", self.clock(), None, None, contact=contact_id)])
        return await self.get(contact_id)

    async def merge(self, source_id: int, target_id: int, agent_id: int | None = None) -> Contact:
        """Merge `source` into `target`: identities and conversations move; source points on."""
        if source_id == target_id:
            raise Conflict("a contact cannot be merged into itself")
        now = self.clock()
        async with self.db.write() as conn:
            await conn.execute(
                select(schema.contacts.c.id)
                .where(schema.contacts.c.id.in_(sorted({source_id, target_id})))
                .order_by(schema.contacts.c.id)
                .with_for_update()
            )
            canon = await canonical_ids(conn, [source_id, target_id])
            existing = (
                (
                    await conn.execute(
                        select(schema.contacts.c.id).where(schema.contacts.c.id.in_([source_id, target_id]))
                    )
                )
                .scalars()
                .all()
            )
            if len(existing) != 2:
                raise NotFound("both contacts must exist")
            if canon[source_id] != source_id:
                raise Conflict(f"contact {source_id} was already merged into {canon[source_id]}")
            if canon[target_id] == source_id:
                raise Conflict("the target was merged into the source")
            target = canon[target_id]
            await conn.execute(
                update(schema.identities)
                .where(schema.identities.c.contact_id == source_id)
                .values(contact_id=target)
            )
            await conn.execute(
                update(schema.conversations)
                .where(schema.conversations.c.contact_id == source_id)
                .values(contact_id=target)
            )
            await conn.execute(
                update(schema.calls).where(schema.calls.c.contact_id == source_id).values(contact_id=target)
            )
            await conn.execute(
                update(schema.contacts).where(schema.contacts.c.id == source_id).values(merged_into=target)
            )
            events = [event_row("contact.merged", now, None, agent_id, source=source_id, target=target)]
            await record(conn, events)
        self.bus.publish(events)
        return await self.get(target)
