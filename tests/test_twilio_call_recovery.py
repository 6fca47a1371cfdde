"""Every answered call is stored exactly once: when its batched write is lost, and under repeated webhooks."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import func, select

from hub.calls import IncomingCall
from hub.calls.recorder import MAX_BATCH
from hub.models import CallOutcome, Identity, IdentityKind
from hub.services import Services
from hub.store import schema
from tests.conftest import FakeClock
from tests.twilio_helpers import LINE
from tests.twilio_phone import BASE, CALLER, Phone, phone_hub

PARENT = "CA" + "1" * 32
AGENT_LEG = "CA" + "2" * 32


async def stored(services: Services, sid: str) -> tuple[int, int]:
    """How many call rows and call messages the store holds for a CallSid."""
    c, m = schema.calls, schema.messages
    async with services.db.read() as conn:
        calls = (await conn.execute(select(func.count()).where(c.c.external_id == sid))).scalar_one()
        messages = (await conn.execute(select(func.count()).where(m.c.external_id == sid))).scalar_one()
    return calls, messages


@asynccontextmanager
async def writes_held(services: Services) -> AsyncIterator[None]:
    """Keep the call writer from committing inside (SQLite's write lock; a table lock on PostgreSQL)."""
    async with services.db.write() as conn:
        if not services.db.is_sqlite:
            await conn.exec_driver_sql("LOCK TABLE calls IN EXCLUSIVE MODE")
        yield


async def incoming(phone: Phone, sid: str = PARENT) -> None:
    """Twilio asks what to do with a call; the hub answers."""
    params = {"CallSid": sid, "From": CALLER, "To": LINE, "CallStatus": "ringing", "Direction": "inbound"}
    answer = await phone.sender.post(f"{BASE}/incoming", params)
    assert answer.status == 200 and "<Dial" in answer.text


async def agent_leg(phone: Phone, status: str) -> None:
    """A status callback of the agent's leg, with the fields Twilio sends (the caller's number as From)."""
    params = phone.sender.status_params(
        AGENT_LEG, status, phone.clock.now, account_sid=phone.fake.account_sid, parent_sid=PARENT,
        extra={"From": CALLER, "To": "client:alice", "Direction": "outbound-dial"},
    )  # fmt: skip
    assert (await phone.sender.post(f"{BASE}/status", params)).status == 204


async def caller_leg(phone: Phone, status: str) -> None:
    """A status callback of the caller's own leg."""
    params = phone.sender.status_params(
        PARENT, status, phone.clock.now, account_sid=phone.fake.account_sid,
        extra={"From": CALLER, "To": LINE, "Direction": "inbound"},
    )  # fmt: skip
    assert (await phone.sender.post(f"{BASE}/status", params)).status == 204


async def lose_the_queued_write(phone: Phone) -> None:
    """Answer a call, then stop the writer before its batch commits: the call is not stored."""
    services = phone.services
    async with writes_held(services):
        await incoming(phone)
        await asyncio.sleep(0.1)
        await services.calls.recorder.stop(grace_seconds=0)
    assert await stored(services, PARENT) == (0, 0)


async def test_an_agent_leg_callback_stores_a_call_whose_write_was_lost(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        await lose_the_queued_write(phone)
        await agent_leg(phone, "ringing")
        assert await stored(phone.services, PARENT) == (1, 1)
        clock.advance(seconds=4)
        await agent_leg(phone, "answered")
        await agent_leg(phone, "ringing")
        clock.advance(seconds=30)
        await agent_leg(phone, "completed")
        await caller_leg(phone, "completed")
        await incoming(phone)
        await phone.services.calls.stop()
        assert await stored(phone.services, PARENT) == (1, 1)
        row = await phone.call_row(PARENT)
        assert row.outcome is CallOutcome.ANSWERED_IN_TIME and row.answered_by == phone.agents["alice"].id
        assert row.line is not None and row.team_id is not None


async def test_a_caller_leg_callback_stores_a_call_whose_write_was_lost(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        await lose_the_queued_write(phone)
        clock.advance(seconds=20)
        await caller_leg(phone, "completed")
        await caller_leg(phone, "completed")
        await phone.services.calls.stop()
        assert await stored(phone.services, PARENT) == (1, 1)
        row = await phone.call_row(PARENT)
        assert row.ended_at is not None and row.answered_at is None
        assert row.outcome in (CallOutcome.MISSED, CallOutcome.ABANDONED)


async def test_repeated_webhooks_and_callbacks_store_a_call_once(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        await asyncio.gather(*(incoming(phone) for _ in range(3)))
        await asyncio.gather(agent_leg(phone, "ringing"), agent_leg(phone, "ringing"), incoming(phone))
        await incoming(phone)
        await phone.services.calls.stop()
        assert await stored(phone.services, PARENT) == (1, 1)
        timeline = await phone.services.inbox.timeline((await phone.call_row(PARENT)).conversation_id)
        assert [m.external_id for m in timeline.messages] == [PARENT]


async def test_a_callback_before_the_answer_is_stored_keeps_the_call_single(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        await agent_leg(phone, "ringing")
        await incoming(phone)
        await agent_leg(phone, "ringing")
        await phone.services.calls.stop()
        assert await stored(phone.services, PARENT) == (1, 1)


async def test_the_dial_action_after_a_lost_write_stores_the_call_and_its_fallback(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        await lose_the_queued_write(phone)
        clock.advance(seconds=18)
        params = {"CallSid": PARENT, "From": CALLER, "To": LINE, "DialCallStatus": "no-answer"}
        answer = await phone.sender.post(f"{BASE}/dial-action?step=0", params)
        assert answer.status == 200 and f"{BASE}/voicemail" in answer.text
        await phone.services.calls.stop()
        assert await stored(phone.services, PARENT) == (1, 1)
        assert (await phone.call_row(PARENT)).route == "voicemail"


async def test_a_call_stored_again_resolves_to_the_id_it_was_stored_under(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        desk = phone.services.calls
        assert desk is not None
        line = phone.services.channels["main"].settings.lines[0]  # type: ignore[attr-defined]
        caller = Identity.of(IdentityKind.PHONE, CALLER)
        call = IncomingCall("main", PARENT, caller, line.line_name, line.team, clock())
        first = await desk.record(call)
        other = dataclasses.replace(call, call_sid=AGENT_LEG)
        again = await asyncio.gather(desk.record(call), desk.record(other), desk.record(call))
        assert again[0] == again[2] == first != again[1]
        assert await stored(phone.services, PARENT) == (1, 1)
        assert await stored(phone.services, AGENT_LEG) == (1, 1)


async def test_calls_of_several_callers_queued_past_a_batch_are_stored_once_each_on_their_conversation(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        services = phone.services
        line = services.channels["main"].settings.lines[0].line_name  # type: ignore[attr-defined]
        callers = [Identity.of(IdentityKind.PHONE, f"+4420794601{n:02d}") for n in range(3)]
        sids = [f"CA{n:032d}" for n in range(MAX_BATCH[services.db.dialect] + 7)]

        def call(n: int) -> IncomingCall:
            return IncomingCall("main", sids[n], callers[n % 3], line, "Support", clock.now)

        async with writes_held(services):
            waiting = [services.calls.record(call(n)) for n in range(len(sids))]
            again = services.calls.record(call(0))  # a repeated webhook, in the next batch
            await asyncio.sleep(0.1)
        ids = await asyncio.gather(*waiting)
        assert await again == ids[0] and len(set(ids)) == len(sids)
        c, m = schema.calls, schema.messages
        async with services.db.read() as conn:
            rows = (
                await conn.execute(
                    select(c.c.id, c.c.external_id, c.c.conversation_id, m.c.sender).join(
                        m, (m.c.external_id == c.c.external_id) & (m.c.conversation_id == c.c.conversation_id)
                    )
                )
            ).all()
            messages = (await conn.execute(select(func.count()).select_from(m))).scalar_one()
        assert sorted((r.external_id, r.id) for r in rows) == sorted(zip(sids, ids, strict=True))
        assert messages == len(sids)
        by_caller: dict[str, set[int]] = {}
        for r in rows:
            by_caller.setdefault(r.sender, set()).add(r.conversation_id)
        assert {sender: len(conversations) for sender, conversations in by_caller.items()} == {
            caller.address: 1 for caller in callers
        }
        assert len({r.conversation_id for r in rows}) == len(callers)
