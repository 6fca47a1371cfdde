"""Threading: which conversation each inbound message of a batch belongs to.

Order of evidence: the channel's reply references (e-mail In-Reply-To/References), then a
`[#id]` token in the subject when the sender is that conversation's contact, then, for
conversational channels (chat, SMS, WhatsApp, voice), the contact's open conversation on the
same account within the window. Otherwise the message starts a new conversation. The phone
channels (calls, voicemail, SMS, WhatsApp) of one account count as one: a caller's text joins
the conversation of their call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Executable, Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.models import ChannelKind, ConversationStatus, Identity, InboundMessage
from hub.store import bulk, schema

TOKEN = re.compile(r"\[#(\d{1,18})\]")
PHONE_FAMILY = frozenset({ChannelKind.SMS, ChannelKind.WHATSAPP, ChannelKind.VOICE, ChannelKind.VOICEMAIL})


def thread_family(channel: ChannelKind | str) -> str:
    """The channels that share a contact's open conversation: the phone ones together, others alone."""
    kind = ChannelKind(channel)
    return "phone" if kind in PHONE_FAMILY else kind.value


@dataclass(slots=True)
class NewConversation:
    """A conversation a batch creates; `id` is set once ids are reserved."""

    row: dict[str, Any]
    id: int = 0


Target = int | NewConversation


def target_id(target: Target) -> int:
    """The conversation id of a thread target."""
    return target.id if isinstance(target, NewConversation) else target


@bulk.statement
def _refs_query(pg: bool) -> Executable:
    mr = schema.message_refs
    return select(mr.c.ref, mr.c.conversation_id).where(bulk.in_list(pg, mr.c.ref))


@dataclass(slots=True)
class ThreadIndex:
    """The three lookups for a batch, plus what the batch itself created so far."""

    by_ref: dict[str, Target] = field(default_factory=dict)
    token_owner: dict[int, int] = field(default_factory=dict)
    open_conv: dict[tuple[int, str, str], Target] = field(default_factory=dict)

    @classmethod
    async def load(
        cls,
        conn: AsyncConnection,
        batch: list[InboundMessage],
        contact_of: dict[Identity, int],
        window_start: datetime,
    ) -> ThreadIndex:
        """Look up every reference, token and open conversation the batch may need."""
        index = cls()
        refs = list({r for m in batch for r in m.reply_refs})
        if refs:
            index.by_ref = dict(await bulk.fetch(conn, _refs_query, ids=bulk.listed(conn, sorted(refs))))
        c = schema.conversations
        tokens = {int(t) for m in batch if m.subject for t in TOKEN.findall(m.subject)}
        if tokens:
            rows = await conn.execute(select(c.c.id, c.c.contact_id).where(c.c.id.in_(tokens)))
            index.token_owner = {r.id: r.contact_id for r in rows}
        chatty = {contact_of[m.sender] for m in batch if m.channel.is_conversational}
        if chatty:
            found = await bulk.fetch(
                conn,
                _open_query,
                contacts=bulk.listed(conn, sorted(chatty)),
                resolved=ConversationStatus.RESOLVED.value,
                since=bulk.stamp_writer(conn)(window_start),
            )
            index.open_conv = {
                (contact, thread_family(channel), account): cid for cid, contact, channel, account in found
            }
        return index

    def find(self, m: InboundMessage, contact_id: int) -> Target | None:
        """Where a message belongs, or None for a new conversation."""
        for ref in reversed(m.reply_refs):
            if ref in self.by_ref:
                return self.by_ref[ref]
        if m.subject:
            for token in TOKEN.findall(m.subject):
                if self.token_owner.get(int(token)) == contact_id:
                    return int(token)
        if m.channel.is_conversational:
            return self.open_conv.get((contact_id, thread_family(m.channel), m.channel_account))
        return None

    def remember(self, m: InboundMessage, contact_id: int, target: Target) -> None:
        """Let later messages of the batch thread where `m` went."""
        for ref in m.own_refs:
            self.by_ref.setdefault(ref, target)
        if m.channel.is_conversational:
            self.open_conv[(contact_id, thread_family(m.channel), m.channel_account)] = target


@bulk.statement
def _open_query(pg: bool) -> Select[Any]:
    c = schema.conversations
    return (
        select(c.c.id, c.c.contact_id, c.c.channel, c.c.channel_account)
        .where(
            bulk.in_list(pg, c.c.contact_id, "contacts"),
            c.c.status != bindparam("resolved"),
            c.c.last_message_at >= bindparam("since"),
        )
        .order_by(c.c.last_message_at)
    )
