"""Replies as they leave the hub: the subject with its reference, then the pre-send etiquette check (E8).

Every outgoing message on every channel passes `Composer`: agent replies, trigger replies
and automatic mail. Errors block sending with the findings; a supervisor may send anyway
with a reason, which is audited with the message; warnings are stored on the message.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from hub.errors import EtiquetteBlocked, NotAllowed
from hub.etiquette import Draft, EtiquetteRules, Finding, check, has_errors
from hub.inbox import Inbox
from hub.models import Agent, ChannelKind, Message, Role
from hub.outbox import Outbox
from hub.threads import TOKEN

Signer = Callable[[int, str], Awaitable[str]]
"""The signature for a reply on a conversation, in a language."""

SUBJECT_CHANNELS = frozenset({ChannelKind.EMAIL, ChannelKind.FAX})
REPLY_PREFIX = re.compile(r"^\s*((re|fwd?|aw|回复|答复)\s*[:：]\s*)+", re.IGNORECASE)


def reply_subject(subject: str | None, conversation_subject: str | None, conversation_id: int) -> str:
    """`Re: <subject> [#id]`: the given subject (or the conversation's) with `Re: ` and the reference."""
    base = (subject or conversation_subject or "").strip()
    base = REPLY_PREFIX.sub("", base)
    base = TOKEN.sub("", base).strip()
    return f"Re: {base} [#{conversation_id}]" if base else f"Re: [#{conversation_id}]"


def has_signature(text: str) -> bool:
    """Whether the text already carries a signature after the `-- ` line (RFC 3676)."""
    return any(line == "-- " for line in text.splitlines())


def signed(text: str, signature: str) -> str:
    """The text with the signature appended, unless it already has one (E6)."""
    return text if has_signature(text) else f"{text.rstrip()}\n\n{signature}"


class Composer:
    """Checks drafts and queues replies that pass (or that a supervisor lets through)."""

    def __init__(self, inbox: Inbox, outbox: Outbox, etiquette: Callable[[], EtiquetteRules | None]) -> None:
        self.inbox = inbox
        self.outbox = outbox
        self.etiquette = etiquette
        self.signer: Signer | None = None

    async def draft(
        self,
        conversation_id: int,
        text: str,
        subject: str | None = None,
        html: str | None = None,
        *,
        automatic: bool = False,
        language: str = "en",
    ) -> Draft:
        """The message as it would be sent: its channel, the reply subject and, for mail, the signature."""
        conversation = await self.inbox.conversation(conversation_id)
        channel = conversation.channel
        if channel in SUBJECT_CHANNELS and self.signer is not None and not has_signature(text):
            text = signed(text, await self.signer(conversation_id, language))
        final_subject = (
            reply_subject(subject, conversation.subject, conversation_id)
            if channel in SUBJECT_CHANNELS
            else subject
        )
        return Draft(
            channel=channel,
            subject=final_subject,
            text=text,
            html=html,
            is_reply=True,
            conversation_id=conversation_id,
            automatic=automatic,
        )

    def findings(self, draft: Draft, language: str) -> list[Finding]:
        """The etiquette findings on a draft, in the reader's language (none while no rules are loaded)."""
        rules = self.etiquette()
        return check(draft, rules, language) if rules is not None else []

    async def check(
        self, conversation_id: int, text: str, subject: str | None, html: str | None, language: str
    ) -> tuple[Draft, list[Finding]]:
        """Check a draft as the agent types."""
        draft = await self.draft(conversation_id, text, subject, html, language=language)
        return draft, self.findings(draft, language)

    async def reply(
        self,
        conversation_id: int,
        text: str,
        *,
        agent: Agent | None,
        subject: str | None = None,
        html: str | None = None,
        idempotency_key: str | None = None,
        override_reason: str | None = None,
        automatic: bool = False,
        meta: Mapping[str, Any] | None = None,
        language: str = "en",
    ) -> Message:
        """Check and queue a reply; EtiquetteBlocked on errors unless a supervisor overrides with a reason."""
        language = agent.language if agent else language
        draft = await self.draft(conversation_id, text, subject, html, automatic=automatic, language=language)
        findings = self.findings(draft, language)
        audit: dict[str, dict[str, Any]] = {}
        if has_errors(findings):
            errors = [f for f in findings if f.severity == "error"]
            if override_reason is None:
                rules = ", ".join(sorted({f.rule_id for f in errors}))
                raise EtiquetteBlocked(
                    f"the reply breaks etiquette rules ({rules})", [f.to_dict() for f in findings]
                )
            if agent is None or agent.role < Role.SUPERVISOR:
                raise NotAllowed("only a supervisor may send a reply that breaks etiquette rules")
            audit["etiquette.override"] = {
                "reason": override_reason,
                "rules": sorted({f.rule_id for f in errors}),
            }
        message_meta = dict(meta or {})
        if findings:
            message_meta["etiquette"] = [f.to_dict() for f in findings]
        return await self.outbox.reply(
            conversation_id,
            draft.text,
            agent_id=agent.id if agent else None,
            subject=draft.subject,
            html=html,
            idempotency_key=idempotency_key,
            automatic=automatic,
            meta=message_meta,
            audit=audit,
        )
