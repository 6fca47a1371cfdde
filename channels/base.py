"""The protocol every channel implements, and what the hub hands to channels."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from aiohttp import ClientSession, web

from hub.models import DeliveryResult, InboundMessage, IngestResult, OutboundMessage

if TYPE_CHECKING:
    from hub.calls import CallDesk
    from hub.config import CompanySection
    from hub.inbox import Inbox
    from hub.replies import TemplateReplies
    from hub.sla.policy import PolicyBook
    from hub.store import BlobStore
    from hub.templates import Templates
    from hub.voicemail import VoicemailDesk


class ChannelState(enum.StrEnum):
    """Where a channel stands, as the API and the runtime see it."""

    STOPPED = "stopped"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DEGRADED = "degraded"
    BAD_CREDENTIALS = "bad_credentials"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a channel can carry, so the composer and the checks know what to offer.

    `max_body` is in characters (None: no practical limit); `threading` says whether the
    channel carries reply references (e-mail) rather than threading by contact.
    """

    subject: bool = False
    html: bool = False
    attachments: bool = False
    max_body: int | None = None
    threading: bool = False


InboundSink = Callable[[InboundMessage], Awaitable[IngestResult]]
"""What a channel calls with every message it receives; returns once it is stored."""


@dataclass(frozen=True, slots=True)
class ChannelContext:
    """The shared resources a channel may use; the runtime owns and closes them.

    `http` is the process's one `aiohttp.ClientSession`; `public_url` is the address
    providers call back on (behind a proxy, the proxy's); `blobs` stores media. `inbox` is
    for pull channels that commit their own cursor with each batch (`Inbox.ingest_many`
    with `in_transaction`) and quarantine what they cannot parse. `calls` is the call desk
    that phone channels report calls and their legs to. `voicemail` renders voicemail
    greetings and sets off what a received voicemail needs (event, callback task).
    `templates`, `company` and `policies` (the SLA policies in force) are for channels that
    render documents or create tasks (fax cover pages, F3 confirmations); `channels` holds
    every account of the hub, for a channel that works through another (a fax-to-mail gateway
    through an e-mail account). `chat_scripts` renders what a chat channel says by itself;
    `replies` renders, checks and queues what a channel sends by itself on another conversation
    (the fax pre-notice).
    """

    http: ClientSession
    blobs: BlobStore
    public_url: str
    data_dir: Path
    report_status: StatusSink | None = field(default=None)
    inbox: Inbox | None = field(default=None)
    calls: CallDesk | None = field(default=None)
    voicemail: VoicemailDesk | None = field(default=None)
    templates: Templates | None = field(default=None)
    company: CompanySection | None = field(default=None)
    policies: Callable[[], PolicyBook | None] | None = field(default=None)
    channels: Mapping[str, Channel] | None = field(default=None)
    chat_scripts: ChatScriptSource | None = field(default=None)
    replies: TemplateReplies | None = field(default=None)


class ChatScriptSource(Protocol):
    """The greeting and hold message a chat channel sends by itself (P2, P3), from templates."""

    def greeting(self, lang: str, name: str | None, agent: str | None = None) -> str | None:
        """The first message of a chat; None if it cannot be rendered."""

    def hold(self, lang: str, name: str | None, wait: timedelta | None = None) -> str | None:
        """The apology for keeping the visitor waiting; None if it cannot be rendered."""

    def hold_after(self) -> timedelta | None:
        """How long a visitor may wait for an answer before the hold message (None: never)."""

    def offline_promise(self, account: str, at: datetime) -> datetime | None:
        """The reply-time promise for a message left outside opening hours (None: none to make)."""

    def thanks(self, lang: str, name: str | None, reply_by: datetime) -> str | None:
        """The answer to a message left outside opening hours, with the promise."""


class StatusSink(Protocol):
    """Where a channel hands a provider's later delivery status (delivered, failed, read)."""

    async def __call__(
        self, channel_account: str, provider_id: str, result: DeliveryResult, *, hold: bool = False
    ) -> bool:
        """Apply the status; False if no message has this provider id.

        With `hold`, a status for an id not yet recorded is kept while a send on the account is
        under way and applied once that send records the id; it then counts as known.
        """
        ...


@runtime_checkable
class Channel(Protocol):
    """One configured account of one channel kind (a mailbox, a Twilio number, a fax line).

    Lifecycle: the runtime calls `start(sink)` once; if it raises, the runtime retries it
    with backoff. While running, `state()` tells whether the channel is healthy; the runtime
    restarts a channel whose state becomes FAILED. `stop()` may be called at any time, also
    after a failed start, more than once, and must return within a few seconds.

    Receiving: a pull channel (IMAP) runs its own tasks after `start` and calls `sink` with
    every message; a push channel contributes webhook `routes()` that call `sink`. A channel
    acknowledges its provider only after `sink` returned: the message is then stored.

    Sending: `send` delivers one outbound message and returns a `DeliveryResult`. It raises
    `ChannelUnavailable` for transient failures (the outbox retries), `DeliveryRejected` for
    permanent ones, `ChannelAuthError` when credentials are refused. It never fails silently.
    It passes `message.idempotency_key` to the provider, so a retry cannot deliver twice.
    """

    kind: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    name: str

    async def start(self, sink: InboundSink) -> None:
        """Connect, verify credentials and begin receiving."""

    def routes(self) -> Sequence[web.RouteDef]:
        """Webhook endpoints under `/webhooks/<kind>/<name>/`; empty for pull channels."""

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Deliver one message."""

    async def stop(self) -> None:
        """Stop receiving and release connections; idempotent and bounded in time."""

    def state(self) -> ChannelState:
        """The channel's health now."""
