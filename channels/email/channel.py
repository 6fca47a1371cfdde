"""The e-mail channel: one account's IMAP and SMTP inbound and SMTP outbound.

Inbound mail from either path is parsed with `parse.parse_message`. Bounces and read
receipts about our own mail update that outgoing message's status instead of opening a
conversation; everything else goes to the inbox. Mail that cannot be parsed is quarantined
with its bytes. IMAP mail is stored batch by batch together with the mailbox cursor
(`imap.sync`); SMTP mail is acknowledged `250` only once it is stored.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from typing import Any, ClassVar

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from channels.base import Capabilities, ChannelContext, ChannelState, InboundSink
from channels.email import compose, pool, smtp_out
from channels.email.completer import Completer
from channels.email.compose import FileData, Sender
from channels.email.imap.client import ImapSession
from channels.email.imap.poller import ImapPoller
from channels.email.imap.sync import parse_source_ref
from channels.email.loops import CircuitBreaker
from channels.email.oauth import TokenSource
from channels.email.parse import MailRules, ParseLimits, parse_message, triage
from channels.email.settings import EmailSettings
from channels.email.smtp_in import Delivery, SmtpReceiver
from hub import quarantine
from hub.clock import utcnow
from hub.errors import ChannelError, Conflict, DeliveryRejected
from hub.ingest import Quarantined
from hub.models import DeliveryResult, InboundMessage, IngestResult, OutboundMessage, OutboundStatus
from hub.quarantine import QuarantineEntry, Reprocessed

log = logging.getLogger(__name__)

FaxMail = Callable[[InboundMessage], Awaitable[bool]]
"""A fax line's handling of fax-to-mail: True if it took the mail (it is then not stored as mail)."""


def parse_for(
    raw: bytes,
    mailbox: str | None,
    *,
    account: str,
    limits: ParseLimits,
    rules: MailRules,
    received_at: datetime | None = None,
) -> InboundMessage:
    """Parse one mail of an account (a module-level function, so worker processes can run it)."""
    return parse_message(
        raw, account=account, mailbox=mailbox, limits=limits, rules=rules, received_at=received_at
    ).message


def triage_for(
    raw: bytes,
    mailbox: str | None,
    *,
    account: str,
    limits: ParseLimits,
    rules: MailRules,
    received_at: datetime | None = None,
) -> InboundMessage:
    """Read one mail from its headers, its content to follow; mail that must be read whole
    before it is stored (reports, fax-to-mail) is parsed in full."""
    return triage(
        raw, account=account, mailbox=mailbox, limits=limits, rules=rules, received_at=received_at
    ) or parse_for(raw, mailbox, account=account, limits=limits, rules=rules, received_at=received_at)


def report_result(message: InboundMessage) -> DeliveryResult | None:
    """The status a bounce or read receipt reports about one of our mails, if it is one."""
    report = message.meta.get("report")
    if not isinstance(report, dict) or not report.get("original_message_id"):
        return None
    ref = str(report["original_message_id"])
    if report.get("kind") == "bounce":
        recipients = {str(k): str(v) for k, v in (report.get("recipients") or {}).items()}
        return DeliveryResult(
            OutboundStatus.FAILED,
            ref,
            error=f"bounced: {report.get('reason') or 'bounced'}",
            refused=recipients,
        )
    if report.get("kind") == "read_receipt":
        return DeliveryResult(OutboundStatus.DELIVERED, ref)
    return None


