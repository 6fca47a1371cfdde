"""The receiving SMTP server (aiosmtpd) for companies that forward their mail to the hub.

It runs on the hub's event loop. Only allow-listed recipients are accepted (an address, or
`@domain` for a whole domain), each mapped to an inbox. A mail is answered `250` only after
`deliver` returned, that is after it is stored (or quarantined); a failure to store answers
`451` so the sending server tries again. Mail to several of our addresses is delivered once,
naming every inbox it reached. Optional: AUTH (LOGIN/PLAIN, only over TLS when TLS is set
up), STARTTLS, and a size limit (`552` above it).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import ssl
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

log = logging.getLogger(__name__)
_aiosmtpd_log = logging.getLogger("mail.log")
_aiosmtpd_log.setLevel(logging.WARNING)
_aiosmtpd_log.addFilter(lambda record: "login_data is deprecated" not in str(record.msg))


@dataclass(frozen=True, slots=True)
class ReceiverSettings:
    """Listen address, size limit, recipient allow-list (address or `@domain` -> inbox), users."""

    recipients: Mapping[str, str]
    host: str = "127.0.0.1"
    port: int = 2525
    max_bytes: int = 35 * 1024 * 1024
    users: Mapping[str, str] = field(default_factory=dict)
    tls_cert: str | None = None
    tls_key: str | None = None
    require_tls: bool = False
    hostname: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One received mail: raw bytes (with `Return-Path` added), envelope, our recipients, inboxes,
    and when it arrived (pass it to `parse_message(received_at=...)`: a sender's Date may be old)."""

    raw: bytes
    mail_from: str
    recipients: tuple[str, ...]
    inboxes: tuple[str, ...]
    peer: str
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))


Deliver = Callable[[Delivery], Awaitable[Any]]


class SmtpReceiver:
    """An SMTP server on the running loop; `start` binds, `stop` closes (idempotent)."""

    def __init__(self, settings: ReceiverSettings, deliver: Deliver) -> None:
        self.settings = settings
        self.deliver = deliver
        self._recipients = {k.lower(): v for k, v in settings.recipients.items()}
        self._server: asyncio.Server | None = None
        self._tls = _tls_context(settings)
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    @property
    def port(self) -> int:
        """The bound port (useful when configured as 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the SMTP receiver is not running")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Bind and begin accepting connections."""
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self.settings.host, self.settings.port)
        log.info("SMTP receiver listening on %s:%s", self.settings.host, self.port)

    async def stop(self) -> None:
        """Stop accepting and close open sessions."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for protocol in list(self._sessions):
            if protocol.transport is not None:
                protocol.transport.close()
        async with asyncio.timeout(5):
            await server.wait_closed()

    def inbox_of(self, address: str) -> str | None:
        """The inbox an address maps to, or None if it is not ours."""
        address = address.lower().strip("<>")
        if address in self._recipients:
            return self._recipients[address]
        domain = address.rpartition("@")[2]
        return self._recipients.get("@" + domain) if domain else None

    def _protocol(self) -> SMTP:
        s = self.settings
        protocol = SMTP(
            _Handler(self),
            data_size_limit=s.max_bytes,
            enable_SMTPUTF8=True,
            hostname=s.hostname,
            tls_context=self._tls,
            require_starttls=s.require_tls and self._tls is not None,
            auth_required=bool(s.users),
            auth_require_tls=self._tls is not None,
            authenticator=self._authenticate if s.users else None,
        )
        self._sessions.add(protocol)
        return protocol

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = data.login.decode("utf-8", "replace")
        expected = self.settings.users.get(login)
        ok = expected is not None and hmac.compare_digest(expected.encode(), data.password)
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)


class _Handler:
    def __init__(self, receiver: SmtpReceiver) -> None:
        self.receiver = receiver

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.receiver.inbox_of(address) is None:
            return f"550 5.1.1 <{address}>: recipient not accepted here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        raw = content if isinstance(content, bytes) else content.encode("utf-8", "surrogateescape")
        mail_from = envelope.mail_from or ""
        recipients = tuple(dict.fromkeys(a.lower() for a in envelope.rcpt_tos))
        inboxes = tuple(dict.fromkeys(i for a in recipients if (i := self.receiver.inbox_of(a)) is not None))
        delivery = Delivery(
            raw=f"Return-Path: <{mail_from}>\r\n".encode("utf-8", "replace") + raw,
            mail_from=mail_from,
            recipients=recipients,
            inboxes=inboxes,
            peer=str(session.peer[0]) if session.peer else "",
        )
        try:
            await self.receiver.deliver(delivery)
        except Exception:
            log.exception("could not store mail from <%s>; asked the sender to retry", mail_from)
            return "451 4.3.0 could not store the message, try again later"
        return "250 2.0.0 stored"


def _tls_context(settings: ReceiverSettings) -> ssl.SSLContext | None:
    if not settings.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context
