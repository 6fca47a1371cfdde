"""Calling a customer back from a callback task (P6): inside their daytime, agent's phone first."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

from hub.models import Availability, CallOutcome, Direction
from hub.sla import tasks
from tests.conftest import FakeClock
from tests.fakes.twilio_calls import Agent
from tests.test_twilio_transfer import as_agent
from tests.twilio_helpers import LINE
from tests.twilio_phone import BASE, CALLER, Phone, phone_hub

MORNING = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
"""10:00 in London, inside the customer's daytime (09:00-20:00)."""


async def abandoned_callback(phone: Phone) -> dict[str, Any]:
    call = await phone.sim.call(CALLER, LINE, hang_up_after=8)
    row = await phone.call_row(call.sid)
    async with phone.services.db.read() as conn:
        (task,) = await tasks.list_open(conn, row.conversation_id)
    return task


async def test_an_agent_calls_the_customer_back_from_the_task_their_phone_ringing_first(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client, start=MORNING) as phone:
        task = await abandoned_callback(phone)
        before = set(phone.fake.calls)
        bob = await as_agent(phone, "bob")
        placed = await bob.post(f"/api/tasks/{task['id']}/call")
        (new,) = set(phone.fake.calls) - before
        created = phone.fake.calls[new]
        assert placed == {"task_id": task["id"], "call_id": placed["call_id"], "call_sid": new, "to": CALLER}
        assert (created.to, created.from_) == ("+441134960001", LINE)
        twiml = ET.fromstring(created.created_with["Twiml"])
        briefing = twiml.find("Say")
        assert briefing is not None and (briefing.text or "").startswith(f"Calling {CALLER} back.")
        dial = twiml.find("Dial")
        assert dial is not None and dial.get("callerId") == LINE
        assert [n.text for n in dial.findall("Number")] == [CALLER]
        (placed_event,) = await phone.events("call.callback_placed")
        assert placed_event["task_id"] == task["id"] and placed_event["call_sid"] == new
        assert placed_event["call_id"] == placed["call_id"]
        assert created.created_with["StatusCallback"].endswith("/status?placed=callback")
        assert created.status_events == ("initiated", "ringing", "answered", "completed")
        status = dial.find("Number")
        assert status is not None and status.get("statusCallback") == created.created_with["StatusCallback"]


BOB = "+441134960001"


async def placed_callback(phone: Phone, task: dict[str, Any]) -> tuple[Any, int]:
    """Bob calls the customer back from the task; the fake created the call the test then plays."""
    before = set(phone.fake.calls)
    placed = await (await as_agent(phone, "bob")).post(f"/api/tasks/{task['id']}/call")
    (new,) = set(phone.fake.calls) - before
    return phone.fake.calls[new], placed["call_id"]


async def test_a_callback_call_that_reaches_the_customer_is_recorded_and_closes_the_task(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client, start=MORNING) as phone:
        task = await abandoned_callback(phone)
        created, call_id = await placed_callback(phone, task)
        phone.sim.agents[BOB] = Agent(answer_after=4)
        phone.sim.agents[CALLER] = Agent(answer_after=6, talk_seconds=None)
        placed = await phone.sim.place(created)
        assert placed.heard[0].startswith(f"Calling {CALLER} back.")
        bob = await as_agent(phone, "bob")
        alice = {"agent_id": phone.agents["alice"].id, "reason": "x"}
        refused = await bob.post(f"/api/calls/{call_id}/transfer", alice, expect=409)
        assert f"call {call_id} is a callback call" in refused["error"]
        again = await bob.post(f"/api/tasks/{task['id']}/call", expect=409)
        assert f"being called back already (call {call_id})" in again["error"]
        phone.sim.advance(90)
        await phone.sim.hang_up(placed)
        row = await phone.call_row(created.sid)
        assert (row.id, row.direction, row.route) == (call_id, Direction.OUTBOUND, "callback_call")
        assert row.outcome is CallOutcome.REACHED and row.conversation_id == task["conversation_id"]
        assert row.answered_at is not None and row.ended_at is not None
        assert row.duration_seconds == 90 and row.time_to_answer_seconds is not None
        async with phone.services.db.read() as conn:
            assert await tasks.list_open(conn, row.conversation_id) == []
        (done,) = await phone.events("task.done")
        assert done["task_id"] == task["id"] and f"call {row.id}" in done["note"]
        (reached,) = await phone.events("call.callback_reached")
        assert reached == {"call_id": row.id, "task_id": task["id"]}
        assert [e["call_id"] for e in await phone.events("agent.on_call")] == [row.id]
        assert [e["call_id"] for e in await phone.events("agent.off_call")] == [row.id]
        await bob.post(f"/api/calls/{row.id}/wrap-up", {"summary": "Parcel re-sent."})
        assert (await phone.call_row(created.sid)).wrapped_up_at is not None
        refused = await bob.post(f"/api/calls/{row.id}/transfer", alice, expect=409)
        assert "has ended" in refused["error"]


