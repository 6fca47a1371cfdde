"""The fax channel: one fax line at one provider (Telnyx, Sinch, or a fax-to-mail gateway).

Outbound: the reply and its attachments are rendered to one PDF with the cover page (F2)
in front, to a number checked and normalised to E.164 (F1), and handed to the provider;
its status events (sending, delivered with pages, failed with the reason) update the
message, and a delivered fax creates the confirm-receipt task (F3). Inbound: a received fax
is fetched at once (provider links expire), turned into PDF (TIFF is converted), counted,
and stored as a message on the sender's contact, once per provider fax id (F4). A document
that cannot be read is quarantined with its bytes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from aiohttp import web

from channels.base import Capabilities, ChannelContext, ChannelState, InboundSink
from channels.fax import notice, records
from channels.fax.documents import (
    DocumentError,
    FaxDocument,
    Part,
    build_document,
    page_count,
    pdf_to_tiff,
    tiff_to_pdf,
)
from channels.fax.numbers import e164
from channels.fax.providers.base import FaxEvent, FaxEventKind, FaxProvider, OutgoingFax
from channels.fax.providers.gateway import EmailGateway
from channels.fax.providers.sinch import SinchProvider
from channels.fax.providers.telnyx import TelnyxProvider
from channels.fax.settings import FaxSettings
from hub import early_statuses, quarantine
from hub.clock import utcnow
from hub.errors import ChannelError, ChannelUnavailable
from hub.ingest import Quarantined
from hub.models import (
    ChannelKind,
    DeliveryResult,
    Identity,
    IdentityKind,
    InboundAttachment,
    InboundMessage,
    OutboundMessage,
    OutboundStatus,
)

log = logging.getLogger(__name__)

STATUS = {
    FaxEventKind.SENDING: OutboundStatus.SENDING,
    FaxEventKind.DELIVERED: OutboundStatus.DELIVERED,
    FaxEventKind.FAILED: OutboundStatus.FAILED,
}
LANGUAGES = ("en", "zh")
SUBJECT = {"en": "Fax", "zh": "传真"}


def make_provider(settings: FaxSettings, context: ChannelContext) -> FaxProvider:
    """The configured provider's client."""
    if settings.provider == "telnyx" and settings.telnyx is not None:
        return TelnyxProvider(settings.telnyx, context.http)
    if settings.provider == "sinch" and settings.sinch is not None:
        return SinchProvider(settings.sinch, context.http)
    if settings.provider == "email" and settings.email is not None:
        return EmailGateway(settings.email, context.channels or {})
    raise ChannelError(f"fax provider {settings.provider!r} is not configured")


def as_pdf(data: bytes) -> tuple[bytes, int]:
    """A received document as PDF and its page count (blocking); DocumentError if unreadable or empty."""
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        data = tiff_to_pdf(data)
    return data, page_count(data)


