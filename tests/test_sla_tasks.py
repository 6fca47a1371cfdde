"""Receipt checks (E2), follow-ups (C3), callbacks in customers' daytime (P3, P6), fax confirmations (F3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from hub.models import ChannelKind, ConversationStatus, Role
from hub.scheduler import Scheduler
from hub.services import Services
from hub.sla import calls_to_make, tasks
from hub.sla.handlers import timer_handlers
from hub.store import schema
from hub.web import create_app
from tests.conftest import FakeClock
from tests.conftest_web import as_role
from tests.factories import inbound
from tests.sla_helpers import STANDARD, book

MON_9 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


async def setup(
    services: Services, clock: FakeClock, channel: ChannelKind = ChannelKind.CHAT
) -> tuple[int, Scheduler]:
    clock.now = MON_9
    services.sla.set_book(book(STANDARD))
    sender = "+12125550123" if channel is ChannelKind.SMS else "visitor-1"
    cid = (await services.inbox.ingest(inbound("m1", sender, at=MON_9, channel=channel))).conversation_id
    runner = Scheduler(services.db, timer_handlers(services.sla), clock, bus=services.bus)
    return cid, runner


async def open_tasks(services: Services) -> list[dict[str, Any]]:
    async with services.db.read() as conn:
        return await tasks.list_open(conn)


async def test_an_unanswered_reply_gets_a_receipt_check_then_goes_overdue(
    services: Services, clock: FakeClock
) -> None:
    cid, runner = await setup(services, clock)
    clock.now = MON_9 + timedelta(minutes=30)
    await services.outbox.reply(cid, "Your parcel left the depot this morning.", agent_id=None)
    await services.sla.recompute([cid])
    clock.now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # 16 business hours after the reply: Wed 09:30
    await runner.run_due()
    assert await open_tasks(services) == []
    clock.now = datetime(2026, 11, 25, 9, 31, tzinfo=UTC)
    await runner.run_due()
    found = await open_tasks(services)
    assert [(t["kind"], t["due_at"]) for t in found] == [
        ("receipt_check", datetime(2026, 11, 25, 13, 30, tzinfo=UTC))
    ]
    clock.now = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
    await runner.run_due()
    await runner.run_due()
    async with services.db.read() as conn:
        kinds = [
            r[0]
            for r in await conn.execute(
                select(schema.events.c.kind).where(schema.events.c.kind.like("task.%"))
            )
        ]
    assert kinds == ["task.created", "task.overdue"]


async def test_a_customer_answer_cancels_the_receipt_check(services: Services, clock: FakeClock) -> None:
    cid, runner = await setup(services, clock)
    clock.now = MON_9 + timedelta(minutes=30)
    await services.outbox.reply(cid, "Your parcel left the depot this morning.", agent_id=None)
    await services.sla.recompute([cid])
    clock.now = MON_9 + timedelta(hours=2)
    await services.inbox.ingest(
        inbound("m2", "visitor-1", at=clock.now, channel=ChannelKind.CHAT, text="Got it, thanks")
    )
    await services.sla.recompute([cid])
    clock.now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    await runner.run_due()
    assert await open_tasks(services) == []


async def test_follow_up_after_resolution_unless_reopened(services: Services, clock: FakeClock) -> None:
    cid, runner = await setup(services, clock)
    clock.now = MON_9 + timedelta(minutes=30)
    await services.inbox.set_status(cid, ConversationStatus.RESOLVED)
    await services.sla.recompute([cid])
    clock.now = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    await runner.run_due()
    found = await open_tasks(services)
    assert [(t["kind"], t["conversation_id"]) for t in found] == [("follow_up", cid)]

    clock.now = MON_9
    second = (
        await services.inbox.ingest(inbound("m9", "visitor-2", at=MON_9, channel=ChannelKind.CHAT))
    ).conversation_id
    await services.inbox.set_status(second, ConversationStatus.RESOLVED)
    await services.sla.recompute([second])
    clock.now = MON_9 + timedelta(hours=1)
    await services.inbox.set_status(second, ConversationStatus.OPEN)
    await services.sla.recompute([second])
    clock.now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    await runner.run_due()
    assert [t["conversation_id"] for t in await open_tasks(services)] == [cid]


async def test_callbacks_land_inside_the_customers_daytime(services: Services, clock: FakeClock) -> None:
    cid, _ = await setup(services, clock, ChannelKind.SMS)
    async with services.db.write() as conn:
        await calls_to_make.schedule_callback(
            conn,
            book(STANDARD),
            cid,
            key="CA1",
            requested_at=MON_9,
            now=MON_9,
            points=["refund status"],
            reason="missed call",
        )
        again = await calls_to_make.schedule_callback(
            conn, book(STANDARD), cid, key="CA1", requested_at=MON_9, now=MON_9
        )
    assert again == []
    (task,) = await open_tasks(services)
    # New York daytime 09:00-20:00 is 14:00-01:00 in London; London is open 09:00-17:00.
    assert task["not_before"] == datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    assert task["due_at"] == datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    assert task["payload"]["customer_zone"] == "America/New_York"
    assert task["payload"]["points"] == ["refund status"]


async def test_a_delivered_fax_gets_a_confirmation_task(services: Services, clock: FakeClock) -> None:
    cid, _ = await setup(services, clock)
    delivered = datetime(2026, 11, 23, 16, 30, tzinfo=UTC)
    async with services.db.write() as conn:
        await calls_to_make.schedule_fax_confirmation(conn, book(STANDARD), cid, 77, delivered, delivered)
    (task,) = await open_tasks(services)
    assert (task["kind"], task["due_at"]) == ("fax_confirm", datetime(2026, 11, 24, 10, 30, tzinfo=UTC))


async def test_agents_list_and_complete_tasks(
    services: Services, clock: FakeClock, aiohttp_client: Any
) -> None:
    cid, _ = await setup(services, clock)
    async with services.db.write() as conn:
        await calls_to_make.schedule_fax_confirmation(conn, book(STANDARD), cid, 77, MON_9, MON_9)
    client = await aiohttp_client(create_app(services))
    agent = await as_role(client, services, Role.AGENT)
    items = (await agent.get(f"/api/tasks?conversation_id={cid}"))["items"]
    assert [i["kind"] for i in items] == ["fax_confirm"]
    await agent.post(f"/api/tasks/{items[0]['id']}/done", {"note": "called, all 3 pages legible"})
    await agent.post(f"/api/tasks/{items[0]['id']}/done", {}, expect=409)
    assert (await agent.get("/api/tasks"))["items"] == []
    async with services.db.read() as conn:
        done = (await conn.execute(select(schema.events).where(schema.events.c.kind == "task.done"))).one()
    assert done.agent_id == agent.agent_id and done.data["note"] == "called, all 3 pages legible"
    async with client.get("/api/tasks") as response:
        assert response.status == 401


async def test_answer_window_comes_from_the_matching_policy(services: Services) -> None:
    service = services.sla
    service.set_book(
        book(
        {
            "phone": {"country": "US"},
            "policies": [
                {
                    "name": "hotline",
                    "when": {"all": [{"field": "mailbox", "operator": "is", "value": "hotline"}]},
                    "phone_answer": {"seconds": 10},
                },
                {"name": "rest"},
            ],
        }
        )
    )  # fmt: skip
    assert service.answer_target("hotline").window == timedelta(seconds=10)
    assert service.answer_target("sales").window == timedelta(seconds=18)
