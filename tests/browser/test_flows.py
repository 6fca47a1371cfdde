"""The agents' inbox, the chat widget and the dashboard in headless Chromium, against a real hub."""

from __future__ import annotations

import asyncio
import re
import struct
import time
import zlib
from datetime import UTC, datetime, timedelta

import pytest
from fpdf import FPDF
from playwright.async_api import Browser, Page, expect
from sqlalchemy import insert, select, update

from channels.fax.documents.preview import PREVIEW_WIDTH
from hub.events import event_row
from hub.models import ChannelKind, Identity, InboundAttachment, InboundMessage, IngestResult
from hub.sla import tasks
from hub.store import schema
from tests.browser.conftest import LiveHub, Watched, shot, signed_in, watched
from tests.conftest_web import PASSWORD

pytestmark = pytest.mark.asyncio(loop_scope="module")

XSS_MAIL = (
    "<p>Hello, my invoice is wrong.</p>"
    "<script>alert('mail-script')</script>"
    "<img src=x onerror=\"alert('mail-onerror')\">"
    '<img src="{pixel}" alt="tracker">'
    "<a href=\"javascript:alert('mail-link')\">click</a>"
    "<iframe src=\"javascript:alert('mail-frame')\"></iframe>"
)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"


async def sms_from(live: LiveHub, number: str, text: str, at: datetime) -> IngestResult:
    """A customer's SMS, stored through the test channel; its ingest result."""
    message = InboundMessage(
        channel=ChannelKind.SMS, channel_account="mail", external_id=f"sms-{number}-{at.timestamp()}",
        sender=Identity.of("phone", number), text=text, received_at=at,
    )  # fmt: skip
    result: IngestResult = await live.services.channels["mail"].receive(message)  # type: ignore[attr-defined]
    return result


def midday_zone(now: datetime) -> str:
    """A fixed-offset zone where it is early afternoon now, inside any customer's daytime."""
    offset = (13 - now.hour + 12) % 24 - 12
    return f"Etc/GMT{-offset:+d}" if offset else "UTC"


def one_page_pdf(text: str) -> bytes:
    doc = FPDF()
    doc.add_page()
    doc.set_font("helvetica", size=24)
    doc.cell(text=text)
    return bytes(doc.output())


XSS_CHAT = "<img src=x onerror=\"alert('chat')\"><script>alert('chat2')</script>"


async def open_widget(page: Page, url: str) -> None:
    await page.goto(url)
    await page.click("#omnihub-chat button.button")
    await expect(page.locator("#omnihub-chat .msg.system").first).to_be_visible()


async def chatting(browser: Browser, live: LiveHub) -> tuple[Watched, Page]:
    """A fresh watched visitor with the chat widget open on the shop's page."""
    visitor = await watched(browser)
    shop = await visitor.page()
    await open_widget(shop, live.site.url)
    return visitor, shop


async def visitor_says(page: Page, text: str) -> None:
    await page.fill("#omnihub-chat input[name=text]", text)
    await page.press("#omnihub-chat input[name=text]", "Enter")
    await expect(page.locator("#omnihub-chat .msg.visitor", has_text=text)).to_be_visible()


async def test_a_chat_from_the_widget_reaches_the_agent_live_and_the_reply_reaches_the_visitor(
    live: LiveHub, browser: Browser
) -> None:
    agent, inbox = await signed_in(browser, live.url, "li.wei")
    visitor, shop = await chatting(browser, live)

    started = time.monotonic()
    await visitor_says(shop, "Hello, my sofa arrived with a broken leg.")
    row = inbox.locator("#conversations tr.row", has_text="my sofa arrived")
    await expect(row).to_be_visible(timeout=5000)
    assert time.monotonic() - started < 5
    assert await inbox.locator(".badge.ch-chat").count() >= 1

    await row.click()
    await expect(inbox.locator("#timeline .entry.in", has_text="broken leg")).to_be_visible()
    await inbox.fill("#composer-text", "Sorry, I don't know when a new leg can come.")
    await expect(inbox.locator('#composer-findings li.finding.error[data-rule="L1"]')).to_be_visible(
        timeout=5000
    )
    await expect(inbox.locator("#send")).to_be_disabled()
    await expect(inbox.locator("#send-blocked")).to_contain_text("know")
    await shot(inbox, "composer-blocked")
    await inbox.fill("#composer-text", "I am sorry about the leg. We will send a new one tomorrow.")
    await expect(inbox.locator("#composer-findings li.finding.error")).to_have_count(0, timeout=5000)
    await expect(inbox.locator("#send")).to_be_enabled()
    await inbox.click("#send")
    await expect(shop.locator("#omnihub-chat .msg.agent", has_text="send a new one")).to_be_visible(
        timeout=10000
    )
    await expect(inbox.locator("#timeline .entry.out .delivery")).to_contain_text("delivered", timeout=10000)
    await shot(inbox, "inbox-chat")
    await shot(shop, "widget-chat")

    await shop.reload()
    await shop.click("#omnihub-chat button.button")
    await expect(shop.locator("#omnihub-chat .msg.agent", has_text="send a new one")).to_be_visible()
    assert not agent.errors and not visitor.errors and not agent.dialogs
    await agent.context.close()
    await visitor.context.close()


