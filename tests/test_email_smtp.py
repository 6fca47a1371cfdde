"""SMTP sending and receiving against real aiosmtpd servers on loopback, through to the inbox."""

from __future__ import annotations

import asyncio
import base64
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from channels.base import Capabilities, ChannelState, InboundSink
from channels.email.compose import FileData, Sender, compose
from channels.email.loops import CircuitBreaker
from channels.email.parse import MailRules, parse_message
from channels.email.smtp_in import Delivery, ReceiverSettings, SmtpReceiver
from channels.email.smtp_out import SmtpServer, deliver
from hub.errors import ChannelAuthError, ChannelUnavailable, DeliveryRejected
from hub.inbox import ConversationFilter
from hub.models import ChannelKind, DeliveryResult, Identity, OutboundMessage, OutboundStatus
from hub.outbox import Dispatcher
from hub.replies import ACKNOWLEDGE
from hub.services import Services, open_services
from tests.conftest import FakeClock
from tests.factories import inbound

PAYLOADS = Path(__file__).parent / "payloads" / "email"
RULES = Path(__file__).resolve().parent.parent / "rules"
SENDER = Sender("support@acme.test", "acme.test", b"secret", name="ACME Support", signature="ACME Support")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


class Sink:
    """An aiosmtpd handler that refuses chosen recipients and answers DATA as told."""

    def __init__(self, rcpt_replies: dict[str, str] | None = None, data_reply: str = "250 2.0.0 OK") -> None:
        self.rcpt_replies = rcpt_replies or {}
        self.data_reply = data_reply
        self.mails: list[Envelope] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply.startswith("250"):
            self.mails.append(envelope)
        return self.data_reply


@pytest.fixture
async def sink_server() -> AsyncIterator[Callable[[Sink], Awaitable[int]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Sink) -> int:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(handler, hostname="sink.test"), "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def outbound(**fields: Any) -> OutboundMessage:
    base: dict[str, Any] = {
        "id": 1,
        "message_id": 9,
        "conversation_id": 3,
        "channel": ChannelKind.EMAIL,
        "channel_account": "acme",
        "recipient": Identity.of("email", "anna@example.com"),
        "text": "Hello Anna,\nyour parcel is on its way.",
        "idempotency_key": "k",
        "attempt": 1,
        "subject": "Your parcel [#3]",
    }
    return OutboundMessage(**(base | fields))


def mail_from(sender: str, subject: str, message_id: str, body: str = "Hello") -> bytes:
    return (
        f"From: {sender}\r\nTo: support@acme.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <{message_id}>\r\n\r\n{body}\r\n"
    ).encode()


def plain(port: int, **fields: Any) -> SmtpServer:
    return SmtpServer("127.0.0.1", port, security="none", timeout=5, **fields)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- sending --------------------------------------------------------------------------------


async def test_sent_mail_arrives_whole(sink_server: Callable[[Sink], Awaitable[int]]) -> None:
    sink = Sink()
    port = await sink_server(sink)
    mail = compose(
        outbound(html="<p>Hello Anna</p>"), SENDER, now=NOW, files=[FileData("a.txt", "text/plain", b"note")]
    )
    result = await deliver(plain(port), mail, sender="support@acme.test", recipients=["anna@example.com"])
    assert result == DeliveryResult(OutboundStatus.SENT, provider_id=str(mail["Message-ID"]))
    [envelope] = sink.mails
    assert envelope.mail_from == "support@acme.test" and envelope.rcpt_tos == ["anna@example.com"]
    received = parse_message(envelope.original_content or b"", account="peer").message
    assert received.external_id == str(mail["Message-ID"])
    assert received.text == "Hello Anna,\nyour parcel is on its way."
    assert [a.filename for a in received.attachments] == ["a.txt"]


async def test_partial_refusal_is_reported_per_recipient(
    sink_server: Callable[[Sink], Awaitable[int]],
) -> None:
    sink = Sink({"gone@example.com": "550 5.1.1 no such user"})
    port = await sink_server(sink)
    mail = compose(outbound(), SENDER, now=NOW)
    result = await deliver(
        plain(port), mail, sender="support@acme.test", recipients=["anna@example.com", "gone@example.com"]
    )
    assert result.status is OutboundStatus.SENT
    assert result.refused == {"gone@example.com": "550 5.1.1 no such user"}
    assert sink.mails[0].rcpt_tos == ["anna@example.com"]


@pytest.mark.parametrize(
    ("sink", "error", "text"),
    [
        (Sink({"anna@example.com": "550 5.1.1 no such user"}), DeliveryRejected, "every recipient refused"),
        (Sink({"anna@example.com": "450 4.2.1 mailbox busy"}), ChannelUnavailable, "refused for now"),
        (Sink(data_reply="451 4.3.0 try later"), ChannelUnavailable, "451"),
        (Sink(data_reply="554 5.7.1 spam"), DeliveryRejected, "554"),
    ],
)
async def test_4xx_is_retried_and_5xx_is_permanent(
    sink_server: Callable[[Sink], Awaitable[int]], sink: Sink, error: type[Exception], text: str
) -> None:
    port = await sink_server(sink)
    with pytest.raises(error, match=text):
        await deliver(
            plain(port),
            compose(outbound(), SENDER, now=NOW),
            sender="s@acme.test",
            recipients=["anna@example.com"],
        )
    assert sink.mails == []


async def test_unreachable_or_silent_server_is_retried() -> None:
    mail = compose(outbound(), SENDER, now=NOW)
    with pytest.raises(ChannelUnavailable, match=r"SMTP 127\.0\.0\.1"):
        await deliver(plain(free_port()), mail, sender="s@acme.test", recipients=["a@example.com"])

    writers: list[asyncio.StreamWriter] = []

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read()
        writer.close()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ChannelUnavailable):
            await deliver(
                SmtpServer("127.0.0.1", port, security="none", timeout=0.5),
                mail,
                sender="s@a.test",
                recipients=["a@b.c"],
            )
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


