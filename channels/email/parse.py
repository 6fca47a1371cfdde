"""Raw RFC 5322 bytes -> `hub.models.InboundMessage`, with the defects found on the way.

Uses the stdlib `email` package with `policy.default`. Text parts are decoded by
`charsets.decode` (declared -> UTF-8 -> cp1252), never by `get_content()`, so unknown and
wrong labels cannot lose text. A multipart without a boundary is re-read with the boundary
its body uses, when one can be found. The raw message always travels on `raw`. The
headers-only reads (`triage`, `peek`) parse with `compat32` and decode just the headers they
use, from the raw values, as the full parse does.

The external id is the Message-ID (per account, so mail to several of our addresses and the
same mail in two mailboxes is stored once), else `sha256:` + the SHA-256 of the message with
its line ends normalised to CRLF.
"""

from __future__ import annotations

import email
import fnmatch
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.policy import EmailPolicy
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from typing import Any

from channels.email import bounces, charsets, loops, quotes
from channels.email.bounces import ReadReceipt, Report
from channels.email.html import ATTACHMENT_URL, sanitise, to_text
from channels.email.loops import Verdict
from hub.errors import ChannelError, PayloadTooLarge
from hub.models import ChannelKind, Identity, IdentityKind, InboundAttachment, InboundMessage

MAX_ID_LENGTH = 900
_MSGID = re.compile(r"<([^<>\s]+)>")
_LINE_END = re.compile(rb"\r\n|\r|\n")
_BOUNDARY_LINE = re.compile(rb"^--([ -~]{1,70}?)(--)?[ \t]*\r?$", re.MULTILINE)
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_HEADER_BODY = re.compile(rb"\r?\n\r?\n")
_CONTENT_TYPE = re.compile(rb"(?im)^content-type:.*\r?\n(?:[ \t].*\r?\n)*")


