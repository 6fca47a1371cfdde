"""The configuration of an e-mail account (`kind = "email"`): addresses, IMAP, SMTP in and out."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from channels.email.imap.settings import ImapSettings
from channels.email.oauth import OAuthSettings, Tokens
from channels.email.smtp_in import ReceiverSettings
from channels.email.smtp_out import SmtpServer
from hub.config import Secret


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SmtpSettings(_Table):
    """Outbound SMTP: `starttls` (587), `tls` (465), `auto` (STARTTLS when offered) or `none`;
    log in with `username` and `password`, or `username` and `oauth_token` (XOAUTH2), or
    `username` alone for XOAUTH2 with tokens from the account's `[channels.oauth]` grant."""

    host: str
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "auto", "none"] = "starttls"
    username: str | None = None
    password: Secret | None = None
    oauth_token: Secret | None = None
    timeout_seconds: float = Field(60, gt=0)

    @model_validator(mode="after")
    def _one_login(self) -> Self:
        if self.password is not None and self.oauth_token is not None:
            raise ValueError("give password or oauth_token, not both")
        return self

    @property
    def needs_tokens(self) -> bool:
        """Whether logging in takes tokens from the account's OAuth2 grant."""
        return self.username is not None and self.password is None and self.oauth_token is None

    def server(self, tokens: Tokens | None = None) -> SmtpServer:
        """The sending server (`tokens` for XOAUTH2 when a username comes without a secret)."""
        return SmtpServer(
            host=self.host,
            port=self.port,
            security=self.security,
            username=self.username,
            password=self.password.get_secret_value() if self.password else None,
            oauth_token=self.oauth_token.get_secret_value() if self.oauth_token else None,
            tokens=tokens if self.needs_tokens else None,
            timeout=self.timeout_seconds,
        )


class ReceiverConfig(_Table):
    """The receiving SMTP server: accepted recipients (an address or `@domain`, each mapped to
    an inbox label), listen address, size limit, optional AUTH users and STARTTLS."""

    recipients: dict[str, str] = Field(min_length=1)
    host: str = "127.0.0.1"
    port: int = Field(2525, ge=0, le=65535)
    max_bytes: int = Field(35 * 1024 * 1024, gt=0)
    users: dict[str, Secret] = Field(default_factory=dict)
    tls_cert: str | None = None
    tls_key: str | None = None
    require_tls: bool = False

    def receiver(self) -> ReceiverSettings:
        """The receiver's settings."""
        return ReceiverSettings(
            recipients=dict(self.recipients),
            host=self.host,
            port=self.port,
            max_bytes=self.max_bytes,
            users={k: v.get_secret_value() for k, v in self.users.items()},
            tls_cert=self.tls_cert,
            tls_key=self.tls_key,
            require_tls=self.require_tls,
        )


class EmailSettings(_Table):
    """An e-mail account.

    `address` is what replies come from; `aliases` are further addresses of ours (never
    answered automatically). `id_secret` signs our Message-IDs, so replies thread back and
    cannot be forged. Mail arrives over `imap`, over `receiver` (SMTP), or both; replies go
    out over `smtp`. `fax_senders` (glob patterns) and `fax_mailboxes` mark fax-to-mail.
    `oauth` is the OAuth2 refresh-token grant for XOAUTH2 logins that give no secret.
    """

    address: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    display_name: str | None = None
    aliases: list[str] = Field(default_factory=list)
    signature: str | None = None
    id_secret: Secret
    message_id_domain: str | None = None
    max_message_bytes: int = Field(35 * 1024 * 1024, gt=0)
    max_attachment_bytes: int = Field(25 * 1024 * 1024, gt=0)
    fax_senders: list[str] = Field(default_factory=list)
    fax_mailboxes: list[str] = Field(default_factory=list)
    imap: ImapSettings | None = None
    smtp: SmtpSettings | None = None
    receiver: ReceiverConfig | None = None
    oauth: OAuthSettings | None = None

    @model_validator(mode="after")
    def _receives(self) -> Self:
        if self.imap is None and self.receiver is None:
            raise ValueError("an e-mail account needs `imap`, `receiver` or both to receive mail")
        if self.oauth is None and self.imap is not None and self.imap.needs_tokens:
            raise ValueError("imap needs password, oauth_token, or the account's [oauth] grant")
        if self.oauth is None and self.smtp is not None and self.smtp.needs_tokens:
            raise ValueError(
                "smtp with a username needs password, oauth_token, or the account's [oauth] grant"
            )
        return self

    @property
    def domain(self) -> str:
        """The domain our Message-IDs carry."""
        return self.message_id_domain or self.address.rpartition("@")[2]

    def own_addresses(self) -> frozenset[str]:
        """Every address of ours, lower-cased."""
        found = {self.address, *self.aliases}
        if self.receiver is not None:
            found |= {a for a in self.receiver.recipients if not a.startswith("@")}
        return frozenset(a.lower() for a in found)