async def test_starttls_and_auth_against_the_receiver(certificate: tuple[str, str]) -> None:
    cert, key = certificate
    got: list[Delivery] = []

    async def store(delivery: Delivery) -> None:
        got.append(delivery)

    settings = ReceiverSettings(
        {"support@acme.test": "support"},
        port=0,
        users={"relay": "pa55"},
        tls_cert=cert,
        tls_key=key,
        require_tls=True,
    )
    receiver = SmtpReceiver(settings, store)
    await receiver.start()
    try:
        server = SmtpServer("127.0.0.1", receiver.port, "starttls", "relay", "pa55", timeout=5, cafile=cert)
        mail = compose(outbound(recipient=Identity.of("email", "support@acme.test")), SENDER, now=NOW)
        await deliver(server, mail, sender="relay@partner.test", recipients=["support@acme.test"])
        assert [d.inboxes for d in got] == [("support",)]
        wrong = SmtpServer("127.0.0.1", receiver.port, "starttls", "relay", "nope", timeout=5, cafile=cert)
        with pytest.raises(ChannelAuthError, match="535"):
            await deliver(wrong, mail, sender="relay@partner.test", recipients=["support@acme.test"])
        with pytest.raises(DeliveryRejected, match="530"):
            await deliver(
                SmtpServer("127.0.0.1", receiver.port, "none", timeout=5),
                mail,
                sender="x@y.z",
                recipients=["support@acme.test"],
            )
        assert len(got) == 1
    finally:
        await receiver.stop()


class OAuthSink(Sink):
    """A sink that requires XOAUTH2 with one token."""

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        fields = base64.b64decode(args[1]).decode().split("\x01")
        ok = fields[:2] == ["user=support@acme.test", "auth=Bearer tok-123"]
        return AuthResult(success=ok, handled=False, message=None if ok else "535 5.7.8 bad token")


