"""Where a conversation can be answered: its own channel, or the contact's other channels.

A reply route is a configured channel account and one of the contact's addresses that
account can reach (a voicemail can be answered by e-mail when the caller has an e-mail
address and the hub an e-mail account). A channel says which message kinds it carries
with an optional `carries` attribute; otherwise its `kind` is taken as the message kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from channels.base import Capabilities, Channel
from hub.errors import Conflict
from hub.models import ChannelKind, Conversation, Identity
from hub.outbox import contact_identities, last_sender, pick_recipient

NO_CAPABILITIES = Capabilities()
SUBJECT_CHANNELS = frozenset({ChannelKind.EMAIL, ChannelKind.FAX})
"""Message kinds whose replies carry a subject."""


@dataclass(frozen=True, slots=True)
class ReplyRoute:
    """A channel account and the contact's address on it."""

    channel: ChannelKind
    account: str
    recipient: Identity
    capabilities: Capabilities
    current: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The route as the composer shows it."""
        caps = self.capabilities
        return {
            "channel": self.channel.value,
            "account": self.account,
            "to": self.recipient.address,
            "to_kind": self.recipient.kind.value,
            "current": self.current,
            "subject": caps.subject and self.channel in SUBJECT_CHANNELS,
            "attachments": caps.attachments,
            "max_body": caps.max_body,
        }


def carried(channel: Channel) -> tuple[ChannelKind, ...]:
    """The message kinds a channel account sends."""
    declared = getattr(channel, "carries", None)
    if declared is not None:
        return tuple(ChannelKind(k) for k in declared)
    try:
        return (ChannelKind(channel.kind),)
    except ValueError:
        return ()


async def routes(
    conn: AsyncConnection, channels: Mapping[str, Channel], conversation: Conversation
) -> list[ReplyRoute]:
    """The conversation's own route first (if its contact has an address there), then every other."""
    identities = await contact_identities(conn, conversation.contact_id)
    own_channel = channels.get(conversation.channel_account)
    found: list[ReplyRoute] = []
    try:
        recipient = pick_recipient(identities, await last_sender(conn, conversation.id), conversation.channel)
    except Conflict:
        pass
    else:
        capabilities = own_channel.capabilities if own_channel is not None else NO_CAPABILITIES
        found.append(
            ReplyRoute(
                conversation.channel, conversation.channel_account, recipient, capabilities, current=True
            )
        )
    for name, channel in channels.items():
        for kind in carried(channel):
            wanted = kind.identity_kind
            if wanted is None:
                continue
            for identity in identities:
                route = ReplyRoute(kind, name, identity, channel.capabilities)
                if identity.kind is wanted and not any(_same(route, f) for f in found):
                    found.append(route)
    return found


def choose(found: Sequence[ReplyRoute], account: str, to: str) -> ReplyRoute:
    """The route with this account and address; Conflict if the conversation has none such."""
    for route in found:
        if route.account == account and route.recipient.address == to:
            return route
    raise Conflict(f"this conversation cannot be answered through {account} to {to}")


def _same(a: ReplyRoute, b: ReplyRoute) -> bool:
    return a.account == b.account and a.recipient == b.recipient


def via(route: ReplyRoute) -> tuple[ChannelKind, str, Identity]:
    """The route as the outbox takes it."""
    return route.channel, route.account, route.recipient
