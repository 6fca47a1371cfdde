"""Reserve primary keys for a batch up front, so bulk inserts need no RETURNING round trips."""

from __future__ import annotations

from sqlalchemy import Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection


async def reserve(conn: AsyncConnection, table: Table, count: int) -> list[int]:
    """`count` fresh ids for `table`'s `id` column, in increasing order.

    On PostgreSQL they come from the column's sequence. On SQLite the caller holds the
    database's write lock (`Database.write()` begins IMMEDIATE), so the ids after the
    current maximum are free until the transaction ends.
    """
    if count <= 0:
        return []
    if conn.dialect.name == "postgresql":
        rows = await conn.execute(
            text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
            {"table": table.name, "n": count},
        )
        return sorted(rows.scalars())
    top = (await conn.execute(select(func.max(table.c.id)))).scalar() or 0
    return list(range(top + 1, top + 1 + count))