class UnparseableMail(ChannelError):
    """The bytes cannot become a message (no usable sender, not mail at all): quarantine them."""


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Size limits applied while parsing: the whole message and each attachment, in bytes."""

    max_raw_bytes: int = 35 * 1024 * 1024
    max_attachment_bytes: int = 25 * 1024 * 1024


DEFAULT_LIMITS = ParseLimits()


@dataclass(frozen=True, slots=True)
class MailRules:
    """Account facts parsing needs: our own addresses (never answered automatically) and
    which mail is fax-to-mail (sender glob patterns such as `*@fax.example.com`, or mailboxes)."""

    own_addresses: frozenset[str] = frozenset()
    fax_senders: tuple[str, ...] = ()
    fax_mailboxes: frozenset[str] = frozenset()

    def is_fax(self, sender: str, mailbox: str | None) -> bool:
        """Whether a mail from `sender` found in `mailbox` came from a fax-to-mail service."""
        if mailbox is not None and mailbox in self.fax_mailboxes:
            return True
        return any(fnmatch.fnmatchcase(sender.lower(), p.lower()) for p in self.fax_senders)


DEFAULT_RULES = MailRules()


@dataclass(frozen=True, slots=True)
class Parsed:
    """A parsed mail: the message for `Inbox.ingest` and the defects met while parsing.

    `defects` is also stored on `message.meta["defects"]`. `report` is set for bounces and
    read receipts: the channel records them on the outgoing message they are about
    (`report.delivery_result()`, when `report.original_message_id` is ours) instead of
    opening a conversation. `auto_reply` says whether an automatic answer is allowed (also on
    `meta["auto_reply"]`, with `meta["auto_reply_reason"]`).
    """

    message: InboundMessage
    defects: tuple[str, ...]
    auto_reply: Verdict
    report: Report | None = None


@dataclass(frozen=True, slots=True)
class Peek:
    """What a headers-only parse tells, fast enough for triage before the full parse."""

    message_id: str | None
    external_id: str
    subject: str | None
    sender: str | None


def parse_message(
    raw: bytes,
    *,
    account: str,
    mailbox: str | None = None,
    limits: ParseLimits = DEFAULT_LIMITS,
    received_at: datetime | None = None,
    rules: MailRules = DEFAULT_RULES,
) -> Parsed:
    """Parse one raw mail received on `account` (from IMAP `mailbox`, or None for SMTP).

    Raises `PayloadTooLarge` over `limits.max_raw_bytes` and `UnparseableMail` when there is
    no usable sender; both mean "quarantine the raw bytes with this reason". `received_at`
    (IMAP INTERNALDATE, SMTP arrival) wins over the Date header, which is never in the future.
    """
    _check_size(raw, limits)
    msg = _parse_bytes(raw)
    defects: list[str] = []
    msg = _repair_boundary(msg, raw, defects)
    _collect_defects(msg, defects)
    head = _Head.read(msg, raw, mailbox, rules, received_at)

    body = _Body.read(msg, limits, defects)
    cids = {a.content_id: a.sha256 for a in body.parts if a.content_id}

    def cid_url(cid: str) -> str | None:
        sha = cids.get(cid)
        return ATTACHMENT_URL.format(sha256=sha) if sha else None

    safe = sanitise(body.html, cid_url) if body.html is not None else None
    full = body.text or ""
    if not full.strip() and body.html:
        full = to_text(body.html)
    parts = quotes.split(full)
    report = bounces.classify(msg, raw, head.sender.address)

    meta = {**head.meta, "defects": list(defects)}
    if parts.quoted:
        meta["quoted"] = parts.quoted
    if parts.signature:
        meta["signature"] = parts.signature
    if report is not None:
        meta["report"] = _report_meta(report)
    if safe is not None:
        if safe.remote_images:
            meta["remote_images"] = list(safe.remote_images)
        if safe.missing_cids:
            meta["missing_cids"] = list(safe.missing_cids)
    if body.omitted:
        meta["omitted_attachments"] = body.omitted
    if body.inline:
        meta["inline_images"] = body.inline

    inbound = head.message(
        account,
        text=parts.new or full,
        html=safe.html if safe is not None else None,
        attachments=tuple(InboundAttachment(a.filename, a.content_type, a.data) for a in body.parts),
        language=_language(msg, parts.new or full),
        meta=meta,
    )
    return Parsed(inbound, tuple(defects), head.verdict, report)


def triage(
    raw: bytes,
    *,
    account: str,
    mailbox: str | None = None,
    limits: ParseLimits = DEFAULT_LIMITS,
    received_at: datetime | None = None,
    rules: MailRules = DEFAULT_RULES,
) -> InboundMessage | None:
    """Headers-only parse: the message to store now, with `content_pending` set (its text, HTML,
    attachments and defects follow from `parse_message`), or None for mail that needs the full
    parse before it is stored (a possible bounce or read receipt, fax-to-mail).

    Everything ingest decides on (dedupe, contact, threading, subject, flags for automatic
    answers) comes from the headers and equals what `parse_message` finds. Raises like it.
    """
    _check_size(raw, limits)
    msg = _parse_headers(raw)
    head = _Head.read(msg, raw, mailbox, rules, received_at)
    if "tags" in head.meta or bounces.may_be_report(msg, head.sender.address, head.subject or ""):
        return None
    return head.message(
        account,
        text="",
        language=_language(msg, head.subject or ""),
        meta=head.meta,
        content_pending=True,
    )


@dataclass(frozen=True, slots=True)
class _Head:
    """What the headers say, read the same way by the full and the headers-only parse."""

    sender: Identity
    name: str
    message_id: str | None
    subject: str | None
    external_id: str
    reply_refs: tuple[str, ...]
    received_at: datetime
    raw: bytes
    verdict: Verdict
    meta: dict[str, Any]

    @classmethod
    def read(
        cls, msg: Message, raw: bytes, mailbox: str | None, rules: MailRules, received_at: datetime | None
    ) -> _Head:
        first = charsets.first_values(msg)
        name, address = _sender(first)
        try:
            sender = Identity.of(IdentityKind.EMAIL, address or "")
        except ValueError as err:
            raise UnparseableMail(f"no usable sender address ({err})") from err
        message_id = first_msgid(_decoded("Message-ID", first.get("message-id")))
        verdict = loops.verdict(msg, sender.address, rules.own_addresses)
        meta: dict[str, Any] = {
            "mailbox": mailbox,
            "message_id": message_id,
            "to": _addresses(msg, "To"),
            "cc": _addresses(msg, "Cc"),
            **verdict.as_meta(),
        }
        if rules.is_fax(sender.address, mailbox):
            meta["tags"] = ["fax"]
        return cls(
            sender=sender,
            name=name,
            message_id=message_id,
            subject=_decoded("Subject", first.get("subject")) or None,
            external_id=external_id(raw, message_id),
            reply_refs=_refs(first),
            received_at=_received(first, received_at),
            raw=raw,
            verdict=verdict,
            meta=meta,
        )

    def message(self, account: str, *, text: str, meta: dict[str, Any], **more: Any) -> InboundMessage:
        """The message for `Inbox.ingest`, with the body-derived fields given."""
        return InboundMessage(
            channel=ChannelKind.EMAIL,
            channel_account=account,
            external_id=self.external_id,
            sender=self.sender,
            sender_name=self.name or None,
            text=text,
            subject=self.subject,
            received_at=self.received_at,
            reply_refs=self.reply_refs,
            own_refs=(self.message_id,) if self.message_id else (),
            raw=self.raw,
            meta=meta,
            **more,
        )


def _check_size(raw: bytes, limits: ParseLimits) -> None:
    if len(raw) > limits.max_raw_bytes:
        raise PayloadTooLarge(f"mail of {len(raw)} bytes is over the limit of {limits.max_raw_bytes}")


def _report_meta(report: Report) -> dict[str, Any]:
    if isinstance(report, ReadReceipt):
        return {
            "kind": "read_receipt",
            "original_message_id": report.original_message_id,
            "recipient": report.recipient,
            "disposition": report.disposition,
        }
    return {
        "kind": "bounce" if report.permanent else "delay",
        "original_message_id": report.original_message_id,
        "reason": report.reason,
        "recipients": {r.address: r.describe() for r in report.recipients},
    }


def peek(raw: bytes) -> Peek:
    """Headers-only parse: the Message-ID, the external id, subject and sender address."""
    head = _parse_headers(raw)
    message_id = first_msgid(_header(head, "Message-ID"))
    sender = parseaddr(_header(head, "From") or "")[1] or None
    return Peek(message_id, external_id(raw, message_id), _header(head, "Subject"), sender)


def external_id(raw: bytes, message_id: str | None) -> str:
    """The id a mail is deduplicated on: its Message-ID, else the SHA-256 of its CRLF form."""
    if message_id and len(message_id) <= MAX_ID_LENGTH:
        return message_id
    return "sha256:" + hashlib.sha256(_LINE_END.sub(b"\r\n", raw)).hexdigest()


def first_msgid(value: str | None) -> str | None:
    """The first `<id>` in a header value (a bare id without brackets is accepted)."""
    ids = msgids(value)
    return ids[0] if ids else None


def msgids(value: str | None) -> list[str]:
    """Every message id in a header value, as `<id>`, in order, without repeats."""
    if not value:
        return []
    found = _MSGID.findall(value)
    if not found:
        found = [w for w in value.split() if "@" in w]
    return list(dict.fromkeys(f"<{f.strip('<>')}>" for f in found))


def reply_refs(msg: Message) -> tuple[str, ...]:
    """In-Reply-To first, then References newest first: the order threading tries them."""
    return _refs(charsets.first_values(msg))


def _refs(first: dict[str, str]) -> tuple[str, ...]:
    replied = msgids(_decoded("In-Reply-To", first.get("in-reply-to")))
    refs = replied + list(reversed(msgids(_decoded("References", first.get("references")))))
    return tuple(dict.fromkeys(refs))


@dataclass(frozen=True, slots=True)
class _Part:
    filename: str
    content_type: str
    data: bytes
    sha256: str
    content_id: str | None


@dataclass(slots=True)
class _Body:
    text: str | None = None
    html: str | None = None
    parts: list[_Part] = field(default_factory=list)
    omitted: list[dict[str, Any]] = field(default_factory=list)
    inline: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, msg: EmailMessage, limits: ParseLimits, defects: list[str]) -> _Body:
        body = cls()
        texts: list[str] = []
        htmls: list[str] = []
        for index, part in enumerate(_leaves(msg)):
            ctype = part.get_content_type()
            disposition = part.get_content_disposition()
            filename = _filename(part)
            if ctype.startswith("multipart/"):
                data = _payload_bytes(part)
                text, note = charsets.decode(data, _charset(part))
                if note:
                    defects.append(note)
                texts.append(text)
                continue
            is_body = disposition != "attachment" and filename is None
            if is_body and ctype == "text/plain":
                texts.append(_text(part, defects))
                continue
            if is_body and ctype == "text/html":
                htmls.append(_text(part, defects))
                continue
            data = _payload_bytes(part)
            name = filename or _default_name(ctype, index)
            if len(data) > limits.max_attachment_bytes:
                body.omitted.append({"filename": name, "content_type": ctype, "size": len(data)})
                defects.append(f"attachment {name!r} of {len(data)} bytes is over the limit, kept in raw")
                continue
            cid = _content_id(part)
            sha = hashlib.sha256(data).hexdigest()
            if cid:
                body.inline[cid] = sha
            body.parts.append(_Part(name, ctype, data, sha, cid))
        body.text = "\n\n".join(t.strip("\n") for t in texts) if texts else None
        body.html = "\n".join(htmls) if htmls else None
        return body


class _CachedPolicy(EmailPolicy):
    """`policy.default`, but a header is parsed once per value, not on every `get`."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if hasattr(value, "name"):
            return value
        return charsets.parsed_header(name, value)


