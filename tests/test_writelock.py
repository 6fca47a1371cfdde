"""SQLite's write lock: one holder at a time, urgent writers before background ones."""

from __future__ import annotations

import asyncio

from hub.store.writelock import WriteLock


async def test_urgent_writers_go_before_waiting_background_writers() -> None:
    lock = WriteLock()
    order: list[str] = []
    inside = 0

    async def writer(name: str, urgent: bool) -> None:
        nonlocal inside
        async with lock.hold(urgent=urgent):
            inside += 1
            assert inside == 1
            order.append(name)
            await asyncio.sleep(0.01)
            inside -= 1

    first = asyncio.create_task(writer("first", False))
    await asyncio.sleep(0)
    background = [asyncio.create_task(writer(f"bg{i}", False)) for i in range(3)]
    await asyncio.sleep(0)
    urgent = [asyncio.create_task(writer(f"in{i}", True)) for i in range(2)]
    await asyncio.gather(first, *background, *urgent)
    assert order == ["first", "in0", "in1", "bg0", "bg1", "bg2"]
    assert not lock.locked()


async def test_a_cancelled_waiter_neither_holds_nor_blocks_the_lock() -> None:
    lock = WriteLock()
    async with lock.hold():
        waiting = asyncio.create_task(lock.hold(urgent=True).__aenter__())
        await asyncio.sleep(0)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
    assert not lock.locked()
    async with asyncio.timeout(1), lock.hold():
        assert lock.locked()


async def test_a_waiter_cancelled_just_before_the_lock_is_released_raises_cancelled() -> None:
    lock = WriteLock()

    async def wait_for_lock() -> None:
        async with lock.hold():
            pass

    async with lock.hold():
        waiting = asyncio.create_task(wait_for_lock())
        await asyncio.sleep(0)
        waiting.cancel()
    # The release above found the cancelled waiter first; the waiter only wakes up now.
    (outcome,) = await asyncio.gather(waiting, return_exceptions=True)
    assert isinstance(outcome, asyncio.CancelledError)
    assert not lock.locked()
    async with asyncio.timeout(1), lock.hold():
        assert lock.locked()
