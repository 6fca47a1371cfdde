"""A fax-to-mail / mail-to-fax gateway, through one of the hub's e-mail accounts.

Outbound: a mail with the PDF to the address the provider builds from the number
(`address = "{digits}@fax.example.net"`; `{e164}` keeps the `+`), sent over the e-mail
account's SMTP server. Inbound: the e-mail account hands over its fax-to-mail (mail from
its `fax_senders` or in its `fax_mailboxes`, see `EmailChannel.claim_fax`) that carries a
PDF or TIFF; other fax-tagged mail stays ordinary mail. A bounce of a fax mailed to the
gateway (its Message-ID begins `<fax.`) marks that fax failed with the bounce's reason.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING, ClassVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from channels.email import smtp_out
from channels.fax.providers.base import EventHandler, FaxEvent, FaxEventKind, Media, OutgoingFax
from hub.clock import utcnow
from hub.errors import ChannelError, DeliveryRejected
from hub.models import InboundMessage, OutboundStatus

if TYPE_CHECKING:
    from channels.base import Channel
    from channels.email.channel import EmailChannel

DOCUMENT_TYPES = ("application/pdf", "image/tiff", "image/tif")
FAX_ID_PREFIX = "<fax."
"""How the Message-ID of a fax mailed to the gateway begins (the rest derives from its idempotency key)."""
_NUMBER = re.compile(r"\+?\d[\d\s().-]{5,20}\d")


class GatewaySettings(BaseModel):
    """`[channels.email]` of a fax line: the e-mail account to go through and the gateway's address."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account: str = Field(min_length=1)
    address: str = Field(pattern=r"^[^@\s]*\{(digits|e164)\}[^@\s]*@[^@\s]+$")


def gateway_address(template: str, number: str) -> str:
    """The gateway's address for an E.164 number."""
    return template.replace("{digits}", number.lstrip("+")).replace("{e164}", number)


def remote_number(message: InboundMessage) -> str | None:
    """The sending fax number, from the sender's local part or else the subject, if either has one."""
    local = message.sender.address.partition("@")[0]
    for text in (local, message.subject or ""):
        found = _NUMBER.search(text)
        if found:
            digits = re.sub(r"[^\d+]", "", found.group())
            return digits if digits.startswith("+") else f"+{digits}"
    return None


def mail_event(message: InboundMessage) -> FaxEvent | None:
    """What a mail the e-mail account handed over means for faxes: a report (bounce, receipt) only
    ever fails a fax we mailed; any other mail is a received fax when it carries one."""
    from channels.email.channel import report_result

    return bounce_event(message) if report_result(message) is not None else fax_event(message)


def bounce_event(message: InboundMessage) -> FaxEvent | None:
    """A bounce of a fax we mailed to the gateway as a failed-fax event, or None when it is not one."""
    from channels.email.channel import report_result

    result = report_result(message)
    if result is None or result.status is not OutboundStatus.FAILED or result.provider_id is None:
        return None
    if not result.provider_id.startswith(FAX_ID_PREFIX):
        return None
    return FaxEvent(
        kind=FaxEventKind.FAILED,
        fax_id=result.provider_id,
        event_id=message.external_id,
        occurred_at=message.received_at,
        error=f"the fax gateway {result.error or 'bounced the fax'}",
        raw=message.raw or b"",
        details={"refused": dict(result.refused)},
    )


def fax_event(message: InboundMessage) -> FaxEvent | None:
    """A fax mail as a received-fax event, or None when it carries no PDF or TIFF."""
    for attachment in message.attachments:
        kind = attachment.content_type.split(";")[0].strip().lower()
        named = attachment.filename.lower().endswith((".pdf", ".tif", ".tiff"))
        if kind in DOCUMENT_TYPES or (kind == "application/octet-stream" and named):
            return FaxEvent(
                kind=FaxEventKind.RECEIVED,
                fax_id=message.external_id,
                occurred_at=message.received_at,
                remote=remote_number(message),
                media=Media(data=attachment.data, content_type=kind),
                raw=message.raw or b"",
                details={"mail_from": message.sender.address, "subject": message.subject},
            )
    return None


class EmailGateway:
    """Faxes as mail through one e-mail account of the hub."""

    provider: ClassVar[str] = "email"
    wants_tiff: ClassVar[bool] = False

    def __init__(self, settings: GatewaySettings, channels: Mapping[str, Channel]) -> None:
        self.settings = settings
        self.channels = channels
        self._handle: EventHandler | None = None

    def _account(self) -> EmailChannel:
        from channels.email.channel import EmailChannel

        found = self.channels.get(self.settings.account)
        if not isinstance(found, EmailChannel):
            raise ChannelError(f"fax gateway: {self.settings.account!r} is not an e-mail account of this hub")
        return found

    async def start(self, handle: EventHandler) -> None:
        """Take over the account's fax-to-mail."""
        self._handle = handle
        self._account().claim_fax(self._mail)

    async def stop(self) -> None:
        """Give the account's fax-to-mail back to the inbox as ordinary mail."""
        if self._handle is not None:
            self._handle = None
            self._account().claim_fax(None)

    async def _mail(self, message: InboundMessage) -> bool:
        event = mail_event(message)
        if event is None or self._handle is None:
            return False
        await self._handle(event)
        return True

    async def send(self, fax: OutgoingFax, callback_url: str) -> str:
        """Mail the PDF to the gateway's address for the number; the Message-ID is the fax id."""
        del callback_url
        account = self._account()
        smtp = account.settings.smtp
        if smtp is None:
            raise DeliveryRejected(f"fax gateway: e-mail account {self.settings.account} has no SMTP server")
        to = gateway_address(self.settings.address, fax.to)
        digest = hashlib.sha256(fax.idempotency_key.encode()).hexdigest()[:24]
        mail = EmailMessage()
        mail["From"] = account.settings.address
        mail["To"] = to
        mail["Subject"] = fax.subject or f"Fax to {fax.to}"
        mail["Date"] = format_datetime(utcnow())
        mail["Message-ID"] = f"{FAX_ID_PREFIX}{digest}@{account.settings.domain}>"
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(f"Fax to {fax.to}: the attached PDF.\n")
        mail.add_attachment(fax.pdf, maintype="application", subtype="pdf", filename="fax.pdf")
        result = await smtp_out.deliver(smtp.server(), mail, sender=account.settings.address, recipients=[to])
        if result.refused:
            raise DeliveryRejected(f"fax gateway refused {to}: {result.refused.get(to, 'refused')}")
        return str(result.provider_id)

    async def fetch(self, media: Media, limit: int) -> bytes:
        """Fax mail carries the document itself."""
        if media.data is None:
            raise ChannelError("fax mail without a document")
        return media.data

    def callback_path(self) -> str:
        """No callbacks: the gateway answers by mail."""
        return ""

    def routes(self, prefix: str, handle: EventHandler) -> Sequence[web.RouteDef]:
        """None."""
        return []
