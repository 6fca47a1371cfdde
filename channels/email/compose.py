"""Outgoing mail built from an `OutboundMessage`: headers, threading, signature, attachments.

Our Message-IDs encode the conversation and the message, `<c123.m456.<hmac>@host>`, signed
with the account's secret so a reply maps back without a lookup and cannot be forged. The
text part is always there (etiquette E5: every HTML mail carries a faithful text/plain
part), with the signature after a `-- ` line (E6; RFC 3676); an HTML part makes it
`multipart/alternative`; attachments wrap that in `multipart/mixed`. Automatic mail (E1's
acknowledgements) carries `Auto-Submitted: auto-replied` and `X-Auto-Response-Suppress: All`.
"""

from __future__ import annotations

import hashlib
import hmac
import html as html_lib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from channels.email.loops import AUTO_HEADERS
from hub.models import OutboundMessage

SMTP_POLICY = policy.SMTP.clone(max_line_length=78)
MAX_REFERENCES = 20
MAX_ID = 900
_OUR_ID = re.compile(r"^<c(\d{1,18})\.m(\d{1,18})\.([0-9a-f]{16})@[^<>\s]+>$")


@dataclass(frozen=True, slots=True)
class Sender:
    """Who our mail is from, and the domain and secret our Message-IDs are made with."""

    address: str
    domain: str
    secret: bytes
    name: str | None = None
    signature: str | None = None


@dataclass(frozen=True, slots=True)
class FileData:
    """An attachment's name, type and bytes, ready to go into a mail."""

    filename: str
    content_type: str
    data: bytes


def message_id(conversation_id: int, message_id: int, *, domain: str, secret: bytes) -> str:
    """Our Message-ID for message `message_id` of conversation `conversation_id`."""
    return f"<c{conversation_id}.m{message_id}.{_sign(conversation_id, message_id, secret)}@{domain}>"


def our_ids(ref: str, *, secret: bytes) -> tuple[int, int] | None:
    """`(conversation id, message id)` if `ref` is a Message-ID we made (signature checked)."""
    match = _OUR_ID.match(ref.strip())
    if match is None:
        return None
    conversation, message = int(match.group(1)), int(match.group(2))
    if not hmac.compare_digest(match.group(3), _sign(conversation, message, secret)):
        return None
    return conversation, message


def references(reply_refs: Sequence[str]) -> list[str]:
    """The References list for a reply: oldest first, at most MAX_REFERENCES, first kept."""
    refs = [r for r in dict.fromkeys(r.strip() for r in reply_refs) if r and len(r) <= MAX_ID]
    if len(refs) > MAX_REFERENCES:
        refs = refs[:1] + refs[-(MAX_REFERENCES - 1) :]
    return refs


def compose(
    out: OutboundMessage,
    sender: Sender,
    *,
    now: datetime,
    files: Sequence[FileData] = (),
) -> EmailMessage:
    """The mail for `out`, ready for `smtp_out.deliver` (serialise with SMTP_POLICY)."""
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = Address(sender.name or "", addr_spec=sender.address)
    msg["To"] = out.recipient.address
    msg["Subject"] = " ".join((out.subject or "").split())
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id(
        out.conversation_id, out.message_id, domain=sender.domain, secret=sender.secret
    )
    refs = references(out.reply_refs)
    if refs:
        msg["In-Reply-To"] = refs[-1]
        msg["References"] = " ".join(refs)
    if out.automatic:
        for key, value in AUTO_HEADERS.items():
            msg[key] = value
    text = _with_signature(out.text, sender.signature)
    msg.set_content(text, subtype="plain", charset="utf-8", cte=_cte(text))
    if out.html:
        msg.add_alternative(_html_with_signature(out.html, sender.signature), subtype="html", charset="utf-8")
    for f in files:
        maintype, _, subtype = f.content_type.partition("/")
        msg.add_attachment(
            f.data, maintype=maintype or "application", subtype=subtype or "octet-stream", filename=f.filename
        )
    return msg


def _sign(conversation: int, message: int, secret: bytes) -> str:
    return hmac.new(secret, f"c{conversation}.m{message}".encode(), hashlib.sha256).hexdigest()[:16]


def _with_signature(text: str, signature: str | None) -> str:
    body = text.rstrip("\n") + "\n"
    if signature and signature.strip():
        body += "\n-- \n" + signature.strip("\n") + "\n"
    return body


def _html_with_signature(html: str, signature: str | None) -> str:
    if not signature or not signature.strip():
        return html
    sig = html_lib.escape(signature.strip("\n")).replace("\n", "<br>\n")
    block = f'<div class="signature">-- <br>\n{sig}</div>'
    closing = re.search(r"</body\s*>", html, re.IGNORECASE)
    if closing:
        return html[: closing.start()] + block + html[closing.start() :]
    return html + "\n" + block


def _cte(text: str) -> str:
    plain = text.isascii() and all(len(line) < 990 for line in text.splitlines())
    return "7bit" if plain else "quoted-printable"
