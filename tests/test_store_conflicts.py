"""Transactions that PostgreSQL aborts for a deadlock run again instead of failing their caller."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.models import Availability, Role
from hub.services import Services
from hub.store import schema


@pytest.mark.parametrize("store_settings", ["postgresql"], indirect=True)  # SQLite has one writer at a time
async def test_two_writers_locking_in_opposite_orders_both_finish(services: Services) -> None:
    first = await services.directory.add_agent("ana", None, Role.AGENT)
    second = await services.directory.add_agent("ben", None, Role.AGENT)
    both_locked = asyncio.Barrier(2)
    runs: list[str] = []
    a = schema.agents

    def crossing(name: str, ids: tuple[int, int]) -> Callable[[AsyncConnection], Awaitable[str]]:
        async def work(conn: AsyncConnection) -> str:
            runs.append(name)
            await conn.execute(update(a).where(a.c.id == ids[0]).values(availability=Availability.BUSY.value))
            if runs.count(name) == 1:
                await both_locked.wait()
            await conn.execute(update(a).where(a.c.id == ids[1]).values(availability=Availability.AWAY.value))
            return name

        return work

    done = await asyncio.gather(
        services.db.write_again_on_conflict(crossing("one", (first.id, second.id))),
        services.db.write_again_on_conflict(crossing("two", (second.id, first.id))),
    )
    assert done == ["one", "two"]
    assert len(runs) == 3
    async with services.db.read() as conn:
        states = (await conn.execute(select(a.c.availability).where(a.c.id.in_([first.id, second.id])))).all()
    assert {s for (s,) in states} <= {Availability.BUSY.value, Availability.AWAY.value}


async def test_other_errors_are_not_run_again(services: Services) -> None:
    runs = 0

    async def broken(conn: AsyncConnection) -> None:
        nonlocal runs
        runs += 1
        await conn.exec_driver_sql("SELECT * FROM no_such_table")

    with pytest.raises(DBAPIError):
        await services.db.write_again_on_conflict(broken)
    assert runs == 1
