"""What every fax provider offers the fax channel, and the events it reports in the hub's terms."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

from aiohttp import web

from hub.errors import ChannelUnavailable


class FaxEventKind(enum.StrEnum):
    """What a provider event says: a fax came in, or a sent fax moved on."""

    RECEIVED = "received"
    QUEUED = "queued"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Media:
    """A received fax's document: the bytes already in hand, or a link to fetch at once."""

    data: bytes | None = None
    url: str | None = None
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class FaxEvent:
    """One provider event, parsed at the provider's edge.

    `fax_id` is the provider's id of the fax (the outbox's provider id for sent faxes, the
    inbound message's external id for received ones). `remote` is the other side's number,
    `station_id` its CSID when the provider reports one.
    """

    kind: FaxEventKind
    fax_id: str
    event_id: str | None = None
    occurred_at: datetime | None = None
    remote: str | None = None
    local: str | None = None
    pages: int | None = None
    error: str | None = None
    station_id: str | None = None
    media: Media | None = None
    raw: bytes = b""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutgoingFax:
    """A rendered fax to hand to the provider."""

    to: str
    sender: str
    pdf: bytes
    idempotency_key: str
    subject: str | None = None
    tiff: bytes | None = None


EventHandler = Callable[[FaxEvent], Awaitable[None]]
"""The channel's handling of one event; returns once it is stored (the provider is then answered)."""


class WebhookRefused(Exception):
    """A webhook that is not the provider's (bad signature, stale, wrong credentials): 403."""


class FaxProvider(Protocol):
    """One provider's REST API and webhooks.

    `send` raises `ChannelUnavailable` for transient failures, `DeliveryRejected` for
    permanent ones and `ChannelAuthError` for refused credentials; it returns the provider's
    fax id. `routes` are the provider's webhook endpoints under `prefix`, each verifying the
    request and calling `handle` with every event before answering.
    """

    provider: ClassVar[str]
    wants_tiff: ClassVar[bool]

    async def send(self, fax: OutgoingFax, callback_url: str) -> str:
        """Submit one fax; return the provider's fax id."""

    async def fetch(self, media: Media, limit: int) -> bytes:
        """The document of a received fax (links expire: called as soon as the event arrives).

        A download stops just past `limit` bytes: a longer answer means the document is over it.
        """

    def routes(self, prefix: str, handle: EventHandler) -> Sequence[web.RouteDef]:
        """Webhook endpoints under `prefix`."""

    def callback_path(self) -> str:
        """The path under the channel's prefix that status callbacks go to."""

    async def start(self, handle: EventHandler) -> None:
        """Begin receiving events that do not come by webhook (fax-to-mail)."""

    async def stop(self) -> None:
        """Stop receiving them; idempotent."""


async def answer(handle: EventHandler, event: FaxEvent) -> web.Response:
    """Handle a webhook's event and answer the provider: 200 once stored, 503 to have it retried."""
    try:
        await handle(event)
    except ChannelUnavailable as err:
        return web.json_response({"error": str(err)}, status=503)
    return web.json_response({"ok": True})


class WebhookOnly:
    """For providers whose events all come by webhook: nothing to start or stop."""

    async def start(self, handle: EventHandler) -> None:
        """Nothing: webhooks arrive through the routes."""
        del handle

    async def stop(self) -> None:
        """Nothing to stop."""