async def test_xoauth2_login() -> None:
    sink = OAuthSink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink, auth_require_tls=False), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    mail = compose(outbound(), SENDER, now=NOW)
    try:
        good = plain(port, username="support@acme.test", oauth_token="tok-123")
        await deliver(good, mail, sender="support@acme.test", recipients=["anna@example.com"])
        assert len(sink.mails) == 1
        bad = plain(port, username="support@acme.test", oauth_token="expired")
        with pytest.raises(ChannelAuthError, match="535"):
            await deliver(bad, mail, sender="support@acme.test", recipients=["anna@example.com"])
    finally:
        server.close()
        await server.wait_closed()


# --- receiving ------------------------------------------------------------------------------


@dataclass
class Collector:
    """A `deliver` callback that can be held back or made to fail."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    fail: bool = False
    got: list[Delivery] = field(default_factory=list)

    async def __call__(self, delivery: Delivery) -> None:
        await self.release.wait()
        if self.fail:
            raise RuntimeError("database is down")
        self.got.append(delivery)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[SmtpReceiver, Collector]]:
    collector = Collector()
    settings = ReceiverSettings(
        {"support@acme.test": "support", "sales@acme.test": "sales", "@fax.acme.test": "fax"},
        port=0,
        max_bytes=20_000,
    )
    server = SmtpReceiver(settings, collector)
    await server.start()
    yield server, collector
    await server.stop()
    await server.stop()


async def send_raw(port: int, raw: bytes, recipients: Sequence[str], sender: str = "anna@example.com") -> Any:
    return await aiosmtplib.send(
        raw, sender=sender, recipients=list(recipients), hostname="127.0.0.1", port=port, timeout=5
    )


async def test_only_allow_listed_recipients_are_accepted(receiver: tuple[SmtpReceiver, Collector]) -> None:
    server, collector = receiver
    collector.release.set()
    raw = (PAYLOADS / "gmail_reply.eml").read_bytes()
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await send_raw(server.port, raw, ["stranger@acme.test"])
    refused, _ = await send_raw(
        server.port, raw, ["stranger@acme.test", "Support@acme.test", "x@fax.acme.test"]
    )
    assert list(refused) == ["stranger@acme.test"]
    [delivery] = collector.got
    assert delivery.recipients == ("support@acme.test", "x@fax.acme.test")
    assert delivery.inboxes == ("support", "fax")
    assert delivery.raw == b"Return-Path: <anna@example.com>\r\n" + raw
    assert delivery.mail_from == "anna@example.com" and delivery.peer == "127.0.0.1"
    assert abs(datetime.now(UTC) - delivery.received_at).total_seconds() < 30


async def test_250_only_after_the_message_is_stored(receiver: tuple[SmtpReceiver, Collector]) -> None:
    server, collector = receiver
    sending = asyncio.create_task(send_raw(server.port, b"From: a@b.c\r\n\r\nhi\r\n", ["support@acme.test"]))
    await asyncio.sleep(0.3)
    assert not sending.done() and collector.got == []
    collector.release.set()
    _, reply = await sending
    assert reply.startswith("2.0.0 stored") and len(collector.got) == 1


async def test_a_failure_to_store_asks_the_sender_to_retry(receiver: tuple[SmtpReceiver, Collector]) -> None:
    server, collector = receiver
    collector.fail = True
    collector.release.set()
    mail = compose(outbound(recipient=Identity.of("email", "support@acme.test")), SENDER, now=NOW)
    with pytest.raises(ChannelUnavailable, match="451"):
        await deliver(plain(server.port), mail, sender="a@b.c", recipients=["support@acme.test"])


async def test_mail_over_the_size_limit_is_refused(receiver: tuple[SmtpReceiver, Collector]) -> None:
    server, collector = receiver
    collector.release.set()
    big = b"From: a@b.c\r\n\r\n" + (b"y" * 76 + b"\r\n") * 400
    with pytest.raises(aiosmtplib.SMTPResponseException) as raised:
        await send_raw(server.port, big, ["support@acme.test"])
    assert raised.value.code == 552 and collector.got == []


# --- receiving into the inbox ---------------------------------------------------------------


def inbox_receiver(services: Services, rules: MailRules) -> SmtpReceiver:
    async def store(delivery: Delivery) -> None:
        parsed = parse_message(delivery.raw, account="acme", rules=rules)
        await services.inbox.ingest(parsed.message)

    return SmtpReceiver(
        ReceiverSettings({"support@acme.test": "support", "sales@acme.test": "sales"}, port=0), store
    )


async def test_mail_to_two_of_our_addresses_is_one_stored_message(services: Services) -> None:
    server = inbox_receiver(services, MailRules())
    await server.start()
    try:
        raw = (PAYLOADS / "gmail_reply.eml").read_bytes()
        await send_raw(
            server.port, raw, ["support@acme.test", "sales@acme.test"], sender="anna.berg@gmail.com"
        )
        await send_raw(server.port, raw, ["sales@acme.test"], sender="anna.berg@gmail.com")
    finally:
        await server.stop()
    conversations, total = await services.inbox.list(ConversationFilter())
    assert total == 1
    timeline = await services.inbox.timeline(conversations[0].id)
    assert [m.external_id for m in timeline.messages] == ["<CAJx9K2fGmail+reply1@mail.gmail.com>"]
    assert timeline.messages[0].text.endswith("but the charger is missing.\n\nAnna")


# --- loops ----------------------------------------------------------------------------------

COMPANY = {
    "name": "ACME Ltd",
    "address": "1 Example Street, London EC1A 1AA",
    "phone": "+44 20 7946 0000",
    "email": "support@acme.test",
}


@pytest.fixture
async def acking(make_config: Any, clock: FakeClock) -> AsyncIterator[Services]:
    """Services with the project's rules loaded, so that acknowledgements can be queued."""
    clock.now = NOW
    services = await open_services(make_config(rules_dir=str(RULES), company=COMPANY), clock=clock)
    await services.rules.load()
    yield services
    await services.close()


