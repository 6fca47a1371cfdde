"""`omnihub rules test`: what the rules would do with a sample message, without storing or sending.

A sample is an e-mail file (`.eml`) or a JSON message shaped like the API channel's inbound
body, with optional `channel`, `mailbox`, `tags`, `priority`, `status`, `team` and `assignee`
to describe the conversation it lands in. The report is a mapping of sections, so more
sections (the acknowledgement and its promise, the etiquette findings) can be added.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parseaddr, parsedate_to_datetime
from pathlib import Path
from typing import Any

from hub.errors import HubError
from hub.models import ChannelKind, ConversationStatus, Priority
from hub.rules.conditions import Facts
from hub.rules.loader import RuleSet
from hub.rules.triggers import RuleEvent, evaluate

CJK = re.compile(r"[\u3400-\u9fff]")
TAGS = re.compile(r"<[^>]+>")


@dataclass(frozen=True, slots=True)
class Sample:
    """A sample message as facts, and when it arrived."""

    facts: Facts
    received_at: datetime
    new_conversation: bool = True


def load_sample(path: Path, now: datetime) -> Sample:
    """Read a `.eml` or JSON sample; raise HubError saying what is wrong with it."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise HubError(f"{path}: cannot read: {err.strerror}") from None
    if path.suffix.lower() == ".json" or raw.lstrip()[:1] == b"{":
        return _from_json(path, raw, now)
    return _from_eml(raw, now)


def _from_eml(raw: bytes, now: datetime) -> Sample:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    body_part = msg.get_body(preferencelist=("plain", "html"))
    body = ""
    if body_part is not None:
        body = str(body_part.get_content())
        if body_part.get_content_type() == "text/html":
            body = TAGS.sub(" ", body)
    name, address = parseaddr(str(msg.get("From", "")))
    _, mailbox = parseaddr(str(msg.get("To", "")))
    subject = str(msg.get("Subject", ""))
    received = now
    if msg.get("Date"):
        try:
            received = parsedate_to_datetime(str(msg["Date"]))
        except (TypeError, ValueError):
            received = now
    if received.tzinfo is None:
        received = received.replace(tzinfo=UTC)
    language = str(msg.get("Content-Language", "")).split(",")[0].strip().lower()[:2]
    facts = Facts(
        channel=ChannelKind.EMAIL.value,
        mailbox=mailbox or None,
        subject=subject,
        body=body,
        sender=address,
        language=language or _guess_language(subject + body),
        tags=frozenset(),
        priority=Priority.NORMAL.name.lower(),
        status=ConversationStatus.OPEN.value,
        team=None,
        assignee=None,
        in_business_hours=None,
        contact_name=name or None,
    )
    return Sample(facts, received)


def _from_json(path: Path, raw: bytes, now: datetime) -> Sample:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise HubError(f"{path}: not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise HubError(f"{path}: expected a JSON object")
    sender = data.get("sender") or {}
    if isinstance(sender, str):
        sender = {"address": sender}
    text = str(data.get("text") or data.get("body") or "")
    subject = str(data.get("subject") or "")
    received = now
    if data.get("received_at"):
        try:
            received = datetime.fromisoformat(str(data["received_at"]))
        except ValueError:
            raise HubError(
                f"{path}: received_at: expected an ISO time like 2026-11-23T08:30:00+00:00"
            ) from None
        if received.tzinfo is None:
            raise HubError(f"{path}: received_at: needs a time zone")
    channel = str(data.get("channel") or "api")
    if channel not in {c.value for c in ChannelKind}:
        raise HubError(f"{path}: channel: expected one of {', '.join(c.value for c in ChannelKind)}")
    facts = Facts(
        channel=channel,
        mailbox=data.get("mailbox"),
        subject=subject,
        body=text,
        sender=str(sender.get("address") or ""),
        language=str(data.get("language") or _guess_language(subject + text)),
        tags=frozenset(str(t).lower() for t in data.get("tags") or ()),
        priority=str(data.get("priority") or "normal"),
        status=str(data.get("status") or "open"),
        team=data.get("team"),
        assignee=data.get("assignee"),
        in_business_hours=None,
        contact_name=sender.get("name"),
    )
    return Sample(facts, received, new_conversation=not data.get("existing_conversation", False))


def _guess_language(text: str) -> str:
    return "zh" if CJK.search(text) else "en"


def report(ruleset: RuleSet, sample: Sample) -> dict[str, Any]:
    """What would happen: the message as the rules see it, and the triggers that fire with their actions."""
    kinds = (["conversation.created"] if sample.new_conversation else []) + ["message.received"]
    fired = []
    for kind in kinds:
        event = RuleEvent(kind, f"sample:{kind}", None, sample.received_at)
        for firing in evaluate(ruleset, event, sample.facts, sample.received_at):
            fired.append({"event": kind, "trigger": firing.trigger, "actions": firing.summary()})
    calendar = ruleset.calendars.get("default")
    f = sample.facts
    return {
        "message": {
            "channel": f.channel,
            "mailbox": f.mailbox,
            "sender": f.sender,
            "subject": f.subject,
            "language": f.language,
            "received_at": sample.received_at.isoformat(),
            "in_business_hours": calendar.is_open(sample.received_at) if calendar else None,
        },
        "rules_version": ruleset.version,
        "triggers": fired,
    }


def format_report(data: dict[str, Any]) -> str:
    """The report as text: one section per key."""
    lines = [f"rules version {data['rules_version']}"]
    message = data["message"]
    lines.append("message:")
    lines.extend(f"  {key}: {value}" for key, value in message.items())
    lines.append("triggers:" if data["triggers"] else "triggers: none fire")
    for item in data["triggers"]:
        lines.append(f"  {item['trigger']} (on {item['event']})")
        for action in item["actions"]:
            for name, value in action.items():
                lines.append(f"    {name}: {json.dumps(value, ensure_ascii=False)}")
    for section, value in data.items():
        if section in ("rules_version", "message", "triggers"):
            continue
        if isinstance(value, dict):
            lines.append(f"{section}:")
            lines.extend(f"  {key}: {_shown(item)}" for key, item in value.items())
        elif isinstance(value, list):
            lines.append(f"{section}:" if value else f"{section}: none")
            lines.extend(f"  - {_shown(item)}" for item in value)
        else:
            lines.append(f"{section}: {_shown(value)}")
    return "\n".join(lines)


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return value.replace("\n", "\n    ")
    if isinstance(value, dict) and "rule_id" in value:
        return f"{value['rule_id']} {value['severity']}: {value['message']}"
    return json.dumps(value, ensure_ascii=False)