POLICY = _CachedPolicy()


def _parse_bytes(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=POLICY)
    assert isinstance(msg, EmailMessage)
    return msg


def _parse_headers(raw: bytes) -> Message:
    """The header block alone (up to the first blank line), for the headers-only reads: with
    `compat32`, which keeps values as they came; the values read are decoded one by one."""
    end = _HEADER_BODY.search(raw)
    return BytesHeaderParser(policy=policy.compat32).parsebytes(raw[: end.start()] if end else raw)


def _repair_boundary(msg: EmailMessage, raw: bytes, defects: list[str]) -> EmailMessage:
    """Re-read a multipart that lacks its boundary parameter with the boundary its body uses."""
    if msg.get_content_maintype() != "multipart" or msg.get_boundary():
        return msg
    split = _HEADER_BODY.search(raw)
    head, body = (raw[: split.start()], raw[split.end() :]) if split else (raw, b"")
    found = _boundary_in(body)
    if found is None:
        defects.append("multipart without boundary; body read as plain text")
        return msg
    head = _CONTENT_TYPE.sub(b"", head + b"\r\n").rstrip(b"\r\n")
    ctype = f'Content-Type: {msg.get_content_type()}; boundary="{found}"'.encode("ascii", "replace")
    defects.append(f"multipart without boundary; found boundary {found!r} in the body")
    return _parse_bytes(head + b"\r\n" + ctype + b"\r\n\r\n" + body)


