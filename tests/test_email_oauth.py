"""XOAUTH2 with tokens from a refresh-token grant: a real dovecot checking tokens with the
provider (its `oauth2` passdb), aiosmtpd asking the same provider, and a fake provider on
127.0.0.1 that speaks the OAuth2 token and introspection wire formats."""

from __future__ import annotations

import base64
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
from sqlalchemy import func, select

import channels as registry
from channels.base import ChannelContext
from channels.email.channel import EmailChannel
from channels.email.compose import Sender, compose
from channels.email.imap.client import ImapServer, ImapSession
from channels.email.oauth import OAuthSettings, TokenSource
from channels.email.smtp_out import SmtpServer, deliver
from hub.errors import ChannelAuthError
from hub.services import Services
from hub.store import schema
from tests.dovecot import Dovecot, dovecot_available
from tests.oauth_server import FakeOAuth
from tests.test_email_imap import mail, until
from tests.test_email_smtp import NOW, outbound

USER = "support@shop.example"
CLIENT_SECRET = "client-s3cret-value"
REFRESH = "refresh-t0ken-value"


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def provider() -> AsyncIterator[FakeOAuth]:
    fake = FakeOAuth("hub-client", CLIENT_SECRET, REFRESH, USER)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def oauth_dovecot(provider: FakeOAuth) -> Iterator[Dovecot]:
    from tests.conftest import unavailable

    if not dovecot_available():
        unavailable("dovecot (Debian package dovecot-imapd)")
    root = Path(tempfile.mkdtemp(prefix="omnihub-dovecot-"))
    root.chmod(0o711)
    server = Dovecot(root, oauth_introspection=f"{provider.url}/introspect")
    server.start()
    try:
        yield server
    finally:
        server.stop(kill=True)
        shutil.rmtree(root, ignore_errors=True)


def grant(provider: FakeOAuth, **changes: Any) -> OAuthSettings:
    data = {
        "token_url": f"{provider.url}/token",
        "client_id": "hub-client",
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH,
        **changes,
    }
    return OAuthSettings.model_validate(data)


async def test_imap_login_takes_tokens_from_the_grant_and_renews_them(
    provider: FakeOAuth, oauth_dovecot: Dovecot
) -> None:
    clock = Clock()
    async with aiohttp.ClientSession() as http:
        tokens = TokenSource(grant(provider), lambda: http, clock)
        server = ImapServer("127.0.0.1", oauth_dovecot.port, USER, tokens=tokens, tls=False, timeout=5)

        async def log_in() -> int:
            session = await ImapSession.open(server)
            try:
                return (await session.select("INBOX")).exists
            finally:
                await session.close()

        assert await log_in() == 0
        assert await log_in() == 0
        assert len(provider.grants) == 1  # the token is cached while it lasts
        assert provider.grants[0] == {
            "grant_type": "refresh_token",
            "refresh_token": REFRESH,
            "client_id": "hub-client",
            "client_secret": CLIENT_SECRET,
        }

        provider.revoke("access-1")
        assert await log_in() == 0  # refused once, renewed, accepted
        assert len(provider.grants) == 2
        assert provider.introspected[-2:] == ["access-1", "access-2"]

        clock.now += 3600 - 59  # within a minute of expiry: renewed before anyone is refused
        asked = len(provider.introspected)
        assert await log_in() == 0
        assert len(provider.grants) == 3 and provider.introspected[asked:] == ["access-3"]

        provider.refresh_token = "replaced-by-the-user"
        provider.revoke("access-3")
        with pytest.raises(ChannelAuthError, match="invalid_grant") as refused:
            await log_in()
        assert CLIENT_SECRET not in str(refused.value) and REFRESH not in str(refused.value)


