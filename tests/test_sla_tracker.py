"""SLA clocks kept in the store: deadlines, pauses, warnings and breaches once, after downtime too."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.events import QUEUE_LIMIT
from hub.models import ChannelKind, ConversationStatus
from hub.scheduler import Scheduler
from hub.services import Services, open_services
from hub.sla import history
from hub.sla.service import SlaService
from hub.sla.tracker import CHECK, Tracker
from hub.store import bulk, schema
from tests.conftest import FakeClock
from tests.factories import inbound
from tests.sla_helpers import STANDARD, book, cycles, due, sla_events

MON_9 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def sla(services: Services) -> SlaService:
    return SlaService(services.db, services.bus, services.clock, book(STANDARD))


def timers(services: Services, service: SlaService) -> Scheduler:
    return Scheduler(services.db, {CHECK: service.tracker.fire}, services.clock, bus=services.bus)


async def test_warning_breach_and_fulfilment_are_recorded_once_at_their_times(
    services: Services, clock: FakeClock
) -> None:
    clock.now = MON_9
    cid = (await services.inbox.ingest(inbound("m1", at=MON_9))).conversation_id
    service = sla(services)
    await service.recompute([cid])
    found = await cycles(services, cid)
    assert found[("first_response", 0)].due_at == MON_9 + timedelta(hours=1)
    assert found[("resolution", 0)].due_at == MON_9 + timedelta(hours=8)
    assert await due(services, cid) == (MON_9 + timedelta(hours=1), None)

    scheduler = timers(services, service)
    clock.advance(minutes=50)
    await scheduler.run_due()
    assert await sla_events(services) == [("sla.warning", "first_response", MON_9 + timedelta(minutes=45))]
    clock.advance(minutes=40)
    await scheduler.run_due()
    await scheduler.run_due()
    assert (await sla_events(services))[1:] == [
        ("sla.breached", "first_response", MON_9 + timedelta(hours=1))
    ]

    clock.advance(minutes=10)
    await services.outbox.reply(cid, "Sorry for the wait: your parcel left today.", agent_id=None)
    await service.recompute([cid])
    await service.recompute([cid])
    await scheduler.run_due()
    kinds = [k for k, _, _ in await sla_events(services)]
    assert kinds == ["sla.warning", "sla.breached", "sla.fulfilled"]
    assert (await due(services, cid))[0] == MON_9 + timedelta(hours=8)
    assert (await cycles(services, cid))[("first_response", 0)].business_seconds == 100 * 60


async def test_pending_pauses_the_clock_and_the_deadline_moves(services: Services, clock: FakeClock) -> None:
    clock.now = MON_9
    cid = (await services.inbox.ingest(inbound("m1", at=MON_9, channel=ChannelKind.CHAT))).conversation_id
    service = sla(services)
    clock.advance(minutes=20)
    await services.inbox.set_status(cid, ConversationStatus.PENDING)
    await service.recompute([cid])
    assert (await due(services, cid))[0] is None
    assert (await cycles(services, cid))[("first_response", 0)].paused

    clock.advance(hours=2)
    await services.inbox.ingest(inbound("m2", at=clock.now, text="Any news?", channel=ChannelKind.CHAT))
    await service.recompute([cid])
    assert (await due(services, cid))[0] == MON_9 + timedelta(hours=3)
    scheduler = timers(services, service)
    clock.advance(minutes=20)
    await scheduler.run_due()
    assert await sla_events(services) == []
    clock.advance(minutes=10)
    await scheduler.run_due()
    assert await sla_events(services) == [
        ("sla.warning", "first_response", MON_9 + timedelta(hours=2, minutes=45))
    ]


async def test_holidays_and_weekends_are_skipped(services: Services, clock: FakeClock) -> None:
    christmas_eve = datetime(2026, 12, 24, 16, 30, tzinfo=UTC)
    clock.now = christmas_eve
    cid = (await services.inbox.ingest(inbound("m1", at=christmas_eve))).conversation_id
    await sla(services).recompute([cid])
    # 25 Dec is Christmas, 26–27 the weekend, 28 Dec the Boxing Day substitute holiday.
    assert (await due(services, cid))[0] == datetime(2026, 12, 29, 9, 30, tzinfo=UTC)


async def test_first_matching_policy_applies_and_new_rules_recompute(
    services: Services, clock: FakeClock
) -> None:
    clock.now = MON_9
    cid = (await services.inbox.ingest(inbound("m1", at=MON_9))).conversation_id
    service = sla(services)
    await service.recompute([cid])
    assert (await cycles(services, cid))[("first_response", 0)].policy == "standard"
    await services.inbox.set_tags(cid, add=["complaint"])
    await service.recompute([cid])
    found = await cycles(services, cid)
    assert found[("first_response", 0)].policy == "complaints"
    assert found[("first_response", 0)].due_at == MON_9 + timedelta(minutes=30)

    service.set_book(book({"policies": [{"name": "relaxed", "first_response": "4h"}]}))
    assert await service.recompute_all() == 1
    found = await cycles(services, cid)
    assert set(found) == {("first_response", 0)}
    assert found[("first_response", 0)].due_at == MON_9 + timedelta(hours=4)


async def test_overdue_items_fire_once_after_downtime_dated_when_they_happened(
    services: Services, clock: FakeClock, make_config: object
) -> None:
    clock.now = MON_9
    ids = []
    for n in range(3):
        at = MON_9 + timedelta(minutes=10 * n)
        ids.append(
            (await services.inbox.ingest(inbound(f"m{n}", f"c{n}@example.com", at=at))).conversation_id
        )
    await sla(services).recompute(ids)

    clock.now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    restarted = await open_services(make_config(), clock=clock)  # type: ignore[operator]
    try:
        service = sla(restarted)
        await timers(restarted, service).run_due()
        await timers(restarted, service).run_due()
        events = await sla_events(restarted)
    finally:
        await restarted.close()
    breaches = sorted((at, m) for k, m, at in events if k == "sla.breached")
    assert breaches == sorted(
        [(MON_9 + timedelta(hours=1, minutes=10 * n), "first_response") for n in range(3)]
        + [(MON_9 + timedelta(hours=8), "resolution")]
        + [(MON_9 + timedelta(days=1, minutes=10 * n), "resolution") for n in (1, 2)]
    )
    assert len([k for k, _, _ in events if k == "sla.warning"]) == 6


async def test_two_processes_record_each_breach_once(
    services: Services, clock: FakeClock, make_config: object
) -> None:
    clock.now = MON_9
    ids = []
    for n in range(40):
        ids.append(
            (await services.inbox.ingest(inbound(f"m{n}", f"c{n}@example.com", at=MON_9))).conversation_id
        )
    await sla(services).recompute(ids)
    clock.now = MON_9 + timedelta(days=1)
    other = await open_services(make_config(), clock=clock)  # type: ignore[operator]
    try:
        first, second = sla(services), sla(other)
        await asyncio.gather(
            timers(services, first).run_due(),
            timers(other, second).run_due(),
            first.recompute(ids),
            second.recompute(ids),
        )
        events = await sla_events(services)
    finally:
        await other.close()
    assert len([e for e in events if e[0] == "sla.breached"]) == 80
    assert len([e for e in events if e[0] == "sla.warning"]) == 80


async def test_two_processes_computing_new_cycles_at_once_record_each_breach_once(
    services: Services, clock: FakeClock, make_config: object
) -> None:
    clock.now = MON_9
    ids = []
    for n in range(40):
        ids.append(
            (await services.inbox.ingest(inbound(f"m{n}", f"c{n}@example.com", at=MON_9))).conversation_id
        )
    clock.now = MON_9 + timedelta(days=1)
    other = await open_services(make_config(), clock=clock)  # type: ignore[operator]
    try:
        await asyncio.gather(sla(services).recompute(ids), sla(other).recompute(ids))
        events = await sla_events(services)
    finally:
        await other.close()
    assert len([e for e in events if e[0] == "sla.breached"]) == 80
    assert len([e for e in events if e[0] == "sla.warning"]) == 80


async def test_a_deadline_across_the_autumn_clock_change(services: Services, clock: FakeClock) -> None:
    friday_4pm_bst = datetime(2026, 10, 23, 15, 0, tzinfo=UTC)
    clock.now = friday_4pm_bst
    cid = (await services.inbox.ingest(inbound("m1", at=friday_4pm_bst))).conversation_id
    service = SlaService(
        services.db, services.bus, clock, book({"policies": [{"name": "mail", "first_response": "4h"}]})
    )
    await service.recompute([cid])
    # One hour on Friday (BST), three on Monday: 12:00 GMT, which is 12:00 UTC after the change.
    assert (await due(services, cid))[0] == datetime(2026, 10, 26, 12, 0, tzinfo=UTC)


async def test_a_running_clock_misses_no_conversation_of_a_large_batch(
    services: Services, clock: FakeClock
) -> None:
    clock.now = MON_9
    service = sla(services)
    service.start()
    try:
        first = (await services.inbox.ingest(inbound("first", at=MON_9))).conversation_id
        async with asyncio.timeout(10):
            while (await due(services, first))[0] is None:
                await asyncio.sleep(0.02)
        batch = [inbound(f"b{n}", f"b{n}@example.com", at=MON_9) for n in range(QUEUE_LIMIT + 200)]
        ids = [r.conversation_id for r in await services.inbox.ingest_many(batch)]
        c = schema.conversations
        async with asyncio.timeout(30):
            while True:
                async with services.db.read() as conn:
                    waiting = (
                        await conn.execute(
                            select(func.count()).select_from(c).where(c.c.id.in_(ids), c.c.due_at.is_(None))
                        )
                    ).scalar_one()
                if waiting == 0:
                    break
                await asyncio.sleep(0.1)
    finally:
        await service.stop()


async def test_a_busy_event_loop_does_not_shrink_recomputations_on_postgresql_to_one_conversation(
    services: Services, clock: FakeClock
) -> None:
    clock.now = MON_9
    batch = [inbound(f"busy{n}", f"busy{n}@example.com", at=MON_9) for n in range(60)]
    ids = sorted({r.conversation_id for r in await services.inbox.ingest_many(batch)})
    service = sla(services)
    chunks: list[int] = []
    recompute = service.tracker.recompute

    async def slowly(conn: AsyncConnection, chunk: Sequence[int], now: datetime | None = None) -> Any:
        chunks.append(len(chunk))
        await asyncio.sleep(0.03)  # the loop serving other work meanwhile
        return await recompute(conn, chunk, now)

    service.tracker.recompute = slowly  # type: ignore[method-assign]
    await service.recompute(ids)
    assert sum(chunks) == len(ids)
    if services.db.dialect == "postgresql":
        assert len(chunks) <= 3
    else:
        assert chunks[1:] and max(chunks[1:]) < chunks[0]
    assert [cid for cid in ids if (await due(services, cid))[0] is None] == []


async def test_under_sustained_changes_recomputations_gather_as_long_as_the_last_one_took(
    services: Services, clock: FakeClock
) -> None:
    clock.now = MON_9
    cid = (await services.inbox.ingest(inbound("paced", at=MON_9))).conversation_id
    service = sla(services)
    rounds: list[tuple[float, float]] = []
    running = asyncio.Event()
    prepare = service.tracker.prepare

    async def slowly(
        conn: AsyncConnection, chunk: Sequence[int], now: datetime | None = None, **how: Any
    ) -> Any:
        began = time.monotonic()
        running.set()
        await asyncio.sleep(0.3)
        try:
            return await prepare(conn, chunk, now, **how)
        finally:
            running.clear()
            rounds.append((began, time.monotonic()))

    service.tracker.prepare = slowly  # type: ignore[method-assign]
    changed = [{"kind": "conversation.tagged", "conversation_id": cid}]
    service.start()
    try:
        async with asyncio.timeout(10):

            async def rounds_done(n: int) -> None:
                while len(rounds) < n:
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.1)

            services.bus.publish(changed)
            await rounds_done(1)  # the full recomputation on start, with no change meanwhile
            services.bus.publish(changed)
            await running.wait()
            services.bus.publish(changed)  # a change while that round runs: changes keep coming
            await rounds_done(3)
            quiet_change = time.monotonic()  # the last round saw no change meanwhile
            services.bus.publish(changed)
            await rounds_done(4)
    finally:
        await service.stop()
    sustained, then = rounds[1], rounds[2]
    assert then[0] - sustained[1] >= 0.25
    assert rounds[3][0] - quiet_change < 0.25


async def test_a_reply_stored_while_a_full_recomputation_writes_what_it_read_before_is_caught_up(
    services: Services, clock: FakeClock
) -> None:
    """A full recomputation reads a batch before it writes it; a change in between is recomputed after."""
    clock.now = MON_9
    cid = (await services.inbox.ingest(inbound("early", at=MON_9))).conversation_id
    clock.advance(minutes=10)
    service = sla(services)
    read, go_on = asyncio.Event(), asyncio.Event()
    prepare = service.tracker.prepare

    async def then_a_reply(
        conn: AsyncConnection, chunk: Sequence[int], now: datetime | None = None, **how: Any
    ) -> Any:
        plan = await prepare(conn, chunk, now, **how)
        read.set()
        await go_on.wait()
        return plan

    service.tracker.prepare = then_a_reply  # type: ignore[method-assign]
    service.start()
    try:
        async with asyncio.timeout(10):
            await read.wait()
            await services.outbox.reply(cid, "Your parcel left today.", agent_id=None)
            go_on.set()
            while (
                getattr((await cycles(services, cid)).get(("first_response", 0)), "fulfilled_at", None)
                is None
            ):
                await asyncio.sleep(0.02)
    finally:
        await service.stop()
    assert (await due(services, cid))[0] == MON_9 + timedelta(hours=8)
    assert [k for k, _, _ in await sla_events(services)] == ["sla.fulfilled"]


@pytest.mark.parametrize(
    "store_settings", ["sqlite"], indirect=True
)  # PostgreSQL's plan depends on the table's size
async def test_histories_read_status_changes_through_their_own_index(services: Services) -> None:
    """The SLA clock reads a conversation's status changes, not every event it ever had."""
    async with services.db.read() as conn:
        compiled = history._status_query(conn)
        plan = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + compiled.sql, (bulk.listed(conn, [1, 2]),))
        steps = " / ".join(str(row[-1]) for row in plan)
    assert "USING INDEX ix_events_status_changes" in steps, steps


