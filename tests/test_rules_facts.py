"""`load_facts`: what conditions see of a conversation in the store."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update

from hub.models import ConversationStatus, Priority
from hub.rules.calendars import CalendarSpec
from hub.rules.conditions import load_facts
from hub.services import Services
from hub.store import schema
from tests.conftest import FakeClock
from tests.conftest_web import add_agent
from tests.factories import inbound


async def test_facts_come_from_the_conversation_its_message_contact_team_and_agent(
    services: Services, clock: FakeClock
) -> None:
    first = await services.inbox.ingest(
        inbound(
            "<f1@x>",
            "wang.fang@example.cn",
            text="包裹还没到",
            subject="订单 48213",
            sender_name="王芳",
            language="zh",
            own_refs=("<f1@x>",),
        )
    )
    cid = first.conversation_id
    second = await services.inbox.ingest(
        inbound(
            "<f2@x>", "wang.fang@example.cn", text="还在等", subject="Re: 订单 48213", reply_refs=("<f1@x>",)
        )
    )
    assert second.conversation_id == cid
    team = await services.directory.add_team("china-desk")
    agent = await add_agent(services, username="li.na")
    await services.inbox.assign(cid, agent.id)
    await services.inbox.set_tags(cid, add=["VIP"])
    await services.inbox.set_priority(cid, Priority.HIGH)
    await services.inbox.set_status(cid, ConversationStatus.PENDING)
    async with services.db.write() as conn:
        await conn.execute(
            update(schema.conversations).where(schema.conversations.c.id == cid).values(team_id=team.id)
        )

    shanghai = CalendarSpec.model_validate(
        {"time_zone": "Asia/Shanghai", "hours": {"mon": ["09:00-18:00"]}, "holidays": {"country": "CN"}}
    ).build("china")
    monday_morning_utc = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    async with services.db.read() as conn:
        latest = await load_facts(conn, cid, None, shanghai, monday_morning_utc)
        earlier = await load_facts(conn, cid, first.message_id, None, monday_morning_utc)
        at_night = await load_facts(conn, cid, None, shanghai, datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    assert latest.body == "还在等" and latest.subject == "Re: 订单 48213"
    assert latest.message_id == second.message_id and latest.conversation_id == cid
    assert earlier.body == "包裹还没到" and earlier.message_id == first.message_id
    assert latest.sender == "wang.fang@example.cn" and latest.contact_name == "王芳"
    assert latest.language == "zh" and latest.channel == "email" and latest.mailbox == "support"
    assert latest.tags == frozenset({"vip"}) and latest.priority == "high" and latest.status == "pending"
    assert latest.team == "china-desk" and latest.assignee == "li.na"
    assert latest.in_business_hours is True and at_night.in_business_hours is False
    assert earlier.in_business_hours is None