async def test_a_rotated_refresh_token_is_used_from_then_on(provider: FakeOAuth) -> None:
    provider.rotate = True
    clock = Clock()
    async with aiohttp.ClientSession() as http:
        tokens = TokenSource(grant(provider, refresh_margin_seconds=0), lambda: http, clock)
        assert await tokens.token() == "access-1"
        clock.now += 3600
        assert await tokens.token() == "access-2"
    assert [g["refresh_token"] for g in provider.grants] == [REFRESH, "refresh-access-1"]


class OAuthSmtp:
    """An SMTP server that accepts XOAUTH2 with the provider's live tokens."""

    def __init__(self, provider: FakeOAuth) -> None:
        self.provider = provider
        self.mails: list[Envelope] = []
        self.tried: list[str] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.mails.append(envelope)
        return "250 2.0.0 OK"

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        fields = base64.b64decode(args[1]).decode().split("\x01")
        token = fields[1].removeprefix("auth=Bearer ")
        self.tried.append(token)
        ok = fields[0] == f"user={USER}" and token in self.provider.live
        return AuthResult(success=ok, handled=False, message=None if ok else "535 5.7.8 token expired")


async def test_smtp_sending_renews_a_refused_token_once(provider: FakeOAuth) -> None:
    import asyncio

    smtp = OAuthSmtp(provider)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(lambda: SMTP(smtp, auth_require_tls=False), "127.0.0.1", 0)
    port = int(listener.sockets[0].getsockname()[1])
    sender = Sender(address=USER, domain="shop.example", secret=b"ids")
    try:
        async with aiohttp.ClientSession() as http:
            tokens = TokenSource(grant(provider), lambda: http, Clock())
            server = SmtpServer("127.0.0.1", port, "none", username=USER, tokens=tokens, timeout=5)

            async def send() -> None:
                await deliver(
                    server, compose(outbound(), sender, now=NOW), sender=USER, recipients=["a@b.example"]
                )

            await send()
            provider.revoke("access-1")
            await send()
            assert smtp.tried == ["access-1", "access-1", "access-2"] and len(smtp.mails) == 2
            provider.refresh_token = "gone"
            provider.revoke("access-2")
            with pytest.raises(ChannelAuthError, match="invalid_grant"):
                await send()
            assert len(smtp.mails) == 2
    finally:
        listener.close()
        await listener.wait_closed()


async def test_an_account_with_an_oauth_grant_pulls_its_mailbox(
    services: Services,
    make_config: Any,
    provider: FakeOAuth,
    oauth_dovecot: Dovecot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMNIHUB_TEST_REFRESH", REFRESH)
    account = {
        "name": "support",
        "kind": "email",
        "address": USER,
        "id_secret": "s3cret-for-ids",
        "imap": {"host": "127.0.0.1", "port": oauth_dovecot.port, "tls": False, "username": USER},
        "smtp": {"host": "127.0.0.1", "port": 1, "security": "none", "username": USER},
        "oauth": {
            "token_url": f"{provider.url}/token",
            "client_id": "hub-client",
            "client_secret": CLIENT_SECRET,
            "refresh_token": "env:OMNIHUB_TEST_REFRESH",
        },
    }
    config = make_config(channels=[account])
    [configured] = registry.configured(config)
    oauth_dovecot.deliver(USER, [mail(1), mail(2)])
    async with aiohttp.ClientSession() as http:
        context = ChannelContext(
            http=http,
            blobs=services.blobs,
            public_url="http://127.0.0.1",
            data_dir=config.data_dir,
            inbox=services.inbox,
        )
        channel = registry.build(configured, context)
        assert isinstance(channel, EmailChannel)
        services.inbox.start()
        await channel.start(services.inbox.ingest)
        try:

            async def both() -> bool:
                async with services.db.read() as conn:
                    count = (
                        await conn.execute(select(func.count()).select_from(schema.messages))
                    ).scalar_one()
                return int(count) == 2

            await until(both)
        finally:
            await channel.stop()
    assert len(provider.grants) == 1  # the login to verify and the mailbox's own shared one token
    assert set(provider.introspected) == {"access-1"}
