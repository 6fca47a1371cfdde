"""E-mail parsing, HTML, quotes, loop rules, bounces and composing, on recorded and built mail."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from channels.email import charsets, html, quotes
from channels.email.bounces import Bounce, ReadReceipt
from channels.email.compose import SMTP_POLICY, FileData, Sender, compose, message_id, our_ids
from channels.email.loops import CircuitBreaker
from channels.email.parse import (
    MailRules,
    Parsed,
    ParseLimits,
    UnparseableMail,
    external_id,
    parse_message,
    peek,
)
from hub.errors import PayloadTooLarge
from hub.models import ChannelKind, Identity, OutboundMessage, OutboundStatus
from hub.services import Services

PAYLOADS = Path(__file__).parent / "payloads" / "email"
OURS = MailRules(own_addresses=frozenset({"support@acme.test", "sales@acme.test"}))
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def parse(name: str, **kwargs: Any) -> Parsed:
    return parse_message(payload(name), **({"account": "acme", "mailbox": "INBOX", "rules": OURS} | kwargs))


# --- charsets -------------------------------------------------------------------------------


def test_text_labelled_utf8_but_written_in_cp1252_is_read_as_cp1252() -> None:
    parsed = parse("mislabelled_utf8.eml")
    assert parsed.message.text == "Mañana pagaré 50 €."
    assert "text is not 'utf-8', decoded as cp1252" in parsed.defects


def test_unknown_charset_falls_back_to_utf8_and_is_recorded() -> None:
    parsed = parse("unknown_charset.eml")
    assert parsed.message.text == "Grüße aus Köln"
    assert parsed.message.meta["defects"] == ["unknown charset 'x-klingon', decoded as utf-8"]


def test_iso_8859_1_label_is_decoded_as_cp1252_like_browsers() -> None:
    parsed = parse("outlook_reply_de.eml")
    assert "120 € ist bezahlt – bitte prüfen" in parsed.message.text
    assert parsed.defects == ()
    assert charsets.decode(b"\x80 \x93x\x94", "us-ascii") == ("€ “x”", None)


def test_gb2312_encoded_words_and_body_decode_as_gb18030() -> None:
    message = parse("foxmail_reply_zh.eml").message
    assert message.sender_name == "张三"
    assert message.subject == "回复：发票问题 [#31]"
    assert message.text == "您好，发票已经收到，谢谢！"


def test_raw_8bit_chinese_headers_are_recovered() -> None:
    message = parse("raw_8bit_headers_zh.eml").message
    assert (message.sender_name, message.subject) == ("李四", "退款申请")
    assert peek(payload("raw_8bit_headers_zh.eml")).subject == "退款申请"


def test_undecodable_bytes_are_replaced_never_raised() -> None:
    text, note = charsets.decode(b"ok \x81\x8d", "x-none")
    assert text.startswith("ok ") and note is not None


# --- structure, ids, limits -----------------------------------------------------------------


def test_multipart_without_boundary_is_repaired_from_its_body() -> None:
    parsed = parse("no_boundary.eml")
    assert parsed.message.text == "Please find the form attached."
    [pdf] = parsed.message.attachments
    assert (pdf.filename, pdf.content_type, pdf.data[:5]) == ("form.pdf", "application/pdf", b"%PDF-")
    assert "multipart without boundary; found boundary 'frontier7' in the body" in parsed.defects


def test_multipart_without_any_boundary_keeps_its_text_and_the_defects() -> None:
    raw = payload("no_boundary_unrecoverable.eml")
    parsed = parse_message(raw, account="acme")
    assert parsed.message.text == "Just some text where a body should be."
    assert "NoBoundaryInMultipartDefect" in parsed.defects
    assert parsed.message.raw == raw


def test_message_id_is_the_external_id_and_own_ref() -> None:
    message = parse("gmail_reply.eml").message
    assert message.external_id == "<CAJx9K2fGmail+reply1@mail.gmail.com>"
    assert message.own_refs == ("<CAJx9K2fGmail+reply1@mail.gmail.com>",)
    assert message.reply_refs == (
        "<c17.m40.0123456789abcdef@acme.test>",
        "<CAJx9K2fGmail+orig@mail.gmail.com>",
    )
    assert message.received_at == datetime(2025, 11, 4, 8, 12, 44, tzinfo=UTC)
    assert message.meta["to"] == ["support@acme.test"] and message.meta["cc"] == ["sales@acme.test"]


def test_without_message_id_the_external_id_is_the_hash_of_the_crlf_message() -> None:
    crlf = payload("no_message_id.eml")
    lf = crlf.replace(b"\r\n", b"\n")
    expected = "sha256:" + hashlib.sha256(crlf).hexdigest()
    assert parse_message(crlf, account="a").message.external_id == expected
    assert parse_message(lf, account="a").message.external_id == expected
    assert external_id(lf + b"x", None) != expected


def test_date_in_the_future_is_clamped_and_transport_time_wins() -> None:
    raw = b"From: a@example.com\r\nDate: Mon, 1 Jan 2099 00:00:00 +0000\r\n\r\nhi\r\n"
    assert parse_message(raw, account="a").message.received_at <= datetime.now(UTC)
    at = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    assert parse_message(raw, account="a", received_at=at).message.received_at == at


def test_oversized_mail_and_mail_without_sender_are_refused_with_a_reason() -> None:
    raw = payload("gmail_reply.eml")
    with pytest.raises(PayloadTooLarge, match="over the limit"):
        parse_message(raw, account="a", limits=ParseLimits(max_raw_bytes=len(raw) - 1))
    with pytest.raises(UnparseableMail, match="no usable sender"):
        parse_message(b"Subject: who?\r\n\r\nbody\r\n", account="a")


def test_oversized_attachment_is_left_in_raw_and_listed() -> None:
    parsed = parse("no_boundary.eml", limits=ParseLimits(max_attachment_bytes=4))
    assert parsed.message.attachments == ()
    assert parsed.message.meta["omitted_attachments"] == [
        {"filename": "form.pdf", "content_type": "application/pdf", "size": 15}
    ]


def test_fax_to_mail_is_tagged_by_sender_pattern_or_mailbox() -> None:
    raw = payload("no_boundary.eml")
    by_sender = MailRules(fax_senders=("*@example.org",))
    assert parse_message(raw, account="a", rules=by_sender).message.meta["tags"] == ["fax"]
    by_box = MailRules(fax_mailboxes=frozenset({"Fax"}))
    assert parse_message(raw, account="a", mailbox="Fax", rules=by_box).message.meta["tags"] == ["fax"]
    assert "tags" not in parse_message(raw, account="a", mailbox="INBOX", rules=by_box).message.meta


# --- HTML -----------------------------------------------------------------------------------


def test_html_is_sanitised_cid_images_point_at_the_attachment_and_remote_images_wait() -> None:
    message = parse("html_inline_image.eml").message
    [shot] = message.attachments
    sha = hashlib.sha256(shot.data).hexdigest()
    assert message.html is not None
    assert f'<img src="/api/attachments/by-hash/{sha}" alt="screenshot">' in message.html
    for banned in ("<script", "onload", "javascript:", "<form", "<input", ' src="https://tracker'):
        assert banned not in message.html
    assert 'data-remote-src="https://tracker.example.net/open.gif?id=42"' in message.html
    assert message.meta["remote_images"] == ["https://tracker.example.net/open.gif?id=42"]
    assert message.text.startswith("The error looks like this:")


def test_remote_images_load_when_an_agent_asks() -> None:
    source = '<p>x</p><img src="https://cdn.example/logo.png">'
    assert (
        'src="https://cdn.example/logo.png"' in html.sanitise(source, lambda _: None, allow_remote=True).html
    )
    safe = html.sanitise(source + '<img src="cid:gone">', lambda _: None)
    assert "src=" not in safe.html.replace("data-remote-src", "")
    assert safe.missing_cids == ("gone",)


def test_held_back_images_load_on_request_and_nothing_else_changes() -> None:
    message = parse("html_inline_image.eml").message
    assert message.html is not None
    shown = html.show_remote_images(message.html)
    assert '<img src="https://tracker.example.net/open.gif?id=42" width="1" height="1">' in shown
    assert shown.replace('src="https://tracker', 'data-remote-src="https://tracker') == message.html


def test_language_from_content_language_or_chinese_text() -> None:
    assert parse("outlook_reply_de.eml").message.language == "de"
    assert parse("foxmail_reply_zh.eml").message.language == "zh"
    assert parse("gmail_reply.eml").message.language is None


def test_outlook_html_reply_splits_at_its_header_block_without_stray_indentation() -> None:
    text = html.to_text(
        '<div dir="ltr"><p>Thanks, the refund arrived.</p><p>Regards<br>Tom</p></div><hr>'
        '<div id="divRplyFwdMsg"><font face="Calibri"><b>From:</b> ACME Support &lt;support@acme.test&gt;<br>'
        "<b>Sent:</b> Monday, November 3, 2025 4:05 PM<br><b>To:</b> Tom<br><b>Subject:</b> Refund [#9]"
        "</font></div><div><p>Dear Tom, your refund is on its way.</p></div>"
    )
    cut = quotes.split(text)
    assert cut.new == "Thanks, the refund arrived.\n\nRegards\nTom"
    assert cut.quoted.startswith("From: ACME Support <support@acme.test>\nSent: Monday")


def test_an_empty_text_part_gives_way_to_the_html_part() -> None:
    raw = (
        b"From: a@example.com\r\nContent-Type: multipart/alternative; boundary=X\r\n\r\n"
        b"--X\r\nContent-Type: text/plain\r\n\r\n \r\n"
        b"--X\r\nContent-Type: text/html\r\n\r\n<p>Only here</p>\r\n--X--\r\n"
    )
    assert parse_message(raw, account="a").message.text == "Only here"


def test_html_only_mail_gets_text_for_agents() -> None:
    assert html.to_text("<h1>Title</h1><p>One<br>two</p><ul><li>a</li></ul>").split() == [
        "Title",
        "One",
        "two",
        "*",
        "a",
    ]


# --- quotes and signatures ------------------------------------------------------------------


def test_gmail_reply_keeps_the_new_text_and_the_quote_apart() -> None:
    message = parse("gmail_reply.eml").message
    assert message.text == "Hi,\n\nthe parcel arrived today, thank you – but the charger is missing.\n\nAnna"
    assert message.meta["quoted"].startswith("On Mon, Nov 3, 2025")
    assert "> your order 1042 left our warehouse today." in message.meta["quoted"]


def test_outlook_german_reply_splits_at_the_header_block() -> None:
    message = parse("outlook_reply_de.eml").message
    assert message.text.endswith("Mit freundlichen Grüßen\nMax Mustermann")
    assert message.meta["quoted"].splitlines()[1] == "Von: ACME Support <support@acme.test>"


def test_chinese_client_replies_split_at_the_original_mail_marker_and_attribution() -> None:
    fox = parse("foxmail_reply_zh.eml").message
    assert fox.meta["quoted"].startswith("------------------ 原始邮件 ------------------\n发件人:")
    netease = parse("raw_8bit_headers_zh.eml").message
    assert netease.text == "请尽快处理我的退款。"
    assert netease.meta["quoted"].startswith("在 2025年11月6日 10:00，ACME 客服")


@pytest.mark.parametrize(
    ("text", "new", "quote_starts"),
    [
        ("Fine.\n\nOn 3 Nov 2025, at 16:05, ACME <s@a.test> wrote:\n\n> Hi", "Fine.", "On 3 Nov"),
        ("Merci.\n\nLe lun. 3 nov. 2025 à 16:05, ACME <s@a.test> a écrit :\n> Bonjour", "Merci.", "Le lun."),
        ("OK\n\n-----Original Message-----\nFrom: ACME\nSent: Monday\n\nDear Tom", "OK", "-----Orig"),
        ("Danke\n\n-----Ursprüngliche Nachricht-----\nVon: A\nAn: Max\n\nHallo", "Danke", "-----Urs"),
        ("好的\n\n发件人：ACME 客服 <s@a.test>\n发送时间：2025年11月3日 16:05\n\n您好", "好的", "发件人："),
        ('收到\n\n2025-11-03 16:05:00 "ACME 客服" <s@a.test> 写道：\n> 您好', "收到", "2025-11-03"),
    ],
)
def test_quote_headers_of_many_clients_and_languages(text: str, new: str, quote_starts: str) -> None:
    cut = quotes.split(text)
    assert cut.new == new and cut.quoted.startswith(quote_starts)


def test_signature_after_the_delimiter_and_sent_from_lines() -> None:
    cut = quotes.split(
        "Thanks!\n-- \nAnna Berg\nACME\n\nAm 3. Nov. 2025 schrieb Support <s@a.test>:\n> Hallo"
    )
    assert (cut.new, cut.signature) == ("Thanks!", "-- \nAnna Berg\nACME")
    assert cut.quoted.startswith("Am 3. Nov. 2025 schrieb")
    assert quotes.split("好的\n\n发自我的iPhone").signature == "发自我的iPhone"


def test_nothing_is_thrown_away_when_splitting() -> None:
    for name in (
        "gmail_reply.eml",
        "outlook_reply_de.eml",
        "foxmail_reply_zh.eml",
        "raw_8bit_headers_zh.eml",
    ):
        message = parse(name).message
        full = BytesParser(policy=policy.default).parsebytes(payload(name))
        lines = {
            x.strip()
            for x in "\n".join(
                [message.text, message.meta.get("signature", ""), message.meta.get("quoted", "")]
            ).splitlines()
        }
        body = full.get_body(("plain",))
        if body is None:
            continue
        original = charsets.decode(body.get_payload(decode=True), body.get_content_charset())[0]
        assert {x.strip() for x in original.splitlines() if x.strip()} <= lines, name


def test_interleaved_quotes_stay_in_the_new_text() -> None:
    text = "> Can you ship today?\nYes.\n> And the invoice?\nAttached."
    assert quotes.split(text) == quotes.Split(text, "", "")


# --- never answer automatically -------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ("Auto-Submitted: auto-replied", "Auto-Submitted: auto-replied"),
        ("Auto-Submitted: auto-generated; owner-email=x@y", "Auto-Submitted"),
        ("Precedence: bulk", "Precedence: bulk"),
        ("Precedence: junk", "Precedence: junk"),
        ("List-Unsubscribe: <mailto:u@x>", "mailing list header List-Unsubscribe"),
        ("Return-Path: <>", "empty return path"),
        ("X-Auto-Response-Suppress: OOF, AutoReply", "X-Auto-Response-Suppress"),
        ("Content-Type: multipart/report; report-type=delivery-status; boundary=b", "multipart/report"),
    ],
)
def test_mail_that_must_never_get_an_automatic_answer(headers: str, reason: str) -> None:
    raw = f"From: anna@example.com\r\n{headers}\r\n\r\nhello\r\n".encode()
    parsed = parse_message(raw, account="a")
    assert not parsed.auto_reply.allowed
    assert parsed.auto_reply.reason is not None and parsed.auto_reply.reason.startswith(reason)
    assert parsed.message.meta["auto_reply"] is False


@pytest.mark.parametrize(
    "sender",
    [
        "MAILER-DAEMON@mx.example",
        "postmaster@example.com",
        "noreply@shop.example",
        "no-reply@shop.example",
        "do-not-reply@bank.example",
        "support@acme.test",
    ],
)
def test_system_senders_and_our_own_addresses_get_no_automatic_answer(sender: str) -> None:
    raw = f"From: {sender}\r\n\r\nhello\r\n".encode()
    assert not parse_message(raw, account="a", rules=OURS).auto_reply.allowed


def test_ordinary_mail_may_be_acknowledged() -> None:
    parsed = parse("gmail_reply.eml")
    assert parsed.auto_reply.allowed and parsed.message.meta["auto_reply"] is True
    raw = b"From: anna@example.com\r\nAuto-Submitted: no\r\n\r\nhello\r\n"
    assert parse_message(raw, account="a").auto_reply.allowed
    assert not parse("mailing_list.eml").auto_reply.allowed


def test_circuit_breaker_stops_automatic_mail_and_reports_the_trip_once() -> None:
    breaker = CircuitBreaker(limit=3, window=timedelta(hours=1), cooldown=timedelta(hours=2))
    sent = [breaker.allow("bot@example.com", NOW + timedelta(minutes=i)) for i in range(6)]
    assert sent == [True, True, True, False, False, False]
    assert breaker.tripped() == ["bot@example.com"] and breaker.tripped() == []
    assert breaker.is_open("bot@example.com", NOW + timedelta(hours=1))
    assert breaker.allow("other@example.com", NOW)
    assert breaker.allow("bot@example.com", NOW + timedelta(hours=3))


# --- bounces and receipts -------------------------------------------------------------------


def test_delivery_status_bounce_names_the_recipient_reason_and_our_message() -> None:
    parsed = parse("dsn_bounce.eml")
    assert isinstance(parsed.report, Bounce) and parsed.report.permanent
    result = parsed.report.delivery_result()
    assert result.status is OutboundStatus.FAILED
    assert result.provider_id == "<c44.m90.1234567890abcdef@acme.test>"
    assert result.refused == {
        "nobody@example.com": "5.1.1 550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown"
    }
    assert result.error is not None and "nobody@example.com: 5.1.1" in result.error
    assert parsed.message.meta["report"]["kind"] == "bounce"
    assert not parsed.auto_reply.allowed


def test_a_delay_notice_is_not_a_failure() -> None:
    report = parse("dsn_delay.eml").report
    assert isinstance(report, Bounce) and not report.permanent
    assert report.original_message_id == "<c45.m91.abcdefabcdefabcd@acme.test>"
    assert report.recipients[0].status == "4.4.1"


def test_non_standard_bounce_is_read_by_flufl_bounce() -> None:
    report = parse("qmail_bounce.eml").report
    assert isinstance(report, Bounce) and report.permanent
    assert [r.address for r in report.recipients] == ["gone@example.org"]
    assert report.original_message_id == "<c46.m95.0f0f0f0f0f0f0f0f@acme.test>"


def test_read_receipt_is_recorded_not_answered() -> None:
    parsed = parse("read_receipt.eml")
    assert parsed.report == ReadReceipt(
        "<c17.m41.aaaaaaaaaaaaaaaa@acme.test>",
        "anna.berg@example.com",
        "manual-action/MDN-sent-manually; displayed",
    )
    assert parsed.report.delivery_result().status is OutboundStatus.DELIVERED
    assert not parsed.auto_reply.allowed


def test_ordinary_mail_is_no_report() -> None:
    assert parse("gmail_reply.eml").report is None
    assert parse("outlook_reply_de.eml").report is None


# --- composing ------------------------------------------------------------------------------

SENDER = Sender(
    "support@acme.test", "acme.test", b"account-secret", name="ACME 客服", signature="ACME Support\n客服部"
)


def outbound(**fields: object) -> OutboundMessage:
    base: dict[str, object] = {
        "id": 1,
        "message_id": 456,
        "conversation_id": 123,
        "channel": ChannelKind.EMAIL,
        "channel_account": "acme",
        "recipient": Identity.of("email", "anna@example.com"),
        "text": "Dear Anna,\nyour parcel left today. 您的包裹已发出。",
        "idempotency_key": "k1",
        "attempt": 1,
        "subject": "Re: Your order [#123]",
        "reply_refs": ("<CAJx9K2fGmail+orig@mail.gmail.com>",),
    }
    base.update(fields)
    return OutboundMessage(**base)  # type: ignore[arg-type]


def test_our_message_ids_encode_the_conversation_and_cannot_be_forged() -> None:
    ours = message_id(123, 456, domain="acme.test", secret=b"account-secret")
    assert ours.startswith("<c123.m456.") and ours.endswith("@acme.test>")
    assert our_ids(ours, secret=b"account-secret") == (123, 456)
    assert our_ids(ours, secret=b"another-secret") is None
    assert our_ids(ours.replace("c123", "c124"), secret=b"account-secret") is None
    assert our_ids("<random@example.com>", secret=b"account-secret") is None


def test_composed_reply_threads_signs_and_reads_back() -> None:
    """E5: the HTML mail carries the text part; E6: the signature follows `-- `."""
    mail = compose(
        outbound(html="<p>Dear Anna</p>"),
        SENDER,
        now=NOW,
        files=[FileData("invoice.pdf", "application/pdf", b"%PDF-1.4 test")],
    )
    raw = mail.as_bytes(policy=SMTP_POLICY)
    assert mail["In-Reply-To"] == "<CAJx9K2fGmail+orig@mail.gmail.com>"
    assert mail["Message-ID"] == message_id(123, 456, domain="acme.test", secret=b"account-secret")
    assert mail.get_content_type() == "multipart/mixed"
    assert [p.get_content_type() for p in mail.walk()] == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "application/pdf",
    ]
    assert "Auto-Submitted" not in mail
    back = parse_message(raw, account="peer").message
    assert back.text == "Dear Anna,\nyour parcel left today. 您的包裹已发出。"
    assert back.meta["signature"] == "-- \nACME Support\n客服部"
    assert back.sender_name == "ACME 客服"
    assert back.attachments[0].data == b"%PDF-1.4 test"
    assert back.html is not None and "ACME Support<br>" in back.html


def test_line_breaks_in_a_subject_cannot_inject_headers() -> None:
    mail = compose(outbound(subject="Re: order\r\nBcc: victim@example.com\n [#123]"), SENDER, now=NOW)
    assert mail["Subject"] == "Re: order Bcc: victim@example.com [#123]"
    assert "Bcc" not in mail


def test_automatic_mail_is_marked_so_no_one_answers_it() -> None:
    mail = compose(outbound(automatic=True), SENDER, now=NOW)
    assert mail["Auto-Submitted"] == "auto-replied" and mail["X-Auto-Response-Suppress"] == "All"
    parsed = parse_message(mail.as_bytes(policy=SMTP_POLICY), account="peer")
    assert parsed.auto_reply.reason == "Auto-Submitted: auto-replied"


def test_references_are_trimmed_and_every_line_fits_998_octets() -> None:
    refs = (*(f"<{'r' * 200}.{i}@example.com>" for i in range(60)), "<" + "x" * 2000 + "@too.long>")
    mail = compose(outbound(reply_refs=refs), SENDER, now=NOW)
    raw = mail.as_bytes(policy=SMTP_POLICY)
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    kept = str(mail["References"]).split()
    assert len(kept) == 20 and kept[0] == refs[0] and kept[-1] == refs[59]
    assert mail["In-Reply-To"] == refs[59]


# --- threading through the inbox ------------------------------------------------------------


async def test_a_thread_of_replies_in_gmail_outlook_and_chinese_styles(services: Services) -> None:
    """Each customer's reply (Gmail: References; Outlook: only our id and the [#id] token; Foxmail:
    Chinese headers) joins the conversation its first mail opened."""
    threads = {}
    for name, sender in (
        ("gmail", "anna.berg@gmail.com"),
        ("outlook", "max.mustermann@beispiel.de"),
        ("foxmail", "zhangsan@qq.com"),
    ):
        first = (
            f"From: {sender}\r\nTo: support@acme.test\r\nSubject: Question\r\n"
            "Date: Mon, 3 Nov 2025 08:00:00 +0000\r\n"
            f"Message-ID: <first-{name}@example.com>\r\n\r\nFirst mail.\r\n"
        ).encode()
        result = await services.inbox.ingest(parse_message(first, account="acme").message)
        threads[name] = result.conversation_id
    gmail = payload("gmail_reply.eml").replace(
        b"<CAJx9K2fGmail+orig@mail.gmail.com>", b"<first-gmail@example.com>"
    )
    outlook = payload("outlook_reply_de.eml").replace(b"[#23]", f"[#{threads['outlook']}]".encode())
    foxmail = payload("foxmail_reply_zh.eml").replace(
        b"References: <c31.m77.00112233aabbccdd@acme.test>",
        b"References: <first-foxmail@example.com> <c31.m77.00112233aabbccdd@acme.test>",
    )
    for name, raw in (("gmail", gmail), ("outlook", outlook), ("foxmail", foxmail)):
        result = await services.inbox.ingest(parse_message(raw, account="acme").message)
        assert not result.new_conversation and result.conversation_id == threads[name], name
    stranger = payload("outlook_reply_de.eml").replace(b"[#23]", f"[#{threads['gmail']}]".encode())
    result = await services.inbox.ingest(
        parse_message(stranger.replace(b"<AM0", b"<X-AM0"), account="acme").message
    )
    assert result.conversation_id not in threads.values()
    timeline = await services.inbox.timeline(threads["foxmail"])
    assert [m.text for m in timeline.messages] == ["First mail.", "您好，发票已经收到，谢谢！"]
    assert timeline.messages[1].meta["quoted"].startswith("------------------ 原始邮件")


async def test_the_same_mail_twice_and_to_two_of_our_addresses_is_one_message(services: Services) -> None:
    raw = payload("gmail_reply.eml")
    first = await services.inbox.ingest(parse_message(raw, account="acme", mailbox="INBOX").message)
    again = await services.inbox.ingest(parse_message(raw, account="acme", mailbox="Sales").message)
    assert again.duplicate and again.message_id == first.message_id
    nameless = payload("no_message_id.eml")
    a = await services.inbox.ingest(parse_message(nameless, account="acme").message)
    b = await services.inbox.ingest(parse_message(nameless.replace(b"\r\n", b"\n"), account="acme").message)
    assert b.duplicate and a.message_id == b.message_id


# --- hostile input --------------------------------------------------------------------------


def test_damaged_mail_parses_or_is_refused_with_a_reason_never_crashes() -> None:
    rng = random.Random(20261123)
    originals = [p.read_bytes() for p in sorted(PAYLOADS.glob("*.eml"))]
    splices = [b"\r\n", b"\n\n", b"=?", b"?=", b"--", b"\x00", b"<>", b";", b'"', b"boundary=", b"=?utf-8?b?"]
    outcomes = {"parsed": 0, "refused": 0}
    for _ in range(1500):
        raw = bytearray(rng.choice(originals))
        roll = rng.random()
        if roll < 0.4:
            for _ in range(rng.randint(1, 10)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
        elif roll < 0.6:
            raw = raw[: rng.randrange(len(raw))]
        elif roll < 0.85:
            at = rng.randrange(len(raw))
            raw[at:at] = rng.choice(splices)
        else:
            raw = bytearray(rng.randbytes(rng.randint(0, 300)))
        try:
            parsed = parse_message(bytes(raw), account="a")
        except (UnparseableMail, PayloadTooLarge):
            outcomes["refused"] += 1
        else:
            assert parsed.message.raw == bytes(raw)
            outcomes["parsed"] += 1
    assert outcomes["parsed"] > 800 and outcomes["refused"] > 100


async def test_fax_to_mail_conversations_are_tagged_fax(services: Services) -> None:
    rules = MailRules(fax_senders=("*@example.org",))
    fax = await services.inbox.ingest(
        parse_message(payload("no_boundary.eml"), account="a", rules=rules).message
    )
    mail = await services.inbox.ingest(
        parse_message(payload("gmail_reply.eml"), account="a", rules=rules).message
    )
    assert (await services.inbox.conversation(fax.conversation_id)).tags == ("fax",)
    assert (await services.inbox.conversation(mail.conversation_id)).tags == ()
