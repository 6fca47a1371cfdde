"""Large syncs store mail from its headers and fill in the rest later; nothing is lost or seen twice.

Against a real dovecot, on SQLite and PostgreSQL: what the headers-only triage stores equals
what the full parse finds; triggers see each message once and only when it is whole; the
full parse is done exactly once, also by two processes at once and after a restart.
"""

from __future__ import annotations

import asyncio
import email
import functools
import hashlib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from channels.email import bounces, pool
from channels.email.channel import parse_for, triage_for
from channels.email.completer import Completer
from channels.email.imap import sync as sync_module
from channels.email.imap.client import ImapSession
from channels.email.imap.sync import MailboxSync
from channels.email.parse import POLICY, MailRules, ParseLimits, parse_message, triage
from hub import content
from hub.inbox import WAKE, wake
from hub.scheduler import Scheduler
from hub.services import Services
from hub.store import schema
from tests.conftest import FakeClock
from tests.dovecot import Dovecot, dovecot  # noqa: F401
from tests.test_email_imap import ACCOUNT, USER, mail, server, settings
from tests.test_triggers import write_rules

RULES = MailRules(own_addresses=frozenset({"support@shop.example"}))
FULL = functools.partial(parse_for, account=ACCOUNT, limits=ParseLimits(), rules=RULES)
QUICK = functools.partial(triage_for, account=ACCOUNT, limits=ParseLimits(), rules=RULES)
PAYLOADS = Path(__file__).parent / "payloads" / "email"

TRIGGERS = """
triggers:
  - name: complaint
    when: message.received
    if: {any: [{field: body, operator: matches, value: "refund|退款"}]}
    then: [{tag: complaint}]
  - name: welcome
    when: conversation.created
    then: [{tag: new}]
"""


def rich(n: int, **headers: str) -> bytes:
    """An HTML mail with its text part, an inline image and a PDF."""
    msg = EmailMessage()
    msg["From"] = f"Priya <priya{n}@example.com>"
    msg["To"] = "support@shop.example"
    msg["Subject"] = f"Broken lamp {n}"
    msg["Date"] = "Fri, 20 Nov 2026 09:00:00 +0000"
    msg["Message-ID"] = f"<rich-{n}@mail.example.com>"
    for name, value in headers.items():
        msg[name] = value
    msg.set_content(
        "The lamp arrived broken; I want a refund.\n\nOn Mon, Nov 2, 2026 Support wrote:\n> Thanks\n"
    )
    msg.add_alternative(
        '<p>The lamp arrived <b>broken</b>; I want a refund.</p><img src="cid:photo1">', "html"
    )
    html = msg.get_payload()[1]  # type: ignore[index]
    html.add_related(b"\x89PNG fake image", "image", "png", cid="<photo1>")
    msg.add_attachment(b"%PDF-1.4 receipt", maintype="application", subtype="pdf", filename="receipt.pdf")
    return msg.as_bytes()


def chinese_body(n: int) -> bytes:
    """English subject, Chinese text, no Content-Language: only the full parse finds the language."""
    msg = EmailMessage()
    msg["From"] = f"Wang <wang{n}@example.cn>"
    msg["To"] = "support@shop.example"
    msg["Subject"] = f"Order {n}"
    msg["Date"] = format_datetime(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    msg["Message-ID"] = f"<zh-{n}@mail.example.cn>"
    msg.set_content("您好，快递一直没有到，我要退款。谢谢！\n")
    return msg.as_bytes()


def corpus() -> list[bytes]:
    made = [mail(i) for i in range(5)] + [rich(1), chinese_body(1)]
    return made + [p.read_bytes() for p in sorted(PAYLOADS.glob("*.eml"))]


@pytest.mark.parametrize("raw", corpus(), ids=lambda raw: str(len(raw)))
def test_triage_stores_what_the_full_parse_would_from_the_headers(raw: bytes) -> None:
    at = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    try:
        whole = parse_message(raw, account=ACCOUNT, mailbox="INBOX", rules=RULES, received_at=at)
    except Exception as err:
        with pytest.raises(type(err)):
            triage(raw, account=ACCOUNT, mailbox="INBOX", rules=RULES, received_at=at)
        return
    quick = triage(raw, account=ACCOUNT, mailbox="INBOX", rules=RULES, received_at=at)
    head = email.message_from_bytes(raw, policy=POLICY)
    might_report = bounces.may_be_report(head, whole.message.sender.address)
    assert (quick is None) == might_report
    if whole.report is not None:
        assert quick is None  # reports are read whole before anything is stored
    if quick is None:
        return
    full = whole.message
    assert quick.content_pending and quick.text == "" and quick.attachments == ()
    for name in (
        "external_id",
        "sender",
        "sender_name",
        "subject",
        "received_at",
        "reply_refs",
        "own_refs",
        "raw",
    ):
        assert getattr(quick, name) == getattr(full, name), name
    assert {k: full.meta[k] for k in quick.meta} == quick.meta
    assert quick.meta["auto_reply"] == whole.auto_reply.allowed


async def _rows(services: Services, table: Any, *where: Any) -> int:
    async with services.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one())