def _boundary_in(body: bytes) -> str | None:
    counts: dict[bytes, int] = {}
    closing: set[bytes] = set()
    for m in _BOUNDARY_LINE.finditer(body):
        token = m.group(1).rstrip()
        counts[token] = counts.get(token, 0) + 1
        if m.group(2):
            closing.add(token)
    best = [t for t, n in counts.items() if n >= 2 or t in closing]
    if not best:
        return None
    token = max(best, key=lambda t: (t in closing, counts[t]))
    return token.decode("ascii")


def _collect_defects(msg: Message, defects: list[str]) -> None:
    for part in msg.walk():
        for defect in part.defects:
            text = f"{type(defect).__name__}: {defect}" if str(defect) else type(defect).__name__
            if text not in defects:
                defects.append(text)


def _leaves(msg: EmailMessage) -> Iterator[EmailMessage]:
    """The leaf parts, not descending into attached messages (those are attachments)."""
    if msg.is_multipart():
        for part in msg.iter_parts():
            assert isinstance(part, EmailMessage)
            if part.get_content_type() == "message/rfc822" or part.get_content_disposition() == "attachment":
                yield part
            else:
                yield from _leaves(part)
    else:
        yield msg


def _payload_bytes(part: Message) -> bytes:
    if part.is_multipart() or part.get_content_maintype() == "message":
        payload = part.get_payload()
        if isinstance(payload, list):
            return b"".join(p.as_bytes(policy=policy.default) for p in payload if isinstance(p, Message))
        if isinstance(payload, Message):
            return payload.as_bytes(policy=policy.default)
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