async def test_two_agents_in_one_conversation_see_a_collision_warning(
    live: LiveHub, browser: Browser
) -> None:
    visitor, shop = await chatting(browser, live)
    await visitor_says(shop, "Is the oak table in stock?")
    first, li = await signed_in(browser, live.url, "li.wei")
    second, james = await signed_in(browser, live.url, "james")
    for page in (li, james):
        await page.locator("#conversations tr.row", has_text="oak table").click()
        await expect(page.locator("#timeline .entry.in", has_text="oak table")).to_be_visible()
    await expect(li.locator("#collision")).to_contain_text("James Okafor", timeout=5000)
    await expect(li.locator("tr.row.open .viewers")).to_have_text("James Okafor")
    await expect(james.locator("#collision")).to_contain_text("Li Wei", timeout=5000)
    await james.fill("#composer-text", "Let me check")
    await expect(li.locator("#collision .typing")).to_contain_text("James Okafor", timeout=5000)
    for context in (first, second, visitor):
        await context.context.close()


async def test_hostile_mail_html_and_chat_text_stay_inert(live: LiveHub, browser: Browser) -> None:
    pixel = f"{live.site.url}/pixel.gif?mail=1"
    mail = InboundMessage(
        channel=ChannelKind.EMAIL,
        channel_account="mail",
        external_id="<xss-1@example.com>",
        sender=Identity.of("email", "mallory@example.com"),
        sender_name="Mallory",
        subject="Invoice question",
        text="Hello, my invoice is wrong.",
        html=XSS_MAIL.format(pixel=pixel),
        received_at=datetime.now(UTC),
    )
    await live.services.channels["mail"].receive(mail)  # type: ignore[attr-defined]
    visitor, shop = await chatting(browser, live)
    await visitor_says(shop, XSS_CHAT)

    agent, inbox = await signed_in(browser, live.url, "li.wei")
    await inbox.locator("#conversations tr.row", has_text="Invoice question").click()
    frame = inbox.frame_locator("iframe.mail")
    await expect(frame.locator("p")).to_have_text("Hello, my invoice is wrong.")
    await inbox.locator("#conversations tr.row", has_text="<img src=x").click()
    await expect(inbox.locator("#timeline .entry.in .text")).to_have_text(XSS_CHAT)
    await inbox.fill("#composer-text", XSS_CHAT.replace("chat", "reply"))
    await inbox.click("#send")
    await expect(shop.locator("#omnihub-chat .msg.agent")).to_have_text(XSS_CHAT.replace("chat", "reply"))
    await asyncio.sleep(0.5)
    assert agent.dialogs == [] and visitor.dialogs == []
    assert live.site.pixel_hits == []
    leaving = [url for url in agent.requests if not url.startswith((live.url, "data:"))]
    assert leaving == []

    await inbox.locator("#conversations tr.row", has_text="Invoice question").click()
    await expect(inbox.frame_locator("iframe.mail").locator("p")).to_have_text("Hello, my invoice is wrong.")
    await inbox.click("button.show-images")
    for _ in range(100):
        if live.site.pixel_hits:
            break
        await asyncio.sleep(0.1)
    assert live.site.pixel_hits == ["/pixel.gif?mail=1"]
    assert agent.dialogs == []
    await agent.context.close()
    await visitor.context.close()


