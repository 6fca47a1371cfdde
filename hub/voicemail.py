"""Voicemail on the hub's side, whatever the provider: greeting texts, recording limits, and
what a received voicemail sets off (the `voicemail.received` event and a callback task, P3/P6).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.aio import OwnedTasks
from hub.clock import Clock
from hub.config import CompanySection
from hub.etiquette import EtiquetteConfig
from hub.events import event_row, record
from hub.models import ChannelKind, IngestResult
from hub.replies import blank
from hub.rules import queue as rule_queue
from hub.rules.loader import RuleSet
from hub.sla.calls_to_make import schedule_callback
from hub.sla.service import SlaService
from hub.store import Database, schema
from hub.templates import SAMPLES, Templates
from hub.templates.dates import language

log = logging.getLogger(__name__)

GREETING = "voicemail_greeting"
DEFAULT_MAX_LENGTH = 120
BUSINESS_HOURS = {"en": "during business hours", "zh": "工作时间内"}


@dataclass(frozen=True, slots=True)
class GreetingFacts:
    """Who the caller reached and what the greeting promises; empty fields fall back to the company."""

    team: str
    language: str
    agent_name: str | None = None
    business_hours: str | None = None
    contact_name: str | None = None
    contact_phone: str | None = None
    contact_email: str | None = None


class VoicemailDesk:
    """What every voicemail channel shares: greetings, the V5 limit, and the callback after a message."""

    def __init__(
        self,
        db: Database,
        sla: SlaService,
        rules: Callable[[], RuleSet | None],
        templates: Templates,
        company: CompanySection,
        clock: Clock,
    ) -> None:
        self.db = db
        self.sla = sla
        self.rules = rules
        self.templates = templates
        self.company = company
        self.clock = clock
        self.tasks = OwnedTasks("voicemail")

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run slow work (a local transcription) that the desk owns until it ends or the desk stops."""
        return self.tasks.spawn(work, name)

    async def drain(self) -> None:
        """Wait for the work in progress."""
        await self.tasks.drain()

    async def stop(self) -> None:
        """Let work in progress finish for a while, then cancel what is left."""
        await self.tasks.stop()

    def max_length_seconds(self) -> int:
        """How long a caller may speak (V5 `max_length_seconds` in etiquette.yaml)."""
        ruleset = self.rules()
        if ruleset is None or "etiquette.yaml" not in ruleset.files:
            return DEFAULT_MAX_LENGTH
        return ruleset.get("etiquette.yaml", EtiquetteConfig).V5.max_length_seconds

    async def greeting(self, facts: GreetingFacts) -> str:
        """The `voice/voicemail_greeting` template for this team or agent, with the reply time (V1-V3)."""
        lang = language(facts.language)
        async with self.db.read() as conn:
            department = await _department(conn, facts.team)
        company = self.company
        ctx: dict[str, Any] = copy.deepcopy(blank(SAMPLES[lang]))
        ctx["company"].update(
            name=company.name, address=company.address or None, phone=company.phone or None,
            email=company.email or None, website=company.website or None,
        )  # fmt: skip
        department = department or company.department
        ctx["team"].update(name=facts.team, department=department)
        ctx["agent"].update(name=facts.agent_name or facts.team, department=department)
        ctx["alternative_contact"].update(
            name=facts.contact_name or company.name,
            phone=facts.contact_phone or company.phone or None,
            email=facts.contact_email or company.email or None,
        )
        ctx["business_hours"] = facts.business_hours or BUSINESS_HOURS[lang]
        ctx["reply_by"] = self.reply_by()
        book = self.sla.book
        zone = book.default_calendar.timezone if book is not None else "UTC"
        rendered = self.templates.render(ChannelKind.VOICEMAIL, GREETING, lang, "txt", ctx, tz=zone)
        return rendered.text.strip()

    def reply_by(self) -> datetime:
        """When a message left now will be returned: the callback target in business hours."""
        now = self.clock()
        book = self.sla.book
        if book is None:
            return now
        return book.default_calendar.add(now, book.timers.callback_within)

    async def received(
        self, conn: AsyncConnection, result: IngestResult, *, line: str | None, caller: str
    ) -> list[dict[str, Any]]:
        """In the voicemail's transaction: the `voicemail.received` event and the callback task (P3, P6)."""
        now = self.clock()
        event = event_row(
            "voicemail.received", now, result.conversation_id, None, message_id=result.message_id, line=line
        )
        events = [event]
        await record(conn, events)
        await rule_queue.enqueue(conn, events, now)
        book = self.sla.book
        if book is None:
            log.warning("voicemail %s: no SLA rules are loaded, so no callback task", result.message_id)
            return events
        return events + await schedule_callback(
            conn,
            book,
            result.conversation_id,
            key=f"voicemail:{result.message_id}",
            requested_at=now,
            now=now,
            points=[f"voicemail from {caller}" + (f" on {line}" if line else "")],
            reason="voicemail",
        )

    async def no_message(self, account: str, call_sid: str) -> list[dict[str, Any]]:
        """A caller who hung up at the greeting without a message still gets a callback (P3)."""
        book = self.sla.book
        now = self.clock()
        async with self.db.write() as conn:
            call = await _call_of(conn, account, call_sid)
            if call is None or book is None:
                log.info("voicemail without a message on %s: no stored call or no SLA rules", call_sid)
                return []
            events = [event_row("voicemail.empty", now, call.conversation_id, None, call_id=call.id)]
            await record(conn, events)
            return events + await schedule_callback(
                conn,
                book,
                call.conversation_id,
                key=f"call:{call.id}",
                requested_at=call.started_at,
                now=now,
                points=[f"hung up at the voicemail greeting on {call.line}"],
                reason="no voicemail left",
            )


async def _call_of(conn: AsyncConnection, account: str, call_sid: str) -> Any:
    c = schema.calls
    found = await conn.execute(
        select(c.c.id, c.c.conversation_id, c.c.started_at, c.c.line).where(
            c.c.channel_account == account, c.c.external_id == call_sid
        )
    )
    return found.first()


async def _department(conn: AsyncConnection, team: str) -> str | None:
    t = schema.teams
    department: str | None = (await conn.execute(select(t.c.department).where(t.c.name == team))).scalar()
    return department
