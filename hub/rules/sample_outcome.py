"""What `omnihub rules test` adds to the triggers: the SLA policy, the acknowledgement with its promise, and
the etiquette findings on the sample, all computed without storing or sending anything."""

from __future__ import annotations

from typing import Any

from hub.errors import TemplateError
from hub.etiquette import Draft, check
from hub.models import ChannelKind
from hub.replies import blank
from hub.rules.durations import format_duration
from hub.rules.loader import RuleSet
from hub.rules.sample import Sample
from hub.sla.promise import format_promise, promise_due
from hub.templates import SAMPLES, Templates
from hub.templates.dates import language

ACKNOWLEDGE = "acknowledge"


def outcome(ruleset: RuleSet, sample: Sample, templates: Templates) -> dict[str, Any]:
    """The `sla`, `acknowledgement` and `etiquette` sections of the report."""
    facts = sample.facts
    lang = language(facts.language or "en")
    book = ruleset.policies
    policy = book.select(facts)
    sections: dict[str, Any] = {"sla": None, "acknowledgement": None}
    if policy is not None:
        targets = {m: getattr(policy.targets, m) for m in ("first_response", "next_response", "resolution")}
        shown = {k: format_duration(v) for k, v in targets.items() if v is not None}
        sections["sla"] = {"policy": policy.name, **shown}
        target = policy.targets.first_response or policy.targets.next_response
        if target is not None:
            due = promise_due(
                sample.received_at, target, book.promises.margin, policy.calendar, book.promises.rounding
            )
            zone = policy.calendar.timezone
            sections["acknowledgement"] = {
                "promise_due_at": due.isoformat(),
                "promise": format_promise(due, lang, zone),
                "text": _acknowledgement(templates, facts.channel, lang, due, facts.contact_name, zone),
            }
    channel = ChannelKind(facts.channel)
    draft = Draft(channel, facts.subject or None, facts.body, is_reply=False)
    sections["etiquette"] = [f.to_dict() for f in check(draft, ruleset.etiquette, lang)]
    return sections


def _acknowledgement(
    templates: Templates, channel: str, lang: str, due: Any, name: str | None, zone: Any
) -> str | None:
    ctx: dict[str, Any] = blank(SAMPLES[language(lang)])
    ctx["customer"]["name"] = name
    ctx["conversation"]["id"] = 0
    ctx["team"]["name"] = "Customer Support"
    ctx["reply_by"] = due
    try:
        return templates.render(channel, ACKNOWLEDGE, lang, "txt", ctx, tz=zone).text
    except TemplateError as err:
        return f"(cannot render the acknowledgement: {err})"