async def test_legs_that_arrive_before_the_callback_call_is_stored_are_adopted_and_can_end_it(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client, start=MORNING) as phone:
        task = await abandoned_callback(phone)
        desk, bob = phone.services.calls, phone.agents["bob"]
        plan = await desk.plan_callback(task["id"], bob.id)
        sid = "CA" + "e0" * 16
        for status in ("initiated", "ringing", "no-answer"):
            fields = phone.sender.status_params(
                sid, status, clock.now, account_sid=phone.fake.account_sid,
                extra={"From": LINE, "To": BOB, "Direction": "outbound-api"},
            )  # fmt: skip
            assert (await phone.sender.post(f"{BASE}/status?placed=callback", dict(fields))).status == 204
        assert len(await phone.events("call.unknown_callback")) == 3
        call_id = await desk.called_back(plan, "main", sid, bob.id)
        row = await phone.call_row(sid)
        assert row.id == call_id and row.outcome is CallOutcome.NOT_REACHED
        assert row.ringing_at is not None and row.ended_at is not None
        (missed,) = await phone.events("call.callback_not_reached")
        assert missed == {"call_id": call_id, "task_id": task["id"]}


async def test_a_callback_call_nobody_answers_leaves_the_task_open_whatever_order_its_legs_arrive_in(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client, start=MORNING) as phone:
        task = await abandoned_callback(phone)
        created, call_id = await placed_callback(phone, task)
        phone.sim.agents[BOB] = Agent(answer_after=3)
        phone.sim.immediate = False
        await phone.sim.place(created)
        await phone.sim.flush(twice=True, seed=7)
        row = await phone.call_row(created.sid)
        assert row.outcome is CallOutcome.NOT_REACHED and row.answered_at is None
        assert row.ended_at is not None
        (missed,) = await phone.events("call.callback_not_reached")
        assert missed == {"call_id": call_id, "task_id": task["id"]}
        async with phone.services.db.read() as conn:
            assert [t["id"] for t in await tasks.list_open(conn, row.conversation_id)] == [task["id"]]
        assert call_id not in [e["call_id"] for e in await phone.events("call.missed")]
        agent = await phone.services.directory.agent(phone.agents["bob"].id)
        assert agent.availability is Availability.AVAILABLE

        created, _ = await placed_callback(phone, task)
        phone.sim.agents[BOB] = Agent()
        await phone.sim.place(created)
        await phone.sim.flush()
        again = await phone.call_row(created.sid)
        assert again.outcome is CallOutcome.NOT_REACHED and again.ringing_at is not None
        assert len(await phone.events("call.callback_not_reached")) == 2


async def test_a_callback_call_is_refused_outside_the_customers_daytime_or_by_an_agent_away(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    night = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)
    async with phone_hub(make_config, clock, aiohttp_client, start=night) as phone:
        task = await abandoned_callback(phone)
        before = set(phone.fake.calls)
        alice = await as_agent(phone, "alice")
        refused = await alice.post(f"/api/tasks/{task['id']}/call", expect=409)
        assert "it is 22:" in refused["error"] and "Europe/London" in refused["error"]
        assert "09:00-20:00" in refused["error"] and "(P6)" in refused["error"]
        clock.now = MORNING.replace(day=24)
        await phone.services.directory.update_agent(phone.agents["alice"].id, availability=Availability.AWAY)
        refused = await alice.post(f"/api/tasks/{task['id']}/call", expect=409)
        assert "alice is away, not available" in refused["error"]
        assert set(phone.fake.calls) == before
        await alice.post(f"/api/tasks/{task['id']}/done", {"note": "reached by mail"})
        refused = await alice.post(f"/api/tasks/{task['id']}/call", expect=409)
        assert "is not an open callback" in refused["error"]
