"""Sending mail over SMTP with aiosmtplib, and what each kind of failure means to the outbox.

Connection errors, timeouts and 4xx replies raise `ChannelUnavailable` (the outbox retries);
5xx replies raise `DeliveryRejected` (permanent, shown to the agent); refused credentials
raise `ChannelAuthError`. When only some recipients are refused the mail is sent and the
result lists the refused ones with the server's reply.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Literal

import aiosmtplib

from channels.email.compose import SMTP_POLICY
from channels.email.oauth import StaticToken, Tokens
from hub.errors import ChannelAuthError, ChannelUnavailable, DeliveryRejected
from hub.models import DeliveryResult, OutboundStatus

Security = Literal["starttls", "tls", "auto", "none"]


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """Where and how to send: `starttls` (587), `tls` (465), `auto` (STARTTLS if offered), `none`.

    Log in with `username` and `password`, or `username` and an OAuth2 access token for XOAUTH2:
    `oauth_token` (fixed) or `tokens` (renewed, and renewed once more if the server refuses it).
    """

    host: str
    port: int = 587
    security: Security = "starttls"
    username: str | None = None
    password: str | None = None
    timeout: float = 60
    local_hostname: str | None = None
    cafile: str | None = None
    oauth_token: str | None = None
    tokens: Tokens | None = None


async def deliver(
    server: SmtpServer, msg: EmailMessage, *, sender: str, recipients: Sequence[str]
) -> DeliveryResult:
    """Send `msg` from envelope `sender` to `recipients`; the result's provider id is its Message-ID."""
    data = await asyncio.to_thread(msg.as_bytes, policy=SMTP_POLICY)
    tokens = server.tokens or (StaticToken(server.oauth_token) if server.oauth_token else None)
    for attempt in range(2):
        handed: list[str] = []
        try:
            refused, _reply = await aiosmtplib.send(
                data,
                sender=sender,
                recipients=list(recipients),
                hostname=server.host,
                port=server.port,
                username=server.username,
                password=None if tokens else server.password,
                oauth_token_generator=_generator(tokens, handed) if tokens else None,
                timeout=server.timeout,
                use_tls=server.security == "tls",
                start_tls={"starttls": True, "tls": False, "none": False, "auto": None}[server.security],
                local_hostname=server.local_hostname,
                tls_context=_context(server),
            )
        except aiosmtplib.SMTPAuthenticationError as err:
            if tokens is not None and handed and not attempt and not isinstance(tokens, StaticToken):
                tokens.refused(handed[-1])
                continue
            raise ChannelAuthError(f"SMTP login refused: {err.code} {err.message}") from err
        except aiosmtplib.SMTPRecipientsRefused as err:
            raise _all_refused(err) from err
        except aiosmtplib.SMTPResponseException as err:
            raise _by_code(err.code, f"SMTP server answered {err.code} {err.message}") from err
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as err:
            raise ChannelUnavailable(
                f"SMTP {server.host}:{server.port}: {type(err).__name__}: {err}"
            ) from err
        break
    return DeliveryResult(
        OutboundStatus.SENT,
        provider_id=str(msg["Message-ID"]),
        refused={addr: f"{r.code} {r.message}" for addr, r in refused.items()},
    )


def _generator(tokens: Tokens, handed: list[str]) -> Callable[[], Awaitable[str]]:
    """aiosmtplib's token callback, noting the token it handed out."""

    async def current() -> str:
        token = await tokens.token()
        handed.append(token)
        return token

    return current


def _context(server: SmtpServer) -> ssl.SSLContext | None:
    if server.cafile is None or server.security == "none":
        return None
    return ssl.create_default_context(cafile=server.cafile)


def _all_refused(err: aiosmtplib.SMTPRecipientsRefused) -> Exception:
    details = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in err.recipients)
    if err.recipients and all(r.code >= 500 for r in err.recipients):
        return DeliveryRejected(f"every recipient refused: {details}")
    return ChannelUnavailable(f"recipients refused for now: {details}")


def _by_code(code: int, text: str) -> Exception:
    return DeliveryRejected(text) if 500 <= code < 600 else ChannelUnavailable(text)
