"""SMS and WhatsApp through the fake Twilio: signed webhooks in, replies out, status callbacks back."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from hub import quarantine
from hub.inbox import ConversationFilter
from hub.models import ChannelKind, Identity, IdentityKind, InboundMessage, OutboundStatus, Role
from hub.outbox import Dispatcher
from hub.services import Services
from hub.web.app import create_app
from tests.conftest_web import Caller, as_role
from tests.fakes.twilio import FakeTwilio, WebhookSender, sid
from tests.fakes.twilio_messaging import FakeMessage, FakeMessaging
from tests.twilio_helpers import ACCOUNT, LINE, PUBLIC, TOKEN, twilio_channel

CUSTOMER = "+447911123456"
WHATSAPP_FROM = "+14155238886"
TEMPLATE_SID = "HX" + "b2" * 16
MESSAGES = f"{PUBLIC}/webhooks/twilio_voice/main/messages"
STATUS = f"{MESSAGES}/status"


def png(width: int = 1, height: int = 1) -> bytes:
    """A tiny valid PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height)))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@dataclass
class Hub:
    services: Services
    fake: FakeTwilio
    messaging: FakeMessaging
    twilio: WebhookSender
    client: TestClient[Any, Any]
    dispatcher: Dispatcher

    async def inbound(self, from_: str, body: str, **kwargs: Any) -> tuple[str, int]:
        sid, params = self.messaging.inbound_params(from_, LINE, body, **kwargs)
        answer = await self.twilio.post(MESSAGES, params)
        return sid, answer.status

    async def status(self, sid: str, status: str, **kwargs: Any) -> int:
        return (await self.twilio.post(STATUS, self.messaging.status_params(sid, status, **kwargs))).status

    async def only_conversation(self) -> int:
        conversations, total = await self.services.inbox.list(ConversationFilter())
        assert total == 1
        return conversations[0].id


@pytest.fixture
async def hub(make_config: Any, clock: Any, aiohttp_client: Any) -> AsyncIterator[Hub]:
    fake = FakeTwilio(ACCOUNT, TOKEN)
    messaging = FakeMessaging(fake, clock)
    await fake.start()
    settings = {
        "api_base_url": fake.base_url,
        "messaging": {
            "sms_from": LINE,
            "whatsapp_from": WHATSAPP_FROM,
            "max_segments": 2,
            "whatsapp_templates": {
                "follow_up": {"content_sid": TEMPLATE_SID, "text": {"en": "Can we help with anything else?"}}
            },
        },
    }
    try:
        async with twilio_channel(make_config, clock, **settings) as services:
            client = await aiohttp_client(create_app(services))
            async with aiohttp.ClientSession() as session:
                local = str(client.make_url(""))
                sender = WebhookSender(TOKEN, session, public_base=PUBLIC, local_base=local)
                dispatcher = Dispatcher(
                    services.db, services.outbox, services.channels, services.config.outbox, services.clock
                )
                yield Hub(services, fake, messaging, sender, client, dispatcher)
    finally:
        await fake.stop()


async def agent(hub: Hub) -> Caller:
    return await as_role(hub.client, hub.services, Role.AGENT)


async def test_an_sms_with_media_is_stored_once_on_the_callers_contact(hub: Hub) -> None:
    picture = png(2, 2)
    sid, status = await hub.inbound(CUSTOMER, "My parcel arrived damaged", media=[(picture, "image/png")])
    assert status == 200
    _, again = await hub.inbound(CUSTOMER, "My parcel arrived damaged", message_sid=sid)
    assert again == 200
    cid = await hub.only_conversation()
    timeline = await hub.services.inbox.timeline(cid)
    [message] = timeline.messages
    assert message.external_id == sid and message.channel is ChannelKind.SMS
    assert message.sender == CUSTOMER and message.text == "My parcel arrived damaged"
    [attachment] = message.attachments
    assert attachment.content_type == "image/png" and attachment.filename == f"{sid}-0.png"
    assert await hub.services.blobs.get(attachment.sha256) == picture
    assert [p for p in hub.messaging.downloads if "/Media/" in p] and all(
        p.startswith(f"/2010-04-01/Accounts/{ACCOUNT}/") for p in hub.messaging.downloads
    )
    contact = await hub.services.contacts.get(timeline.conversation.contact_id)
    assert Identity(IdentityKind.PHONE, CUSTOMER) in contact.identities