async def test_the_ui_speaks_the_users_language_and_remembers_a_change(
    live: LiveHub, browser: Browser
) -> None:
    agent = await watched(browser)
    page = await agent.page()
    await page.goto(f"{live.url}/login?next=/%5Cevil.example/")
    await page.fill("input[name=username]", "wang.fang")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{live.url}/inbox")
    await expect(page.locator("header nav")).to_contain_text("收件箱")
    await expect(page.locator("#view-mine")).to_have_text("我的")
    await page.select_option("#language", "en")
    await expect(page.locator("#view-mine")).to_have_text("Mine")
    agent_row = await live.services.directory.agent_by_name("wang.fang")
    assert agent_row.language == "en"
    await page.select_option("#availability", "busy")
    for _ in range(50):
        agent_row = await live.services.directory.agent_by_name("wang.fang")
        if agent_row.availability.value == "busy":
            break
        await asyncio.sleep(0.1)
    assert agent_row.availability.value == "busy"
    await agent.context.close()


async def test_a_supervisor_sees_the_dashboard_and_exports_the_list(live: LiveHub, browser: Browser) -> None:
    export_me = InboundMessage(
        channel=ChannelKind.EMAIL,
        channel_account="mail",
        external_id="<export-1@example.com>",
        sender=Identity.of("email", "tom.becker@example.com"),
        subject="Refund for returned kettle",
        text="Where is my refund?",
        received_at=datetime.now(UTC),
    )
    await live.services.channels["mail"].receive(export_me)  # type: ignore[attr-defined]
    supervisor, page = await signed_in(browser, live.url, "emma", accept_downloads=True)
    await page.click("header nav a[href='/dashboard']")
    await expect(page.locator("h1")).to_have_text("Supervisor dashboard")
    assert await page.locator(".charts svg").count() == 3
    await expect(page.locator("#agents")).to_contain_text("Li Wei")
    await shot(page, "dashboard")
    async with page.expect_download() as info:
        await page.click("#export")
    download = await info.value
    path = await download.path()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("id,channel,channel_account")
    assert any(",email,mail," in line and "Refund for returned kettle" in line for line in lines[1:])
    agent, agent_page = await signed_in(browser, live.url, "james")
    response = await agent_page.goto(f"{live.url}/dashboard")
    assert response is not None and response.status == 403
    await supervisor.context.close()
    await agent.context.close()


async def test_keys_notes_tags_assignment_and_status_work_from_the_conversation(
    live: LiveHub, browser: Browser
) -> None:
    message = InboundMessage(
        channel=ChannelKind.EMAIL,
        channel_account="mail",
        external_id="<keys-1@example.com>",
        sender=Identity.of("email", "hannah.wright@example.com"),
        sender_name="Hannah Wright",
        subject="Delivery address change",
        text="Can I still change the delivery address?",
        received_at=datetime.now(UTC) - timedelta(days=7),
    )
    stored = await live.services.channels["mail"].receive(message)  # type: ignore[attr-defined]
    promise = datetime.now(UTC) + timedelta(minutes=30)
    await live.services.outbox.reply(
        stored.conversation_id,
        "We have your message and will answer shortly.",
        agent_id=None,
        automatic=True,
        meta={"promise_due_at": promise.isoformat()},
    )
    await live.services.sla.recompute([stored.conversation_id])
    agent, page = await signed_in(browser, live.url, "james")
    await page.check("#breached")
    await expect(page.locator("#conversations tr.row")).to_have_count(1)
    row = page.locator("#conversations tr.row", has_text="Delivery address change")
    await expect(row.locator("td.due.breached")).to_contain_text("overdue")
    await expect(row.locator("td.due.at-risk")).to_have_text(re.compile(r"^(29|30)m$"))
    await page.uncheck("#breached")
    await page.fill("#search", "delivery address")
    await expect(page.locator("#conversations tr.row")).to_have_count(1)
    await page.locator("#search").press("Escape")
    await page.keyboard.press("Enter")
    await expect(page.locator("#timeline .entry.in")).to_contain_text("change the delivery address")
    assert page.url.endswith("/conversations/" + await page.locator("tr.row.open").get_attribute("data-id"))

    await page.keyboard.press("n")
    await page.keyboard.type("Customer called too; address is in the CRM.")
    await page.click("#send")
    await expect(page.locator("#timeline .entry.note")).to_contain_text("address is in the CRM")
    await page.fill("#tag-input", "address")
    await page.press("#tag-input", "Enter")
    await expect(page.locator(".tags .tag")).to_contain_text("address")
    await page.select_option("#assign", label="James Okafor")
    await expect(page.locator("tr.row.open td.assignee")).to_have_text("James Okafor")
    await page.locator("#composer-text").press("Escape")
    await page.keyboard.press("e")
    await expect(page.locator("#status")).to_have_value("resolved")
    await expect(page.locator("tr.row.open td.status")).to_have_text("Resolved")
    assert not agent.errors
    await agent.context.close()


