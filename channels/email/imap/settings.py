"""The `[channels.imap]` table of an e-mail account: server, login, mailboxes, behaviour."""

from __future__ import annotations

import ipaddress
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from channels.email.imap.client import ImapServer
from channels.email.imap.poller import PollSettings
from channels.email.imap.sync import INLINE_LIMIT, AfterCommit, MailboxSettings
from channels.email.oauth import Tokens
from hub.config import Secret

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def is_loopback(host: str) -> bool:
    """Whether a host name or address stays on this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ImapSettings(BaseModel):
    """IMAP inbound of an e-mail account.

    Implicit TLS on 993 by default; `tls = false` is accepted for loopback servers only.
    Log in with `password` or, for XOAUTH2, a fixed `oauth_token` (both may be `env:VARIABLE`);
    without either, XOAUTH2 with tokens from the account's `[channels.oauth]` grant.
    `mailboxes` are pulled each on its own connection (e.g. `["INBOX", "Fax"]`).
    `after_commit` is `nothing`, `seen` (set `\\Seen`) or `move` (to `move_to`), done only
    after the mail is stored. `parse_workers` > 0 reads mail in worker processes: that many
    for the sync, and as many at a lower priority for the full parse of mail a large sync
    stored from its headers (MIME parsing is the slow part of a first sync); 0 reads mail in
    threads of the hub process. `inline_limit`: a pass with more new mails than this stores
    them from their headers first and fills in the rest in the background; smaller passes
    store each mail whole.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    port: int = Field(993, ge=1, le=65535)
    tls: bool = True
    username: str
    password: Secret | None = None
    oauth_token: Secret | None = None
    mailboxes: list[str] = Field(default_factory=lambda: ["INBOX"], min_length=1)
    idle: bool = True
    poll_seconds: float = Field(60, gt=0)
    full_sync_seconds: float = Field(600, gt=0)
    timeout_seconds: float = Field(30, gt=0)
    max_message_bytes: int = Field(35 * 1024 * 1024, gt=0)
    after_commit: Literal["nothing", "seen", "move"] = "nothing"
    move_to: str | None = None
    parse_workers: int = Field(0, ge=0, le=32)
    inline_limit: int = Field(INLINE_LIMIT, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not self.tls and not is_loopback(self.host):
            raise ValueError("tls = false is only allowed for a server on this machine (loopback)")
        if self.password is not None and self.oauth_token is not None:
            raise ValueError("give password or oauth_token, not both")
        if self.after_commit == "move" and not self.move_to:
            raise ValueError("after_commit = 'move' needs move_to")
        if len(set(self.mailboxes)) != len(self.mailboxes):
            raise ValueError("mailboxes are listed twice")
        return self

    @property
    def needs_tokens(self) -> bool:
        """Whether logging in takes tokens from the account's OAuth2 grant."""
        return self.password is None and self.oauth_token is None

    def server(self, tokens: Tokens | None = None) -> ImapServer:
        """Where and how to connect (`tokens` for XOAUTH2 when neither secret is given)."""
        return ImapServer(
            host=self.host,
            port=self.port,
            username=self.username,
            password=self.password.get_secret_value() if self.password else None,
            oauth_token=self.oauth_token.get_secret_value() if self.oauth_token else None,
            tokens=tokens if self.needs_tokens else None,
            tls=self.tls,
            timeout=self.timeout_seconds,
            fetch_timeout=max(120.0, self.timeout_seconds),
        )

    def mailbox_settings(self, account: str) -> list[MailboxSettings]:
        """One sync plan per mailbox."""
        return [
            MailboxSettings(
                account=account,
                mailbox=name,
                max_message_bytes=self.max_message_bytes,
                after_commit=AfterCommit(self.after_commit),
                move_to=self.move_to,
                inline_limit=self.inline_limit,
            )
            for name in self.mailboxes
        ]

    def poll_settings(self) -> PollSettings:
        """How the poller waits."""
        return PollSettings(
            idle=self.idle, poll_seconds=self.poll_seconds, full_sync_seconds=self.full_sync_seconds
        )
