"""Phone calls end to end through the fake Twilio's call simulator (P1-P6)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import select

from hub.models import Availability, CallOutcome
from hub.sla import tasks
from hub.store import schema
from tests.conftest import FakeClock
from tests.fakes.twilio_calls import Agent
from tests.twilio_helpers import LINE
from tests.twilio_phone import BASE, CALLER, phone_hub


async def test_a_call_greets_and_rings_every_available_agent_for_the_three_ring_window(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        params = {"CallSid": "CA" + "7" * 32, "From": CALLER, "To": LINE, "CallStatus": "ringing"}
        answer = await phone.sender.post(f"{BASE}/incoming", params)
        assert answer.status == 200 and answer.content_type == "text/xml"
        root = ET.fromstring(answer.text)
        say, dial = list(root)
        assert say.tag == "Say" and say.get("language") == "en-GB"
        assert "Customer Care" in (say.text or "") and "None" not in (say.text or "")
        assert dial.tag == "Dial" and dial.get("answerOnBridge") == "true"
        assert dial.get("timeout") == "18"
        assert dial.get("action") == f"{BASE}/dial-action?step=0"
        rung = [(noun.tag, (noun.text or "").strip()) for noun in dial]
        assert rung == [("Client", "alice"), ("Number", "+441134960001")]
        for noun in dial:
            assert noun.get("statusCallbackEvent") == "initiated ringing answered completed"
            assert noun.get("statusCallback") == f"{BASE}/status"


async def test_a_chinese_line_greets_and_holds_in_chinese(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client, fallback=["queue"], language="zh") as phone:
        call = await phone.sim.call(CALLER, LINE, hang_up_after=40)
        assert call.heard[0].startswith("您好，感谢致电") and "Customer Care" in call.heard[0]
        assert any(said.startswith("抱歉让您久等了") for said in call.heard)
        assert "您前面还有0位来电者，请稍候。" in call.heard
        said = ET.fromstring(phone.sim.answers[0][1].text).find("Say")
        assert said is not None and said.get("language") == "cmn-CN"
        assert (await phone.call_row(call.sid)).outcome is CallOutcome.ABANDONED


async def test_an_answered_call_is_measured_and_makes_the_agent_busy_until_it_ends(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        phone.sim.agents["client:alice"] = Agent(answer_after=7, talk_seconds=None)
        call = await phone.sim.call(CALLER, LINE)
        assert call.answered_by == "client:alice"
        row = await phone.call_row(call.sid)
        assert row.outcome is CallOutcome.ANSWERED_IN_TIME
        assert row.answered_by == phone.agents["alice"].id
        assert row.rings_to_answer == 2
        assert row.time_to_answer_seconds == 9
        assert await phone.availability("alice") is Availability.BUSY
        conversation = await phone.services.inbox.conversation(row.conversation_id)
        assert conversation.assignee_id == phone.agents["alice"].id
        phone.sim.advance(95)
        await phone.sim.hang_up(call)
        row = await phone.call_row(call.sid)
        assert row.ended_at is not None and row.duration_seconds == 9 + 95
        assert await phone.availability("alice") is Availability.AVAILABLE
        again = await phone.sim.call(CALLER, LINE)
        assert "This is alice speaking." in again.heard[0] and "This is" not in call.heard[0]
        assert (await phone.call_row(again.sid)).conversation_id == row.conversation_id


async def test_unanswered_calls_fall_back_to_the_next_team_and_are_answered_late(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(
        make_config, clock, aiohttp_client, fallback=["team:Escalations", "voicemail"]
    ) as phone:
        phone.sim.agents["client:dave"] = Agent(answer_after=4)
        phone.sim.agents["+441134960001"] = Agent(busy=True)
        call = await phone.sim.call(CALLER, LINE)
        assert call.dial_statuses[0] == "no-answer" and call.answered_by == "client:dave"
        assert any("Escalations Desk" in said for said in call.heard)
        row = await phone.call_row(call.sid)
        assert row.outcome is CallOutcome.ANSWERED_LATE and row.route == "team"
        assert row.rings_to_answer == 4
        assert await phone.availability("dave") is Availability.AVAILABLE


async def test_nobody_answering_sends_the_caller_to_voicemail(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        call = await phone.sim.call(CALLER, LINE)
        assert call.visited == [f"{BASE}/dial-action?step=0", f"{BASE}/voicemail"]
        row = await phone.call_row(call.sid)
        assert row.outcome is CallOutcome.VOICEMAIL and row.route == "voicemail"
        assert await phone.events("call.missed") == []


async def test_a_caller_hanging_up_while_ringing_is_abandoned_and_gets_a_callback(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        call = await phone.sim.call(CALLER, LINE, hang_up_after=8)
        row = await phone.call_row(call.sid)
        assert row.outcome is CallOutcome.ABANDONED and row.answered_at is None
        (missed,) = await phone.events("call.missed")
        assert missed == {"call_id": row.id, "outcome": "abandoned"}
        async with phone.services.db.read() as conn:
            (task,) = await tasks.list_open(conn, row.conversation_id)
        assert task["kind"] == "callback" and task["payload"]["phone"] == CALLER
        assert task["not_before"] is None or task["not_before"] >= row.started_at


async def test_a_caller_still_unanswered_after_the_window_is_missed(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client, fallback=["team:Escalations"]) as phone:
        call = await phone.sim.call(CALLER, LINE, hang_up_after=30)
        row = await phone.call_row(call.sid)
        assert row.outcome is CallOutcome.MISSED
        assert [m["outcome"] for m in await phone.events("call.missed")] == ["missed"]


async def test_a_queued_caller_hears_the_hold_message_and_position_and_can_ask_for_a_callback(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client, fallback=["queue", "voicemail"]) as phone:
        call = await phone.sim.call(CALLER, LINE, queue_digits="1")
        assert any("sorry to keep you waiting" in said for said in call.heard)
        assert "You are number 1 in the queue." in call.heard
        assert call.heard[-1].startswith("Thank you. We will call you back")
        row = await phone.call_row(call.sid)
        assert row.route == "callback"
        async with phone.services.db.read() as conn:
            (task,) = await tasks.list_open(conn, row.conversation_id)
        assert task["payload"]["reason"] == "the caller asked to be called back"
        assert await phone.events("call.missed") == []


async def test_a_queued_caller_who_waits_too_long_goes_to_voicemail(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(
        make_config, clock, aiohttp_client, fallback=["queue", "voicemail"], queue={"max_wait_seconds": 60}
    ) as phone:
        call = await phone.sim.call(CALLER, LINE)
        assert call.visited[-1] == f"{BASE}/voicemail"
        assert (await phone.call_row(call.sid)).outcome is CallOutcome.VOICEMAIL


async def test_late_duplicated_and_shuffled_callbacks_give_the_same_record(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        phone.sim.immediate = False
        phone.sim.agents["+441134960001"] = Agent(answer_after=13, talk_seconds=40)
        call = await phone.sim.call(CALLER, LINE)
        phone.sim.advance(120)
        answers = await phone.sim.flush(twice=True, seed=7)
        assert {a.status for a in answers} == {204}
        row = await phone.call_row(call.sid)
        assert row.outcome is CallOutcome.ANSWERED_IN_TIME
        assert row.answered_by == phone.agents["bob"].id and row.rings_to_answer == 3
        assert row.duration_seconds == 55
        again = await phone.sim.sender.deliver([d for d, _ in phone.sim.sender.sent[-4:]])
        assert {a.status for a in again} == {204}
        assert await phone.call_row(call.sid) == row
        assert await phone.availability("bob") is Availability.AVAILABLE
        timeline = await phone.services.inbox.timeline(row.conversation_id)
        assert len(timeline.messages) == 1 and timeline.messages[0].external_id == call.sid


async def test_callbacks_for_unknown_calls_are_recorded_not_crashed_on(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        params = phone.sender.status_params(
            "CA" + "9" * 32, "completed", clock.now, account_sid=phone.fake.account_sid
        )
        assert (await phone.sender.post(f"{BASE}/status", params)).status == 204
        assert (await phone.sender.post(f"{BASE}/status", params)).status == 204
        recorded = await phone.events("call.unknown_callback")
        assert [r["duplicate"] for r in recorded] == [False, True]
        assert (await phone.sender.post(f"{BASE}/status", {"CallSid": "CA1"})).status == 400


async def test_leg_events_that_arrive_before_their_call_is_stored_are_adopted(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        parent = "CA" + "6" * 32
        ringing = phone.sender.status_params(
            "CA" + "2" * 32, "ringing", clock.now, account_sid=phone.fake.account_sid, parent_sid=parent,
            extra={"To": "client:alice"},
        )  # fmt: skip
        assert (await phone.sender.post(f"{BASE}/status", ringing)).status == 204
        assert [e["call_sid"] for e in await phone.events("call.unknown_callback")] == ["CA" + "2" * 32]
        clock.advance(seconds=1)
        params = {"CallSid": parent, "From": CALLER, "To": LINE, "CallStatus": "ringing"}
        assert (await phone.sender.post(f"{BASE}/incoming", params)).status == 200
        await phone.services.calls.stop()
        row = await phone.call_row(parent)
        assert row.ringing_at is not None and row.ringing_at < row.started_at


async def test_an_edited_greeting_template_is_spoken_on_the_next_call(
    make_config: Any, clock: FakeClock, aiohttp_client: Any, tmp_path: Path
) -> None:
    template = tmp_path / "templates" / "voice" / "phone_greeting.en.txt.j2"
    template.parent.mkdir(parents=True)
    template.write_text("Version one, {{ team.department }}.", encoding="utf-8")
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        params = {"CallSid": "CA" + "5" * 32, "From": CALLER, "To": LINE, "CallStatus": "ringing"}
        first = ET.fromstring((await phone.sender.post(f"{BASE}/incoming", params)).text).find("Say")
        assert first is not None and first.text == "Version one, Customer Care."
        template.write_text("Version two, {{ team.department }}.", encoding="utf-8")
        later = template.stat().st_mtime + 10
        os.utime(template, (later, later))
        params["CallSid"] = "CA" + "6" * 32
        second = ET.fromstring((await phone.sender.post(f"{BASE}/incoming", params)).text).find("Say")
        assert second is not None and second.text == "Version two, Customer Care."


async def test_a_call_keeps_the_webhook_form_it_arrived_with_on_its_message(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        sid = "CA" + "7" * 32
        params = {"CallSid": sid, "From": CALLER, "To": LINE, "CallStatus": "ringing", "CallerName": "A & B"}
        assert (await phone.sender.post(f"{BASE}/incoming", params)).status == 200
        await phone.services.calls.stop()
        m = schema.messages
        async with phone.services.db.read() as conn:
            meta = (await conn.execute(select(m.c.meta).where(m.c.external_id == sid))).scalar_one()
        assert dict(parse_qsl(meta["webhook"])) == params