def silent_wav(seconds: float = 0.5, rate: int = 8000) -> bytes:
    frames = b"\x00\x00" * int(seconds * rate)
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(frames),
        b"WAVE",
        b"fmt ",
        16,
        1,
        1,
        rate,
        rate * 2,
        2,
        16,
        b"data",
        len(frames),
    )
    return header + frames


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    pixels = zlib.compress(b"\x00\xff\xff\xff")
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", pixels)
        + chunk(b"IEND", b"")
    )


async def test_voicemail_fax_and_calls_render_with_player_previews_and_timings(
    live: LiveHub, browser: Browser
) -> None:
    now = datetime.now(UTC)
    caller = Identity.of("phone", "+441174960123")
    voicemail = InboundMessage(
        channel=ChannelKind.VOICEMAIL,
        channel_account="mail",
        external_id="vm-1",
        sender=caller,
        sender_name="Noah Evans",
        text="Hello, this is Noah, please call me back about the blender.",
        attachments=(InboundAttachment("voicemail.wav", "audio/wav", silent_wav()),),
        received_at=now,
    )
    fax = InboundMessage(
        channel=ChannelKind.FAX,
        channel_account="mail",
        external_id="fax-1",
        sender=Identity.of("fax", "+441174960999"),
        subject="Purchase order PO-7781",
        text="Purchase order PO-7781, 1 page",
        attachments=(
            InboundAttachment("page-1.png", "image/png", tiny_png()),
            InboundAttachment("PO-7781.pdf", "application/pdf", one_page_pdf("PO-7781")),
        ),
        received_at=now,
        meta={"fax": {"pages": 1, "remote_station_id": "ACME"}},
    )
    stored = await live.services.channels["mail"].receive(voicemail)  # type: ignore[attr-defined]
    await live.services.channels["mail"].receive(fax)  # type: ignore[attr-defined]
    async with live.services.db.write() as conn:
        await conn.execute(
            insert(schema.calls).values(
                conversation_id=stored.conversation_id,
                contact_id=stored.contact_id,
                channel_account="mail",
                external_id="call-1",
                direction="in",
                started_at=now - timedelta(minutes=2),
                ringing_at=now - timedelta(minutes=2),
                answered_at=now - timedelta(minutes=2) + timedelta(seconds=12),
                outcome="answered_late",
                rings_to_answer=4.0,
            )
        )
        await conn.execute(
            insert(schema.calls).values(
                conversation_id=stored.conversation_id,
                contact_id=stored.contact_id,
                channel_account="mail",
                external_id="call-2",
                direction="in",
                started_at=now - timedelta(minutes=1),
                ringing_at=now - timedelta(minutes=1),
                outcome="voicemail",
            )
        )
        await conn.execute(
            insert(schema.calls).values(
                conversation_id=stored.conversation_id,
                contact_id=stored.contact_id,
                channel_account="mail",
                external_id="call-3",
                direction="out",
                started_at=now - timedelta(seconds=30),
                answered_at=now - timedelta(seconds=20),
                outcome="reached",
                route="callback_call",
            )
        )
    agent, page = await signed_in(browser, live.url, "li.wei")
    await page.locator("#conversations tr.row", has_text="call me back about the blender").click()
    callback = page.locator("#timeline .entry.call", has_text="Callback call")
    await expect(callback).to_contain_text("outcome: customer reached")
    await expect(callback.locator(".live-call")).to_be_visible()
    await expect(callback.locator(".call-form.transfer")).to_have_count(0)
    await expect(callback.locator(".call-form.wrap-up")).to_be_visible()
    await expect(page.locator("#timeline .entry.in .transcript")).to_contain_text("call me back")
    audio = page.locator("#timeline audio")
    await expect(audio).to_have_attribute("src", re.compile(r"^/api/attachments/\d+$"))
    assert await audio.evaluate("a => a.canPlayType('audio/wav')") != ""
    await expect(page.locator("#timeline .entry.call").first).to_contain_text("rings to answer: 4.0")
    await expect(page.locator("#timeline .entry.call").first).to_contain_text("time to answer: 12 s")
    await expect(page.locator("#timeline .entry.call.missed")).to_contain_text("voicemail (not answered)")
    await page.locator("#conversations tr.row", has_text="Purchase order PO-7781").click()
    preview = page.locator("#timeline img.preview")
    await expect(preview).to_be_visible()
    await preview.scroll_into_view_if_needed()
    width = 0
    for _ in range(50):
        width = await preview.evaluate("img => img.complete ? img.naturalWidth : 0")
        if width:
            break
        await asyncio.sleep(0.1)
    assert width == 1
    pdf = page.locator("#timeline .media.pdf")
    await expect(pdf.locator(".badge")).to_have_text("PDF")
    await expect(pdf.locator("a.attachment")).to_contain_text("PO-7781.pdf")
    thumbnail = pdf.locator(".fax-pages img")
    await expect(thumbnail).to_have_count(1)
    await expect(thumbnail).to_have_attribute("src", re.compile(r"^/api/attachments/\d+/pages/1\.png$"))
    await thumbnail.scroll_into_view_if_needed()
    rendered = 0
    for _ in range(100):
        rendered = await thumbnail.evaluate("img => img.complete ? img.naturalWidth : 0")
        if rendered:
            break
        await asyncio.sleep(0.1)
    assert rendered == PREVIEW_WIDTH
    assert not agent.errors
    await agent.context.close()