async def test_a_batch_read_before_another_process_recomputed_it_does_not_write_back_older_state(
    services: Services, clock: FakeClock
) -> None:
    """Process A reads a batch; the customer writes and process B recomputes; A writes after B."""
    clock.now = MON_9
    rules = book(STANDARD)
    first, second = Tracker(lambda: rules, clock), Tracker(lambda: rules, clock)
    cid = (await services.inbox.ingest(inbound("m1", at=MON_9, channel=ChannelKind.CHAT))).conversation_id
    clock.advance(minutes=10)
    await services.inbox.set_status(cid, ConversationStatus.PENDING)
    async with services.db.read() as conn:
        plan = await first.prepare(conn, [cid])
    assert plan is not None and plan.ahead[cid].due_at is None  # pending: no clock runs
    clock.advance(minutes=5)
    await services.inbox.ingest(inbound("m2", at=clock.now, text="Any news?", channel=ChannelKind.CHAT))
    async with services.db.write() as conn:
        await second.recompute(conn, [cid])
    running = await due(services, cid)
    async with services.db.write() as conn:
        await first.apply(conn, plan)
    t = schema.timers
    async with services.db.read() as conn:
        check = (await conn.execute(select(t.c.status, t.c.due_at).where(t.c.kind == CHECK))).one()
        again = await first.prepare(conn, [cid])
    assert running[0] is not None
    assert await due(services, cid) == running
    assert check.status == "pending"
    assert again is None  # what is stored is what the history computes to