async def acknowledge(services: Services, conversation_id: int, now: datetime) -> str | None:
    """Queue the acknowledgement as the trigger engine does; the reason it was withheld, if it was."""
    async with services.db.write() as conn:
        events = await services.replies.send_template(conn, conversation_id, ACKNOWLEDGE, now)
    kinds = [e["kind"] for e in events]
    assert "rules.reply_blocked" not in kinds, events
    withheld = [e["data"]["reason"] for e in events if e["kind"] == "rules.reply_suppressed"]
    return withheld[0] if withheld else None


async def test_one_acknowledgement_per_conversation_per_day(acking: Services, clock: FakeClock) -> None:
    """E1's acknowledgement goes at most once per conversation and day, whatever the sender's spelling."""

    async def mail(message_id: str, sender: str, at: datetime, answering: int | None = None) -> int:
        clock.now = at
        subject, refs = (
            ("Late parcel", ()) if answering is None else (f"Re: Late parcel [#{answering}]", ("<1@x>",))
        )
        message = inbound(message_id, sender, subject=subject, at=at, reply_refs=refs)
        return (await acking.inbox.ingest(message)).conversation_id

    seven = await mail("<1@x>", "Anna@example.com", NOW)
    assert await acknowledge(acking, seven, NOW) is None
    eight = await mail("<2@x>", "anna@example.com", NOW + timedelta(hours=1))
    assert eight != seven and await acknowledge(acking, eight, NOW + timedelta(hours=1)) is None
    assert await mail("<3@x>", "anna@example.com", NOW + timedelta(hours=23), seven) == seven
    assert await acknowledge(acking, seven, NOW + timedelta(hours=23)) == (
        "this conversation was acknowledged less than a day ago"
    )
    assert await mail("<4@x>", "anna@example.com", NOW + timedelta(hours=24), seven) == seven
    assert await acknowledge(acking, seven, NOW + timedelta(hours=24)) is None


