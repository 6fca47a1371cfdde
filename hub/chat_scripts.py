"""What the hub says by itself in a chat: the greeting and the hold message (P2, P3).

Both come from the templates `chat/chat_greeting` and `chat/chat_hold` in the visitor's
language, rendered with the company and team; how long a visitor may wait before the hold
message is the P3 rule's `max_hold_seconds` in etiquette.yaml. A message left through the
offline form is answered with a reply-time promise (E1, L8) from the SLA policy for chat,
in the template `chat_offline_thanks`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from hub.config import CompanySection
from hub.errors import TemplateError
from hub.models import ChannelKind
from hub.replies import blank
from hub.rules.conditions import Facts
from hub.rules.loader import RuleSet
from hub.sla.promise import promise_due
from hub.templates import SAMPLES, Templates
from hub.templates.dates import language

GREETING = "chat_greeting"
HOLD = "chat_hold"
OFFLINE_THANKS = "chat_offline_thanks"


class ChatScripts:
    """Renders the chat greeting and hold message; None when a template cannot be rendered."""

    def __init__(
        self, templates: Templates, rules: Callable[[], RuleSet | None], company: CompanySection
    ) -> None:
        self.templates = templates
        self.rules = rules
        self.company = company

    def greeting(self, lang: str, name: str | None, agent: str | None = None) -> str | None:
        """The first message of a chat."""
        return self._render(GREETING, lang, name, agent=agent)

    def hold(self, lang: str, name: str | None, wait: timedelta | None = None) -> str | None:
        """The apology for the wait, with how long it will take when that is known."""
        return self._render(HOLD, lang, name, wait=wait)

    def hold_after(self) -> timedelta | None:
        """How long a visitor waits for an answer before the hold message; None if P3 is off."""
        rules = self.rules()
        if rules is None:
            return timedelta(seconds=60)
        rule = rules.etiquette.config.P3
        return timedelta(seconds=rule.max_hold_seconds) if rule.enabled else None

    def offline_promise(self, account: str, at: datetime) -> datetime | None:
        """When to promise a reply to a message left at `at` (the chat policy's first response)."""
        rules = self.rules()
        if rules is None:
            return None
        book = rules.policies
        facts = Facts(
            channel="chat", mailbox=account, subject="", body="", sender="", language="", tags=frozenset(),
            priority="normal", status="open", team=None, assignee=None, in_business_hours=None,
            contact_name=None,
        )  # fmt: skip
        policy = book.select(facts)
        target = policy.targets.first_response or policy.targets.next_response if policy else None
        if policy is None or target is None:
            return None
        return promise_due(at, target, book.promises.margin, policy.calendar, book.promises.rounding)

    def thanks(self, lang: str, name: str | None, reply_by: datetime) -> str | None:
        """The answer to an offline message, with the reply-time promise."""
        return self._render(OFFLINE_THANKS, lang, name, reply_by=reply_by)

    def _render(
        self,
        name: str,
        lang: str,
        customer: str | None,
        *,
        agent: str | None = None,
        wait: timedelta | None = None,
        reply_by: datetime | None = None,
    ) -> str | None:
        lang = language(lang)
        company = self.company
        ctx: dict[str, Any] = copy.deepcopy(blank(SAMPLES[lang]))
        ctx["customer"].update(name=customer, language=lang)
        ctx["company"].update(
            name=company.name, address=company.address or None, phone=company.phone or None,
            email=company.email or None, website=company.website or None,
        )  # fmt: skip
        ctx["team"].update(name=company.name, department=company.department)
        ctx["agent"].update(name=agent, department=company.department)
        ctx["hold"] = {"wait": wait}
        ctx["reply_by"] = reply_by
        rules = self.rules()
        zone = rules.policies.default_calendar.timezone if rules is not None else "UTC"
        try:
            text = self.templates.render(ChannelKind.CHAT, name, lang, "txt", ctx, tz=zone).text
        except TemplateError:
            return None
        return text.strip() or None
