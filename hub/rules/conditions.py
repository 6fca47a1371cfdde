"""Conditions over a conversation and its message: the `if` of triggers and the `when` of SLA policies.

A condition is `{field, operator, value}`; `Conditions` is `{all: [...], any: [...]}`, whose
items are conditions or nested groups. Every field allows only the operators that make sense
for it, and every value is checked when the rule file is loaded (regular expressions are
compiled then), so evaluation, `matches`, is pure and cannot fail.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationInfo,
    field_validator,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.errors import NotFound
from hub.models import ChannelKind, ConversationStatus, Direction, Priority
from hub.sla.calendar import BusinessCalendar
from hub.store import schema


@dataclass(frozen=True, slots=True)
class Facts:
    """What conditions are evaluated on: one conversation (and its latest message), at one moment.

    `mailbox` is the channel account (mailbox, phone line) the conversation is on; `body`,
    `subject` and `sender` come from the message the event is about (or the latest inbound
    one); `in_business_hours` is None when no calendar was given.
    """

    channel: str
    mailbox: str | None
    subject: str
    body: str
    sender: str
    language: str
    tags: frozenset[str]
    priority: str
    status: str
    team: str | None
    assignee: str | None
    in_business_hours: bool | None
    contact_name: str | None
    conversation_id: int | None = None
    message_id: int | None = None


TEXT_OPERATORS = (
    "is",
    "is_not",
    "in",
    "not_in",
    "contains",
    "not_contains",
    "matches",
    "starts_with",
    "ends_with",
)
CHOICE_OPERATORS = ("is", "is_not", "in", "not_in")
EMPTY_OPERATORS = ("is_empty", "is_not_empty")
PRIORITIES = tuple(p.name.lower() for p in Priority)

OPERATORS: dict[str, tuple[str, ...]] = {
    "channel": CHOICE_OPERATORS,
    "mailbox": TEXT_OPERATORS + EMPTY_OPERATORS,
    "subject": TEXT_OPERATORS + EMPTY_OPERATORS,
    "body": TEXT_OPERATORS + EMPTY_OPERATORS,
    "sender": TEXT_OPERATORS,
    "language": CHOICE_OPERATORS,
    "tags": ("contains", "not_contains", *EMPTY_OPERATORS),
    "priority": ("is", "is_not", "in", "not_in", "at_least", "at_most"),
    "status": CHOICE_OPERATORS,
    "team": TEXT_OPERATORS + EMPTY_OPERATORS,
    "assignee": TEXT_OPERATORS + EMPTY_OPERATORS,
    "in_business_hours": ("is",),
    "contact_name": TEXT_OPERATORS + EMPTY_OPERATORS,
}
"""The fields a condition may test, and the operators each one allows."""

CHOICES: dict[str, tuple[str, ...]] = {
    "channel": tuple(c.value for c in ChannelKind),
    "status": tuple(s.value for s in ConversationStatus),
    "priority": PRIORITIES,
    "language": ("en", "zh"),
}
LIST_OPERATORS = frozenset({"in", "not_in"})


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


_fold_value = functools.lru_cache(maxsize=1024)(_fold)
"""`_fold` of a condition's value, which is folded at every test."""


