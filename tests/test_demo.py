"""`omnihub demo`: sample data on every channel, in both languages, with replies that deliver."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

import channels
from channels.memory import MemoryChannel
from hub import demo
from hub.bootstrap import DEMO_CHANNELS
from hub.clock import utcnow
from hub.config import Config
from hub.inbox import ConversationFilter
from hub.models import ChannelKind, ConversationStatus, Direction, Identity, OutboundStatus
from hub.outbox import Dispatcher
from hub.services import open_services
from hub.store import schema
from tests.factories import inbound

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def demo_config(make_config: Any) -> Config:
    """A configuration with the demo memory channels `omnihub init` writes."""
    config: Config = make_config(
        channels=[{"name": f"demo-{kind}", "kind": "memory"} for kind in DEMO_CHANNELS]
    )
    return config


async def test_demo_fills_every_channel_in_both_languages(demo_config: Config) -> None:
    now = utcnow()
    summary = await demo.run(demo_config, now=now)
    assert summary is not None
    assert 25 <= summary.total <= 40
    assert set(summary.conversations) == {k.value for k in demo.ACCOUNT}
    assert summary.languages["en"] >= 10
    assert summary.languages["zh"] >= 10
    assert len(summary.agents) >= 4
    assert all(password and len(password) >= 10 for password in summary.agents.values())

    services = await open_services(demo_config)
    try:
        conversations, total = await services.inbox.list(ConversationFilter(limit=100))
        assert total == summary.total
        assert {c.channel_account for c in conversations} == {f"demo-{k}" for k in DEMO_CHANNELS}
        assert {c.status for c in conversations} == set(ConversationStatus)
        assert any(c.assignee_id is None for c in conversations)
        assert sum(c.assignee_id is not None for c in conversations) >= total // 2
        assert all(c.tags for c in conversations)
        assert {c.priority.name for c in conversations} >= {"NORMAL", "HIGH", "URGENT"}
        snoozed = [c for c in conversations if c.status is ConversationStatus.SNOOZED]
        assert all(c.snoozed_until and c.snoozed_until > now for c in snoozed)

        created = sorted(c.created_at for c in conversations)
        assert created[-1] < now
        assert created[-1] - created[0] > timedelta(days=2)

        texts, directions = [], set()
        for conv in conversations:
            timeline = await services.inbox.timeline(conv.id)
            texts.extend(m.text for m in timeline.messages)
            directions |= {m.direction for m in timeline.messages}
            stamps = [m.created_at for m in timeline.messages]
            assert stamps == sorted(stamps)
            assert timeline.messages[0].direction is Direction.INBOUND
        assert directions == set(Direction)
        assert sum(bool(CJK.search(t)) for t in texts) >= 20
        for word in ("退款", "发票", "投诉", "快递", "refund", "invoice", "complaint", "delivery"):
            assert any(word in t.lower() for t in texts), word
        emails = [c for c in conversations if c.channel is ChannelKind.EMAIL]
        assert all(c.subject for c in emails)
        counts = await services.outbox.counts()
        assert counts[OutboundStatus.QUEUED.value] == summary.replies > 10

        names = [c.entry.name for c in channels.configured(demo_config)]
        built = {name: MemoryChannel(name) for name in names}
        dispatcher = Dispatcher(services.db, services.outbox, built, demo_config.outbox)
        while await dispatcher.dispatch_once():
            pass
        counts = await services.outbox.counts()
        assert counts[OutboundStatus.DELIVERED.value] == summary.replies
        sent = {name: len(ch.sent) for name, ch in built.items()}
        assert all(sent[f"demo-{k}"] for k in ("email", "sms", "whatsapp", "fax", "chat"))
        email = next(m for m in built["demo-email"].sent if m.subject and "[#" in m.subject)
        assert email.subject is not None
        assert email.subject.startswith("Re: ")
        assert "\n-- \n" in email.text
    finally:
        await services.close()


async def test_if_empty_adds_nothing_the_second_time(demo_config: Config) -> None:
    first = await demo.run(demo_config, if_empty=True, now=NOW)
    assert first is not None
    assert await demo.run(demo_config, if_empty=True, now=NOW) is None
    again = await demo.run(demo_config, now=NOW + timedelta(hours=1))
    assert again is not None
    assert again.total == 0
    assert again.skipped == first.total
    assert not any(again.agents.values())

    services = await open_services(demo_config)
    try:
        _, total = await services.inbox.list(ConversationFilter(limit=1))
        assert total == first.total
        async with services.db.read() as conn:
            messages = (await conn.execute(select(func.count()).select_from(schema.messages))).scalar_one()
        assert messages == first.messages + first.replies + first.notes
    finally:
        await services.close()


async def test_if_empty_respects_real_data(demo_config: Config) -> None:
    services = await open_services(demo_config)
    try:
        await services.inbox.ingest_many([inbound("<real@x>", "real@example.com")])
    finally:
        await services.close()
    assert await demo.run(demo_config, if_empty=True, now=NOW) is None


def test_sample_data_is_valid_and_deterministic() -> None:
    for scenario in demo.SCENARIOS:
        Identity.of(scenario.channel.identity_kind, scenario.address)
        assert scenario.steps[0].kind == demo.IN
        assert all(
            step.agent in {a.username for a in demo.AGENTS} for step in scenario.steps if step.kind != demo.IN
        )
        assert scenario.assignee is None or scenario.assignee in {a.username for a in demo.AGENTS}
        if scenario.channel is ChannelKind.EMAIL:
            assert scenario.subject
    assert len({(s.channel, s.address) for s in demo.SCENARIOS}) == len(demo.SCENARIOS)

    def plan() -> list[list[datetime]]:
        rng = random.Random(demo.SEED)
        return [demo._timeline(rng, s, NOW) for s in demo.SCENARIOS]

    first = plan()
    assert first == plan()
    for times in first:
        assert times == sorted(times)
        assert times[-1] < NOW