class FaxChannel:
    """One fax line."""

    kind: ClassVar[str] = "fax"
    capabilities: ClassVar[Capabilities] = Capabilities(subject=True, attachments=True)

    def __init__(
        self,
        name: str,
        settings: FaxSettings,
        context: ChannelContext,
        provider: FaxProvider | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.context = context
        self.provider = provider or make_provider(settings, context)
        self.number = e164(settings.number, settings.default_region)
        self.prefix = f"/webhooks/fax/{name}"
        self._sink: InboundSink | None = None
        self._state = ChannelState.STOPPED

    async def start(self, sink: InboundSink) -> None:
        """Check the font, then accept events."""
        self.settings.font().check()
        self._sink = sink
        await self.provider.start(self.handle)
        self._state = ChannelState.CONNECTED

    def routes(self) -> Sequence[web.RouteDef]:
        """The provider's webhooks under `/webhooks/fax/<name>/`."""
        return self.provider.routes(self.prefix, self.handle)

    async def stop(self) -> None:
        """Refuse events from now on."""
        self._sink = None
        await self.provider.stop()
        self._state = ChannelState.STOPPED

    def state(self) -> ChannelState:
        """Connected unless the last send could not reach the provider."""
        return self._state

    # Outbound

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Render the fax with its cover page and hand it to the provider."""
        to = e164(message.recipient.address, self.settings.default_region)
        document = await self._document(message, to)
        tiff = await asyncio.to_thread(pdf_to_tiff, document.pdf) if self.provider.wants_tiff else None
        fax = OutgoingFax(
            to=to,
            sender=self.number,
            pdf=document.pdf,
            idempotency_key=message.idempotency_key,
            subject=message.subject,
            tiff=tiff,
        )
        callback = f"{self.context.public_url.rstrip('/')}{self.prefix}/{self.provider.callback_path()}"
        try:
            fax_id = await self.provider.send(fax, callback)
        except ChannelError:
            self._state = ChannelState.DEGRADED
            raise
        self._state = ChannelState.CONNECTED
        return DeliveryResult(OutboundStatus.SENT, provider_id=fax_id)

    async def _document(self, message: OutboundMessage, to: str) -> FaxDocument:
        """The rendered document: kept from an earlier attempt, or rendered now and kept."""
        blobs, inbox = self.context.blobs, self.context.inbox
        kept = message.meta.get("fax")
        if isinstance(kept, dict) and kept.get("document_sha256") and kept.get("pages"):
            pdf = await blobs.get(str(kept["document_sha256"]))
            return FaxDocument(pdf, int(kept["pages"]), "")
        parts = [Part(a.filename, a.content_type, await blobs.get(a.sha256)) for a in message.attachments]
        if inbox is None or self.context.templates is None:
            raise ChannelError(f"{self.name}: rendering a fax needs the inbox and the templates")
        who = await records.addressee(inbox.db, message.conversation_id, message.message_id)
        lang = who.language if who.language in LANGUAGES else self.settings.language
        cover = self._cover(message, to, who, lang, self._now())
        tz = who.timezone or self.settings.timezone
        document = await build_document(
            message.text,
            parts,
            cover,
            templates=self.context.templates,
            lang=lang,
            tz=tz,
            font=self.settings.font(),
            paper=self.settings.paper,
        )
        sha = await blobs.put(document.pdf)
        await records.keep_document(inbox.db, message.message_id, sha, document.pages)
        if self.settings.pre_notice and self.context.replies is not None:
            await notice.queue_notice(
                inbox.db,
                inbox.bus,
                self.context.replies,
                fax_conversation_id=message.conversation_id,
                fax_message_id=message.message_id,
                key=message.idempotency_key,
                cover={**cover, "pages": document.pages},
                lang=lang,
                now=self._now(),
            )
        return document

    def _cover(
        self, message: OutboundMessage, to: str, who: records.Addressee, lang: str, now: datetime
    ) -> dict[str, Any]:
        company = self.context.company
        return {
            "sender": {
                "name": self.settings.sender_name or who.author or (company.name if company else self.name),
                "company": company.name if company else None,
                "phone": (company.phone if company else "") or self.number,
                "fax": self.number,
                "email": (company.email if company else None) or None,
            },
            "recipient": {
                "name": who.contact_name or to,
                "company": None,
                "phone": who.phone,
                "fax": to,
            },
            "subject": message.subject or SUBJECT[lang],
            "date": now,
            "confidential": self.settings.confidential,
        }

    # Inbound and status events

    async def handle(self, event: FaxEvent) -> None:
        """Store one provider event; returns once it is stored (the provider may then be answered)."""
        if event.kind is FaxEventKind.RECEIVED:
            await self._received(event)
        elif event.kind in STATUS:
            await self._status(event)

    def _now(self) -> datetime:
        return self.context.inbox.clock() if self.context.inbox is not None else utcnow()

    def _inbox(self) -> Any:
        if self.context.inbox is None:
            raise ChannelError(f"{self.name}: the fax channel needs the inbox")
        return self.context.inbox

    async def _received(self, event: FaxEvent) -> None:
        inbox = self._inbox()
        if await records.received_before(inbox.db, self.name, event.fax_id):
            return
        if await quarantine.holds(inbox.db, self.name, event.fax_id):
            return
        if event.media is None:
            await self._quarantine(event.fax_id, "a received fax without a document", event.raw)
            return
        limit = self.settings.max_media_bytes
        data = await self.provider.fetch(event.media, limit)
        if len(data) > limit:
            reason = f"the fax document is over the limit of {limit} bytes (max_media_bytes)"
            await self._quarantine(event.fax_id, reason, event.raw)
            return
        try:
            pdf, pages = await asyncio.to_thread(as_pdf, data)
        except DocumentError as err:
            await self._quarantine(event.fax_id, f"unreadable fax document: {err}", data)
            return
        if self._sink is None:
            raise ChannelError(f"{self.name} is not running")
        try:
            result = await self._sink(self._message(event, pdf, pages))
        except Quarantined:
            return
        if not result.duplicate:
            await records.announce_received(
                inbox.db, inbox.bus, result.conversation_id, result.message_id, pages, self._now()
            )

    def _message(self, event: FaxEvent, pdf: bytes, pages: int) -> InboundMessage:
        sender = self._sender(event)
        shown = sender.address if sender.kind is IdentityKind.FAX else (event.station_id or "unknown")
        return InboundMessage(
            channel=ChannelKind.FAX,
            channel_account=self.name,
            external_id=event.fax_id,
            sender=sender,
            text=f"Fax from {shown}: {pages} page{'s' if pages != 1 else ''}.",
            subject=f"Fax from {shown}",
            received_at=min(event.occurred_at or self._now(), self._now()),
            attachments=(InboundAttachment(f"fax-{event.fax_id[:60]}.pdf", "application/pdf", pdf),),
            raw=event.raw or None,
            meta={
                "fax": {
                    "pages": pages,
                    "station_id": event.station_id,
                    "provider": self.provider.provider,
                    "fax_id": event.fax_id,
                    "to": event.local,
                    **event.details,
                }
            },
        )

    def _sender(self, event: FaxEvent) -> Identity:
        if event.remote:
            try:
                return Identity.of(IdentityKind.FAX, event.remote, self.settings.default_region)
            except ValueError:
                log.info("%s: fax %s came from %r, not a valid number", self.name, event.fax_id, event.remote)
        station = event.station_id or event.remote or "unknown"
        return Identity(IdentityKind.EXTERNAL, f"fax:{station}"[:320])

    async def _status(self, event: FaxEvent) -> None:
        status = STATUS[event.kind]
        error = (event.error or "the fax failed") if status is OutboundStatus.FAILED else None
        result = DeliveryResult(status, provider_id=event.fax_id, error=error)
        report = self.context.report_status
        known = report is not None and await report(self.name, event.fax_id, result)
        if not known:
            async with self._inbox().db.read() as conn:
                sending = await early_statuses.sending_now(conn, self.name)
            if sending:
                raise ChannelUnavailable(
                    f"status for fax {event.fax_id} before its id is recorded; try again"
                )
            reason = f"{event.kind.value} status for unknown fax id {event.fax_id}"
            await self._quarantine(f"{event.fax_id}:{event.kind.value}", reason, event.raw)
            return
        if status is OutboundStatus.DELIVERED:
            inbox = self._inbox()
            policies = self.context.policies
            await records.mark_delivered(
                inbox.db,
                inbox.bus,
                policies() if policies else None,
                account=self.name,
                fax_id=event.fax_id,
                pages=event.pages,
                now=self._now(),
            )

    async def _quarantine(self, ref: str, reason: str, payload: bytes) -> None:
        inbox = self._inbox()
        if await quarantine.holds(inbox.db, self.name, ref):
            return
        log.warning("%s: quarantining %s: %s", self.name, ref, reason)
        await quarantine.record(
            inbox.db,
            inbox.blobs,
            channel_account=self.name,
            external_id=ref,
            reason=reason,
            payload=payload,
            now=self._now(),
        )


def create(name: str, settings: FaxSettings, context: ChannelContext) -> FaxChannel:
    """Build a fax channel from its validated settings."""
    return FaxChannel(name, settings, context)


__all__ = ["FaxChannel", "FaxSettings", "create"]