def _text(part: EmailMessage, defects: list[str]) -> str:
    text, note = charsets.decode(_payload_bytes(part), _charset(part))
    if note:
        defects.append(note)
    return text.replace("\r\n", "\n")


def _charset(part: Message) -> str | None:
    try:
        return part.get_content_charset()
    except (LookupError, ValueError):
        return None


def _filename(part: EmailMessage) -> str | None:
    try:
        name = part.get_filename()
    except (LookupError, ValueError):
        name = None
    if name is None and part.get_content_type() == "message/rfc822":
        return None
    return charsets.repair_header(name).strip() or None if name else None


def _default_name(ctype: str, index: int) -> str:
    if ctype == "message/rfc822":
        return f"message-{index}.eml"
    subtype = ctype.split("/", 1)[1] if "/" in ctype else "bin"
    return f"part-{index}.{re.sub(r'[^a-z0-9]+', '', subtype)[:8] or 'bin'}"


def _content_id(part: Message) -> str | None:
    value = part.get("Content-ID")
    if not value:
        return None
    return str(value).strip().strip("<>").strip() or None


def _header(msg: Message, name: str) -> str | None:
    """A header's decoded value; raw 8-bit values (common from some clients) are re-decoded."""
    return _decoded(name, charsets.raw_header(msg, name))


def _decoded(name: str, raw: str | None) -> str | None:
    """A raw header value decoded, its white space collapsed."""
    if raw is None:
        return None
    if "=?" not in raw and raw.isascii():
        value = raw
    elif any("\udc80" <= ch <= "\udcff" for ch in raw):
        value = charsets.repair_header(raw)
    else:
        value = str(charsets.parsed_header(name, raw))
    return " ".join(value.split())


def _sender(first: dict[str, str]) -> tuple[str, str]:
    for name in ("From", "Sender", "Reply-To", "Return-Path"):
        raw = first.get(name.lower())
        if not raw:
            continue
        if "=?" in raw and raw.isascii():
            display, address = parseaddr(" ".join(raw.split()))
            display = " ".join(charsets.encoded_words(display).split())
        else:
            display, address = parseaddr(_decoded(name, raw) or "")
        if address and "@" in address:
            return display, address
    return "", ""


def _addresses(msg: Message, name: str) -> list[str]:
    values = [charsets.repair_header(str(v)) for k, v in msg.raw_items() if k.lower() == name.lower()]
    return [a.lower() for _, a in getaddresses(values) if "@" in a]


def _received(first: dict[str, str], received_at: datetime | None) -> datetime:
    now = datetime.now(UTC)
    if received_at is not None:
        return received_at.astimezone(UTC) if received_at.tzinfo else received_at.replace(tzinfo=UTC)
    value = _decoded("Date", first.get("date"))
    if value:
        try:
            date = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return now
        if date.tzinfo is not None:
            return min(date.astimezone(UTC), now)
    return now


def _language(msg: Message, text: str) -> str | None:
    """The primary subtag of Content-Language; else "zh" for text written mostly in Chinese."""
    value = _header(msg, "Content-Language")
    if value:
        primary = value.split(",")[0].strip().split("-")[0].lower()
        if re.fullmatch(r"[a-z]{2,3}", primary):
            return primary
    han = len(_HAN.findall(text))
    letters = sum(ch.isalpha() for ch in text)
    return "zh" if han >= 2 and han * 5 >= letters else None
