"""Transferring live calls (P4), wrapping them up (P5), and answering in time when the store is slow."""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from typing import Any

from sqlalchemy import text

from hub.models import Availability, Direction
from tests.conftest import FakeClock
from tests.conftest_web import Caller
from tests.fakes.twilio_calls import Agent
from tests.twilio_helpers import LINE
from tests.twilio_phone import BASE, CALLER, Phone, phone_hub


async def as_agent(phone: Phone, username: str) -> Caller:
    agent = phone.agents[username]
    token = await phone.services.directory.issue_token(agent.id, "tests")
    return Caller(phone.client, agent, {"Authorization": f"Bearer {token}"})


async def answered_by_alice(phone: Phone) -> tuple[Any, int]:
    phone.sim.agents["client:alice"] = Agent(answer_after=4, talk_seconds=None)
    call = await phone.sim.call(CALLER, LINE)
    assert call.on_hold.is_set()
    return call, (await phone.call_row(call.sid)).id


async def test_a_transfer_announces_the_target_whispers_to_them_and_bridges_once_they_accept(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        call, call_id = await answered_by_alice(phone)
        alice = await as_agent(phone, "alice")
        phone.sim.agents["+441134960001"] = Agent(answer_after=3, talk_seconds=None)
        body = {"agent_id": phone.agents["bob"].id, "reason": "a billing question"}
        done = await alice.post(f"/api/calls/{call_id}/transfer", body)
        assert done == {"call_id": call_id, "to": "bob", "agents": [phone.agents["bob"].id]}
        await phone.sim.settle()
        (update,) = phone.fake.calls[call.sid].updates
        dial = ET.fromstring(update["Twiml"]).find("Dial")
        assert dial is not None and dial.find("Number") is not None
        assert "whisper" in dial.find("Number").get("url", "")  # type: ignore[union-attr]
        assert "I am transferring you to bob, Customer Care. Please hold." in call.heard
        whisper = next(said for said in call.heard if said.startswith("[whisper to +441134960001]"))
        assert CALLER in whisper and "a billing question" in whisper and "Press 1" in whisper
        assert call.answered_by == "+441134960001"
        assert await phone.availability("alice") is Availability.AVAILABLE
        assert await phone.availability("bob") is Availability.BUSY
        (moved,) = await phone.events("call.transferred")
        assert moved["to"] == "bob" and moved["reason"] == "a billing question"


async def test_a_target_who_does_not_accept_the_whisper_is_never_bridged(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        call, call_id = await answered_by_alice(phone)
        phone.sim.agents["client:dave"] = Agent(answer_after=2, accept_whisper=False)
        alice = await as_agent(phone, "alice")
        await alice.post(f"/api/calls/{call_id}/transfer", {"team": "Escalations", "reason": "refund"})
        await phone.sim.settle()
        assert call.answered_by is None and call.visited[-1] == f"{BASE}/voicemail"
        assert await phone.availability("dave") is Availability.AVAILABLE


async def test_transfers_to_unavailable_targets_are_refused_with_the_reason(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        _, call_id = await answered_by_alice(phone)
        alice = await as_agent(phone, "alice")
        refused = await alice.post(
            f"/api/calls/{call_id}/transfer",
            {"agent_id": phone.agents["carol"].id, "reason": "x"},
            expect=409,
        )
        assert "carol is away, not available" in refused["error"]
        await phone.services.directory.update_agent(phone.agents["dave"].id, availability=Availability.AWAY)
        refused = await alice.post(
            f"/api/calls/{call_id}/transfer", {"team": "Escalations", "reason": "x"}, expect=409
        )
        assert "nobody in Escalations is available" in refused["error"]
        await alice.post(f"/api/calls/{call_id}/transfer", {"reason": "x"}, expect=422)
        await alice.post(f"/api/calls/{call_id}/transfer", {"team": "Nope", "reason": "x"}, expect=404)
        assert phone.fake.calls[next(iter(phone.fake.calls))].updates == []


async def test_a_call_cannot_be_wrapped_up_without_a_summary_which_becomes_a_note(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        call, call_id = await answered_by_alice(phone)
        await phone.sim.hang_up(call)
        alice = await as_agent(phone, "alice")
        refused = await alice.post(f"/api/calls/{call_id}/wrap-up", {"summary": "  "}, expect=422)
        assert "summary note (P5)" in refused["error"]
        await alice.post(f"/api/calls/{call_id}/wrap-up", {}, expect=422)
        summary = "Replacement lid agreed; label sent by e-mail today."
        done = await alice.post(f"/api/calls/{call_id}/wrap-up", {"summary": summary})
        shown = await alice.get(f"/api/calls/{call_id}")
        assert shown["summary_note_id"] == done["note_id"] and shown["wrapped_up_at"] is not None
        timeline = await phone.services.inbox.timeline(shown["conversation_id"])
        (note,) = [m for m in timeline.messages if m.direction is Direction.NOTE]
        assert note.text == f"Call summary: {summary}" and note.author_id == phone.agents["alice"].id
        await alice.post(f"/api/calls/{call_id}/wrap-up", {"summary": summary}, expect=409)
        missing = await alice.get(f"/api/calls/{call_id + 1000}", expect=404)
        assert f"call {call_id + 1000} does not exist" in missing["error"]
        await alice.post(f"/api/calls/{call_id + 1000}/wrap-up", {"summary": summary}, expect=404)


async def test_the_incoming_call_is_answered_before_the_call_is_stored_when_writing_is_slow(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        params = {"CallSid": "CA" + "4" * 32, "From": CALLER, "To": LINE, "CallStatus": "ringing"}
        services = phone.services
        async with services.db.write() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("LOCK TABLE conversations IN EXCLUSIVE MODE"))
            started = time.monotonic()
            answer = await phone.sender.post(f"{BASE}/incoming", params)
            took = time.monotonic() - started
        assert answer.status == 200 and took < 2
        assert [verb.tag for verb in ET.fromstring(answer.text)] == ["Say", "Dial"]
        ringing = phone.sender.status_params(
            "CA" + "3" * 32,
            "ringing",
            clock.now,
            account_sid=phone.fake.account_sid,
            parent_sid=params["CallSid"],
        )
        assert (await phone.sender.post(f"{BASE}/status", ringing)).status == 204
        row = await phone.call_row(params["CallSid"])
        assert row.route == "agents" and row.ringing_at == clock.now.replace(microsecond=0)
        assert await phone.events("call.unknown_callback") == []


async def test_the_incoming_call_goes_to_voicemail_in_time_when_reading_is_slow(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client, answer_deadline_seconds=0.3) as phone:
        params = {"CallSid": "CA" + "5" * 32, "From": CALLER, "To": LINE, "CallStatus": "ringing"}
        services = phone.services
        held = []
        try:
            while True:
                try:
                    held.append(await asyncio.wait_for(services.db.engine.connect(), 0.2))
                except TimeoutError:
                    break
            started = time.monotonic()
            answer = await phone.sender.post(f"{BASE}/incoming", params)
            took = time.monotonic() - started
        finally:
            for conn in held:
                await conn.close()
        assert answer.status == 200 and took < 2
        (verb,) = ET.fromstring(answer.text)
        assert verb.tag == "Redirect" and (verb.text or "").endswith("/voicemail")
        await services.calls.stop()
        row = await phone.call_row(params["CallSid"])
        assert row.route == "voicemail"
        (slow,) = [e for e in await phone.events("call.fallback") if e.get("slow")]
        assert slow["reason"] == "the store answered too slowly"
