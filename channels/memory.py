"""An in-memory channel: messages are injected by code and replies kept in a list.

Used by the demo (its replies are "delivered" at once) and by tests of the inbox, the
outbox and the runtime. It can be told to fail, to exercise the retry paths.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from channels.base import Capabilities, ChannelContext, ChannelState, InboundSink
from hub.errors import ChannelUnavailable, DeliveryRejected
from hub.models import (
    ChannelKind,
    DeliveryResult,
    InboundMessage,
    IngestResult,
    OutboundMessage,
    OutboundStatus,
)


class MemorySettings(BaseModel):
    """Settings of a memory channel: whether sends report DELIVERED rather than SENT, and which
    kinds of message it stands in for (so replies can be routed to it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    confirm_delivery: bool = True
    carries: tuple[ChannelKind, ...] = ()


class MemoryChannel:
    """A channel whose provider is this object."""

    kind: ClassVar[str] = "memory"
    capabilities: ClassVar[Capabilities] = Capabilities(subject=True, html=True, attachments=True)

    def __init__(self, name: str, settings: MemorySettings | None = None) -> None:
        self.name = name
        self.settings = settings or MemorySettings()
        self.carries = self.settings.carries
        self.sent: list[OutboundMessage] = []
        self.attempts: list[str] = []
        self._open = asyncio.Event()
        self._open.set()
        self.delivered_keys: set[str] = set()
        self._sink: InboundSink | None = None
        self._state = ChannelState.STOPPED
        self._failures: list[Exception] = []
        self.start_failures = 0
        self.sent_event = asyncio.Event()

    async def start(self, sink: InboundSink) -> None:
        """Remember the sink; fail first if told to."""
        if self.start_failures:
            self.start_failures -= 1
            self._state = ChannelState.DEGRADED
            raise ChannelUnavailable(f"{self.name}: start failed as configured")
        self._sink = sink
        self._state = ChannelState.CONNECTED

    def routes(self) -> Sequence[web.RouteDef]:
        """A memory channel has no webhooks."""
        return []

    async def receive(self, message: InboundMessage) -> IngestResult:
        """Hand a message to the hub as if a provider had delivered it."""
        if self._sink is None:
            raise ChannelUnavailable(f"{self.name} is not started")
        return await self._sink(message)

    def fail_next(self, *errors: Exception) -> None:
        """Make the next sends raise these errors, in order."""
        self._failures.extend(errors)

    def break_down(self) -> None:
        """Report FAILED, as a channel that lost its provider for good would."""
        self._state = ChannelState.FAILED

    def pause(self) -> None:
        """Hold every send until `resume`."""
        self._open.clear()

    def resume(self) -> None:
        """Let held sends go on."""
        self._open.set()

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Record the message; a repeated idempotency key is accepted but not recorded twice."""
        self.attempts.append(message.idempotency_key)
        await self._open.wait()
        if self._failures:
            raise self._failures.pop(0)
        if message.recipient.address.endswith(".invalid"):
            raise DeliveryRejected(f"no such recipient: {message.recipient.address}")
        if message.idempotency_key not in self.delivered_keys:
            self.delivered_keys.add(message.idempotency_key)
            self.sent.append(message)
            self.sent_event.set()
        status = OutboundStatus.DELIVERED if self.settings.confirm_delivery else OutboundStatus.SENT
        return DeliveryResult(status, provider_id=f"mem-{message.idempotency_key}")

    async def stop(self) -> None:
        """Forget the sink."""
        self._sink = None
        self._state = ChannelState.STOPPED

    def state(self) -> ChannelState:
        """The state set by start, stop and `break_down`."""
        return self._state


def create(name: str, settings: MemorySettings, context: ChannelContext) -> MemoryChannel:
    """Build a memory channel from its configuration."""
    del context
    return MemoryChannel(name, settings)