class Condition(BaseModel):
    """One test: `field` compared by `operator` with `value` (text comparisons ignore case)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    operator: str
    value: Any = Field(default=None, validate_default=True)
    _pattern: re.Pattern[str] | None = PrivateAttr(default=None)

    @field_validator("field")
    @classmethod
    def _known_field(cls, value: str) -> str:
        if value not in OPERATORS:
            raise ValueError(f"expected one of: {', '.join(OPERATORS)}; got {value!r}")
        return value

    @field_validator("operator")
    @classmethod
    def _operator_fits(cls, value: str, info: ValidationInfo) -> str:
        field = info.data.get("field")
        if field is None:
            return value
        allowed = OPERATORS[field]
        if value not in allowed:
            raise ValueError(f"{field} allows the operators: {', '.join(allowed)}; got {value!r}")
        return value

    @field_validator("value")
    @classmethod
    def _value_fits(cls, value: Any, info: ValidationInfo) -> Any:
        field, operator = info.data.get("field"), info.data.get("operator")
        if field is None or operator is None:
            return value
        return _check_value(field, operator, value)

    def model_post_init(self, context: Any, /) -> None:
        """Compile the regular expression of a `matches` condition once."""
        if self.operator == "matches":
            self._pattern = re.compile(self.value, re.IGNORECASE)

    def test(self, facts: Facts) -> bool:
        """Whether the facts pass this condition."""
        actual = getattr(facts, self.field)
        op = self.operator
        if self.field == "in_business_hours":
            return actual is not None and actual is self.value
        if self.field == "tags":
            if op in EMPTY_OPERATORS:
                return (not actual) == (op == "is_empty")
            found = _fold_value(self.value) in actual
            return bool(found if op == "contains" else not found)
        if self.field == "priority" and op in ("at_least", "at_most"):
            have, want = PRIORITIES.index(actual), PRIORITIES.index(self.value)
            return have >= want if op == "at_least" else have <= want
        if op in EMPTY_OPERATORS:
            return (not actual) == (op == "is_empty")
        return _text_test(op, _fold(actual or ""), self.value, self._pattern)


def _text_test(op: str, actual: str, value: Any, pattern: re.Pattern[str] | None) -> bool:
    if op == "matches":
        assert pattern is not None
        return pattern.search(actual) is not None
    if op in LIST_OPERATORS:
        inside = actual in value
        return inside if op == "in" else not inside
    if op == "is":
        return bool(actual == value)
    if op == "is_not":
        return bool(actual != value)
    if op == "contains":
        return value in actual
    if op == "not_contains":
        return value not in actual
    if op == "starts_with":
        return actual.startswith(value)
    return actual.endswith(value)


def _check_value(field: str, operator: str, value: Any) -> Any:
    if field == "in_business_hours":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false; got {value!r}")
        return value
    if operator in EMPTY_OPERATORS:
        if value is not None:
            raise ValueError(f"{operator} takes no value; remove it")
        return None
    if operator in LIST_OPERATORS:
        items = value if isinstance(value, list) else None
        if not items or not all(isinstance(v, str) for v in items):
            raise ValueError(f"{operator} expects a list of text values, like [a, b]; got {value!r}")
        return tuple(_choice(field, v) for v in items)
    if not isinstance(value, str) or (not value and operator != "is"):
        raise ValueError(f"{operator} expects a text value; got {value!r}")
    if operator == "matches":
        try:
            re.compile(value, re.IGNORECASE)
        except re.error as err:
            raise ValueError(f"not a valid regular expression: {err}") from None
        return value
    return _choice(field, value)


def _choice(field: str, value: str) -> str:
    folded = _fold(value)
    choices = CHOICES.get(field)
    if choices is not None and folded not in choices:
        raise ValueError(f"expected one of: {', '.join(choices)}; got {value!r}")
    return folded


def _item_kind(value: Any) -> str:
    if isinstance(value, dict) and ("all" in value or "any" in value):
        return "__group__"
    return "__condition__"


Item = Annotated[
    Annotated[Condition, Tag("__condition__")] | Annotated["Conditions", Tag("__group__")],
    Discriminator(_item_kind),
]


class Conditions(BaseModel):
    """All of `all` and at least one of `any` (when `any` is not empty); empty is always true."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    all: tuple[Item, ...] = ()
    any: tuple[Item, ...] = Field(default=())

    def test(self, facts: Facts) -> bool:
        """Whether the facts pass this group."""
        for item in self.all:
            if not item.test(facts):
                return False
        return not self.any or any(item.test(facts) for item in self.any)


Conditions.model_rebuild()


def matches(conditions: Conditions | None, facts: Facts) -> bool:
    """Whether the facts pass the conditions; no conditions always pass."""
    return conditions is None or conditions.test(facts)


async def load_facts(
    conn: AsyncConnection,
    conversation_id: int,
    message_id: int | None,
    calendar: BusinessCalendar | None,
    now: datetime,
) -> Facts:
    """The facts of a conversation from the store; the message is `message_id` or the latest inbound."""
    c, ct, tm, ag = schema.conversations, schema.contacts, schema.teams, schema.agents
    conv = (
        (
            await conn.execute(
                select(
                    c,
                    ct.c.name.label("contact_name"),
                    ct.c.language.label("contact_language"),
                    tm.c.name.label("team_name"),
                    ag.c.username.label("assignee_name"),
                )
                .outerjoin(ct, ct.c.id == c.c.contact_id)
                .outerjoin(tm, tm.c.id == c.c.team_id)
                .outerjoin(ag, ag.c.id == c.c.assignee_id)
                .where(c.c.id == conversation_id)
            )
        )
        .mappings()
        .first()
    )
    if conv is None:
        raise NotFound(f"conversation {conversation_id} does not exist")
    m = schema.messages
    stmt = select(m.c.id, m.c.subject, m.c.text, m.c.sender, m.c.meta)
    if message_id is not None:
        stmt = stmt.where(m.c.id == message_id)
    else:
        stmt = stmt.where(
            m.c.conversation_id == conversation_id, m.c.direction == Direction.INBOUND.value
        ).order_by(m.c.created_at.desc(), m.c.id.desc())
    message = (await conn.execute(stmt.limit(1))).mappings().first()
    tg = schema.conversation_tags
    tags = frozenset(
        (await conn.execute(select(tg.c.tag).where(tg.c.conversation_id == conversation_id))).scalars()
    )
    team, assignee = conv["team_name"], conv["assignee_name"]
    meta: dict[str, Any] = dict(message["meta"] or {}) if message else {}
    language = str(meta.get("language") or conv["contact_language"] or "")
    return Facts(
        channel=conv["channel"],
        mailbox=conv["channel_account"],
        subject=(message["subject"] if message else None) or conv["subject"] or "",
        body=message["text"] if message else "",
        sender=(message["sender"] if message else None) or "",
        language=language,
        tags=tags,
        priority=Priority(conv["priority"]).name.lower(),
        status=conv["status"],
        team=team,
        assignee=assignee,
        in_business_hours=calendar.is_open(now) if calendar is not None else None,
        contact_name=conv["contact_name"] or meta.get("sender_name"),
        conversation_id=conversation_id,
        message_id=message["id"] if message else None,
    )
