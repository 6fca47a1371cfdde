"""The persisted scheduler on SQLite and PostgreSQL: at most once, in order, after downtime too."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import scheduler
from hub.aio import in_timed_chunks
from hub.scheduler import Scheduler, Timer
from hub.services import Services, open_services
from hub.store import schema
from tests.conftest import FakeClock


class Recorder:
    """A handler that writes what it fired into the audit table, in the firing transaction."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first

    async def __call__(self, conn: AsyncConnection, timer: Timer) -> list[dict[str, Any]]:
        if self.fail_first:
            self.fail_first -= 1
            raise RuntimeError("handler failed on purpose")
        await conn.execute(
            schema.events.insert(),
            {
                "kind": "fired",
                "at": timer.due_at,
                "conversation_id": None,
                "agent_id": None,
                "data": {"key": timer.key},
            },
        )
        return []


async def add(services: Services, kind: str, key: str, due_in: timedelta) -> None:
    async with services.db.write() as conn:
        await scheduler.schedule(conn, kind, services.clock() + due_in, key, now=services.clock())


async def fired(services: Services) -> list[tuple[str, Any]]:
    async with services.db.read() as conn:
        rows = await conn.execute(
            select(schema.events.c.data, schema.events.c.at)
            .where(schema.events.c.kind == "fired")
            .order_by(schema.events.c.id)
        )
        return [(r.data["key"], r.at) for r in rows]


async def test_fires_when_due_in_order_and_once(services: Services, clock: FakeClock) -> None:
    for key, minutes in [("c", 30), ("a", 10), ("b", 20)]:
        await add(services, "test", key, timedelta(minutes=minutes))
    await add(services, "test", "a", timedelta(minutes=99))
    timers = Scheduler(services.db, {"test": Recorder()}, clock)
    assert await timers.run_due() == 0
    clock.advance(minutes=25)
    assert await timers.run_due() == 2
    clock.advance(minutes=25)
    assert await timers.run_due() == 1
    assert await timers.run_due() == 0
    assert [k for k, _ in await fired(services)] == ["a", "b", "c"]
    assert await timers.pending() == 0


async def test_overdue_timers_fire_after_downtime_with_their_due_time(
    services: Services, clock: FakeClock
) -> None:
    start = clock()
    for i in range(5):
        await add(services, "test", f"t{i}", timedelta(hours=i + 1))
    clock.advance(days=2)
    timers = Scheduler(services.db, {"test": Recorder()}, clock)
    assert await timers.run_due() == 5
    assert await fired(services) == [(f"t{i}", start + timedelta(hours=i + 1)) for i in range(5)]
    assert timers.lag >= timedelta(hours=43)


async def test_cancelled_timers_do_not_fire(services: Services, clock: FakeClock) -> None:
    await add(services, "test", "gone", timedelta(minutes=1))
    async with services.db.write() as conn:
        assert await scheduler.cancel(conn, "gone")
        assert not await scheduler.cancel(conn, "gone")
    clock.advance(minutes=2)
    assert await Scheduler(services.db, {"test": Recorder()}, clock).run_due() == 0


async def test_failing_handler_is_retried_then_given_up(services: Services, clock: FakeClock) -> None:
    await add(services, "test", "flaky", timedelta(0))
    # A failing batch is tried again at once, timer by timer; failing twice counts as one failed attempt.
    timers = Scheduler(services.db, {"test": Recorder(fail_first=2)}, clock, max_attempts=3)
    assert await timers.run_due() == 1
    assert await fired(services) == []
    clock.advance(minutes=10)
    assert await timers.run_due() == 1
    assert [k for k, _ in await fired(services)] == ["flaky"]

    await add(services, "broken", "never", timedelta(0))
    for _ in range(3):
        clock.advance(minutes=10)
        await timers.run_due()
    async with services.db.read() as conn:
        row = (
            (await conn.execute(select(schema.timers).where(schema.timers.c.key == "never"))).mappings().one()
        )
    assert row["status"] == "failed" and "no handler" in row["last_error"]


