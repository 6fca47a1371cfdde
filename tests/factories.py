"""Builders of realistic inbound messages for tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hub.models import ChannelKind, Identity, IdentityKind, InboundMessage


def inbound(
    external_id: str,
    sender: str = "ana@example.com",
    *,
    channel: ChannelKind = ChannelKind.EMAIL,
    account: str = "support",
    text: str = "Hello, my order has not arrived.",
    at: datetime | None = None,
    **fields: Any,
) -> InboundMessage:
    """An inbound message on `channel` from `sender`."""
    return InboundMessage(
        channel=channel,
        channel_account=account,
        external_id=external_id,
        sender=Identity.of(channel.identity_kind or IdentityKind.EXTERNAL, sender),
        text=text,
        received_at=at or datetime(2026, 11, 23, 8, 30, tzinfo=UTC),
        **fields,
    )