async def test_an_agent_transfers_a_live_call_only_to_an_available_colleague_and_wraps_it_up_with_a_summary(
    live: LiveHub, browser: Browser
) -> None:
    now = datetime.now(UTC)
    text = "My kettle leaks, I will call you now."
    stored = await sms_from(live, "+441174960555", text, now - timedelta(minutes=5))
    li_wei = await live.services.directory.agent_by_name("li.wei")
    rang = now - timedelta(minutes=3)
    async with live.services.db.write() as conn:
        await conn.execute(
            insert(schema.calls).values(
                conversation_id=stored.conversation_id, contact_id=stored.contact_id, channel_account="mail",
                external_id="call-kettle", direction="in", started_at=rang, ringing_at=rang,
                answered_at=rang + timedelta(seconds=8),
                answered_by=li_wei.id, outcome="answered_in_time", rings_to_answer=1.3,
            )
        )  # fmt: skip
    agent, page = await signed_in(browser, live.url, "li.wei")
    await page.locator("#conversations tr.row", has_text="kettle leaks").click()
    call = page.locator("#timeline .entry.call")
    await expect(call).to_contain_text("on the line now")
    target = call.locator("select[id^=transfer-target]")
    await expect(target.locator("option", has_text="Li Wei")).to_have_count(0)
    await target.select_option(label="James Okafor")
    await call.locator("input[id^=transfer-reason]").fill("Warranty question")
    await call.locator("button.transfer").click()
    await expect(call.locator(".call-errors")).to_contain_text("James Okafor is away, not available")
    await call.locator("button.wrap-up").click()
    await expect(call.locator(".call-errors")).to_contain_text("without a summary note (P5)")
    await call.locator("textarea[id^=wrap-up]").fill("Replacement kettle sent; customer returns the old one.")
    await call.locator("button.wrap-up").click()
    await expect(call).to_contain_text("wrapped up")
    await expect(call.locator("button.wrap-up")).to_have_count(0)
    await expect(page.locator("#timeline .entry.note")).to_contain_text(
        "Call summary: Replacement kettle sent; customer returns the old one."
    )
    assert not agent.errors
    await agent.context.close()