class EmailChannel:
    """One e-mail account (see `EmailSettings`)."""

    kind: ClassVar[str] = "email"
    capabilities: ClassVar[Capabilities] = Capabilities(
        subject=True, html=True, attachments=True, max_body=None, threading=True
    )

    def __init__(self, name: str, settings: EmailSettings, context: ChannelContext) -> None:
        self.name = name
        self.settings = settings
        self.context = context
        self.rules = MailRules(
            own_addresses=settings.own_addresses(),
            fax_senders=tuple(settings.fax_senders),
            fax_mailboxes=frozenset(settings.fax_mailboxes),
        )
        self.limits = ParseLimits(
            max_raw_bytes=settings.max_message_bytes, max_attachment_bytes=settings.max_attachment_bytes
        )
        self.parse = functools.partial(parse_for, account=name, limits=self.limits, rules=self.rules)
        self.triage = functools.partial(triage_for, account=name, limits=self.limits, rules=self.rules)
        self.sender = Sender(
            address=settings.address,
            domain=settings.domain,
            secret=settings.id_secret.get_secret_value().encode(),
            name=settings.display_name,
            signature=settings.signature,
        )
        self.breaker = CircuitBreaker()
        self.tokens = TokenSource(settings.oauth, lambda: context.http) if settings.oauth else None
        self.poller: ImapPoller | None = None
        self.completer: Completer | None = None
        self.receiver: SmtpReceiver | None = None
        self._sink: InboundSink | None = None
        self._pools: list[ProcessPoolExecutor] = []
        self._started = False
        self._fax: FaxMail | None = None

    async def start(self, sink: InboundSink) -> None:
        """Verify the IMAP login and start pulling; start the SMTP receiver."""
        self._sink = sink
        s = self.settings
        if s.imap is not None:
            inbox = self.context.inbox
            if inbox is None:
                raise ChannelError(f"{self.name}: IMAP needs the inbox in the channel context")
            if s.imap.parse_workers and not self._pools:
                self._pools = [
                    pool.workers(s.imap.parse_workers),
                    pool.workers(s.imap.parse_workers, background=True),
                ]
            readers, fillers = self._pools if self._pools else (None, None)
            self.completer = Completer(inbox, self.name, self.parse, fillers)
            self.poller = ImapPoller(
                inbox,
                s.imap.server(self.tokens),
                s.imap.mailbox_settings(self.name),
                self.parse,
                s.imap.poll_settings(),
                divert=self._divert,
                executor=readers,
                triage=self.triage,
                on_deferred=self.completer.wake,
            )
            await self.poller.verify()
            self.completer.start()
            self.poller.start()
        if s.receiver is not None:
            self.receiver = SmtpReceiver(s.receiver.receiver(), self._received)
            await self.receiver.start()
        self._started = True

    def routes(self) -> Sequence[web.RouteDef]:
        """None: mail is pulled (IMAP) or received on its own port (SMTP)."""
        return []

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Compose and send one mail; automatic mail stops at the per-address circuit breaker."""
        smtp = self.settings.smtp
        if smtp is None:
            raise DeliveryRejected(f"{self.name}: no SMTP server is configured for sending")
        now = utcnow()
        to = message.recipient.address
        if message.automatic and not self.breaker.allow(to, now):
            for tripped in self.breaker.tripped():
                log.error(
                    "%s: too much automatic mail to %s; stopped sending it automatically", self.name, tripped
                )
            raise DeliveryRejected(f"automatic mail to {to} is stopped by the circuit breaker")
        files = [
            FileData(a.filename, a.content_type, await self.context.blobs.get(a.sha256))
            for a in message.attachments
        ]
        mail = compose.compose(message, self.sender, now=now, files=files)
        return await smtp_out.deliver(
            smtp.server(self.tokens), mail, sender=self.settings.address, recipients=[to]
        )

    async def stop(self) -> None:
        """Stop pulling and receiving; idempotent."""
        self._started = False
        poller, self.poller = self.poller, None
        completer, self.completer = self.completer, None
        receiver, self.receiver = self.receiver, None
        if poller is not None:
            await poller.stop()
        if completer is not None:
            await completer.stop()
        if receiver is not None:
            await receiver.stop()
        pools, self._pools = self._pools, []
        for workers in pools:
            await asyncio.to_thread(workers.shutdown, wait=True, cancel_futures=True)

    def state(self) -> ChannelState:
        """The IMAP side's health (SMTP receiving is up while the channel runs)."""
        if not self._started:
            return ChannelState.STOPPED
        if self.poller is not None:
            return self.poller.state()
        return ChannelState.CONNECTED

    async def reprocess(self, quarantine_id: int, *, agent_id: int | None = None) -> Reprocessed:
        """Store a quarantined mail of this account after all, exactly once: oversized IMAP mail
        is fetched from the server whatever its size, other mail is parsed again from its kept
        bytes; a bounce or read receipt is recorded on our outgoing mail instead. Raises
        ChannelError saying why if it still cannot be read (it stays in quarantine)."""
        inbox = self.context.inbox
        if inbox is None:
            raise ChannelError(f"{self.name}: re-processing needs the inbox")
        item = await quarantine.entry(inbox.db, quarantine_id)
        if item.channel_account != self.name:
            raise ChannelError(f"quarantine entry {quarantine_id} belongs to {item.channel_account}")
        if item.resolved_at is not None:
            raise Conflict(
                f"quarantine entry {quarantine_id} is already resolved: {item.resolution or 'resolved'}"
            )
        message = await self._read_again(item)
        now = utcnow()
        if await self._report(message):
            async with inbox.db.write() as conn:
                event = await quarantine.settle(
                    conn,
                    quarantine_id,
                    now,
                    resolution="re-processed: a delivery report, recorded on our mail",
                    agent_id=agent_id,
                )
            inbox.bus.publish([event])
            return Reprocessed(await quarantine.entry(inbox.db, quarantine_id), None, None, False)
        events: list[dict[str, Any]] = []

        async def resolve(conn: AsyncConnection, results: list[IngestResult]) -> None:
            [stored] = results
            events.clear()
            what = "already stored as" if stored.duplicate else "stored as"
            events.append(
                await quarantine.settle(
                    conn,
                    quarantine_id,
                    now,
                    resolution=f"re-processed: {what} message {stored.message_id}",
                    agent_id=agent_id,
                    message_id=stored.message_id,
                    conversation_id=stored.conversation_id,
                )
            )

        [result] = await inbox.ingest_many([message], in_transaction=resolve)
        inbox.bus.publish(events)
        entry = await quarantine.entry(inbox.db, quarantine_id)
        return Reprocessed(entry, result.message_id, result.conversation_id, result.duplicate)

    async def _read_again(self, item: QuarantineEntry) -> InboundMessage:
        """Parse a quarantined mail again (fetching oversized IMAP mail from the server)."""
        where = parse_source_ref(item.external_id or "")
        mailbox: str | None = where[0] if where else None
        if where is not None and item.reason.startswith("oversized") and self.settings.imap is not None:
            raw = await self._fetch_from_server(*where)
        elif item.raw_sha256 is not None:
            raw = await self.context.blobs.get(item.raw_sha256)
        else:
            raise ChannelError(f"quarantine entry {item.id} kept no bytes to re-process")
        limits = ParseLimits(max_raw_bytes=max(len(raw), self.limits.max_raw_bytes))
        try:
            message = await asyncio.to_thread(
                parse_for, raw, mailbox, account=self.name, limits=limits, rules=self.rules
            )
        except Exception as err:
            raise ChannelError(f"still unreadable: {type(err).__name__}: {err}") from err
        if where is not None:
            imap = {"mailbox": where[0], "uidvalidity": where[1], "uid": where[2]}
            message = dataclasses.replace(message, meta={**message.meta, "imap": imap})
        return message

    async def _fetch_from_server(self, mailbox: str, uidvalidity: int, uid: int) -> bytes:
        assert self.settings.imap is not None
        session = await ImapSession.open(self.settings.imap.server(self.tokens))
        try:
            status = await session.select(mailbox)
            if status.uidvalidity != uidvalidity:
                raise ChannelError(f"{mailbox} was renumbered on the server; UID {uid} is no longer valid")
            bodies = await session.bodies([uid])
        finally:
            await session.close()
        if uid not in bodies:
            raise ChannelError(f"UID {uid} is no longer in {mailbox}")
        return bodies[uid]

    def claim_fax(self, handler: FaxMail | None) -> None:
        """Hand this account's fax-to-mail (from `fax_senders`, in `fax_mailboxes`) to a fax line;
        None gives it back to the inbox as ordinary mail tagged `fax`."""
        self._fax = handler

    async def _divert(self, message: InboundMessage) -> bool:
        """Mail not for the inbox: reports on our own mail, and fax-to-mail (and bounces of faxes
        mailed to the gateway) for a fax line that claimed the account."""
        if await self._report(message):
            return True
        if self._fax is not None and ("fax" in message.meta.get("tags", ()) or report_result(message)):
            return await self._fax(message)
        return False

    async def _report(self, message: InboundMessage) -> bool:
        """Record a bounce or read receipt on our outgoing mail; False if it is not about one."""
        result = report_result(message)
        if result is None or result.provider_id is None or self.context.report_status is None:
            return False
        if compose.our_ids(result.provider_id, secret=self.sender.secret) is None:
            return False
        return await self.context.report_status(self.name, result.provider_id, result)

    async def _received(self, delivery: Delivery) -> Any:
        """Store one mail from the SMTP receiver (parsed off the loop); quarantine what cannot be read."""
        try:
            message = await asyncio.to_thread(
                functools.partial(self.parse, received_at=delivery.received_at), delivery.raw, None
            )
        except Exception as err:
            reason = f"unparseable: {type(err).__name__}: {err}".splitlines()[0]
            log.warning("%s: quarantining mail from <%s>: %s", self.name, delivery.mail_from, reason)
            if self.context.inbox is None:
                raise
            return await quarantine.record(
                self.context.inbox.db,
                self.context.blobs,
                channel_account=self.name,
                external_id=f"smtp:{delivery.mail_from}",
                reason=reason,
                payload=delivery.raw,
                now=utcnow(),
            )
        meta = {
            **message.meta,
            "smtp": {"mail_from": delivery.mail_from, "rcpt_to": list(delivery.recipients)},
        }
        if delivery.inboxes:
            meta["inboxes"] = list(delivery.inboxes)
        message = dataclasses.replace(message, meta=meta)
        if await self._divert(message):
            return None
        if self._sink is None:
            raise ChannelError(f"{self.name} is not started")
        try:
            return await self._sink(message)
        except Quarantined as err:
            return err.quarantine_id


def create(name: str, settings: EmailSettings, context: ChannelContext) -> EmailChannel:
    """Build an e-mail channel from its validated settings."""
    return EmailChannel(name, settings, context)
