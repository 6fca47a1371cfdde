"""The e-mail channel end to end: IMAP and SMTP in, SMTP out, bounces back onto our mail."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import func, select

import channels as registry
from channels.base import ChannelContext, ChannelState
from channels.email.channel import EmailChannel
from channels.email.imap.sync import parse_source_ref, source_ref
from hub import quarantine
from hub.errors import ChannelError, ConfigError
from hub.inbox import ConversationFilter
from hub.models import OutboundStatus
from hub.outbox import Dispatcher
from hub.services import Services
from hub.store import schema
from tests.dovecot import PASSWORD, Dovecot, dovecot  # noqa: F401
from tests.hubproc import HubProcess
from tests.test_email_imap import mail, until

NAME = "support"


class Sink:
    """An SMTP server that keeps what it is sent."""

    def __init__(self) -> None:
        self.mails: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.mails.append(envelope)
        return "250 2.0.0 OK"


@pytest.fixture
async def smtp_sink() -> AsyncIterator[tuple[Sink, int]]:
    sink = Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink, hostname="sink.test"), "127.0.0.1", 0)
    yield sink, int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()


def entry(imap_port: int | None, smtp_port: int, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": NAME,
        "kind": "email",
        "address": "support@shop.example",
        "display_name": "Shop Support",
        "id_secret": "env:OMNIHUB_TEST_MAIL_SECRET",
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none"},
        "receiver": {"recipients": {"support@shop.example": "support"}, "port": 0},
        **extra,
    }
    if imap_port is not None:
        data["imap"] = {
            "host": "127.0.0.1",
            "port": imap_port,
            "tls": False,
            "username": "support",
            "password": "env:OMNIHUB_TEST_IMAP_PASSWORD",
            "poll_seconds": 3600,
            "parse_workers": 1,
        }
    return data


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNIHUB_TEST_MAIL_SECRET", "s3cret-for-ids")
    monkeypatch.setenv("OMNIHUB_TEST_IMAP_PASSWORD", PASSWORD)


def bounce(original_id: str, recipient: str) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\n"
        "To: support@shop.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-1@mx.example.com>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n--b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.com\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 mailbox unknown\r\n"
        "\r\n--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {original_id}\r\nFrom: support@shop.example\r\nTo: {recipient}\r\n"
        "Subject: Re: Order\r\n\r\n--b1--\r\n"
    ).encode()


async def rows(services: Services, table: Any) -> int:
    async with services.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


def build(services: Services, make_config: Any, data: dict[str, Any]) -> EmailChannel:
    config = make_config(channels=[data])
    [configured] = registry.configured(config)
    context = ChannelContext(
        http=None,  # type: ignore[arg-type]
        blobs=services.blobs,
        public_url="http://127.0.0.1:8080",
        data_dir=config.data_dir,
        report_status=services.outbox.record_status,
        inbox=services.inbox,
    )
    channel = registry.build(configured, context)
    assert isinstance(channel, EmailChannel)
    return channel


async def test_mail_in_both_ways_a_reply_out_and_its_bounce_back(
    services: Services,
    make_config: Any,
    dovecot: Dovecot,  # noqa: F811
    smtp_sink: tuple[Sink, int],
) -> None:
    sink, smtp_port = smtp_sink
    channel = build(services, make_config, entry(dovecot.port, smtp_port))
    services.inbox.start()
    dovecot.deliver("support", [mail(1, sender="Priya Patel <priya@example.com>")])
    await channel.start(services.inbox.ingest)
    try:
        await until(lambda: rows(services, schema.conversations))
        assert channel.state() is ChannelState.CONNECTED
        [conversation] = (await services.inbox.list(ConversationFilter()))[0]
        conversation_id = conversation.id

        reply = await services.outbox.reply(conversation_id, "We are on it.", agent_id=None)
        dispatcher = Dispatcher(
            services.db, services.outbox, {NAME: channel}, services.config.outbox, services.clock
        )
        assert await dispatcher.dispatch_once() == 1
        [sent] = sink.mails
        assert sent.rcpt_tos == ["priya@example.com"]
        [out] = await services.outbox.entries()
        assert out.message_id == reply.id and out.status is OutboundStatus.SENT and out.provider_id
        assert f"Message-ID: {out.provider_id}".encode() in sent.original_content

        messages_before = await rows(services, schema.messages)
        dovecot.deliver("support", [bounce(out.provider_id, "priya@example.com")])

        async def failed() -> bool:
            return (await services.outbox.entry(out.id)).status is OutboundStatus.FAILED

        await until(failed)
        bounced = await services.outbox.entry(out.id)
        assert (
            bounced.last_error and "priya@example.com" in bounced.last_error and "5.1.1" in bounced.last_error
        )
        assert await rows(services, schema.messages) == messages_before
        assert await rows(services, schema.conversations) == 1

        assert channel.receiver is not None
        await aiosmtplib.send(
            mail(2, sender="Wang Fang <wang.fang@example.cn>"),
            sender="wang.fang@example.cn",
            recipients=["support@shop.example"],
            hostname="127.0.0.1",
            port=channel.receiver.port,
        )
        assert await rows(services, schema.conversations) == 2
    finally:
        await channel.stop()
    assert channel.state() is ChannelState.STOPPED


async def test_smtp_only_account_and_unreadable_mail_goes_to_quarantine(
    services: Services, make_config: Any, smtp_sink: tuple[Sink, int]
) -> None:
    channel = build(services, make_config, entry(None, smtp_sink[1]))
    services.inbox.start()
    await channel.start(services.inbox.ingest)
    try:
        assert channel.state() is ChannelState.CONNECTED and channel.receiver is not None
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=channel.receiver.port) as client:
            await client.sendmail("", ["support@shop.example"], b"Subject: nobody\r\n\r\nno From header\r\n")
        [held] = await quarantine.entries(services.db)
        assert held.channel_account == NAME and "unparseable" in held.reason
        assert held.raw_sha256 is not None
        assert b"no From header" in await services.blobs.get(held.raw_sha256)
        assert await rows(services, schema.messages) == 0
    finally:
        await channel.stop()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"imap": {"host": "mail.example.com", "tls": False, "username": "u", "password": "p"}}, "loopback"),
        ({"imap": {"host": "mail.example.com", "username": "u"}}, "imap needs password, oauth_token, or the"),
        (
            {"imap": {"host": "127.0.0.1", "username": "u", "password": "p", "oauth_token": "t"}},
            "password or oauth_token, not both",
        ),
        (
            {"oauth": {"token_url": "ftp://x", "client_id": "c", "refresh_token": "r"}},
            "oauth.token_url",
        ),
        ({"receiver": None}, "needs `imap`, `receiver` or both"),
        (
            {"imap": {"host": "127.0.0.1", "username": "u", "password": "p", "after_commit": "move"}},
            "move_to",
        ),
    ],
)
def test_bad_account_settings_name_the_problem(
    make_config: Any, change: dict[str, Any], message: str
) -> None:
    data = {k: v for k, v in {**entry(None, 25), **change}.items() if v is not None}
    with pytest.raises(ConfigError, match="channels\\[0\\]") as err:
        registry.configured(make_config(channels=[data]))
    assert message in str(err.value)


async def test_quarantined_mail_can_be_reprocessed(
    services: Services,
    make_config: Any,
    dovecot: Dovecot,  # noqa: F811
    smtp_sink: tuple[Sink, int],
) -> None:
    data = entry(dovecot.port, smtp_sink[1])
    data["imap"] = {**data["imap"], "max_message_bytes": 20_000, "parse_workers": 0}
    channel = build(services, make_config, data)
    services.inbox.start()
    big = mail(7, body="A long complaint. " * 3000 + "\n")
    dovecot.deliver("support", [big, b"Subject: who?\r\n\r\nno sender\r\n"])
    await channel.start(services.inbox.ingest)
    try:

        async def both_held() -> bool:
            return len(await quarantine.entries(services.db)) == 2

        await until(both_held)
        held = {e.reason.split(":")[0]: e for e in await quarantine.entries(services.db)}
        assert set(held) == {"oversized", "unparseable"}

        result = await channel.reprocess(held["oversized"].id)
        assert not result.duplicate
        assert await rows(services, schema.messages) == 1
        with pytest.raises(ChannelError, match="still unreadable"):
            await channel.reprocess(held["unparseable"].id)
        [left] = await quarantine.entries(services.db)
        assert left.id == held["unparseable"].id
    finally:
        await channel.stop()


def test_quarantine_refs_name_mailbox_validity_and_uid() -> None:
    assert parse_source_ref(source_ref("Fax: 传真", 17, 4)) == ("Fax: 传真", 17, 4)
    assert parse_source_ref("smtp:anna@example.com") is None


@pytest.mark.slow
async def test_a_hub_process_pulls_a_mailbox_and_stops_cleanly(
    tmp_path: Path,
    store_settings: dict[str, Any],
    dovecot: Dovecot,  # noqa: F811
) -> None:
    store = "\n".join(f'{k} = "{v}"' for k, v in store_settings.items())
    config = tmp_path / "omnihub.toml"
    config.write_text(
        f'[hub]\ndata_dir = "{tmp_path / "data"}"\n[store]\n{store}\n[web]\nport = 0\n\n'
        '[[channels]]\nname = "support"\nkind = "email"\naddress = "support@shop.example"\n'
        'id_secret = "s3cret-for-ids"\n'
        f'[channels.imap]\nhost = "127.0.0.1"\nport = {dovecot.port}\ntls = false\n'
        f'username = "support"\npassword = "{PASSWORD}"\nparse_workers = 1\n'
    )
    dovecot.deliver("support", [mail(1), mail(2)])
    hub = HubProcess(config)
    try:
        await hub.start()

        await until(lambda: _stored_count_is(config, 2), 30)
        dovecot.deliver("support", [mail(3)])
        await until(lambda: _stored_count_is(config, 3), 15)
        code = await hub.terminate(15)
    finally:
        await hub.ensure_stopped()
    assert code == 0, hub.log
    assert "stopped cleanly" in hub.log
    assert "still pending" not in hub.log and "Task was destroyed" not in hub.log
    assert PASSWORD not in hub.log


async def _stored_count(config: Path) -> int:
    from hub import config as hub_config
    from hub.store import Database

    cfg = hub_config.load(config)
    db = Database(cfg.store_url, schema=cfg.store.schema_name)
    try:
        async with db.read() as conn:
            return int((await conn.execute(select(func.count()).select_from(schema.messages))).scalar_one())
    except Exception:  # the hub may not have created its tables yet
        return 0
    finally:
        await db.dispose()


async def _stored_count_is(config: Path, count: int) -> bool:
    return await _stored_count(config) == count