class FailsOn(Recorder):
    """Writes its event, then fails for one key, after writing."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    async def __call__(self, conn: AsyncConnection, timer: Timer) -> list[dict[str, Any]]:
        await super().__call__(conn, timer)
        if timer.key == self.key:
            raise RuntimeError("failed after writing")
        return []


async def test_a_failing_timer_undoes_only_its_own_work_in_a_batch(
    services: Services, clock: FakeClock
) -> None:
    for i in range(5):
        await add(services, "test", f"k{i}", timedelta(seconds=i))
    clock.advance(minutes=1)
    assert await Scheduler(services.db, {"test": FailsOn("k2")}, clock).run_due() == 5
    assert [k for k, _ in await fired(services)] == ["k0", "k1", "k3", "k4"]
    async with services.db.read() as conn:
        statuses = dict((await conn.execute(select(schema.timers.c.key, schema.timers.c.status))).all())
    assert statuses == {"k0": "fired", "k1": "fired", "k2": "pending", "k3": "fired", "k4": "fired"}


async def test_two_processes_fire_each_timer_exactly_once(
    services: Services, make_config: Any, clock: FakeClock
) -> None:
    for i in range(300):
        await add(services, "test", f"k{i}", timedelta(seconds=i % 7))
    clock.advance(minutes=1)
    other = await open_services(make_config(), clock=clock)
    try:
        first = Scheduler(services.db, {"test": Recorder()}, clock, batch=20, worker_id="one")
        second = Scheduler(other.db, {"test": Recorder()}, clock, batch=20, worker_id="two")

        async def drain(s: Scheduler) -> int:
            total = 0
            while n := await s.run_due():
                total += n
                await asyncio.sleep(0)
            return total

        counts = await asyncio.gather(drain(first), drain(second))
        keys = [k for k, _ in await fired(services)]
        assert len(keys) == 300 and len(set(keys)) == 300
        assert sum(counts) >= 300
        assert sum(counts) == 300, "a timer was claimed by both schedulers"
    finally:
        await other.close()


async def test_a_running_scheduler_fires_without_being_asked(services: Services) -> None:
    timers = Scheduler(services.db, {"test": Recorder()}, services.clock, poll_seconds=0.05)
    timers.start()
    try:
        await add(services, "test", "now", timedelta(0))
        async with asyncio.timeout(5):
            while not await fired(services):
                await asyncio.sleep(0.02)
    finally:
        await timers.stop()


async def test_prune_deletes_only_old_finished_timers_of_prunable_kinds(
    services: Services, clock: FakeClock
) -> None:
    for kind, key in [("event", "old-fired"), ("event", "old-cancelled"), ("keep", "other-kind")]:
        await add(services, kind, key, timedelta(0))
    async with services.db.write() as conn:
        await scheduler.cancel(conn, "old-cancelled")
    timers = Scheduler(
        services.db,
        {"event": Recorder(), "keep": Recorder()},
        clock,
        prune_kinds=frozenset({"event"}),
        keep_fired=timedelta(days=7),
    )
    assert await timers.run_due() == 2
    await add(services, "event", "recent-fired", timedelta(0))
    await add(services, "event", "pending-later", timedelta(days=30))
    clock.advance(days=6)
    assert await timers.run_due() == 1
    assert await timers.prune() == 0
    clock.advance(days=2)
    assert await timers.prune() == 2
    async with services.db.read() as conn:
        left = sorted((await conn.execute(select(schema.timers.c.key))).scalars())
    assert left == ["other-kind", "pending-later", "recent-fired"]
    assert await timers.prune() == 0


async def test_work_is_cut_into_chunks_that_fit_the_time_budget() -> None:
    sizes: list[int] = []

    async def slow(chunk: Sequence[int]) -> list[int]:
        sizes.append(len(chunk))
        await asyncio.sleep(0.005 * len(chunk))
        return list(chunk)

    done = await in_timed_chunks(list(range(60)), slow, budget=0.02, first=10, most=50)
    assert [x for chunk in done for x in chunk] == list(range(60))
    assert sizes[0] == 10 and all(size <= 4 for size in sizes[1:])


async def test_chunks_in_lanes_run_side_by_side_and_come_back_in_order() -> None:
    running, most_running = 0, 0

    async def slow(chunk: Sequence[int]) -> list[int]:
        nonlocal running, most_running
        running += 1
        most_running = max(most_running, running)
        await asyncio.sleep(0.001 * (10 - len(chunk) % 10))
        running -= 1
        return list(chunk)

    done = await in_timed_chunks(list(range(100)), slow, budget=1.0, first=7, most=7, lanes=2)
    assert [x for chunk in done for x in chunk] == list(range(100))
    assert most_running == 2


async def test_a_failing_lane_cancels_the_others() -> None:
    cancelled = asyncio.Event()

    async def work(chunk: Sequence[int]) -> list[int]:
        if chunk[0] == 0:
            await asyncio.sleep(0.01)
            raise ValueError("broken")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return list(chunk)

    with pytest.raises(ValueError, match="broken"):
        await in_timed_chunks(list(range(10)), work, budget=1.0, first=5, most=5, lanes=2)
    assert cancelled.is_set()


async def add_chain(services: Services, keys: Sequence[str], due_in: Sequence[timedelta]) -> None:
    now = services.clock()
    links = [(now + d, key, {"n": i}) for i, (key, d) in enumerate(zip(keys, due_in, strict=True))]
    async with services.db.write() as conn:
        await conn.execute(schema.timers.insert(), scheduler.chain_row("test", links, now=now))


async def statuses(services: Services) -> dict[str, str]:
    async with services.db.read() as conn:
        return dict((await conn.execute(select(schema.timers.c.key, schema.timers.c.status))).all())


async def test_a_chain_keeps_one_pending_row_and_fires_each_link_once_in_order(
    services: Services, clock: FakeClock
) -> None:
    start = clock()
    await add_chain(services, ["c0", "c1", "c2"], [timedelta(minutes=m) for m in (10, 20, 30)])
    assert await statuses(services) == {"c0": "pending"}
    clock.advance(minutes=15)
    timers = Scheduler(services.db, {"test": Recorder()}, clock)
    assert await timers.run_due() == 1
    assert await timers.run_due() == 0
    assert await statuses(services) == {"c0": "fired", "c1": "pending"}

    # Another process takes over after a restart: the rest of the chain is in the store.
    clock.advance(days=1)
    again = Scheduler(services.db, {"test": Recorder()}, clock)
    while await again.run_due():
        pass
    assert await fired(services) == [
        ("c0", start + timedelta(minutes=10)),
        ("c1", start + timedelta(minutes=20)),
        ("c2", start + timedelta(minutes=30)),
    ]
    assert await statuses(services) == {"c0": "fired", "c1": "fired", "c2": "fired"}


async def test_a_chain_goes_on_after_a_link_is_given_up(services: Services, clock: FakeClock) -> None:
    await add_chain(services, ["bad", "good"], [timedelta(0), timedelta(0)])
    timers = Scheduler(services.db, {"test": FailsOn("bad")}, clock, max_attempts=2)
    for _ in range(4):
        clock.advance(minutes=10)
        await timers.run_due()
    assert await statuses(services) == {"bad": "failed", "good": "fired"}
    assert [k for k, _ in await fired(services)] == ["good"]


async def test_two_processes_fire_each_link_of_many_chains_exactly_once(
    services: Services, make_config: Any, clock: FakeClock
) -> None:
    for c in range(60):
        await add_chain(services, [f"c{c}:{i}" for i in range(5)], [timedelta(seconds=i) for i in range(5)])
    clock.advance(minutes=1)
    other = await open_services(make_config(), clock=clock)
    try:
        first = Scheduler(services.db, {"test": Recorder()}, clock, batch=20, worker_id="one")
        second = Scheduler(other.db, {"test": Recorder()}, clock, batch=20, worker_id="two")

        async def drain(s: Scheduler) -> None:
            while await s.run_due():
                await asyncio.sleep(0)

        await asyncio.gather(drain(first), drain(second))
        await asyncio.gather(drain(first), drain(second))
        keys = [k for k, _ in await fired(services)]
        assert len(keys) == 300 and len(set(keys)) == 300
    finally:
        await other.close()
