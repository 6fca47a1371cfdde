"""Bounces and read receipts: which of our outgoing mails they are about, and what happened.

Standard reports are `multipart/report` with a `message/delivery-status` part (RFC 3464) or a
`message/disposition-notification` part (RFC 8098). Non-standard bounces from system senders
are read by flufl.bounce. The outgoing mail is found by the Message-ID in the returned
original (or anywhere in the report, if the returned part is missing).
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email import policy
from email.message import Message

from flufl.bounce import all_failures

from channels.email.loops import is_system_sender
from hub.models import DeliveryResult, OutboundStatus

_OUR_ID = re.compile(rb"<c\d+\.m\d+\.[0-9a-z]+@[A-Za-z0-9.-]+>", re.IGNORECASE)
_MSGID = re.compile(r"<[^<>\s]+>")
_STATUS = re.compile(r"\b([245])\.\d{1,3}\.\d{1,3}\b")
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (?:status|fail)|returned mail|mail delivery|failure notice|could not be delivered"
    r"|unzustellbar|nicht zugestellt|退信|无法投递|投递失败|未送达",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class FailedRecipient:
    """One recipient a report is about: address, RFC 3463 status, action and the server's words."""

    address: str
    status: str | None
    action: str
    diagnostic: str | None = None

    @property
    def permanent(self) -> bool:
        """Whether this recipient failed for good (5.x.x or `Action: failed`)."""
        if self.status:
            return self.status.startswith("5")
        return self.action == "failed"

    def describe(self) -> str:
        """A line for agents: status and diagnostic."""
        return " ".join(x for x in (self.status, self.diagnostic) if x) or self.action


@dataclass(frozen=True, slots=True)
class Bounce:
    """A delivery report for one of our mails; `permanent` when any recipient failed for good."""

    original_message_id: str | None
    recipients: tuple[FailedRecipient, ...]

    @property
    def permanent(self) -> bool:
        """Whether the mail failed for good (report it); False for delays and transient notes."""
        return any(r.permanent for r in self.recipients)

    @property
    def reason(self) -> str:
        """Why, in one line naming each recipient."""
        return "; ".join(f"{r.address}: {r.describe()}" for r in self.recipients) or "bounced"

    def delivery_result(self) -> DeliveryResult:
        """The status to record on the outgoing message (FAILED with reason and recipients)."""
        failed = {r.address: r.describe() for r in self.recipients if r.permanent}
        return DeliveryResult(
            OutboundStatus.FAILED, self.original_message_id, error=f"bounced: {self.reason}", refused=failed
        )


@dataclass(frozen=True, slots=True)
class ReadReceipt:
    """A disposition notification: the recipient displayed (or deleted, ...) our mail."""

    original_message_id: str | None
    recipient: str | None
    disposition: str

    def delivery_result(self) -> DeliveryResult:
        """The status to record on the outgoing message (DELIVERED)."""
        return DeliveryResult(OutboundStatus.DELIVERED, self.original_message_id)


Report = Bounce | ReadReceipt


def classify(msg: Message, raw: bytes, sender: str) -> Report | None:
    """The report this mail is, or None for ordinary mail."""
    if msg.get_content_type() == "multipart/report":
        kind = str(msg.get_param("report-type") or "").lower()
        if kind == "disposition-notification":
            return _receipt(msg, raw)
        if kind == "delivery-status" or _part(msg, "message/delivery-status") is not None:
            bounce = _dsn(msg, raw)
            if bounce is not None:
                return bounce
    subject = str(msg.get("Subject") or "")
    if is_system_sender(sender) or _BOUNCE_SUBJECT.search(subject):
        return _nonstandard(raw)
    return None


def may_be_report(msg: Message, sender: str, subject: str | None = None) -> bool:
    """Whether `classify` could find a report in this mail (answered from its headers alone;
    `subject` decoded, else read from `msg`)."""
    if subject is None:
        subject = str(msg.get("Subject") or "")
    return (
        msg.get_content_type() == "multipart/report"
        or is_system_sender(sender)
        or bool(_BOUNCE_SUBJECT.search(subject))
    )


def _part(msg: Message, ctype: str) -> Message | None:
    for part in msg.walk():
        if part.get_content_type() == ctype:
            return part
    return None


def _blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    if isinstance(payload, Message):
        return [payload]
    if isinstance(payload, str):
        return [
            email.message_from_string(block, policy=policy.compat32)
            for block in re.split(r"\r?\n\s*\r?\n", payload.strip())
            if block.strip()
        ]
    return []


def _dsn(msg: Message, raw: bytes) -> Bounce | None:
    status_part = _part(msg, "message/delivery-status")
    if status_part is None:
        return None
    recipients: list[FailedRecipient] = []
    for block in _blocks(status_part):
        address = _address(block.get("Final-Recipient") or block.get("Original-Recipient"))
        if not address:
            continue
        action = str(block.get("Action") or "").strip().lower()
        status = _STATUS.search(str(block.get("Status") or ""))
        diagnostic = block.get("Diagnostic-Code")
        recipients.append(
            FailedRecipient(
                address,
                status.group(0) if status else None,
                action or "failed",
                _diagnostic(str(diagnostic)) if diagnostic else None,
            )
        )
    if not recipients:
        return None
    return Bounce(_original_id(msg, raw), tuple(recipients))


def _receipt(msg: Message, raw: bytes) -> ReadReceipt:
    part = _part(msg, "message/disposition-notification")
    fields: dict[str, str] = {}
    for block in _blocks(part) if part is not None else []:
        for key, value in block.items():
            fields.setdefault(key.lower(), " ".join(str(value).split()))
    original = _MSGID.search(fields.get("original-message-id", ""))
    return ReadReceipt(
        original.group(0) if original else _original_id(msg, raw),
        _address(fields.get("final-recipient") or fields.get("original-recipient")),
        fields.get("disposition", "displayed"),
    )


def _nonstandard(raw: bytes) -> Bounce | None:
    compat = email.message_from_bytes(raw, policy=policy.compat32)
    try:
        temporary, permanent = all_failures(compat)
    except Exception:  # noqa: BLE001 - a third-party detector must not stop the mailbox
        return None
    recipients = [FailedRecipient(_text(a), None, "failed") for a in sorted(permanent)]
    recipients += [FailedRecipient(_text(a), None, "delayed") for a in sorted(temporary - permanent)]
    if not recipients:
        return None
    found = _OUR_ID.search(raw)
    return Bounce(found.group(0).decode("ascii") if found else None, tuple(recipients))


def _original_id(msg: Message, raw: bytes) -> str | None:
    for ctype in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers"):
        part = _part(msg, ctype)
        if part is None:
            continue
        blocks = _blocks(part)
        for block in blocks:
            found = _MSGID.search(str(block.get("Message-ID") or ""))
            if found:
                return found.group(0)
    ours = _OUR_ID.search(raw)
    return ours.group(0).decode("ascii") if ours else None


def _address(value: object) -> str | None:
    if not value:
        return None
    text = str(value)
    text = text.split(";", 1)[1] if ";" in text else text
    text = text.strip().strip("<>").strip().lower()
    return text if "@" in text else None


def _diagnostic(value: str) -> str:
    value = " ".join(value.split())
    return value.split(";", 1)[1].strip() if ";" in value[:10] else value


def _text(address: bytes | str) -> str:
    return address.decode("utf-8", "replace").lower() if isinstance(address, bytes) else address.lower()