@dataclass
class Hub:
    """A receiving hub that acknowledges mail automatically, obeying the loop rules (the once-a-day
    limit is the hub's own, `TemplateReplies.send_template`)."""

    services: Services
    address: str
    peer_port: int = 0
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    acks: int = 0
    refusals: list[str] = field(default_factory=list)

    async def __call__(self, delivery: Delivery) -> None:
        parsed = parse_message(delivery.raw, account="acme", rules=MailRules(frozenset({self.address})))
        stored = await self.services.inbox.ingest(parsed.message)
        sender = parsed.message.sender.address
        if not parsed.auto_reply.allowed:
            self.refusals.append(parsed.auto_reply.reason or "")
            return
        withheld = await acknowledge(self.services, stored.conversation_id, NOW)
        if withheld is not None:
            self.refusals.append(withheld)
            return
        if not self.breaker.allow(sender, NOW):
            self.refusals.append("circuit open")
            return
        self.acks += 1
        ack = compose(
            outbound(
                conversation_id=stored.conversation_id,
                message_id=stored.message_id,
                recipient=parsed.message.sender,
                subject=f"Re: {parsed.message.subject} [#{stored.conversation_id}]",
                text="Thank you, we will answer within one business day.",
                reply_refs=parsed.message.own_refs,
                automatic=True,
            ),
            Sender(self.address, "acme.test", b"s"),
            now=NOW,
        )
        await deliver(plain(self.peer_port), ack, sender=self.address, recipients=[sender])


def naive_autoresponder(
    port_of_hub: Callable[[], int], budget: list[int]
) -> Callable[[Delivery], Awaitable[None]]:
    """A careless system that answers every mail, unmarked, until its budget runs out."""

    async def answer(delivery: Delivery) -> None:
        incoming = parse_message(delivery.raw, account="bot").message
        if not budget[0]:
            raise RuntimeError("the loop did not stop")
        budget[0] -= 1
        reply = (
            f"From: bot@partner.test\r\nTo: {incoming.sender.address}\r\nSubject: Re: {incoming.subject}\r\n"
            f"Message-ID: <bot-{budget[0]}@partner.test>\r\nIn-Reply-To: {incoming.external_id}\r\n\r\n"
            "I am out of office.\r\n"
        ).encode()
        await send_raw(port_of_hub(), reply, [incoming.sender.address], sender="bot@partner.test")

    return answer


async def test_two_hubs_answering_each_other_stop_after_one_acknowledgement(acking: Services) -> None:
    hub = Hub(acking, "support@acme.test")
    ours = SmtpReceiver(ReceiverSettings({"support@acme.test": "support"}, port=0), hub)
    other_hub_acks: list[Delivery] = []

    async def other(delivery: Delivery) -> None:
        parsed = parse_message(
            delivery.raw, account="other", rules=MailRules(frozenset({"help@partner.test"}))
        )
        if parsed.auto_reply.allowed:
            other_hub_acks.append(delivery)

    theirs = SmtpReceiver(ReceiverSettings({"help@partner.test": "help"}, port=0), other)
    await ours.start()
    await theirs.start()
    hub.peer_port = theirs.port
    try:
        first = mail_from("help@partner.test", "Ticket 55", "t55@partner.test")
        await send_raw(ours.port, first, ["support@acme.test"], sender="help@partner.test")
    finally:
        await ours.stop()
        await theirs.stop()
    assert hub.acks == 1 and other_hub_acks == []


async def test_an_unmarked_autoresponder_gets_one_acknowledgement_only(acking: Services) -> None:
    hub = Hub(acking, "support@acme.test")
    ours = SmtpReceiver(ReceiverSettings({"support@acme.test": "support"}, port=0), hub)
    budget = [10]
    bot = SmtpReceiver(
        ReceiverSettings({"bot@partner.test": "bot"}, port=0), naive_autoresponder(lambda: ours.port, budget)
    )
    await ours.start()
    await bot.start()
    hub.peer_port = bot.port
    try:
        first = mail_from("bot@partner.test", "Order", "o1@partner.test")
        await send_raw(ours.port, first, ["support@acme.test"], sender="bot@partner.test")
    finally:
        await ours.stop()
        await bot.stop()
    assert hub.acks == 1 and budget == [9]
    assert hub.refusals == ["this conversation was acknowledged less than a day ago"]