async def test_whatsapp_joins_the_same_contact_and_conversation(hub: Hub) -> None:
    await hub.inbound(CUSTOMER, "Hello by SMS")
    await hub.inbound(f"whatsapp:{CUSTOMER}", "And now on WhatsApp", profile_name="Olivia Chen")
    cid = await hub.only_conversation()
    timeline = await hub.services.inbox.timeline(cid)
    assert [m.channel for m in timeline.messages] == [ChannelKind.SMS, ChannelKind.WHATSAPP]
    assert {m.sender for m in timeline.messages} == {CUSTOMER}
    assert timeline.messages[1].meta.get("wa_id") == CUSTOMER.removeprefix("+")


async def test_media_the_fake_refuses_is_noted_not_lost(hub: Hub) -> None:
    _, params = hub.messaging.inbound_params(CUSTOMER, LINE, "see photo", media=[(png(), "image/png")])
    hub.messaging.files.clear()
    assert (await hub.twilio.post(MESSAGES, params)).status == 200
    [message] = (await hub.services.inbox.timeline(await hub.only_conversation())).messages
    assert message.attachments == () and message.text == "see photo"
    assert "no file" in message.meta["media_errors"][0]["error"]


async def test_unsigned_or_forged_webhooks_are_refused(hub: Hub) -> None:
    _, params = hub.messaging.inbound_params(CUSTOMER, LINE, "forged")
    assert (await hub.twilio.post(MESSAGES, params, sign=False)).status == 403
    wrong = hub.twilio.sign(MESSAGES, [*params, ("Extra", "1")])
    assert (await hub.twilio.post(MESSAGES, params, signature_value=wrong)).status == 403
    status = hub.messaging.status_params("SM1", "failed")
    assert (await hub.twilio.post(STATUS, status, sign=False)).status == 403
    assert (await hub.services.inbox.list(ConversationFilter()))[1] == 0


async def reply(hub: Hub, caller: Caller, cid: int, text: str, expect: int = 202, **extra: Any) -> Any:
    return await caller.post(f"/api/conversations/{cid}/reply", {"text": text, **extra}, expect=expect)


async def test_a_reply_goes_out_and_status_callbacks_update_it(hub: Hub) -> None:
    await hub.inbound(CUSTOMER, "Where is my order?")
    cid = await hub.only_conversation()
    caller = await agent(hub)
    message = await reply(hub, caller, cid, "It ships today; you will get a tracking link by SMS.")
    assert await hub.dispatcher.dispatch_once() == 1
    [sent] = hub.messaging.messages.values()
    assert (sent.to, sent.from_) == (CUSTOMER, LINE)
    assert sent.body.startswith("It ships today") and sent.status_callback == STATUS
    [entry] = await hub.services.outbox.entries()
    assert entry.provider_id == sent.sid and entry.status is OutboundStatus.SENT
    assert await hub.status(sent.sid, "sent") == 204
    assert await hub.status(sent.sid, "delivered") == 204
    assert (await hub.services.outbox.entry(entry.id)).status is OutboundStatus.DELIVERED
    events = len((await hub.services.inbox.timeline(cid)).events)
    assert await hub.status(sent.sid, "delivered") == 204
    assert await hub.status(sent.sid, "sent") == 204
    assert await hub.status(sent.sid, "failed", error_code="30003") == 204
    assert (await hub.services.outbox.entry(entry.id)).status is OutboundStatus.DELIVERED
    assert len((await hub.services.inbox.timeline(cid)).events) == events
    timeline = await hub.services.inbox.timeline(cid)
    assert next(m for m in timeline.messages if m.id == message["id"]).delivery is OutboundStatus.DELIVERED


