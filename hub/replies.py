"""Templated replies the hub sends by itself: acknowledgements with their promise (E1, L8), trigger replies.

`TemplateReplies.send_template` renders a template for the conversation's channel and the
customer's language and time zone, adds the team signature where mail needs one (E6),
computes the reply-time promise for acknowledgements, runs the pre-send check, and queues
the reply in the caller's transaction. It stays silent, with an event saying why, when the
customer's mail must not be answered automatically (loops, bulk mail), when this customer
was acknowledged in the last day, or when the rendered reply breaks an etiquette rule.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.compose import Composer, has_signature, signed
from hub.config import CompanySection
from hub.errors import HubError, TemplateError
from hub.etiquette import Draft, has_errors
from hub.events import event_row, record
from hub.models import ChannelKind, Direction
from hub.outbox import queue_reply
from hub.records import latest_inbound
from hub.reply_routes import SUBJECT_CHANNELS
from hub.rules.loader import RuleSet
from hub.sla import history
from hub.sla.promise import promise_due
from hub.sla.tasks import customer_zone
from hub.store import schema
from hub.templates import SAMPLES, Templates, normalize_language
from hub.templates.dates import language

ACKNOWLEDGE = "acknowledge"
ACK_INTERVAL = timedelta(days=1)
AGENT_SLOTS = ("complaint", "refusal", "callback")
"""Context a rule fills for its reply; in an agent's draft they show as `[complaint.summary]` to fill in."""


def blank(value: Any) -> Any:
    """The shape of the sample context with every leaf empty, so strict templates find every key."""
    if isinstance(value, Mapping):
        return {k: blank(v) for k, v in value.items()}
    if isinstance(value, list):
        return []
    return None