# --- bounces mark the outgoing message failed -----------------------------------------------


class SmtpChannel:
    """The smallest channel that sends through `smtp_out`, so the dispatcher records provider ids."""

    kind = "email"
    capabilities = Capabilities(subject=True, html=True, attachments=True, threading=True)

    def __init__(self, port: int) -> None:
        self.port = port
        self.name = "acme"

    async def start(self, sink: InboundSink) -> None:
        return None

    def routes(self) -> list[web.RouteDef]:
        return []

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        mail = compose(message, SENDER, now=NOW)
        return await deliver(
            plain(self.port), mail, sender=SENDER.address, recipients=[message.recipient.address]
        )

    async def stop(self) -> None:
        return None

    def state(self) -> ChannelState:
        return ChannelState.CONNECTED


async def test_a_bounce_marks_the_outgoing_message_failed_with_reason_and_recipient(
    services: Services, sink_server: Callable[[Sink], Awaitable[int]]
) -> None:
    first = mail_from("nobody@example.com", "Help", "h1@example.com")
    stored = await services.inbox.ingest(parse_message(first, account="acme").message)
    reply = await services.outbox.reply(
        stored.conversation_id, "We are on it.", agent_id=None, subject="Re: Help"
    )
    sink = Sink()
    dispatcher = Dispatcher(
        services.db,
        services.outbox,
        {"acme": SmtpChannel(await sink_server(sink))},
        services.config.outbox,
        clock=services.clock,
    )
    assert await dispatcher.dispatch_once() == 1
    sent = parse_message(sink.mails[0].original_content or b"", account="x").message
    bounce = (
        (PAYLOADS / "dsn_bounce.eml")
        .read_bytes()
        .replace(b"<c44.m90.1234567890abcdef@acme.test>", sent.external_id.encode())
    )
    parsed = parse_message(bounce, account="acme")
    assert parsed.report is not None and parsed.report.original_message_id == sent.external_id
    assert await services.outbox.record_status("acme", sent.external_id, parsed.report.delivery_result())
    [entry] = [e for e in await services.outbox.entries() if e.message_id == reply.id]
    assert entry.status is OutboundStatus.FAILED
    assert entry.last_error is not None and "nobody@example.com: 5.1.1" in entry.last_error
    timeline = await services.inbox.timeline(stored.conversation_id)
    assert len(timeline.messages) == 2


async def test_a_reply_citing_only_our_message_id_joins_the_conversation(
    services: Services, sink_server: Callable[[Sink], Awaitable[int]]
) -> None:
    first = mail_from("anna@example.com", "Parcel", "p1@example.com")
    stored = await services.inbox.ingest(parse_message(first, account="acme").message)
    await services.outbox.reply(stored.conversation_id, "It left today.", agent_id=None, subject="Re: Parcel")
    sink = Sink()
    dispatcher = Dispatcher(
        services.db,
        services.outbox,
        {"acme": SmtpChannel(await sink_server(sink))},
        services.config.outbox,
        clock=services.clock,
    )
    assert await dispatcher.dispatch_once() == 1
    ours = parse_message(sink.mails[0].original_content or b"", account="x").message.external_id
    answer = (
        f"From: anna@example.com\r\nTo: support@acme.test\r\nSubject: thanks\r\n"
        f"Message-ID: <p2@example.com>\r\nIn-Reply-To: {ours}\r\n\r\nThanks!\r\n"
    ).encode()
    result = await services.inbox.ingest(parse_message(answer, account="acme").message)
    assert result.conversation_id == stored.conversation_id and not result.new_conversation
