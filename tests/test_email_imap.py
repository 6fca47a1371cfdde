"""IMAP inbound against a real dovecot, on SQLite and PostgreSQL: every mail stored exactly once."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest
from sqlalchemy import select

from channels.base import ChannelState
from channels.email.imap import cursor
from channels.email.imap.client import ImapError, ImapServer, ImapSession
from channels.email.imap.poller import ImapPoller, PollSettings, account_lock_key
from channels.email.imap.sync import AfterCommit, MailboxSettings, MailboxSync
from channels.email.parse import parse_message
from hub import config as hub_config
from hub import quarantine
from hub.errors import ChannelAuthError
from hub.models import InboundMessage
from hub.services import Services, open_services
from hub.store import schema
from tests.dovecot import PASSWORD, Dovecot, dovecot, dovecot_tls  # noqa: F401

ACCOUNT = "support"
USER = "support"


def mail(
    n: int, *, sender: str = "", subject: str = "", body: str = "", message_id: str | None = None
) -> bytes:
    """A plain customer mail; `n` makes sender, subject and Message-ID distinct."""
    msg = EmailMessage()
    msg["From"] = sender or f"Customer {n} <customer{n % 97}@example.com>"
    msg["To"] = "support@shop.example"
    msg["Subject"] = subject or f"Order {10000 + n} has not arrived"
    msg["Date"] = format_datetime(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    msg["Message-ID"] = message_id or make_msgid(f"m{n}", "mail.example.com")
    msg.set_content(body or f"Hello, my order {10000 + n} is late. 我的订单还没有到。\n")
    return msg.as_bytes()


BULK = (
    "From: Customer {n} <customer{k}@example.com>\r\n"
    "To: support@shop.example\r\n"
    "Subject: Order {order} has not arrived\r\n"
    "Date: Fri, 20 Nov 2026 09:00:00 +0000\r\n"
    "Message-ID: <bulk-{n}@mail.example.com>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Hello, my order {order} is late.\r\n我的订单还没有到。\r\n"
)


def bulk(count: int) -> list[bytes]:
    """Many distinct plain mails, built quickly."""
    return [BULK.format(n=n, k=n % 97, order=10000 + n).encode() for n in range(count)]


def parser(account: str = ACCOUNT) -> Callable[[bytes, str | None], InboundMessage]:
    def parse(raw: bytes, mailbox: str | None, *, received_at: datetime | None = None) -> InboundMessage:
        return parse_message(raw, account=account, mailbox=mailbox, received_at=received_at).message

    return parse


def server(dv: Dovecot, password: str = PASSWORD) -> ImapServer:
    return ImapServer(dv.host, dv.port, USER, password, tls=False, timeout=5.0)


def settings(mailbox: str = "INBOX", **kw: object) -> MailboxSettings:
    return MailboxSettings(account=ACCOUNT, mailbox=mailbox, **kw)  # type: ignore[arg-type]


async def stored(services: Services) -> list[str]:
    m = schema.messages
    async with services.db.read() as conn:
        rows = await conn.execute(select(m.c.external_id).where(m.c.channel_account == ACCOUNT))
        return [r.external_id for r in rows]


async def quarantined(services: Services) -> list[quarantine.QuarantineEntry]:
    return await quarantine.entries(services.db)


@pytest.fixture
async def session(dovecot: Dovecot) -> AsyncIterator[ImapSession]:  # noqa: F811
    s = await ImapSession.open(server(dovecot))
    yield s
    await s.close()


async def until(check: Callable[[], object], seconds: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_a_pass_stores_new_mail_once_and_moves_the_cursor(
    services: Services,
    dovecot: Dovecot,  # noqa: F811
    session: ImapSession,
) -> None:
    dovecot.deliver(USER, [mail(i) for i in range(3)])
    sync = MailboxSync(services.inbox, settings(), parser())
    first = await sync.run_once(session)
    assert (first.stored, first.duplicates, first.quarantined) == (3, 0, 0)
    position = await cursor.load(services.db, ACCOUNT, "INBOX")
    assert position is not None and position.last_uid == 3 and position.highest_modseq is not None

    dovecot.deliver(USER, [mail(3)])
    second = await sync.run_once(session)
    assert (second.stored, second.duplicates) == (1, 0)
    assert len(await stored(services)) == 4
    again = await sync.run_once(session)
    assert (again.stored, again.duplicates) == (0, 0)


async def test_the_servers_arrival_time_wins_over_the_date_header(
    services: Services,
    dovecot: Dovecot,  # noqa: F811
    session: ImapSession,
) -> None:
    arrived = datetime(2026, 11, 21, 10, 30, tzinfo=UTC)
    dovecot.deliver(USER, [mail(1)])  # its Date header says 2026-11-20 09:00
    for path in dovecot.maildir(USER).joinpath("new").iterdir():
        os.utime(path, (arrived.timestamp(), arrived.timestamp()))
    await MailboxSync(services.inbox, settings(), parser()).run_once(session)
    m = schema.messages
    async with services.db.read() as conn:
        [created] = (await conn.execute(select(m.c.created_at))).scalars().all()
    assert created == arrived


async def test_idle_push_brings_new_mail_without_polling(
    services: Services,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    poller = ImapPoller(
        services.inbox, server(dovecot), [settings()], parser(), PollSettings(poll_seconds=3600)
    )
    poller.start()
    try:
        await until(lambda: poller.passes >= 1)
        assert poller.state() is ChannelState.CONNECTED
        await asyncio.sleep(0.2)
        started = asyncio.get_running_loop().time()
        dovecot.deliver(USER, [mail(1, subject="Pushed by IDLE")])

        async def arrived() -> bool:
            return len(await stored(services)) == 1

        await until(arrived, 10)
        assert asyncio.get_running_loop().time() - started < 5
    finally:
        await poller.stop()
    assert poller.state() is ChannelState.STOPPED


async def test_without_idle_the_mailbox_is_polled(
    services: Services,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    poller = ImapPoller(
        services.inbox, server(dovecot), [settings()], parser(), PollSettings(idle=False, poll_seconds=0.3)
    )
    poller.start()
    try:
        await until(lambda: poller.passes >= 1)
        dovecot.deliver(USER, [mail(1), mail(2)])

        async def arrived() -> bool:
            return len(await stored(services)) == 2

        await until(arrived, 10)
        assert poller.passes >= 2
    finally:
        await poller.stop()


@pytest.fixture
async def sqlite_services(tmp_path: Path) -> AsyncIterator[Services]:
    """Services on SQLite only, for a test whose PostgreSQL run would add time and no coverage
    (the batch path on PostgreSQL is exercised by the kill-and-restart test)."""
    config = hub_config.parse(
        {"store": {"url": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"}, "hub": {"data_dir": str(tmp_path)}},
        tmp_path,
    )
    svc = await open_services(config)
    yield svc
    await svc.close()


@pytest.mark.slow
async def test_a_5000_message_mailbox_arrives_complete(
    sqlite_services: Services,
    dovecot: Dovecot,  # noqa: F811
    session: ImapSession,
) -> None:
    services = sqlite_services
    dovecot.deliver(USER, bulk(5000))
    result = await MailboxSync(services.inbox, settings(), parser()).run_once(session)
    assert result.stored == 5000
    ids = await stored(services)
    assert len(ids) == len(set(ids)) == 5000
    position = await cursor.load(services.db, ACCOUNT, "INBOX")
    assert position is not None and position.last_uid == 5000


async def test_server_killed_mid_sync_reconnects_and_catches_up_without_gaps(
    services: Services,
    dovecot: Dovecot,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    total = 800
    dovecot.deliver(USER, bulk(total))
    fast = PollSettings(poll_seconds=3600, backoff_base_seconds=0.2, backoff_max_seconds=0.5)
    seen = 0

    async def kill_on_the_250th(message: InboundMessage) -> bool:
        # Called for every parsed mail before it is stored: pulls the plug mid-sync.
        nonlocal seen
        seen += 1
        if seen == 250:
            dovecot.stop(kill=True)
        return False

    poller = ImapPoller(
        services.inbox, server(dovecot), [settings()], parser(), fast, divert=kill_on_the_250th
    )
    caplog.set_level(logging.INFO, logger="channels.email.imap")
    poller.start()
    try:
        await until(lambda: poller.state() is ChannelState.DEGRADED)
        partial = len(await stored(services))
        assert partial < total
        await asyncio.sleep(1.0)
        dovecot.start()

        async def complete() -> bool:
            return len(await stored(services)) == total

        await until(complete, 30)
        await until(lambda: poller.state() is ChannelState.CONNECTED)
    finally:
        await poller.stop()
    ids = await stored(services)
    assert len(ids) == len(set(ids)) == total
    lost = [r for r in caplog.records if "lost the IMAP server" in r.getMessage()]
    back = [r for r in caplog.records if "IMAP server is back" in r.getMessage()]
    assert len(lost) == 1 and len(back) == 1


async def test_uidvalidity_change_rescans_and_deduplicates_without_wiping(
    services: Services,
    dovecot: Dovecot,  # noqa: F811
    session: ImapSession,
) -> None:
    folder = "Support Requests"
    await session.create(folder)
    old = [mail(i) for i in range(3)]
    for raw in old:
        await session.append(folder, raw)
    sync = MailboxSync(services.inbox, settings(folder), parser())
    assert (await sync.run_once(session)).stored == 3
    before = await cursor.load(services.db, ACCOUNT, folder)
    assert before is not None

    await session.select("INBOX")
    await session._ok(session._client.delete(f'"{folder}"'), "DELETE")  # the server loses the folder
    await session.create(folder)
    for raw in [*old, mail(99)]:
        await session.append(folder, raw)

    result = await sync.run_once(session)
    assert result.rescanned
    assert (result.stored, result.duplicates) == (1, 3)
    assert len(await stored(services)) == 4
    after = await cursor.load(services.db, ACCOUNT, folder)
    assert after is not None and after.uidvalidity != before.uidvalidity and after.last_uid == 4


async def flags(session: ImapSession, mailbox: str) -> dict[int, bytes]:
    await session.select(mailbox)
    response = await session._ok(session._client.uid("fetch", "1:*", "(UID FLAGS)"), "FETCH FLAGS")
    found = {}
    for line in response.lines:
        if isinstance(line, bytes) and b"FLAGS" in line and b"UID" in line:
            uid = int(line.split(b"UID ")[1].split()[0].rstrip(b")"))
            found[uid] = line.split(b"FLAGS (")[1].split(b")")[0]
    return found


async def test_crash_between_insert_and_flag_flags_later_and_stores_once(
    services: Services,
    dovecot: Dovecot,  # noqa: F811
    session: ImapSession,
) -> None:
    dovecot.deliver(USER, [mail(i) for i in range(4)])
    # The state a crash right after the commit leaves: stored, cursor moved, nothing flagged.
    await MailboxSync(services.inbox, settings(), parser()).run_once(session)
    assert all(b"\\Seen" not in f for f in (await flags(session, "INBOX")).values())

    restarted = MailboxSync(services.inbox, settings(after_commit=AfterCommit.SEEN), parser())
    await restarted.settle(session)
    result = await restarted.run_once(session)
    assert (result.stored, result.duplicates) == (0, 0)
    assert all(b"\\Seen" in f for f in (await flags(session, "INBOX")).values())
    assert len(await stored(services)) == 4

    dovecot.deliver(USER, [mail(10)])
    assert (await restarted.run_once(session)).stored == 1
    seen = await flags(session, "INBOX")
    assert len(seen) == 5 and all(b"\\Seen" in f for f in seen.values())


async def test_after_commit_move_empties_the_inbox_into_the_archive(
    services: Services,
    dovecot: Dovecot,  # noqa: F811
    session: ImapSession,
) -> None:
    await session.create("Archive")
    dovecot.deliver(USER, [mail(i) for i in range(3)])
    sync = MailboxSync(services.inbox, settings(after_commit=AfterCommit.MOVE, move_to="Archive"), parser())
    assert (await sync.run_once(session)).stored == 3
    assert (await session.select("INBOX")).exists == 0
    assert (await session.select("Archive")).exists == 3


async def test_the_same_mail_in_two_mailboxes_is_one_message(
    services: Services,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    both = mail(1, subject="Fax from +49 30 1234567")
    dovecot.deliver(USER, [both, mail(2)])
    dovecot.deliver(USER, [both], mailbox="Fax 传真")
    poller = ImapPoller(
        services.inbox,
        server(dovecot),
        [settings(), settings("Fax 传真")],
        parser(),
        PollSettings(poll_seconds=3600),
    )
    poller.start()
    try:
        await until(lambda: poller.passes >= 2)
    finally:
        await poller.stop()
    assert len(await stored(services)) == 2
    fax = await cursor.load(services.db, ACCOUNT, "Fax 传真")
    assert fax is not None and fax.last_uid == 1


async def test_oversized_and_unparseable_mail_is_quarantined_and_the_mailbox_carries_on(
    services: Services,
    dovecot: Dovecot,  # noqa: F811
    session: ImapSession,
) -> None:
    big = mail(2, body="x" * 40_000 + "\n")
    broken = b"Subject: no sender at all\r\n\r\nWho sent this?\r\n"
    dovecot.deliver(USER, [mail(1), big, broken, mail(3)])
    sync = MailboxSync(services.inbox, settings(max_message_bytes=20_000), parser())
    result = await sync.run_once(session)
    assert (result.stored, result.quarantined) == (2, 2)
    entries = sorted(await quarantined(services), key=lambda e: e.id)
    reasons = {e.external_id: e.reason for e in entries}
    assert any("oversized" in r and "20000" in r for r in reasons.values())
    assert any("unparseable" in r for r in reasons.values())
    by_ref = {e.external_id: e for e in entries}
    kept = await services.blobs.get(
        by_ref[next(k for k, r in reasons.items() if "unparseable" in r)].raw_sha256
    )
    assert kept.replace(b"\r\n", b"\n") == broken.replace(b"\r\n", b"\n")
    oversized = by_ref[next(k for k, r in reasons.items() if "oversized" in r)]
    headers = await services.blobs.get(oversized.raw_sha256)
    assert b"Subject: Order 10002" in headers and b"xxxx" not in headers

    position = await cursor.load(services.db, ACCOUNT, "INBOX")
    assert position is not None and position.last_uid == 4
    again = await sync.run_once(session)
    assert (again.stored, again.quarantined) == (0, 0)
    assert len(await quarantined(services)) == 2


async def test_implicit_tls_checks_the_certificate(dovecot_tls: Dovecot) -> None:  # noqa: F811
    trusted = ssl.create_default_context(cafile=str(dovecot_tls.certificate))
    tls = ImapServer(
        "127.0.0.1", dovecot_tls.tls_port, USER, PASSWORD, tls=True, timeout=5, ssl_context=trusted
    )
    session = await ImapSession.open(tls)
    try:
        assert (await session.select("INBOX")).exists == 0
    finally:
        await session.close()
    untrusted = ImapServer("127.0.0.1", dovecot_tls.tls_port, USER, PASSWORD, tls=True, timeout=5)
    with pytest.raises(ImapError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        await ImapSession.open(untrusted)


async def test_xoauth2_login_and_a_refused_token() -> None:
    from aiohttp import web

    from tests.conftest import unavailable
    from tests.dovecot import dovecot_available

    if not dovecot_available():
        unavailable("dovecot (Debian package dovecot-imapd)")
    asked: list[str] = []

    async def introspect(request: web.Request) -> web.Response:
        token = str((await request.post()).get("token"))
        asked.append(token)
        return web.json_response(
            {"active": True, "username": USER} if token == "valid-token" else {"active": False}
        )

    app = web.Application()
    app.router.add_post("/introspect", introspect)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    root = Path(tempfile.mkdtemp(prefix="omnihub-dovecot-"))
    os.chmod(root, 0o711)
    oauth = Dovecot(root, oauth_introspection=f"http://127.0.0.1:{runner.addresses[0][1]}/introspect")
    oauth.start()
    try:
        session = await ImapSession.open(
            ImapServer("127.0.0.1", oauth.port, USER, oauth_token="valid-token", tls=False, timeout=5)
        )
        try:
            assert (await session.select("INBOX")).exists == 0
        finally:
            await session.close()
        with pytest.raises(ChannelAuthError):
            await ImapSession.open(
                ImapServer("127.0.0.1", oauth.port, USER, oauth_token="expired", tls=False, timeout=5)
            )
        assert asked == ["valid-token", "expired"]
    finally:
        oauth.stop(kill=True)
        shutil.rmtree(root, ignore_errors=True)
        await runner.cleanup()


async def test_wrong_password_is_a_credentials_error(dovecot: Dovecot) -> None:  # noqa: F811
    with pytest.raises(ChannelAuthError):
        await ImapSession.open(server(dovecot, password="wrong"))


async def test_one_process_pulls_an_account_at_a_time(
    services: Services,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    dovecot.deliver(USER, [mail(1)])
    quick = PollSettings(poll_seconds=3600, lock_retry_seconds=0.2)
    first = ImapPoller(services.inbox, server(dovecot), [settings()], parser(), quick)
    second = ImapPoller(services.inbox, server(dovecot), [settings()], parser(), quick)
    first.start()
    try:
        await until(lambda: first.passes >= 1)
        second.start()
        await asyncio.sleep(0.5)
        if services.db.is_sqlite:
            assert second.state() is ChannelState.CONNECTED  # one process owns a SQLite file anyway
        else:
            assert second.state() is ChannelState.CONNECTING and second.passes == 0
            await first.stop()
            await until(lambda: second.passes >= 1)
            assert second.state() is ChannelState.CONNECTED
    finally:
        await first.stop()
        await second.stop()
    assert len(await stored(services)) == 1


def test_two_hubs_in_different_schemas_lock_their_own_mailboxes_of_the_same_name() -> None:
    key = account_lock_key("acme", "support")
    assert key == account_lock_key("acme", "support")
    assert key != account_lock_key("globex", "support")
    assert key != account_lock_key("acme", "sales")
    assert account_lock_key(None, "support") == account_lock_key("public", "support")
    before_schemas = int.from_bytes(hashlib.sha256(b"support").digest()[:4], "big") & 0x7FFFFFFF
    assert account_lock_key(None, "support") == before_schemas
    assert 0 <= key <= 0x7FFFFFFF
