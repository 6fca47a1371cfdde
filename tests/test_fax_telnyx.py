"""The fax channel with Telnyx, end to end against the wire-level fake on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from nacl.signing import SigningKey
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import select, update

from channels.fax.channel import FaxChannel
from channels.memory import MemoryChannel
from hub.models import ChannelKind, Direction, Identity, IdentityKind, InboundMessage, OutboundStatus, Role
from hub.outbox import Dispatcher
from hub.sla.tasks import TaskKind
from hub.store import schema
from tests.conftest_web import add_agent
from tests.fakes.telnyx import API_KEY, FakeTelnyx
from tests.fax_helpers import (
    CUSTOMER_FAX,
    OUR_FAX,
    FaxHub,
    attach,
    conversation_of,
    count,
    fax_hub,
    pdf_pages,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def telnyx() -> AsyncIterator[FakeTelnyx]:
    fake = FakeTelnyx()
    await fake.start()
    yield fake
    await fake.stop()


def line(fake: FakeTelnyx, **extra: Any) -> dict[str, Any]:
    return {
        "name": "fax",
        "kind": "fax",
        "provider": "telnyx",
        "number": OUR_FAX,
        "default_region": "GB",
        "confidential": True,
        "telnyx": {
            "api_key": API_KEY,
            "connection_id": "1684641123236054244",
            "public_key": fake.public_key,
            "api_url": f"{fake.url}/v2",
        },
        **extra,
    }


@pytest.fixture
async def hub(make_config: Any, clock: Any, telnyx: FakeTelnyx) -> AsyncIterator[FaxHub]:
    company = {"name": "Brightwater Supplies", "phone": "+44 113 496 0300", "email": "care@example.com"}
    async with fax_hub(make_config, clock, line(telnyx), rules_dir=str(ROOT / "rules"), company=company) as h:
        await h.services.rules.load()
        yield h


def events_url(hub: FaxHub) -> str:
    return f"{hub.url}/webhooks/fax/fax/events"


async def receive(hub: FaxHub, telnyx: FakeTelnyx, document: bytes, **kw: Any) -> tuple[str, list[int]]:
    event = telnyx.received_event(sender=CUSTOMER_FAX, to=OUR_FAX, document=document, **kw)
    return str(event[1]["fax_id"]), await telnyx.deliver(events_url(hub), [event])


async def test_received_fax_is_stored_once_with_its_pdf(hub: FaxHub, telnyx: FakeTelnyx) -> None:
    services = hub.services
    document = pdf_pages(3, "invoice")
    fax_id, statuses = await receive(hub, telnyx, document, pages=3)
    assert statuses == [200, 200]
    assert len(telnyx.media.fetched) == 1  # the second delivery did not need the (now expired) link
    m = schema.messages
    async with services.db.read() as conn:
        rows = (await conn.execute(select(m).where(m.c.external_id == fax_id))).mappings().all()
    [row] = rows
    assert row["channel"] == "fax" and row["direction"] == Direction.INBOUND.value
    assert row["sender"] == CUSTOMER_FAX
    assert row["meta"]["fax"]["pages"] == 3
    assert row["meta"]["fax"]["station_id"] == "ACME FAX 01"
    timeline = await services.inbox.timeline(row["conversation_id"])
    [attachment] = timeline.messages[0].attachments
    assert attachment.content_type == "application/pdf"
    stored = await services.blobs.get(attachment.sha256)
    assert stored == document
    async with services.db.read() as conn:
        kinds = (
            (
                await conn.execute(
                    select(schema.identities.c.kind).where(schema.identities.c.address == CUSTOMER_FAX)
                )
            )
            .scalars()
            .all()
        )
        received = (
            (await conn.execute(select(schema.events.c.data).where(schema.events.c.kind == "fax.received")))
            .scalars()
            .all()
        )
    assert kinds == [IdentityKind.FAX.value]
    assert [e["pages"] for e in received] == [3]
    await services.sla.recompute([row["conversation_id"]])
    conversation = await services.inbox.conversation(row["conversation_id"])
    assert conversation.due_at is not None  # the first-response SLA runs (F4)


async def test_received_tiff_becomes_pdf(hub: FaxHub, telnyx: FakeTelnyx) -> None:
    frames = [Image.new("1", (1728, 2200), 1) for _ in range(2)]
    for frame in frames:
        for x in range(200, 1500):
            for y in range(300, 330):
                frame.putpixel((x, y), 0)
    out = io.BytesIO()
    frames[0].save(out, format="TIFF", compression="group4", dpi=(204, 196), save_all=True,
                   append_images=frames[1:])  # fmt: skip
    fax_id, _ = await receive(hub, telnyx, out.getvalue(), content_type="image/tiff", pages=2)
    m, a = schema.messages, schema.attachments
    async with hub.services.db.read() as conn:
        sha = (
            await conn.execute(
                select(a.c.sha256).join(m, m.c.id == a.c.message_id).where(m.c.external_id == fax_id)
            )
        ).scalar_one()
    assert len(PdfReader(io.BytesIO(await hub.services.blobs.get(sha))).pages) == 2


@pytest.mark.parametrize("document", [b"%PDF-1.7\n%%EOF\n", b"not a document at all"])
async def test_corrupt_or_empty_fax_is_quarantined_with_its_bytes(
    hub: FaxHub, telnyx: FakeTelnyx, document: bytes
) -> None:
    fax_id, statuses = await receive(hub, telnyx, document)
    assert statuses == [200, 200]
    q = schema.quarantine
    async with hub.services.db.read() as conn:
        rows = (await conn.execute(select(q).where(q.c.external_id == fax_id))).mappings().all()
    [row] = rows
    assert "unreadable fax document" in row["reason"]
    assert await hub.services.blobs.get(row["raw_sha256"]) == document
    assert await count(hub.services, schema.messages) == 0


async def test_a_fax_document_over_the_limit_is_quarantined_without_keeping_it(
    make_config: Any, clock: Any, telnyx: FakeTelnyx
) -> None:
    limit = 64 * 1024
    async with fax_hub(make_config, clock, line(telnyx, max_media_bytes=limit)) as small:
        fax_id, statuses = await receive(small, telnyx, pdf_pages(1) + b"%" * (4 * 1024 * 1024))
        assert statuses == [200, 200]
        q = schema.quarantine
        async with small.services.db.read() as conn:
            [row] = (await conn.execute(select(q).where(q.c.external_id == fax_id))).mappings().all()
        assert f"over the limit of {limit} bytes" in row["reason"]
        kept = await small.services.blobs.get(row["raw_sha256"])
        assert fax_id.encode() in kept and len(kept) < limit
        assert await count(small.services, schema.messages) == 0


async def test_forged_and_stale_webhooks_are_refused(hub: FaxHub, telnyx: FakeTelnyx) -> None:
    event_type, payload = telnyx.received_event(sender=CUSTOMER_FAX, to=OUR_FAX, document=pdf_pages(1))
    body = telnyx.event(event_type, payload)
    url = events_url(hub)
    assert await telnyx.post(url, body, telnyx.signed(body, key=SigningKey.generate())) == 403
    assert await telnyx.post(url, body, {"Content-Type": "application/json"}) == 403
    headers = telnyx.signed(body)
    assert await telnyx.post(url, body.replace(b"inbound", b"Inbound"), headers) == 403
    assert await telnyx.post(url, body, telnyx.signed(body, timestamp=1_600_000_000)) == 403
    bad = {**headers, "telnyx-signature-ed25519": "!!" + headers["telnyx-signature-ed25519"]}
    assert await telnyx.post(url, body, bad) == 403
    assert telnyx.media.fetched == []
    assert await count(hub.services, schema.messages) == 0


async def dispatch(hub: FaxHub) -> None:
    s = hub.services
    await Dispatcher(s.db, s.outbox, s.channels, s.config.outbox, s.clock).dispatch_once()


async def outbox_row(hub: FaxHub, message_id: int) -> Any:
    o = schema.outbox
    async with hub.services.db.read() as conn:
        return (await conn.execute(select(o).where(o.c.message_id == message_id))).mappings().one()


async def test_reply_goes_out_with_cover_and_delivery_creates_the_confirm_task(
    hub: FaxHub, telnyx: FakeTelnyx, clock: Any
) -> None:
    services = hub.services
    fax_id, _ = await receive(hub, telnyx, pdf_pages(1))
    cid = await conversation_of(services, fax_id)
    reply = await services.outbox.reply(cid, "Thank you, the signed form is attached.", agent_id=None,
                                        subject="Signed return authorisation")  # fmt: skip
    await attach(services, reply.id, "form.pdf", "application/pdf", pdf_pages(2, "form"))
    await dispatch(hub)
    [sent] = telnyx.sent.values()
    assert sent.to == CUSTOMER_FAX and sent.sender == OUR_FAX
    assert sent.webhook_url == events_url(hub)
    assert base64.b64decode(sent.client_state or "").decode() == sent.idempotency_key
    reader = PdfReader(io.BytesIO(sent.document))
    assert len(reader.pages) == 4  # cover, reply text, two form pages
    cover = reader.pages[0].extract_text()
    assert re.search(r"Pages:\s*4\b", cover)
    assert CUSTOMER_FAX in cover and "Signed return authorisation" in cover and "CONFIDENTIAL" in cover
    assert "form 2" in reader.pages[3].extract_text()
    row = await outbox_row(hub, reply.id)
    assert row["status"] == OutboundStatus.SENT.value and row["provider_id"] == sent.id

    events = telnyx.outbound_events(sent.id, pages=4)
    statuses = await telnyx.deliver(events_url(hub), [events[3], events[0], events[2], events[1]])
    assert set(statuses) == {200}
    row = await outbox_row(hub, reply.id)
    assert row["status"] == OutboundStatus.DELIVERED.value
    m = schema.messages
    async with services.db.read() as conn:
        meta = (await conn.execute(select(m.c.meta).where(m.c.id == reply.id))).scalar_one()
        tasks = (await conn.execute(select(schema.tasks))).mappings().all()
    assert meta["fax"]["delivered_pages"] == 4 and meta["fax"]["pages"] == 4
    [task] = tasks
    assert task["kind"] == TaskKind.FAX_CONFIRM.value and task["conversation_id"] == cid
    assert task["payload"]["message_id"] == reply.id

    clock.advance(hours=2)  # Telnyx delivers the delivered event again, later
    assert await telnyx.deliver(events_url(hub), [events[3]]) == [200, 200]
    async with services.db.read() as conn:
        again = (await conn.execute(select(m.c.meta).where(m.c.id == reply.id))).scalar_one()
    assert again["fax"]["delivered_at"] == meta["fax"]["delivered_at"]
    assert await count(services, schema.tasks) == 1


async def test_failed_fax_reports_the_reason_and_can_be_retried(hub: FaxHub, telnyx: FakeTelnyx) -> None:
    services = hub.services
    fax_id, _ = await receive(hub, telnyx, pdf_pages(1))
    cid = await conversation_of(services, fax_id)
    reply = await services.outbox.reply(cid, "Here is the quote.", agent_id=None)
    telnyx.fail_next = [503]
    await dispatch(hub)
    assert (await outbox_row(hub, reply.id))["status"] == OutboundStatus.QUEUED.value
    assert telnyx.sent == {}
    hub.services.clock.advance(minutes=10)  # type: ignore[attr-defined]
    await dispatch(hub)
    [sent] = telnyx.sent.values()
    await telnyx.deliver(
        events_url(hub), telnyx.outbound_events(sent.id, pages=2, failure="receiver_call_dropped")
    )
    row = await outbox_row(hub, reply.id)
    assert row["status"] == OutboundStatus.FAILED.value
    assert row["last_error"] == "receiver_call_dropped"
    assert await count(services, schema.tasks) == 0
    await services.outbox.retry(row["id"])
    await dispatch(hub)
    assert len(telnyx.sent) == 1  # same idempotency key: the provider keeps one fax
    assert (await outbox_row(hub, reply.id))["status"] == OutboundStatus.SENT.value


async def test_status_for_an_unknown_fax_is_recorded(hub: FaxHub, telnyx: FakeTelnyx) -> None:
    body = telnyx.event("fax.delivered", {"fax_id": "no-such-fax", "direction": "outbound", "page_count": 1,
                                          "to": CUSTOMER_FAX, "from": OUR_FAX})  # fmt: skip
    assert await telnyx.post(events_url(hub), body, telnyx.signed(body)) == 200
    assert await telnyx.post(events_url(hub), body, telnyx.signed(body)) == 200
    q = schema.quarantine
    async with hub.services.db.read() as conn:
        reasons = (await conn.execute(select(q.c.reason))).scalars().all()
    assert reasons == ["delivered status for unknown fax id no-such-fax"]


async def test_invalid_number_is_refused_before_sending(hub: FaxHub, telnyx: FakeTelnyx) -> None:
    channel = hub.services.channels["fax"]
    assert isinstance(channel, FaxChannel)
    from channels.fax.numbers import InvalidFaxNumber, e164

    assert e164("0113 496 0388", "GB") == OUR_FAX
    with pytest.raises(InvalidFaxNumber, match="invalid fax number"):
        e164("12345", "GB")
    with pytest.raises(InvalidFaxNumber, match="default_region"):
        e164("0113 496 0388")


async def agent_headers(hub: FaxHub) -> dict[str, str]:
    agent = await add_agent(hub.services, Role.AGENT)
    return {"Authorization": f"Bearer {await hub.services.directory.issue_token(agent.id, 'tests')}"}


async def test_agents_see_page_previews_of_a_received_fax(hub: FaxHub, telnyx: FakeTelnyx) -> None:
    fax_id, _ = await receive(hub, telnyx, pdf_pages(2, "preview"), pages=2)
    m, a = schema.messages, schema.attachments
    async with hub.services.db.read() as conn:
        attachment_id = (
            await conn.execute(
                select(a.c.id).join(m, m.c.id == a.c.message_id).where(m.c.external_id == fax_id)
            )
        ).scalar_one()
    url = f"{hub.url}/api/attachments/{attachment_id}/pages"
    headers = await agent_headers(hub)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/2.png", headers=headers) as response:
            assert response.status == 200 and response.content_type == "image/png"
            image = Image.open(io.BytesIO(await response.read())).convert("L")
        async with http.get(f"{url}/3.png", headers=headers) as response:
            assert response.status == 404
        async with http.get(f"{url}/1.png") as response:
            assert response.status == 401
    assert image.width == 850
    assert sum(image.histogram()[:128]) > 100


async def test_an_agent_retries_a_failed_fax(hub: FaxHub, telnyx: FakeTelnyx) -> None:
    services = hub.services
    fax_id, _ = await receive(hub, telnyx, pdf_pages(1))
    cid = await conversation_of(services, fax_id)
    reply = await services.outbox.reply(cid, "Please find the invoice.", agent_id=None)
    await dispatch(hub)
    [sent] = telnyx.sent.values()
    await telnyx.deliver(events_url(hub), telnyx.outbound_events(sent.id, pages=2, failure="busy"))
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{hub.url}/api/fax/messages/{reply.id}/retry", headers=await agent_headers(hub)) as r,
    ):
        assert r.status == 200
        assert (await r.json())["status"] == OutboundStatus.QUEUED.value
    assert (await outbox_row(hub, reply.id))["status"] == OutboundStatus.QUEUED.value


NOTICE_COMPANY = {
    "name": "Brightwater Supplies", "department": "Customer Support", "address": "1 Quay Street, Leeds",
    "phone": "+44 113 496 0300", "email": "care@example.com",
}  # fmt: skip


@asynccontextmanager
async def notice_hub(
    make_config: Any, clock: Any, telnyx: FakeTelnyx, **sections: Any
) -> AsyncIterator[tuple[FaxHub, MemoryChannel]]:
    """A fax line with pre-notices, a memory mail account to notice on, and the shipped rules loaded."""
    async with fax_hub(
        make_config, clock, line(telnyx, pre_notice=True), channels=[{"name": "mail", "kind": "memory"}],
        rules_dir=str(ROOT / "rules"), company=NOTICE_COMPANY, **sections,
    ) as hub:  # fmt: skip
        await hub.services.rules.load()
        mem = hub.services.channels["mail"]
        assert isinstance(mem, MemoryChannel)
        yield hub, mem


async def _fax_to_a_mail_contact(hub: FaxHub, telnyx: FakeTelnyx, clock: Any) -> tuple[Any, Any]:
    """A Chinese-speaking contact who wrote by mail and by fax, and a fax reply to them (mail, reply)."""
    services = hub.services
    mail = await services.inbox.ingest(
        InboundMessage(
            channel=ChannelKind.EMAIL, channel_account="mail", external_id="<m1@example.com>",
            sender=Identity.of("email", "priya@example.com"), text="I will fax you the form.",
            received_at=clock() - timedelta(hours=1), subject="Return form", language="zh",
        )
    )  # fmt: skip
    fax_id, _ = await receive(hub, telnyx, pdf_pages(1))
    m = schema.messages
    async with services.db.read() as conn:
        fax = (await conn.execute(select(m).where(m.c.external_id == fax_id))).mappings().one()
        fax_contact = (
            await conn.execute(
                select(schema.conversations.c.contact_id).where(
                    schema.conversations.c.id == fax["conversation_id"]
                )
            )
        ).scalar_one()
    await services.contacts.merge(fax_contact, mail.contact_id)
    await services.contacts.update(mail.contact_id, language="zh")
    reply = await services.outbox.reply(
        fax["conversation_id"], "表格见附件。", agent_id=None, subject="退货表"
    )
    await dispatch(hub)
    await dispatch(hub)
    return mail, reply


async def test_pre_notice_goes_to_the_contacts_mail_before_the_fax(
    make_config: Any, clock: Any, telnyx: FakeTelnyx
) -> None:
    async with notice_hub(make_config, clock, telnyx) as (hub, mem):
        mail, reply = await _fax_to_a_mail_contact(hub, telnyx, clock)
        [notice] = mem.sent
        assert notice.conversation_id == mail.conversation_id and notice.automatic
        assert CUSTOMER_FAX in notice.text and "共2页" in notice.text
        assert notice.text.startswith("您好") and "\n-- \n" in notice.text, "no greeting or signature (E6)"
        assert notice.subject == f"传真即将发出：退货表 [#{mail.conversation_id}]"
        assert notice.meta["fax_notice_for"] == reply.id and notice.meta["template"] == "fax_notice"
        [sent] = telnyx.sent.values()
        assert "共2页" in PdfReader(io.BytesIO(sent.document)).pages[0].extract_text()


async def test_a_pre_notice_that_breaks_an_etiquette_rule_is_held_back_and_the_fax_still_goes(
    make_config: Any, clock: Any, telnyx: FakeTelnyx, tmp_path: Path
) -> None:
    override = tmp_path / "templates" / "email" / "fax_notice.zh.txt.j2"
    override.parent.mkdir(parents=True)
    override.write_text(
        "您好：\n\n传真 {{ fax.recipient.fax }}，共{{ fax.pages }}页。能不能收到我不知道。\n",
        encoding="utf-8",
    )
    async with notice_hub(make_config, clock, telnyx, templates_dir=str(tmp_path / "templates")) as (
        hub,
        mem,
    ):
        mail, _ = await _fax_to_a_mail_contact(hub, telnyx, clock)
        assert mem.sent == []
        e = schema.events
        async with hub.services.db.read() as conn:
            [blocked] = (
                await conn.execute(
                    select(e.c.conversation_id, e.c.data).where(e.c.kind == "rules.reply_blocked")
                )
            ).all()
        assert blocked.conversation_id == mail.conversation_id and blocked.data["template"] == "fax_notice"
        assert "L1" in {f["rule_id"] for f in blocked.data["findings"]}
        assert len(telnyx.sent) == 1


async def test_unsupported_attachment_fails_the_fax_before_anything_is_sent(
    hub: FaxHub, telnyx: FakeTelnyx
) -> None:
    services = hub.services
    fax_id, _ = await receive(hub, telnyx, pdf_pages(1))
    cid = await conversation_of(services, fax_id)
    reply = await services.outbox.reply(cid, "The installer is attached.", agent_id=None)
    await attach(services, reply.id, "setup.exe", "application/x-msdownload", b"MZ\x90\x00" + bytes(200))
    await dispatch(hub)
    row = await outbox_row(hub, reply.id)
    assert row["status"] == OutboundStatus.FAILED.value
    assert "setup.exe" in row["last_error"] and "cannot be faxed" in row["last_error"]
    assert telnyx.sent == {}


async def test_a_status_that_overtakes_its_send_is_asked_again(hub: FaxHub, telnyx: FakeTelnyx) -> None:
    services = hub.services
    fax_id, _ = await receive(hub, telnyx, pdf_pages(1))
    o = schema.outbox
    cid = await conversation_of(services, fax_id)
    reply = await services.outbox.reply(cid, "On its way.", agent_id=None)
    async with services.db.write() as conn:
        await conn.execute(update(o).where(o.c.message_id == reply.id).values(status="sending"))
    body = telnyx.event("fax.sending.started", {"fax_id": "not-yet-known", "direction": "outbound"})
    assert await telnyx.post(events_url(hub), body, telnyx.signed(body)) == 503
    assert await count(services, schema.quarantine) == 0
    async with services.db.write() as conn:
        await conn.execute(update(o).where(o.c.message_id == reply.id).values(status="queued"))
    assert await telnyx.post(events_url(hub), body, telnyx.signed(body)) == 200
    assert await count(services, schema.quarantine) == 1