class TemplateReplies:
    """The trigger engine's reply sender."""

    def __init__(
        self,
        templates: Templates,
        composer: Composer,
        rules: Callable[[], RuleSet | None],
        company: CompanySection,
        default_language: str = "en",
    ) -> None:
        self.templates = templates
        self.composer = composer
        self.rules = rules
        self.company = company
        self.default_language = default_language

    async def context(
        self, conn: AsyncConnection, conversation_id: int, lang: str, reply_by: datetime | None
    ) -> tuple[dict[str, Any], ChannelKind, ZoneInfo]:
        """The template context of a conversation, its channel, and the customer's time zone."""
        c, ct, t, a = schema.conversations, schema.contacts, schema.teams, schema.agents
        row = (
            await conn.execute(
                select(
                    c.c.id,
                    c.c.subject,
                    c.c.channel,
                    c.c.created_at,
                    ct.c.name.label("customer"),
                    ct.c.timezone,
                    t.c.name.label("team"),
                    t.c.department,
                    a.c.display_name.label("agent"),
                )
                .select_from(
                    c.join(ct, ct.c.id == c.c.contact_id)
                    .outerjoin(t, t.c.id == c.c.team_id)
                    .outerjoin(a, a.c.id == c.c.assignee_id)
                )
                .where(c.c.id == conversation_id)
            )
        ).one()
        zone = customer_zone(row.timezone, None, self._calendar_zone())
        ctx = self.base_context(
            lang, zone, customer=row.customer, team=row.team, department=row.department, agent=row.agent
        )
        ctx["conversation"].update(
            id=row.id, subject=row.subject, channel=row.channel, opened_at=row.created_at,
            **await _moments(conn, conversation_id),
        )  # fmt: skip
        ctx["reply_by"] = reply_by
        return ctx, ChannelKind(row.channel), zone

    def base_context(
        self,
        lang: str,
        zone: ZoneInfo,
        *,
        customer: str | None,
        team: str | None,
        department: str | None,
        agent: str | None,
    ) -> dict[str, Any]:
        """The template context of the company, a team and an agent, before any conversation exists."""
        company = self.company
        ctx: dict[str, Any] = copy.deepcopy(blank(SAMPLES[language(lang)]))
        ctx["customer"].update(name=customer, language=lang, timezone=str(zone))
        department = department or company.department
        ctx["team"].update(
            name=team or company.name, department=department, email=company.email or None,
            phone=company.phone or None, address=company.address or None,
        )  # fmt: skip
        ctx["agent"].update(name=agent, department=department)
        ctx["company"].update(
            name=company.name, address=company.address or None, phone=company.phone or None,
            email=company.email or None, website=company.website or None,
        )  # fmt: skip
        ctx["alternative_contact"].update(
            name=company.name, phone=company.phone or None, email=company.email or None
        )
        return ctx

    def calendar_zone(self) -> ZoneInfo:
        """The default business calendar's time zone (UTC before rules are loaded)."""
        return self._calendar_zone()

    async def send_template(
        self, conn: AsyncConnection, conversation_id: int, template: str, now: datetime
    ) -> list[dict[str, Any]]:
        """Render, check and queue a reply in the caller's transaction; return the events recorded."""
        ruleset = self.rules()
        if ruleset is None:
            raise HubError("no rules are loaded")
        silent = await self._reason_to_stay_silent(conn, conversation_id, template, now)
        if silent is not None:
            return await _note(
                conn, "rules.reply_suppressed", now, conversation_id, template=template, reason=silent
            )
        lang = await self.language(conn, conversation_id)
        reply_by = (
            await self._promise(conn, ruleset, conversation_id, now) if template == ACKNOWLEDGE else None
        )
        if template == ACKNOWLEDGE and reply_by is None:
            return await _note(
                conn, "rules.reply_suppressed", now, conversation_id, template=template,
                reason="no SLA policy with a response target covers this conversation: no promise to make",
            )  # fmt: skip
        meta: dict[str, Any] = {"template": template}
        if reply_by is not None:
            meta["promise_due_at"] = reply_by.isoformat()
        key = f"template:{template}:{conversation_id}:{uuid.uuid4().hex}"
        return await self.queue_checked(
            conn, conversation_id, template, now, key=key, lang=lang, reply_by=reply_by, meta=meta
        )

    async def queue_checked(
        self,
        conn: AsyncConnection,
        conversation_id: int,
        template: str,
        now: datetime,
        *,
        key: str,
        lang: str | None = None,
        reply_by: datetime | None = None,
        extra: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Render a template on a conversation, check it as any automatic reply, and queue it once per
        `key` in the caller's transaction; when an etiquette error blocks it, record why instead."""
        lang = lang or await self.language(conn, conversation_id)
        ctx, channel, zone = await self.context(conn, conversation_id, lang, reply_by)
        ctx.update(extra or {})
        text, subject = self._render(channel, template, lang, ctx, zone)
        draft = Draft(channel, subject, text, is_reply=True, conversation_id=conversation_id, automatic=True)
        findings = self.composer.findings(draft, lang)
        if has_errors(findings):
            return await _note(
                conn, "rules.reply_blocked", now, conversation_id, template=template,
                findings=[f.to_dict() for f in findings],
            )  # fmt: skip
        stored = {"template": template, **(meta or {})}
        if findings:
            stored["etiquette"] = [f.to_dict() for f in findings]
        return await queue_reply(
            conn, conversation_id, text, key=key, agent_id=None, subject=subject, html=None, automatic=True,
            meta=stored, audit={}, now=now,
        )  # fmt: skip

    async def for_agent(
        self,
        conn: AsyncConnection,
        conversation_id: int,
        template: str,
        channel: ChannelKind | None,
        agent: str,
    ) -> tuple[str, str | None, str]:
        """A template rendered for the draft of the agent named `agent`: text, subject (mail and
        fax) and language. No signature here: the composer adds it when the reply is checked."""
        lang = await self.language(conn, conversation_id)
        ctx, own, zone = await self.context(conn, conversation_id, lang, None)
        ctx["agent"]["name"] = agent
        for slot in AGENT_SLOTS:
            ctx[slot] = {k: f"[{slot}.{k}]" if v is None else v for k, v in ctx[slot].items()}
        channel = channel or own
        text = self.templates.render(channel, template, lang, "txt", ctx, tz=zone).text
        return text, self._subject(channel, template, lang, ctx, zone), lang

    async def signature(self, conn: AsyncConnection, conversation_id: int, lang: str) -> str:
        """The team signature (E6) for a reply on this conversation, starting with the `-- ` line."""
        ctx, channel, zone = await self.context(conn, conversation_id, lang, None)
        return self._signature(channel, lang, ctx, zone)

    def _signature(self, channel: ChannelKind, lang: str, ctx: Mapping[str, Any], zone: ZoneInfo) -> str:
        return self.templates.render(channel, "signature_team", lang, "txt", ctx, tz=zone).text

    def _render(
        self, channel: ChannelKind, template: str, lang: str, ctx: Mapping[str, Any], zone: ZoneInfo
    ) -> tuple[str, str | None]:
        text = self.templates.render(channel, template, lang, "txt", ctx, tz=zone).text
        if channel in SUBJECT_CHANNELS and not has_signature(text):
            text = signed(text, self._signature(channel, lang, ctx, zone))
        return text, self._subject(channel, template, lang, ctx, zone)

    def _subject(
        self, channel: ChannelKind, template: str, lang: str, ctx: Mapping[str, Any], zone: ZoneInfo
    ) -> str | None:
        """The template's subject on channels that have one (mail, fax); None without one."""
        if channel not in SUBJECT_CHANNELS:
            return None
        try:
            return self.templates.render_subject(channel, template, lang, ctx, tz=zone)
        except TemplateError:
            return None

    async def _reason_to_stay_silent(
        self, conn: AsyncConnection, conversation_id: int, template: str, now: datetime
    ) -> str | None:
        m = schema.messages
        meta = await latest_inbound(conn, conversation_id, m.c.meta) or {}
        if meta.get("auto_reply") is False:
            reason = meta.get("auto_reply_reason") or "it says not to"
            return f"the customer's message must not be answered automatically: {reason}"
        if template == ACKNOWLEDGE:
            recent = await conn.execute(
                select(m.c.meta).where(
                    m.c.conversation_id == conversation_id,
                    m.c.automatic,
                    m.c.direction == Direction.OUTBOUND.value,
                    m.c.created_at > now - ACK_INTERVAL,
                )
            )
            if any((meta or {}).get("template") == ACKNOWLEDGE for (meta,) in recent):
                return "this conversation was acknowledged less than a day ago"
        return None

    async def language(self, conn: AsyncConnection, conversation_id: int) -> str:
        """The customer's language for templates (the hub's default when unknown)."""
        c, ct = schema.conversations, schema.contacts
        found = (
            await conn.execute(
                select(ct.c.language).join(c, c.c.contact_id == ct.c.id).where(c.c.id == conversation_id)
            )
        ).scalar()
        return normalize_language(found or "") or language(self.default_language)

    async def _promise(
        self, conn: AsyncConnection, ruleset: RuleSet, conversation_id: int, now: datetime
    ) -> datetime | None:
        book = ruleset.policies
        h = (await history.load(conn, [conversation_id])).get(conversation_id)
        policy = book.select(h.facts) if h is not None else None
        if h is None or policy is None:
            return None
        target = policy.targets.first_response or policy.targets.next_response
        if target is None:
            return None
        inbound = [s.at for s in h.steps if s.kind.value == "inbound"]
        start = max(inbound[-1], now) if inbound else now
        return promise_due(start, target, book.promises.margin, policy.calendar, book.promises.rounding)

    def _calendar_zone(self) -> ZoneInfo:
        ruleset = self.rules()
        return ruleset.policies.default_calendar.timezone if ruleset is not None else ZoneInfo("UTC")


async def _moments(conn: AsyncConnection, conversation_id: int) -> dict[str, datetime | None]:
    """When an agent last replied and when the conversation was last resolved (None if never)."""
    m, e = schema.messages, schema.events
    replied = (
        await conn.execute(
            select(func.max(m.c.created_at)).where(
                m.c.conversation_id == conversation_id,
                m.c.direction == Direction.OUTBOUND.value,
                m.c.automatic.is_(False),
            )
        )
    ).scalar()
    changes = await conn.execute(
        select(e.c.at, e.c.data)
        .where(e.c.conversation_id == conversation_id, e.c.kind == "conversation.status_changed")
        .order_by(e.c.id.desc())
    )
    resolved = next((at for at, data in changes if (data or {}).get("new") == "resolved"), None)
    return {"last_reply_at": replied, "resolved_at": resolved}


async def _note(
    conn: AsyncConnection, kind: str, now: datetime, conversation_id: int, **data: Any
) -> list[dict[str, Any]]:
    events = [event_row(kind, now, conversation_id, None, **data)]
    await record(conn, events)
    return events
