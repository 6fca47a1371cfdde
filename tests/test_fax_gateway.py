"""Fax by e-mail: fax-to-mail from a real dovecot taken over by a fax line, mail-to-fax out over aiosmtpd."""

from __future__ import annotations

import dataclasses
import email
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import select

from channels.email.parse import parse_message
from channels.fax.providers.base import FaxEventKind
from channels.fax.providers.gateway import fax_event, mail_event
from hub.models import InboundAttachment
from hub.outbox import Dispatcher
from hub.services import Services
from hub.store import schema
from tests.conftest_web import services_with_channels
from tests.dovecot import Dovecot, dovecot  # noqa: F401
from tests.fax_helpers import CUSTOMER_FAX, OUR_FAX, count, pdf_pages, until
from tests.test_email_channel import Sink, bounce, entry, secrets, smtp_sink  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]


def fax_mail(n: int, document: bytes, subtype: str, *, sender: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "support@shop.example"
    msg["Subject"] = f"Fax received from {CUSTOMER_FAX}"
    msg["Date"] = format_datetime(datetime(2026, 11, 20, 9, n, tzinfo=UTC))
    msg["Message-ID"] = f"<fax-{n}@fax.example.net>"
    msg.set_content("You have received a fax. See the attachment.\n")
    maintype = "application" if subtype == "pdf" else "image"
    msg.add_attachment(document, maintype=maintype, subtype=subtype, filename=f"fax{n}.{subtype}")
    return msg.as_bytes()


def tiff(pages: int) -> bytes:
    frames = [Image.new("1", (1728, 1000), 1) for _ in range(pages)]
    for frame in frames:
        frame.paste(0, (100, 100, 1500, 140))
    out = io.BytesIO()
    frames[0].save(out, format="TIFF", compression="group4", save_all=True, append_images=frames[1:])
    return out.getvalue()


def line() -> dict[str, Any]:
    return {
        "name": "faxmail",
        "kind": "fax",
        "provider": "email",
        "number": OUR_FAX,
        "email": {"account": "support", "address": "{digits}@send.fax.example.net"},
    }


@pytest.fixture
async def hub(
    make_config: Any,
    clock: Any,
    dovecot: Dovecot,  # noqa: F811
    smtp_sink: tuple[Sink, int],  # noqa: F811
) -> AsyncIterator[Services]:
    account = entry(dovecot.port, smtp_sink[1], fax_senders=["*@fax.example.net"], fax_mailboxes=["Fax"])
    account["imap"]["mailboxes"] = ["INBOX", "Fax"]
    dovecot.deliver("support", [], mailbox="Fax")
    async with services_with_channels(
        lambda **kw: make_config(rules_dir=str(ROOT / "rules"), **kw), clock, [account, line()]
    ) as services:
        services.inbox.start()
        yield services


async def messages(services: Services, channel: str) -> list[Any]:
    m = schema.messages
    async with services.db.read() as conn:
        return list((await conn.execute(select(m).where(m.c.channel == channel))).mappings().all())


async def test_fax_mail_becomes_a_fax_and_ordinary_mail_stays_mail(
    hub: Services,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    sender = "442079460958@fax.example.net"
    dovecot.deliver("support", [fax_mail(1, pdf_pages(2), "pdf", sender=sender)])
    dovecot.deliver(
        "support", [fax_mail(2, tiff(3), "tiff", sender="noreply@faxes.example.org")], mailbox="Fax"
    )
    dovecot.deliver("support", [_plain()])

    async def settled() -> bool:
        return await count(hub, schema.messages) >= 3

    await until(settled, 20)
    faxes = sorted(await messages(hub, "fax"), key=lambda r: r["external_id"])
    mails = await messages(hub, "email")
    assert [f["channel_account"] for f in faxes] == ["faxmail", "faxmail"]
    assert [f["sender"] for f in faxes] == [CUSTOMER_FAX, CUSTOMER_FAX]
    assert [f["meta"]["fax"]["pages"] for f in faxes] == [2, 3]
    assert [m["sender"] for m in mails] == ["ana@example.com"]
    a = schema.attachments
    async with hub.db.read() as conn:
        shas = (
            (await conn.execute(select(a.c.sha256).where(a.c.message_id == faxes[1]["id"]))).scalars().all()
        )
    assert len(PdfReader(io.BytesIO(await hub.blobs.get(shas[0]))).pages) == 3


def _plain() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Ana <ana@example.com>"
    msg["To"] = "support@shop.example"
    msg["Subject"] = "Where is my parcel?"
    msg["Message-ID"] = "<plain-1@example.com>"
    msg.set_content("Hello, where is my parcel?\n")
    return msg.as_bytes()


async def test_reply_is_mailed_to_the_gateway_with_the_pdf(
    hub: Services,
    dovecot: Dovecot,  # noqa: F811
    smtp_sink: tuple[Sink, int],  # noqa: F811
) -> None:
    dovecot.deliver("support", [fax_mail(4, pdf_pages(1), "pdf", sender="442079460958@fax.example.net")])

    async def arrived() -> list[Any]:
        return await messages(hub, "fax")

    await until(arrived, 20)
    [received] = await messages(hub, "fax")
    reply = await hub.outbox.reply(received["conversation_id"], "We confirm your order.", agent_id=None)
    await Dispatcher(hub.db, hub.outbox, hub.channels, hub.config.outbox, hub.clock).dispatch_once()
    sink = smtp_sink[0]
    [envelope] = sink.mails
    assert envelope.rcpt_tos == ["442079460958@send.fax.example.net"]
    mail = email.message_from_bytes(envelope.original_content or b"", policy=default)
    [pdf] = [p for p in mail.iter_attachments() if p.get_content_type() == "application/pdf"]
    reader = PdfReader(io.BytesIO(pdf.get_content()))
    assert len(reader.pages) == 2
    assert "Pages:" in reader.pages[0].extract_text()
    o = schema.outbox
    async with hub.db.read() as conn:
        row = (await conn.execute(select(o).where(o.c.message_id == reply.id))).mappings().one()
    assert row["status"] == "sent" and row["provider_id"] == mail["Message-ID"]


async def test_a_bounce_from_the_gateway_fails_the_fax_with_the_reason_and_is_not_a_new_mail(
    hub: Services,
    dovecot: Dovecot,  # noqa: F811
    smtp_sink: tuple[Sink, int],  # noqa: F811
) -> None:
    dovecot.deliver("support", [fax_mail(5, pdf_pages(1), "pdf", sender="442079460958@fax.example.net")])

    async def arrived() -> list[Any]:
        return await messages(hub, "fax")

    await until(arrived, 60)
    [received] = await messages(hub, "fax")
    reply = await hub.outbox.reply(received["conversation_id"], "Signed contract attached.", agent_id=None)
    await Dispatcher(hub.db, hub.outbox, hub.channels, hub.config.outbox, hub.clock).dispatch_once()
    [envelope] = smtp_sink[0].mails
    sent_id = email.message_from_bytes(envelope.original_content or b"", policy=default)["Message-ID"]
    dovecot.deliver("support", [bounce(sent_id, "442079460958@send.fax.example.net")])
    o = schema.outbox

    async def failed() -> Any:
        async with hub.db.read() as conn:
            row = (await conn.execute(select(o).where(o.c.message_id == reply.id))).mappings().one()
        return row if row["status"] == "failed" else None

    row = await until(failed, 60)
    assert "the fax gateway bounced" in row["last_error"] and "mailbox unknown" in row["last_error"]
    assert await messages(hub, "email") == []


def test_a_bounce_of_someone_elses_mail_is_never_a_received_fax_even_with_a_pdf() -> None:
    pdf = InboundAttachment("contract.pdf", "application/pdf", pdf_pages(1))
    report = bounce("<not-ours@elsewhere.example>", "x@example.org")
    foreign = parse_message(report, account="support").message
    with_pdf = dataclasses.replace(foreign, attachments=(pdf,))
    assert fax_event(with_pdf) is not None
    assert mail_event(with_pdf) is None
    plain = dataclasses.replace(with_pdf, meta={})
    received = mail_event(plain)
    assert received is not None and received.kind is FaxEventKind.RECEIVED
