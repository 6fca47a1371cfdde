"""Calling a customer back from a callback task (P6): inside their daytime, agent's phone first."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

from hub.models import Availability
from hub.sla import tasks
from tests.conftest import FakeClock
from tests.test_twilio_transfer import as_agent
from tests.twilio_helpers import LINE
from tests.twilio_phone import CALLER, Phone, phone_hub

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
        assert placed == {"task_id": task["id"], "call_sid": new, "to": CALLER}
        assert (created.to, created.from_) == ("+441134960001", LINE)
        twiml = ET.fromstring(created.created_with["Twiml"])
        briefing = twiml.find("Say")
        assert briefing is not None and (briefing.text or "").startswith(f"Calling {CALLER} back.")
        dial = twiml.find("Dial")
        assert dial is not None and dial.get("callerId") == LINE
        assert [n.text for n in dial.findall("Number")] == [CALLER]
        (placed_event,) = await phone.events("call.callback_placed")
        assert placed_event["task_id"] == task["id"] and placed_event["call_sid"] == new


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