async def test_statuses_that_arrive_before_the_api_answers_are_applied_once_the_send_is_recorded(
    hub: Hub,
) -> None:
    await hub.inbound(CUSTOMER, "Where is my order?")
    cid = await hub.only_conversation()
    answers: list[int] = []

    async def report_at_once(message: Any) -> None:
        answers.append(await hub.status(message.sid, "sent"))
        answers.append(await hub.status(message.sid, "delivered"))

    hub.messaging.before_answer = report_at_once
    await reply(hub, await agent(hub), cid, "It ships today.")
    assert await hub.dispatcher.dispatch_once() == 1
    assert answers == [204, 204]
    [entry] = await hub.services.outbox.entries()
    assert entry.status is OutboundStatus.DELIVERED
    assert await quarantine.entries(hub.services.db) == []
    kinds = [e.kind for e in (await hub.services.inbox.timeline(cid)).events]
    assert kinds.count("message.delivered") == 1


async def test_undelivered_reports_the_error_code(hub: Hub) -> None:
    await hub.inbound(CUSTOMER, "Hi")
    caller = await agent(hub)
    await reply(hub, caller, await hub.only_conversation(), "Hello, how can we help?")
    await hub.dispatcher.dispatch_once()
    [sent] = hub.messaging.messages.values()
    assert await hub.status(sent.sid, "undelivered", error_code="30003") == 204
    [entry] = await hub.services.outbox.entries()
    assert entry.status is OutboundStatus.FAILED and "30003" in (entry.last_error or "")


async def test_a_status_for_an_unknown_message_is_recorded(hub: Hub) -> None:
    unknown = "SM" + "0" * 32
    assert await hub.status(unknown, "delivered") == 204
    [item] = await quarantine.entries(hub.services.db)
    assert item.external_id == unknown and "unknown message" in item.reason


async def test_transient_refusals_are_retried_and_permanent_ones_fail(hub: Hub) -> None:
    await hub.inbound(CUSTOMER, "Hi")
    cid = await hub.only_conversation()
    caller = await agent(hub)
    hub.messaging.fail_next = [(429, 20429, "Too Many Requests")]
    await reply(hub, caller, cid, "First answer.")
    await hub.dispatcher.dispatch_once()
    [entry] = await hub.services.outbox.entries()
    assert entry.status is OutboundStatus.QUEUED and "429" in (entry.last_error or "")
    hub.services.clock.advance(hours=1)
    await hub.dispatcher.dispatch_once()
    assert (await hub.services.outbox.entry(entry.id)).status is OutboundStatus.SENT
    hub.messaging.fail_next = [(400, 21211, "The 'To' number is not a valid phone number.")]
    await reply(hub, caller, cid, "Second answer.")
    await hub.dispatcher.dispatch_once()
    newest = (await hub.services.outbox.entries())[0]
    assert newest.status is OutboundStatus.FAILED and "21211" in (newest.last_error or "")
    assert len(hub.messaging.messages) == 1


async def test_a_message_twilio_accepted_while_its_answer_was_lost_is_not_sent_again(hub: Hub) -> None:
    outside = FakeMessage(
        sid("SM"), ACCOUNT, CUSTOMER, LINE, "Your parcel left today.", status="delivered",
        created_at=hub.services.clock() - timedelta(hours=1),
    )  # fmt: skip
    hub.messaging.messages[outside.sid] = outside
    await hub.inbound(CUSTOMER, "Hi")
    cid = await hub.only_conversation()
    caller = await agent(hub)
    await reply(hub, caller, cid, "Your parcel left today.")
    await hub.dispatcher.dispatch_once()
    [earlier] = [m for m in hub.messaging.messages.values() if m is not outside]
    hub.services.clock.advance(minutes=5)
    await reply(hub, caller, cid, "Your parcel left today.")
    hub.messaging.lose_answer_next = 1
    await hub.dispatcher.dispatch_once()
    newest = (await hub.services.outbox.entries())[0]
    assert newest.status is OutboundStatus.QUEUED and "502" in (newest.last_error or "")
    assert len(hub.messaging.messages) == 3
    lost = next(m for m in hub.messaging.messages.values() if m.sid not in (earlier.sid, outside.sid))
    hub.services.clock.advance(hours=1)
    await hub.dispatcher.dispatch_once()
    newest = await hub.services.outbox.entry(newest.id)
    assert newest.status is OutboundStatus.SENT and newest.provider_id == lost.sid
    assert len(hub.messaging.messages) == 3, "the retry sent the text a second time"
    hub.messaging.fail_next = [(503, 20503, "Service Unavailable")]
    await reply(hub, caller, cid, "Your parcel left today.")
    await hub.dispatcher.dispatch_once()
    hub.services.clock.advance(hours=1)
    await hub.dispatcher.dispatch_once()
    third = (await hub.services.outbox.entries())[0]
    assert third.status is OutboundStatus.SENT and len(hub.messaging.messages) == 4
    assert third.provider_id not in (earlier.sid, lost.sid, outside.sid)