async def _fire(services: Services, clock: FakeClock) -> int:
    timers = Scheduler(services.db, {WAKE: wake, **services.rule_engine.handlers()}, clock)
    total = 0
    while fired := await timers.run_due():
        total += fired
    return total


async def test_a_large_pass_is_stored_from_headers_and_triggers_see_each_mail_once_whole(
    services: Services,
    clock: FakeClock,
    dovecot: Dovecot,  # noqa: F811
    tmp_path: Path,
) -> None:
    write_rules(tmp_path / "rules", TRIGGERS)
    await services.rules.load()
    first = mail(1, body="Where is my parcel?\n")
    reply = mail(2, subject="Re: Order 10001 has not arrived", body="I want a refund now.\n")
    reply = reply.replace(b"Message-ID:", b"In-Reply-To: " + _msgid(first) + b"\r\nMessage-ID:", 1)
    bounce = (PAYLOADS / "dsn_bounce.eml").read_bytes()
    dovecot.deliver(
        USER, [first, reply, rich(1), chinese_body(1), bounce, b"Subject: who?\r\n\r\nnobody\r\n"]
    )
    sync = MailboxSync(services.inbox, settings(inline_limit=2), FULL, triage=QUICK)
    session = await ImapSession.open(server(dovecot))
    try:
        result = await sync.run_once(session)
    finally:
        await session.close()
    assert (result.stored, result.quarantined) == (5, 1)

    m = schema.messages
    async with services.db.read() as conn:
        rows = {r.external_id: r for r in await conn.execute(select(m))}
    pending = {mid for mid, r in ((r.id, r) for r in rows.values()) if r.meta.get("content_pending")}
    assert len(pending) == 4 and await content.count(services.db, ACCOUNT) == 4
    assert all(rows[eid].text == "" for eid in rows if rows[eid].id in pending)
    [report] = [r for r in rows.values() if r.id not in pending]
    assert report.text and report.meta.get("report", {}).get("kind") == "bounce"
    a = schema.attachments
    assert await _rows(services, a, a.c.message_id != report.id) == 0

    await _fire(services, clock)
    fired = await _rows(services, schema.events, schema.events.c.kind == "rule.fired")
    assert fired == 1  # only the report, which was read whole, has reached the triggers

    completer = Completer(services.inbox, ACCOUNT, FULL)
    assert await completer.drain() == 4
    assert await content.count(services.db, ACCOUNT) == 0
    async with services.db.read() as conn:
        after = {r.external_id: r for r in await conn.execute(select(m))}
    lamp = after["<rich-1@mail.example.com>"]
    assert "broken" in lamp.text and "Thanks" not in lamp.text and "Thanks" in lamp.meta["quoted"]
    assert lamp.html is not None and "cid:" not in lamp.html and lamp.meta["imap"]["uid"] == 3
    assert "content_pending" not in lamp.meta and lamp.meta["auto_reply"] is True
    assert await _rows(services, a, a.c.message_id == lamp.id) == 2
    assert [c.id for c in await services.inbox.search("broken lamp")] == [lamp.conversation_id]
    zh = after["<zh-1@mail.example.cn>"]
    k, c = schema.contacts, schema.conversations
    async with services.db.read() as conn:
        language = (
            await conn.execute(
                select(k.c.language).join(c, c.c.contact_id == k.c.id).where(c.c.id == zh.conversation_id)
            )
        ).scalar_one()
    assert language == "zh"

    await _fire(services, clock)
    tags = {eid: set((await services.inbox.conversation(r.conversation_id)).tags) for eid, r in after.items()}
    assert "complaint" in tags["<rich-1@mail.example.com>"] and "complaint" in tags["<zh-1@mail.example.cn>"]
    assert tags[_msgid(first).decode()] == {"new", "complaint"}  # its reply asked for a refund
    e = schema.events
    async with services.db.read() as conn:
        firings = [
            (r.conversation_id, r.data["trigger"])
            for r in await conn.execute(select(e).where(e.c.kind == "rule.fired"))
        ]
    welcomes = [cid for cid, trigger in firings if trigger == "welcome"]
    assert sorted(welcomes) == sorted({r.conversation_id for r in after.values()})
    assert await Completer(services.inbox, ACCOUNT, FULL).drain() == 0
    assert await _fire(services, clock) == 0


