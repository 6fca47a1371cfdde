"""Claiming due rows for one worker: the shared mechanism of the outbox and the scheduler.

The rows are picked and marked in one UPDATE. On PostgreSQL the pick takes row locks with
`SKIP LOCKED`, so several processes never claim the same row; on SQLite the write lock that
`Database.write()` holds does the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Column, ColumnElement, RowMapping, Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection


async def claim(
    conn: AsyncConnection,
    table: Table,
    due: ColumnElement[bool],
    order_by: Sequence[Column[Any]],
    limit: int,
    values: Mapping[str, Any],
) -> Sequence[RowMapping]:
    """Mark up to `limit` due rows with `values`, in `order_by` order; return them as updated."""
    pick = select(table.c.id).where(due).order_by(*order_by).limit(limit).with_for_update(skip_locked=True)
    stmt = update(table).where(table.c.id.in_(pick)).values(**values).returning(*table.c)
    rows = (await conn.execute(stmt)).mappings().all()
    order = [c.name for c in order_by]
    return sorted(rows, key=lambda r: tuple(r[name] for name in order))