async def test_a_caller_waiting_too_long_in_the_queue_prompts_the_agent_who_opens_the_call_to_take_it(
    live: LiveHub, browser: Browser
) -> None:
    now = datetime.now(UTC)
    text = "Calling about my toaster order."
    stored = await sms_from(live, "+441174960777", text, now - timedelta(minutes=4))
    async with live.services.db.write() as conn:
        await conn.execute(
            insert(schema.calls).values(
                conversation_id=stored.conversation_id, contact_id=stored.contact_id, channel_account="mail",
                external_id="call-toaster", direction="in", started_at=now - timedelta(minutes=3),
                ringing_at=now - timedelta(minutes=3), outcome="ringing", route="queue", line="Sales line",
            )
        )  # fmt: skip
    agent, page = await signed_in(browser, live.url, "li.wei")
    await expect(page.locator("#live")).to_have_text("Live")
    await live.services.calls.queue_waited("mail", "call-toaster", 150)
    prompt = page.locator("#call-prompts .call-prompt")
    await expect(prompt).to_contain_text("A caller has waited 3 min in the queue on Sales line")
    await prompt.locator("button.open").click()
    await expect(prompt).to_have_count(0)
    call = page.locator("#timeline .entry.call")
    await expect(call).to_contain_text("waiting in the queue")
    await call.locator("button.take").click()
    await expect(call.locator(".call-errors")).to_contain_text("the line mail cannot move calls")
    await expect(call.locator("button.take")).to_be_visible()
    async with live.services.db.read() as conn:
        c = schema.calls
        route = await conn.scalar(select(c.c.route).where(c.c.external_id == "call-toaster"))
    assert route == "queue"
    async with live.services.db.write() as conn:
        c = schema.calls
        await conn.execute(update(c).where(c.c.external_id == "call-toaster").values(queue_prompted_at=None))
        call_id = await conn.scalar(select(c.c.id).where(c.c.external_id == "call-toaster"))
    await live.services.calls.queue_waited("mail", "call-toaster", 240)
    await expect(prompt).to_have_count(1)
    taken = event_row("call.picked_up", now, stored.conversation_id, None, call_id=call_id)
    live.services.bus.publish([taken])
    await expect(prompt).to_have_count(0)
    assert not agent.errors
    await agent.context.close()


async def test_the_agent_sees_what_is_owed_to_the_customer_and_marks_a_callback_done_with_a_note(
    live: LiveHub, browser: Browser
) -> None:
    now = datetime.now(UTC)
    text = "The heater you sent is the wrong model."
    stored = await sms_from(live, "+441174960888", text, now - timedelta(minutes=30))
    async with live.services.db.write() as conn:
        await tasks.create(
            conn, conversation_id=stored.conversation_id, kind=tasks.TaskKind.CALLBACK, key="callback:heater",
            due_at=now + timedelta(hours=3), now=now,
            payload={
                "reason": "missed call", "points": ["wrong heater model"], "phone": "+441174960888",
                "customer_zone": midday_zone(now),
            },
        )  # fmt: skip
        await tasks.create(
            conn, conversation_id=stored.conversation_id, kind=tasks.TaskKind.RECEIPT_CHECK,
            key="receipt:heater", due_at=now - timedelta(hours=1), now=now,
        )  # fmt: skip
    agent, page = await signed_in(browser, live.url, "li.wei")
    await page.locator("#conversations tr.row", has_text="wrong model").click()
    rows = page.locator("#tasks li.task")
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_contain_text("Receipt check")
    await expect(rows.first.locator(".due")).to_contain_text("overdue")
    callback = rows.nth(1)
    await expect(callback).to_contain_text("Call back")
    await expect(callback).to_contain_text("+441174960888")
    await expect(callback).to_contain_text("missed call · wrong heater model")
    await callback.locator("button.task-call").click()
    await expect(callback.locator(".task-error")).to_contain_text("no phone line of this hub can place calls")
    await expect(rows.first.locator("button.task-call")).to_have_count(0)
    await callback.locator("input[id^=task-note]").fill("Called; replacement on its way.")
    await callback.locator("button.task-done").click()
    await expect(rows).to_have_count(1)
    async with live.services.db.read() as conn:
        e = schema.events
        data = await conn.scalar(select(e.c.data).where(e.c.kind == "task.done"))
    assert data["task"] == "callback" and data["note"] == "Called; replacement on its way."
    assert not agent.errors
    await agent.context.close()