async def test_pulled_mail_keeps_its_raw_bytes_in_the_storing_transaction_and_is_filled_in_from_them(
    services: Services,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    delivered = [mail(i, body=f"Parcel {i} is late.\n") for i in range(5)]
    dovecot.deliver(USER, delivered)
    sync = MailboxSync(services.inbox, settings(inline_limit=2), FULL, triage=QUICK)
    session = await ImapSession.open(server(dovecot))
    try:
        await session.select("INBOX")
        fetched = await session.bodies(list(range(1, 6)))
        await sync.run_once(session)
    finally:
        await session.close()
    m, r = schema.messages, schema.message_raw
    async with services.db.read() as conn:
        rows = (
            await conn.execute(
                select(m.c.meta, m.c.raw_sha256, r.c.data).join(r, r.c.message_id == m.c.id).order_by(m.c.id)
            )
        ).all()
    assert [row.data for row in rows] == [fetched[uid] for uid in range(1, 6)]
    assert all(row.raw_sha256 == hashlib.sha256(row.data).hexdigest() for row in rows)
    assert not any(services.blobs.path(row.raw_sha256).exists() for row in rows)

    assert await Completer(services.inbox, ACCOUNT, FULL).drain() == 5
    assert await _rows(services, m, m.c.text.like("Parcel % is late.%")) == 5


async def test_the_full_parse_happens_once_with_two_processes_and_after_a_restart(
    services: Services,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    dovecot.deliver(USER, [mail(i, body=f"Parcel {i} is late.\n") for i in range(60)])
    sync = MailboxSync(services.inbox, settings(inline_limit=10), FULL, triage=QUICK)
    session = await ImapSession.open(server(dovecot))
    try:
        await sync.run_once(session)
    finally:
        await session.close()
    assert await content.count(services.db, ACCOUNT) == 60

    # The process that stored them "crashed": nothing filled in yet. Two others start at once.
    workers = pool.workers(1, background=True)
    try:
        await asyncio.get_running_loop().run_in_executor(workers, abs, 1)
        one = Completer(services.inbox, ACCOUNT, FULL, workers, batch=7)
        two = Completer(services.inbox, ACCOUNT, FULL, batch=11)
        await asyncio.gather(one.drain(), two.drain())
    finally:
        workers.shutdown()
    assert one.completed + two.completed == 60
    t = schema.timers
    assert await _rows(services, t, t.c.kind == "rules.event") == 60
    m = schema.messages
    assert await _rows(services, m, m.c.text.like("Parcel % is late.%")) == 60


async def test_the_channel_fills_in_a_large_first_sync_by_itself(
    services: Services,
    make_config: Any,
    dovecot: Dovecot,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.test_email_channel import build, entry
    from tests.test_email_imap import until

    monkeypatch.setenv("OMNIHUB_TEST_MAIL_SECRET", "s3cret-for-ids")
    monkeypatch.setenv("OMNIHUB_TEST_IMAP_PASSWORD", "secret")

    data = entry(dovecot.port, 1)
    data["imap"] = {**data["imap"], "inline_limit": 5}
    dovecot.deliver("support", [mail(i) for i in range(30)])
    channel = build(services, make_config, data)
    services.inbox.start()
    await channel.start(services.inbox.ingest)
    try:
        m = schema.messages

        async def all_whole() -> bool:
            return await _rows(services, m, m.c.text != "") == 30

        await until(all_whole, 30)
        assert await content.count(services.db, ACCOUNT) == 0
    finally:
        await channel.stop()


def _msgid(raw: bytes) -> bytes:
    for line in raw.splitlines():
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip()
    raise AssertionError("no Message-ID")


@pytest.mark.parametrize(("wake_after", "wakes"), [(2, 2), (25, 1)])
async def test_a_pass_stored_from_headers_wakes_the_fill_in_after_some_batches_and_when_it_ends(
    services: Services,
    dovecot: Dovecot,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    wake_after: int,
    wakes: int,
) -> None:
    monkeypatch.setattr(sync_module, "BATCH", 2)
    monkeypatch.setattr(sync_module, "WAKE_AFTER", wake_after)
    dovecot.deliver(USER, [mail(i) for i in range(5)])
    woken: list[int] = []

    def wake_fill_in() -> None:
        woken.append(len(woken))

    sync = MailboxSync(services.inbox, settings(inline_limit=2), FULL, triage=QUICK, on_deferred=wake_fill_in)
    session = await ImapSession.open(server(dovecot))
    try:
        result = await sync.run_once(session)
    finally:
        await session.close()
    assert result.stored == 5 and await content.count(services.db, ACCOUNT) == 5
    assert len(woken) == wakes
