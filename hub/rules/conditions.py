"""Conditions (`when` / `if`): all or any of field, operator, value, evaluated on a conversation's facts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.models import Priority

Operator = Literal[
    "is", "is_not", "in", "not_in", "contains", "not_contains", "matches", "starts_with", "ends_with",
    "is_empty", "at_least",
]  # fmt: skip

TEXT_FIELDS = frozenset(
    {"channel", "mailbox", "subject", "body", "sender", "language", "status", "team", "assignee"}
)


@dataclass(frozen=True, slots=True)
class Facts:
    """What conditions can look at: one conversation, and the message that prompted the question."""

    channel: str
    mailbox: str | None
    subject: str
    body: str
    sender: str
    language: str
    tags: frozenset[str]
    priority: str
    status: str
    team: str | None = None
    assignee: str | None = None
    in_business_hours: bool | None = None
    contact_name: str | None = None


class Condition(BaseModel):
    """One test of a field against a value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: Literal[
        "channel", "mailbox", "subject", "body", "sender", "language", "tags", "priority", "status", "team",
        "assignee", "in_business_hours",
    ]  # fmt: skip
    operator: Operator
    value: Any = None

    @model_validator(mode="after")
    def _fits(self) -> Condition:
        allowed = _OPERATORS[self.field]
        if self.operator not in allowed:
            raise ValueError(
                f"operator {self.operator!r} does not fit {self.field!r}; use one of {', '.join(allowed)}"
            )
        if self.operator in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"{self.operator!r} needs a list of values")
        if self.operator == "matches":
            try:
                re.compile(str(self.value), re.IGNORECASE)
            except re.error as err:
                raise ValueError(f"not a valid regular expression: {err}") from None
        if self.field == "priority":
            values = self.value if isinstance(self.value, list) else [self.value]
            bad = [v for v in values if str(v).upper() not in Priority.__members__]
            if bad:
                raise ValueError(f"unknown priority {bad[0]!r}; use one of low, normal, high, urgent")
        if self.field == "in_business_hours" and not isinstance(self.value, bool):
            raise ValueError("in_business_hours needs true or false")
        return self

    def test(self, facts: Facts) -> bool:
        """Whether the facts pass this condition."""
        actual = getattr(facts, self.field)
        op = self.operator
        if self.field == "tags":
            tags: frozenset[str] = actual
            if op == "is_empty":
                return not tags if self.value in (None, True) else bool(tags)
            wanted = {str(v).lower() for v in (self.value if isinstance(self.value, list) else [self.value])}
            hit = bool(wanted & {t.lower() for t in tags})
            return hit if op == "contains" else not hit
        if self.field == "priority" and op == "at_least":
            return bool(Priority[actual.upper()] >= Priority[str(self.value).upper()])
        if self.field == "in_business_hours":
            return actual is (self.value if op == "is" else not self.value)
        text = "" if actual is None else str(actual)
        return _text_test(op, text, self.value)


def _text_test(op: str, text: str, value: Any) -> bool:
    low = text.casefold()
    if op == "is_empty":
        return not text if value in (None, True) else bool(text)
    if op in ("in", "not_in"):
        hit = low in {str(v).casefold() for v in value}
        return hit if op == "in" else not hit
    if op == "matches":
        return re.search(str(value), text, re.IGNORECASE) is not None
    needle = str(value).casefold()
    results = {
        "is": low == needle,
        "is_not": low != needle,
        "contains": needle in low,
        "not_contains": needle not in low,
        "starts_with": low.startswith(needle),
        "ends_with": low.endswith(needle),
    }
    return results[op]


_TEXT_OPS: tuple[str, ...] = (
    "is", "is_not", "in", "not_in", "contains", "not_contains", "matches",
    "starts_with", "ends_with", "is_empty",
)  # fmt: skip
_OPERATORS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(TEXT_FIELDS, _TEXT_OPS),
    "tags": ("contains", "not_contains", "is_empty"),
    "priority": ("is", "is_not", "in", "not_in", "at_least"),
    "in_business_hours": ("is", "is_not"),
}


class Conditions(BaseModel):
    """All of these and any of those; empty means always."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    all: list[Condition | Conditions] = Field(default_factory=list)
    any: list[Condition | Conditions] = Field(default_factory=list)

    def test(self, facts: Facts) -> bool:
        """Whether the facts pass every `all` item and, if there are `any` items, one of them."""
        if not all(item.test(facts) for item in self.all):
            return False
        return not self.any or any(item.test(facts) for item in self.any)


def matches(conditions: Conditions | None, facts: Facts) -> bool:
    """Whether facts pass the conditions (no conditions: always)."""
    return conditions is None or conditions.test(facts)