async def test_sms_over_the_segment_limit_is_refused_while_composing(hub: Hub) -> None:
    await hub.inbound(CUSTOMER, "你好")
    cid = await hub.only_conversation()
    caller = await agent(hub)
    text = "您好，" + "我们已经为您安排了退款。" * 12
    checked = await caller.post(f"/api/conversations/{cid}/check", {"text": text})
    [finding] = [f for f in checked["findings"] if f["rule_id"] == "channel"]
    assert finding["severity"] == "error" and "3 segments (UCS-2" in finding["message"]
    refused = await reply(hub, caller, cid, text, expect=422)
    assert "segments" in str(refused) and "UCS-2" in str(refused)
    supervisor = await as_role(hub.client, hub.services, Role.SUPERVISOR)
    await reply(hub, supervisor, cid, text, expect=422, override_reason="customer asked for details")
    await reply(hub, caller, cid, "Thank you, we have arranged the refund for you today. " * 2)
    assert (await hub.services.outbox.counts())["queued"] == 1


async def _old_whatsapp(hub: Hub, hours: float) -> int:
    result = await hub.services.inbox.ingest(
        InboundMessage(
            channel=ChannelKind.WHATSAPP,
            channel_account="main",
            external_id="SM" + "1" * 32,
            sender=Identity.of(IdentityKind.PHONE, CUSTOMER),
            text="Is the shop open on Sunday?",
            received_at=hub.services.clock() - timedelta(hours=hours),
        )
    )
    return result.conversation_id


async def test_whatsapp_outside_24_hours_needs_an_approved_template(hub: Hub) -> None:
    cid = await _old_whatsapp(hub, 30)
    caller = await agent(hub)
    refused = await reply(hub, caller, cid, "Yes, from 10 to 4.", expect=422)
    text = str(refused)
    assert "24 hours" in text and "follow_up" in text
    await reply(hub, caller, cid, "Can we help with anything else?", whatsapp_template="follow_up")
    await reply(hub, caller, cid, "Anything?", expect=422, whatsapp_template="nope")
    await hub.dispatcher.dispatch_once()
    [sent] = hub.messaging.messages.values()
    assert sent.content_sid == TEMPLATE_SID and sent.body == ""
    assert (sent.to, sent.from_) == (f"whatsapp:{CUSTOMER}", f"whatsapp:{WHATSAPP_FROM}")


async def test_whatsapp_within_24_hours_sends_free_text(hub: Hub) -> None:
    cid = await _old_whatsapp(hub, 23)
    caller = await agent(hub)
    checked = await caller.post(f"/api/conversations/{cid}/check", {"text": "Yes, from 10 to 4."})
    assert [f for f in checked["findings"] if f["rule_id"] == "channel"] == []
    await reply(hub, caller, cid, "Yes, from 10 to 4.")
    await hub.dispatcher.dispatch_once()
    [sent] = hub.messaging.messages.values()
    assert sent.body.startswith("Yes, from 10 to 4.") and sent.to == f"whatsapp:{CUSTOMER}"


async def test_a_template_on_sms_is_refused_with_a_reason(hub: Hub) -> None:
    await hub.inbound(CUSTOMER, "Hi")
    caller = await agent(hub)
    refused = await reply(
        hub, caller, await hub.only_conversation(), "Hi", expect=422, whatsapp_template="follow_up"
    )
    assert "WhatsApp replies only" in str(refused)