async def test_the_composer_inserts_a_template_attaches_a_file_and_answers_a_voicemail_by_email(
    live: LiveHub, browser: Browser
) -> None:
    now = datetime.now(UTC)
    mail = live.services.channels["mail"]
    complaint = await mail.receive(  # type: ignore[attr-defined]
        InboundMessage(
            channel=ChannelKind.EMAIL,
            channel_account="mail",
            external_id="<lamp-1@example.com>",
            sender=Identity.of("email", "olivia.hughes@example.com"),
            sender_name="Olivia Hughes",
            subject="Scratched floor lamp",
            text="The floor lamp arrived scratched.",
            received_at=now,
        )
    )
    call = await mail.receive(  # type: ignore[attr-defined]
        InboundMessage(
            channel=ChannelKind.VOICEMAIL,
            channel_account="mail",
            external_id="vm-lamp",
            sender=Identity.of("phone", "+441174960555"),
            text="Olivia again about the scratched lamp, please send the invoice.",
            received_at=now,
        )
    )
    await live.services.contacts.merge(call.contact_id, complaint.contact_id)

    agent, page = await signed_in(browser, live.url, "li.wei")
    await page.locator("#conversations tr.row", has_text="Scratched floor lamp").click()
    await expect(page.locator("#composer-template option[value=complaint_reply]")).to_be_attached()
    await page.select_option("#composer-template", "complaint_reply")
    await expect(page.locator("#composer-text")).to_have_value(re.compile("Olivia Hughes"), timeout=5000)
    draft = await page.input_value("#composer-text")
    assert "None" not in draft and "[complaint.summary]" in draft
    await page.fill("#composer-text", draft.replace("[complaint.summary]", "the lamp arrived scratched"))
    assert draft.rstrip().endswith("Li Wei")
    await page.set_input_files(
        "#composer-files", files=[{"name": "invoice-2291.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    await expect(page.locator("#composer-file-list .file[data-upload]")).to_contain_text("invoice-2291.pdf")
    await expect(page.locator("#composer-findings li.finding.error")).to_have_count(0, timeout=5000)
    await shot(page, "composer-template-attachment")
    await page.click("#send")
    sent = page.locator("#timeline .entry.out", has_text="Olivia Hughes")
    await expect(sent.locator("a.attachment")).to_contain_text("invoice-2291.pdf", timeout=5000)

    await page.locator("#conversations tr.row", has_text="please send the invoice").click()
    await expect(page.locator("#composer-route")).to_be_visible()
    await expect(page.locator("#composer-subject")).to_be_hidden()
    await page.select_option("#composer-route", label="✉ email → olivia.hughes@example.com (mail)")
    await expect(page.locator("#composer-subject")).to_be_visible()
    await page.fill("#composer-subject", "Your invoice for the floor lamp")
    await page.fill("#composer-text", "Dear Olivia,\n\nThe invoice is attached, as you asked.")
    await page.set_input_files(
        "#composer-files", files=[{"name": "invoice-2291.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    await expect(page.locator("#composer-file-list .file[data-upload]")).to_contain_text("invoice-2291.pdf")
    await expect(page.locator("#composer-findings li.finding.error")).to_have_count(0, timeout=5000)
    await page.click("#send")
    by_mail = page.locator("#timeline .entry.out", has_text="The invoice is attached")
    await expect(by_mail.locator(".meta")).to_contain_text("email", timeout=5000)
    await expect(by_mail.locator("a.attachment")).to_contain_text("invoice-2291.pdf")
    for _ in range(50):
        if any(m.text.startswith("Dear Olivia,\n") for m in mail.sent):  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.1)
    out = next(m for m in mail.sent if m.text.startswith("Dear Olivia,\n"))  # type: ignore[attr-defined]
    assert out.channel is ChannelKind.EMAIL and out.recipient.address == "olivia.hughes@example.com"
    assert [a.filename for a in out.attachments] == ["invoice-2291.pdf"]
    assert not agent.errors
    await agent.context.close()
