"""Reading rows: one by id (or NotFound), and all rows of a statement, as mappings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Executable, RowMapping, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.errors import NotFound


async def by_id(conn: AsyncConnection, table: Table, row_id: int, what: str) -> RowMapping:
    """The row of `table` with this id; raise NotFound naming `what`."""
    row = (await conn.execute(select(table).where(table.c.id == row_id))).mappings().first()
    if row is None:
        raise NotFound(f"{what} {row_id} does not exist")
    return row


async def all_of(conn: AsyncConnection, stmt: Executable, params: Any = None) -> Sequence[RowMapping]:
    """Every row a statement returns, as mappings."""
    return (await conn.execute(stmt, params)).mappings().all()
