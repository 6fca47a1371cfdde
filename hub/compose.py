"""Replies as they leave the hub: the subject with its reference, then the pre-send etiquette check (E8).

Every outgoing message on every channel passes `Composer`: agent replies, trigger replies
and automatic mail. Errors block sending with the findings; a supervisor may send anyway
with a reason, which is audited with the message; warnings are stored on the message.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from hub import reply_routes, uploads
from hub.errors import Conflict, EtiquetteBlocked, NotAllowed
from hub.etiquette import Draft, EtiquetteRules, Finding, check, has_errors
from hub.inbox import Inbox
from hub.models import Agent, Conversation, Message, Role
from hub.outbox import Outbox
from hub.reply_routes import SUBJECT_CHANNELS, ReplyRoute
from hub.threads import TOKEN
from hub.uploads import Upload

Signer = Callable[[int, str], Awaitable[str]]
"""The signature for a reply on a conversation, in a language."""

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


@runtime_checkable
class DraftLimits(Protocol):
    """A channel that knows what it cannot carry (SMS segments, WhatsApp's 24-hour window)."""

    async def draft_findings(
        self, conversation: Conversation, draft: Draft, language: str, meta: Mapping[str, Any]
    ) -> list[Finding]:
        """Blocking findings for a draft on this channel; a supervisor cannot override them."""


class Composer:
    """Checks drafts and queues replies that pass (or that a supervisor lets through)."""

    def __init__(self, inbox: Inbox, outbox: Outbox, etiquette: Callable[[], EtiquetteRules | None]) -> None:
        self.inbox = inbox
        self.outbox = outbox
        self.etiquette = etiquette
        self.signer: Signer | None = None
        self.channels: Mapping[str, object] = {}
        """The running channels by account name, for the limits of what each can carry."""

    async def _draft(
        self,
        conversation: Conversation,
        text: str,
        subject: str | None,
        html: str | None,
        *,
        automatic: bool,
        language: str,
        via: ReplyRoute | None,
        files: Sequence[Upload],
    ) -> Draft:
        """The message as it would be sent: its channel, the reply subject and, for mail, the signature."""
        channel = via.channel if via is not None else conversation.channel
        if channel in SUBJECT_CHANNELS and self.signer is not None and not has_signature(text):
            text = signed(text, await self.signer(conversation.id, language))
        final_subject = (
            reply_subject(subject, conversation.subject, conversation.id)
            if channel in SUBJECT_CHANNELS
            else subject
        )
        return Draft(
            channel=channel,
            subject=final_subject,
            text=text,
            html=html,
            attachments=await uploads.for_check(self.inbox.blobs, files),
            is_reply=True,
            conversation_id=conversation.id,
            automatic=automatic,
        )

    def findings(self, draft: Draft, language: str) -> list[Finding]:
        """The etiquette findings on a draft, in the reader's language (none while no rules are loaded)."""
        rules = self.etiquette()
        return check(draft, rules, language) if rules is not None else []

    async def _prepare(
        self,
        conversation_id: int,
        text: str,
        subject: str | None,
        html: str | None,
        *,
        automatic: bool,
        language: str,
        meta: Mapping[str, Any] | None,
        via: ReplyRoute | None,
        files: Sequence[Upload],
    ) -> tuple[Draft, list[Finding]]:
        """The draft and what the reply's channel cannot carry in it (none for most channels).

        The conversation is read once, for both.
        """
        conversation = await self.inbox.conversation(conversation_id)
        draft = await self._draft(
            conversation, text, subject, html, automatic=automatic, language=language, via=via, files=files
        )
        account = via.account if via is not None else conversation.channel_account
        channel = self.channels.get(account)
        if not isinstance(channel, DraftLimits):
            return draft, []
        return draft, await channel.draft_findings(conversation, draft, language, meta or {})

    async def check(
        self,
        conversation_id: int,
        text: str,
        subject: str | None,
        html: str | None,
        language: str,
        meta: Mapping[str, Any] | None = None,
        *,
        via: ReplyRoute | None = None,
        files: Sequence[Upload] = (),
    ) -> tuple[Draft, list[Finding]]:
        """Check a draft as the agent types."""
        draft, limits = await self._prepare(
            conversation_id, text, subject, html, automatic=False, language=language, meta=meta,
            via=via, files=files,
        )  # fmt: skip
        return draft, limits + self.findings(draft, language)

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
        via: ReplyRoute | None = None,
        files: Sequence[Upload] = (),
    ) -> Message:
        """Check and queue a reply; EtiquetteBlocked on errors unless a supervisor overrides with a reason.

        `via` answers on another of the contact's channels; `files` go with the reply, on a
        channel that carries attachments.
        """
        language = agent.language if agent else language
        if files and (via is None or not via.capabilities.attachments):
            where = via.account if via is not None else "this conversation's channel"
            raise Conflict(f"{where} cannot carry attachments")
        draft, limits = await self._prepare(
            conversation_id, text, subject, html, automatic=automatic, language=language, meta=meta,
            via=via, files=files,
        )  # fmt: skip
        if limits:
            raise EtiquetteBlocked(
                "the reply's channel cannot carry this reply", [f.to_dict() for f in limits]
            )
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
            via=reply_routes.via(via) if via is not None and not via.current else None,
            files=files,
        )
