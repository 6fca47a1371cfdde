"""The queue (P3): a long wait prompts the team once and owes a callback; agents take queued callers."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest
from pydantic import ValidationError

from channels.twilio.settings import QueueSettings
from hub.models import Availability, CallOutcome
from hub.sla import tasks
from tests.conftest import FakeClock
from tests.fakes.twilio_calls import Agent, SimCall
from tests.test_twilio_transfer import as_agent
from tests.twilio_helpers import LINE
from tests.twilio_phone import BASE, CALLER, phone_hub

QUEUED = {"fallback": ["queue", "voicemail"], "queue": {"prompt_after_seconds": 40, "max_wait_seconds": 300}}


async def test_a_caller_waiting_past_the_limit_prompts_the_team_once_and_is_owed_a_callback(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client, **QUEUED) as phone:
        call = await phone.sim.call(CALLER, LINE)
        assert call.visited[-1] == f"{BASE}/voicemail"
        row = await phone.call_row(call.sid)
        assert row.queue_prompted_at is not None
        (prompt,) = await phone.events("call.waiting_long")
        assert prompt["call_id"] == row.id and 40 <= prompt["waited_seconds"] < 300
        assert prompt["team_id"] == row.team_id
        async with phone.services.db.read() as conn:
            (task,) = await tasks.list_open(conn, row.conversation_id)
        assert task["kind"] == "callback"
        assert task["payload"]["reason"] == f"the caller waited {prompt['waited_seconds']} s in the queue"


async def test_an_available_agent_takes_a_queued_caller_who_is_rung_to_them_alone(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client, **QUEUED) as phone:
        alice = await as_agent(phone, "alice")
        carol = await as_agent(phone, "carol")
        taken: list[Any] = []

        async def take_after_a_while(call: SimCall, waited: int) -> None:
            if waited < 20 or taken:
                return
            call_id = (await phone.call_row(call.sid)).id
            refused = await carol.post(f"/api/calls/{call_id}/take", expect=409)
            assert "carol is away, not available" in refused["error"]
            phone.sim.agents["client:alice"] = Agent(answer_after=2, talk_seconds=None)
            taken.append(await alice.post(f"/api/calls/{call_id}/take"))
            again = await alice.post(f"/api/calls/{call_id}/take", expect=409)
            assert "is not waiting in the queue" in again["error"]

        call = await phone.sim.call(CALLER, LINE, while_queued=take_after_a_while)
        row = await phone.call_row(call.sid)
        assert taken == [{"call_id": row.id, "agent_id": phone.agents["alice"].id}]
        (update,) = phone.fake.calls[call.sid].updates
        dial = ET.fromstring(update["Twiml"]).find("Dial")
        assert dial is not None and [(n.tag, n.text) for n in dial] == [("Client", "alice")]
        assert "Please hold while we connect you to alice." in call.heard
        assert call.answered_by == "client:alice"
        assert row.answered_by == phone.agents["alice"].id and row.route == "agents"
        assert row.outcome is CallOutcome.ANSWERED_LATE
        assert await phone.availability("alice") is Availability.BUSY
        (picked,) = await phone.events("call.picked_up")
        assert picked["agent"] == phone.agents["alice"].id


async def test_the_callback_owed_for_a_long_wait_is_done_once_the_caller_is_answered(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    settings = {**QUEUED, "queue": {"prompt_after_seconds": 10, "max_wait_seconds": 300}}
    async with phone_hub(make_config, clock, aiohttp_client, **settings) as phone:
        alice = await as_agent(phone, "alice")
        owed: list[Any] = []

        async def take_once_prompted(call: SimCall, waited: int) -> None:
            row = await phone.call_row(call.sid)
            if row.queue_prompted_at is None or owed:
                return
            async with phone.services.db.read() as conn:
                owed.extend(await tasks.list_open(conn, row.conversation_id))
            phone.sim.agents["client:alice"] = Agent(answer_after=2, talk_seconds=None)
            await alice.post(f"/api/calls/{row.id}/take")

        call = await phone.sim.call(CALLER, LINE, while_queued=take_once_prompted)
        assert call.answered_by == "client:alice"
        assert [t["kind"] for t in owed] == ["callback"]
        row = await phone.call_row(call.sid)
        async with phone.services.db.read() as conn:
            assert await tasks.list_open(conn, row.conversation_id) == []
        (done,) = await phone.events("task.done")
        assert done["task_id"] == owed[0]["id"] and done["note"] == "the caller was answered"


async def test_a_queued_caller_whose_taker_does_not_answer_goes_back_to_the_queue(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client, **QUEUED) as phone:
        bob = await as_agent(phone, "bob")
        waits: list[int] = []

        async def take_once(call: SimCall, waited: int) -> None:
            waits.append(waited)
            if waited >= 20 and not phone.fake.calls[call.sid].updates:
                await bob.post(f"/api/calls/{(await phone.call_row(call.sid)).id}/take")

        call = await phone.sim.call(CALLER, LINE, while_queued=take_once)
        assert len(phone.fake.calls[call.sid].updates) == 1
        assert waits.count(0) == 2, "the caller entered the queue a second time"
        assert call.answered_by is None and call.visited[-1] == f"{BASE}/voicemail"
        assert (await phone.call_row(call.sid)).outcome is CallOutcome.VOICEMAIL


def test_the_prompt_must_come_before_the_caller_leaves_the_queue() -> None:
    with pytest.raises(ValidationError, match="prompt_after_seconds must be shorter"):
        QueueSettings(prompt_after_seconds=300, max_wait_seconds=300)


def test_without_a_set_prompt_the_team_is_prompted_after_two_minutes_or_half_the_longest_wait() -> None:
    assert QueueSettings().prompt_after == 120
    assert QueueSettings(max_wait_seconds=60).prompt_after == 30
    assert QueueSettings(prompt_after_seconds=45, max_wait_seconds=60).prompt_after == 45
