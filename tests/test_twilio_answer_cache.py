"""The incoming-call answer comes from memory, and changes on the next call after what it depends on."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from sqlalchemy import update

from channels.twilio.twiml import ring_seconds
from hub.events import event_row
from hub.models import Availability, ConversationStatus
from hub.store import schema
from tests.conftest import FakeClock
from tests.sla_helpers import STANDARD, book
from tests.twilio_helpers import LINE
from tests.twilio_phone import BASE, CALLER, Phone, phone_hub

OTHER_CALLER = "+442079460959"
GREETING = "{{ customer.name or 'stranger' }} for {{ agent.name or 'nobody' }} at {{ team.department }}."


class Calls:
    """Incoming calls with fresh CallSids, read back as what is said and who is rung."""

    def __init__(self, phone: Phone) -> None:
        self.phone = phone
        self.count = 0

    async def answer(self, caller: str = CALLER) -> ET.Element:
        """Post an incoming call and parse its TwiML; wait until the call is stored."""
        self.count += 1
        sid = f"CA{self.count:032d}"
        params = {"CallSid": sid, "From": caller, "To": LINE, "CallStatus": "ringing"}
        answer = await self.phone.sender.post(f"{BASE}/incoming", params)
        assert answer.status == 200
        await self.phone.services.calls.recorder.wait("main", sid)
        self.last_sid = sid
        return ET.fromstring(answer.text)

    async def said(self, caller: str = CALLER) -> str:
        """What the greeting says to a caller."""
        say = (await self.answer(caller)).find("Say")
        assert say is not None and say.text is not None
        return say.text

    async def rung(self) -> list[str]:
        """The devices the call rings."""
        dial = (await self.answer()).find("Dial")
        return [] if dial is None else [(noun.text or "").strip() for noun in dial]

    async def contact_of(self, sid: str) -> int:
        """The contact a stored call belongs to."""
        row = await self.phone.call_row(sid)
        assert row.contact_id is not None
        return row.contact_id


def greeting_template(tmp_path: Path) -> None:
    """A greeting naming the caller and their agent."""
    template = tmp_path / "templates" / "voice" / "phone_greeting.en.txt.j2"
    template.parent.mkdir(parents=True)
    template.write_text(GREETING, encoding="utf-8")


async def test_agents_changing_availability_are_rung_or_not_from_the_next_call(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        calls, directory = Calls(phone), phone.services.directory
        assert await calls.rung() == ["alice", "+441134960001"]
        assert await calls.rung() == ["alice", "+441134960001"]
        await directory.update_agent(phone.agents["bob"].id, availability=Availability.AWAY)
        assert await calls.rung() == ["alice"]
        await directory.update_agent(phone.agents["carol"].id, availability=Availability.AVAILABLE)
        assert await calls.rung() == ["alice", "sip:carol@pbx.example.com"]
        await directory.update_agent(phone.agents["alice"].id, active=False)
        assert await calls.rung() == ["sip:carol@pbx.example.com"]
        hits, misses = phone.services.calls.cache_counts()["rings"]
        assert (hits, misses) == (1, 4)  # the second call only; each change empties the list


async def test_another_process_changing_an_agent_is_followed_through_its_relayed_event(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        calls, services = Calls(phone), phone.services
        assert await calls.rung() == ["alice", "+441134960001"]
        bob = phone.agents["bob"].id
        async with services.db.write() as conn:
            a = schema.agents
            await conn.execute(update(a).where(a.c.id == bob).values(availability=Availability.AWAY.value))
        services.peer_events.publish([event_row("agent.updated", clock.now, None, None, agent=bob)])
        assert await calls.rung() == ["alice"]


async def test_team_members_added_or_removed_are_rung_or_not_from_the_next_call(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        calls, directory = Calls(phone), phone.services.directory
        support = next(t for t in await directory.teams() if t.name == "Support")
        assert await calls.rung() == ["alice", "+441134960001"]
        await directory.add_member(support.id, phone.agents["dave"].id)
        assert await calls.rung() == ["alice", "+441134960001", "dave"]
        await directory.remove_member(support.id, phone.agents["alice"].id)
        assert await calls.rung() == ["+441134960001", "dave"]


async def test_an_answering_agent_is_off_the_next_calls_until_theirs_ends_then_rung_last(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        calls = Calls(phone)
        assert await calls.rung() == ["alice", "+441134960001"]
        parent, leg = calls.last_sid, "CA" + "b" * 32
        sender, account = phone.sender, phone.fake.account_sid
        for status in ("ringing", "answered"):
            params = sender.status_params(
                leg, status, clock.now, account_sid=account, parent_sid=parent, extra={"To": "client:alice"}
            )
            assert (await sender.post(f"{BASE}/status", params)).status == 204
        assert await calls.rung() == ["+441134960001"]
        params = sender.status_params(
            leg, "completed", clock.now, account_sid=account, parent_sid=parent, extra={"To": "client:alice"}
        )
        assert (await sender.post(f"{BASE}/status", params)).status == 204
        assert await calls.rung() == ["+441134960001", "alice"], "alice took the last call: bob's turn first"


async def test_new_sla_rules_set_the_ring_window_of_the_next_call(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        calls = Calls(phone)
        dial = (await calls.answer()).find("Dial")
        assert dial is not None and dial.get("timeout") == "18"
        phone.services.sla.set_book(book(STANDARD))
        line = (await phone.call_row(calls.last_sid)).line or ""
        expected = ring_seconds(phone.services.sla.answer_target(line).window)
        assert expected != 18
        dial = (await calls.answer()).find("Dial")
        assert dial is not None and dial.get("timeout") == str(expected)


async def test_changed_channel_settings_change_the_next_answer(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        calls, channel = Calls(phone), phone.services.channels["main"]
        assert await calls.rung() == ["alice", "+441134960001"]
        devices = {**channel.settings.devices, "bob": "+441134960002"}  # type: ignore[attr-defined]
        channel.settings = channel.settings.model_copy(update={"devices": devices})  # type: ignore[attr-defined]
        assert await calls.rung() == ["alice", "+441134960002"]


async def test_a_renamed_contact_is_greeted_by_the_new_name_on_the_next_call(
    make_config: Any, clock: FakeClock, aiohttp_client: Any, tmp_path: Path
) -> None:
    greeting_template(tmp_path)
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        calls, contacts = Calls(phone), phone.services.contacts
        assert await calls.said() == "stranger for nobody at Customer Care."
        contact = await calls.contact_of(calls.last_sid)
        await contacts.update(contact, name="Ada")
        assert await calls.said() == "Ada for nobody at Customer Care."
        assert await calls.said() == "Ada for nobody at Customer Care."
        await contacts.update(contact, name="Grace")
        assert await calls.said() == "Grace for nobody at Customer Care."


async def test_a_merged_caller_is_greeted_as_the_contact_they_were_merged_into(
    make_config: Any, clock: FakeClock, aiohttp_client: Any, tmp_path: Path
) -> None:
    greeting_template(tmp_path)
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        calls, contacts = Calls(phone), phone.services.contacts
        await calls.said(OTHER_CALLER)
        target = await contacts.update(await calls.contact_of(calls.last_sid), name="Bea")
        await calls.said(CALLER)
        source = await calls.contact_of(calls.last_sid)
        await contacts.update(source, name="Old name")
        assert await calls.said(CALLER) == "Old name for nobody at Customer Care."
        await contacts.merge(source, target.id)
        assert await calls.said(CALLER) == "Bea for nobody at Customer Care."


async def test_the_agent_of_the_open_call_conversation_is_named_from_the_next_call(
    make_config: Any, clock: FakeClock, aiohttp_client: Any, tmp_path: Path
) -> None:
    greeting_template(tmp_path)
    async with phone_hub(make_config, clock, aiohttp_client) as phone:
        calls, inbox = Calls(phone), phone.services.inbox
        await calls.said()
        contact = await calls.contact_of(calls.last_sid)
        await phone.services.contacts.update(contact, name="Ada")
        conversation = (await phone.call_row(calls.last_sid)).conversation_id
        assert await calls.said() == "Ada for nobody at Customer Care."
        await inbox.assign(conversation, phone.agents["bob"].id)
        assert await calls.said() == "Ada for bob at Customer Care."
        await phone.services.directory.update_agent(phone.agents["bob"].id, display_name="Robert")
        assert await calls.said() == "Ada for Robert at Customer Care."
        await inbox.set_status(conversation, ConversationStatus.RESOLVED)
        assert await calls.said() == "Ada for nobody at Customer Care."
