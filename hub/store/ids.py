"""Reserve primary keys for a batch up front, so bulk inserts need no RETURNING round trips."""

from __future__ import annotations

import functools
from collections.abc import Callable

from sqlalchemy import Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.store import bulk


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
    top = (await bulk.fetch(conn, _top_query(table)))[0][0] or 0
    return list(range(top + 1, top + 1 + count))


@functools.cache
def _top_query(table: Table) -> Callable[[AsyncConnection], bulk.Compiled]:
    return bulk.statement(lambda _pg: select(func.max(table.c.id)))
