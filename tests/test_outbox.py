"""The outbox and dispatcher on SQLite and PostgreSQL: persisted first, retried, sent once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from channels.memory import MemoryChannel
from hub.aio import backoff
from hub.config import OutboxSection
from hub.errors import ChannelUnavailable, Conflict, DeliveryRejected
from hub.models import ConversationStatus, DeliveryResult, OutboundStatus, Role
from hub.outbox import Dispatcher
from hub.services import Services, open_services
from hub.store import schema
from tests.conftest import FakeClock
from tests.factories import inbound

SETTINGS = OutboxSection(
    max_attempts=3,
    base_delay_seconds=2,
    max_delay_seconds=60,
    concurrency=8,
    lease_seconds=30,
    poll_seconds=0.05,
)


@pytest.fixture
def channel(services: Services) -> MemoryChannel:
    mem = MemoryChannel("support")
    services.channels["support"] = mem
    return mem


def dispatcher(services: Services, worker: str = "w1", **overrides: Any) -> Dispatcher:
    settings = SETTINGS.model_copy(update=overrides)
    return Dispatcher(services.db, services.outbox, services.channels, settings, services.clock, worker)


async def conversation(services: Services, ext: str = "<c@x>") -> int:
    return (await services.inbox.ingest(inbound(ext, own_refs=(ext,), subject="Late parcel"))).conversation_id


async def status_of(services: Services, message_id: int) -> dict[str, Any]:
    async with services.db.read() as conn:
        row = (
            (await conn.execute(select(schema.outbox).where(schema.outbox.c.message_id == message_id)))
            .mappings()
            .one()
        )
    return dict(row)


async def test_reply_is_persisted_before_sending(services: Services, channel: MemoryChannel) -> None:
    agent = await services.directory.add_agent("eve", "correct horse battery", Role.AGENT)
    cid = await conversation(services)
    message = await services.outbox.reply(cid, "We are on it.", agent_id=agent.id)
    assert message.delivery is OutboundStatus.QUEUED and channel.sent == []
    row = await status_of(services, message.id)
    assert row["recipient"] == "ana@example.com" and row["status"] == "queued"
    conv = await services.inbox.conversation(cid)
    assert conv.status is ConversationStatus.PENDING

    assert await dispatcher(services).dispatch_once() == 1
    [sent] = channel.sent
    assert sent.text == "We are on it." and sent.reply_refs == ("<c@x>",)
    assert sent.subject == "Late parcel" and sent.recipient.address == "ana@example.com"
    timeline = await services.inbox.timeline(cid)
    assert timeline.messages[-1].delivery is OutboundStatus.DELIVERED
    assert "message.delivered" in [e.kind for e in timeline.events]


async def test_idempotency_key_queues_once(services: Services, channel: MemoryChannel) -> None:
    cid = await conversation(services)
    first = await services.outbox.reply(cid, "Hello", agent_id=None, idempotency_key="click-1")
    again = await services.outbox.reply(cid, "Hello", agent_id=None, idempotency_key="click-1")
    assert first.id == again.id
    other = await conversation(services, "<d@x>")
    with pytest.raises(Conflict):
        await services.outbox.reply(other, "Hello", agent_id=None, idempotency_key="click-1")
    assert (await services.outbox.counts())["queued"] == 1


async def test_transient_failures_back_off_then_deliver(
    services: Services, channel: MemoryChannel, clock: FakeClock
) -> None:
    cid = await conversation(services)
    message = await services.outbox.reply(cid, "Update: shipped", agent_id=None)
    channel.fail_next(ChannelUnavailable("provider down"))
    d = dispatcher(services)
    await d.dispatch_once()
    row = await status_of(services, message.id)
    assert row["status"] == "queued" and row["attempts"] == 1 and "provider down" in row["last_error"]
    assert row["next_attempt_at"] > clock()
    assert await d.dispatch_once() == 0
    clock.advance(seconds=SETTINGS.max_delay_seconds)
    assert await d.dispatch_once() == 1
    row = await status_of(services, message.id)
    assert row["status"] == "delivered" and row["attempts"] == 2 and len(channel.sent) == 1


async def test_permanent_failure_is_kept_and_can_be_retried(
    services: Services, channel: MemoryChannel
) -> None:
    cid = await conversation(services)
    message = await services.outbox.reply(cid, "Hi", agent_id=None)
    channel.fail_next(DeliveryRejected("550 mailbox unavailable"))
    d = dispatcher(services)
    await d.dispatch_once()
    [entry] = await services.outbox.entries(OutboundStatus.FAILED)
    assert entry.message_id == message.id and entry.last_error == "550 mailbox unavailable"
    timeline = await services.inbox.timeline(cid)
    assert timeline.messages[-1].delivery is OutboundStatus.FAILED
    assert await d.dispatch_once() == 0
    await services.outbox.retry(entry.id)
    await d.dispatch_once()
    assert (await services.outbox.entry(entry.id)).status is OutboundStatus.DELIVERED
    with pytest.raises(Conflict):
        await services.outbox.retry(entry.id)


async def test_gives_up_after_max_attempts(
    services: Services, channel: MemoryChannel, clock: FakeClock
) -> None:
    cid = await conversation(services)
    message = await services.outbox.reply(cid, "Hi", agent_id=None)
    channel.fail_next(*(ChannelUnavailable("timeout") for _ in range(SETTINGS.max_attempts)))
    d = dispatcher(services)
    for _ in range(SETTINGS.max_attempts):
        clock.advance(seconds=SETTINGS.max_delay_seconds)
        await d.dispatch_once()
    row = await status_of(services, message.id)
    assert row["status"] == "failed" and row["last_error"].startswith("gave up after 3 attempts")
    assert channel.sent == []


async def test_unknown_channel_fails_with_reason(services: Services) -> None:
    cid = await conversation(services)
    message = await services.outbox.reply(cid, "Hi", agent_id=None)
    await dispatcher(services).dispatch_once()
    row = await status_of(services, message.id)
    assert row["status"] == "failed" and "no channel named 'support'" in row["last_error"]


async def test_expired_claim_of_a_dead_worker_is_taken_over(
    services: Services, channel: MemoryChannel, clock: FakeClock
) -> None:
    cid = await conversation(services)
    message = await services.outbox.reply(cid, "Hi", agent_id=None)
    async with services.db.write() as conn:
        await conn.execute(
            update(schema.outbox).values(
                status="sending", claimed_by="dead", claimed_until=clock() + timedelta(seconds=30), attempts=1
            )
        )
    d = dispatcher(services)
    assert await d.dispatch_once() == 0
    clock.advance(seconds=31)
    assert await d.dispatch_once() == 1
    row = await status_of(services, message.id)
    assert row["status"] == "delivered" and row["attempts"] == 2


async def test_stop_releases_unfinished_claims(services: Services, clock: FakeClock) -> None:
    slow = MemoryChannel("support")
    slow.pause()
    services.channels["support"] = slow
    cid = await conversation(services)
    message = await services.outbox.reply(cid, "Hi", agent_id=None)
    d = dispatcher(services)
    d.start()
    for _ in range(100):
        if (await status_of(services, message.id))["status"] == "sending":
            break
        await asyncio.sleep(0.02)
    await d.stop(grace=0.1)
    row = await status_of(services, message.id)
    assert row["status"] == "queued" and row["claimed_by"] is None
    assert slow.sent == []


async def test_two_workers_send_each_message_once(
    services: Services, make_config: Any, clock: FakeClock
) -> None:
    """Two dispatchers with their own engines, as two processes would have."""
    shared = MemoryChannel("support")
    other = await open_services(make_config(), clock=clock)
    try:
        services.channels["support"] = other.channels["support"] = shared
        cids = [await conversation(services, f"<two{i}@x>") for i in range(10)]
        for i in range(60):
            await services.outbox.reply(cids[i % 10], f"reply {i}", agent_id=None)
        a = dispatcher(services, "a", concurrency=5)
        b = Dispatcher(
            other.db, other.outbox, other.channels, SETTINGS.model_copy(update={"concurrency": 5}), clock, "b"
        )

        async def drain(d: Dispatcher) -> None:
            while await d.dispatch_once():
                await asyncio.sleep(0)

        await asyncio.gather(drain(a), drain(b))
        assert len(shared.attempts) == 60 and len(set(shared.attempts)) == 60
        assert (await services.outbox.counts())["delivered"] == 60
    finally:
        await other.close()


def test_backoff_grows_and_stays_within_bounds() -> None:
    for attempt in range(1, 12):
        ceiling = min(60.0, 2.0 * 2 ** (attempt - 1))
        assert backoff(attempt, 2.0, 60.0, rng=lambda: 1.0) == ceiling
        assert backoff(attempt, 2.0, 60.0, rng=lambda: 0.0) == 1.0


async def test_status_reports_only_move_forward(services: Services, channel: MemoryChannel) -> None:
    channel.settings = channel.settings.model_copy(update={"confirm_delivery": False})
    cid = await conversation(services)
    message = await services.outbox.reply(cid, "Hi", agent_id=None)
    await dispatcher(services).dispatch_once()
    row = await status_of(services, message.id)
    assert row["status"] == "sent"
    provider_id = row["provider_id"]
    delivered = DeliveryResult(OutboundStatus.DELIVERED, provider_id)
    assert await services.outbox.record_status("support", provider_id, delivered)
    late_sent = DeliveryResult(OutboundStatus.SENT, provider_id)
    assert await services.outbox.record_status("support", provider_id, late_sent)
    assert (await status_of(services, message.id))["status"] == "delivered"
    assert not await services.outbox.record_status("support", "no-such-id", delivered)
    kinds = [e.kind for e in (await services.inbox.timeline(cid)).events]
    assert kinds.count("message.delivered") == 1


async def test_concurrent_sends_with_one_key_queue_one_message(services: Services) -> None:
    cid = await conversation(services)
    results = await asyncio.gather(
        *(
            services.outbox.reply(cid, "Hello", agent_id=None, idempotency_key="double-click")
            for _ in range(8)
        )
    )
    assert len({m.id for m in results}) == 1
    assert (await services.outbox.counts())["queued"] == 1
