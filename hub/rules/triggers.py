"""`triggers.yaml`: when something happens (`when`), if the conditions hold (`if`), do this (`then`).

Triggers are evaluated in file order, each at most once per event; a trigger with `stop: true`
that fires ends the evaluation of that event. Evaluation (`evaluate`) is pure; applying the
actions is `hub.rules.actions`, firing them exactly once is `hub.rules.engine`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from hub.models import ConversationStatus, Priority
from hub.rules.conditions import Conditions, Facts, matches
from hub.rules.durations import Duration

if TYPE_CHECKING:
    from hub.rules.loader import RuleSet

EVENTS = (
    "message.received",
    "conversation.created",
    "conversation.status_changed",
    "conversation.assigned",
    "sla.warning",
    "sla.breached",
    "call.missed",
    "call.waiting_long",
    "voicemail.received",
    "fax.received",
)
"""The events a trigger can react to, besides the time-based `unreplied_after` and `waiting_since`."""
TIME_KINDS = ("unreplied_after", "waiting_since")
NAME = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
TEMPLATE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}(/[a-z0-9][a-z0-9_-]{0,62})?$")


def _event_name(value: str) -> str:
    if value not in EVENTS:
        raise ValueError(
            f"expected one of: {', '.join(EVENTS)}, or a mapping with unreplied_after or "
            f"waiting_since; got {value!r}"
        )
    return value


EventName = Annotated[str, AfterValidator(_event_name)]


class TimeWhen(BaseModel):
    """A time-based trigger: exactly one of `unreplied_after` or `waiting_since`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    unreplied_after: Duration | None = None
    waiting_since: Duration | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> TimeWhen:
        if (self.unreplied_after is None) == (self.waiting_since is None):
            raise ValueError("expected exactly one of: unreplied_after, waiting_since")
        return self

    @property
    def kind(self) -> str:
        """`unreplied_after` or `waiting_since`."""
        return "unreplied_after" if self.unreplied_after is not None else "waiting_since"

    @property
    def after(self) -> timedelta:
        """How long after the anchor the trigger is due."""
        value = self.unreplied_after or self.waiting_since
        assert value is not None
        return value


def _when_kind(value: Any) -> str:
    if isinstance(value, dict | TimeWhen):
        return "__time__"
    if isinstance(value, list | tuple):
        return "__events__"
    return "__event__"


When = Annotated[
    Annotated[EventName, Tag("__event__")]
    | Annotated[tuple[EventName, ...], Tag("__events__")]
    | Annotated[TimeWhen, Tag("__time__")],
    Discriminator(_when_kind),
]


def _template_name(value: str) -> str:
    if not TEMPLATE_NAME.match(value):
        raise ValueError(
            f"expected a template name like acknowledgement or email/complaint_reply "
            f"(lower-case letters, digits, _ and -); got {value!r}"
        )
    return value


TemplateName = Annotated[str, AfterValidator(_template_name)]
Text = Annotated[str, Field(min_length=1, max_length=4000)]
Ref = Annotated[str, Field(min_length=1, max_length=100)]


def _words(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Tags = Annotated[tuple[Annotated[str, Field(min_length=1, max_length=64)], ...], BeforeValidator(_words)]


def _one_key(key: str) -> Any:
    """Accept `action: value` for a one-argument action written without its argument's name."""

    def wrap(value: Any) -> Any:
        return value if isinstance(value, dict) else {key: value}

    return BeforeValidator(wrap)


class Args(BaseModel):
    """An action's arguments."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentArgs(Args):
    """`assign: {agent: USERNAME}`."""

    agent: Ref


class TeamArgs(Args):
    """`assign_round_robin` / `escalate`: `{team: NAME}`."""

    team: Ref


class TemplateArgs(Args):
    """`reply_with_template: {template: NAME}`."""

    template: TemplateName


class NoteArgs(Args):
    """`add_note: {text: ...}`."""

    text: Text


class MessageArgs(Args):
    """`notify_supervisors: {message: ...}`."""

    message: Text


def _settable(value: ConversationStatus) -> ConversationStatus:
    if value is ConversationStatus.SNOOZED:
        raise ValueError("expected one of: open, pending, resolved (snoozing needs a time)")
    return value


def _priority(value: Any) -> Priority:
    names = [p.name.lower() for p in Priority]
    if not isinstance(value, str) or value.lower() not in names:
        raise ValueError(f"expected one of: {', '.join(names)}; got {value!r}")
    return Priority[value.upper()]


class Action(BaseModel):
    """One action of `then`: a mapping with exactly one of these keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    assign: Annotated[AgentArgs, _one_key("agent")] | None = None
    assign_round_robin: Annotated[TeamArgs, _one_key("team")] | None = None
    tag: Tags | None = None
    untag: Tags | None = None
    set_priority: Annotated[Priority, BeforeValidator(_priority)] | None = None
    set_status: Annotated[ConversationStatus, AfterValidator(_settable)] | None = None
    reply_with_template: Annotated[TemplateArgs, _one_key("template")] | None = None
    add_note: Annotated[NoteArgs, _one_key("text")] | None = None
    notify_supervisors: Annotated[MessageArgs, _one_key("message")] | None = None
    escalate: Annotated[TeamArgs, _one_key("team")] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Action:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1:
            names = ", ".join(type(self).model_fields)
            got = ", ".join(given) or "nothing"
            raise ValueError(f"expected exactly one action of: {names}; got {got}")
        return self

    @property
    def name(self) -> str:
        """The action's key."""
        return next(name for name in type(self).model_fields if getattr(self, name) is not None)

    def summary(self) -> dict[str, Any]:
        """`{name: argument}`, JSON-ready, for audit events and `rules test`."""
        value = getattr(self, self.name)
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        elif isinstance(value, Priority):
            value = value.name.lower()
        elif isinstance(value, ConversationStatus):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        return {self.name: value}


def _some_actions(value: tuple[Action, ...]) -> tuple[Action, ...]:
    if not value:
        raise ValueError("expected at least one action")
    return value


class Trigger(BaseModel):
    """One trigger: `name`, `when`, optional `if`, `then` (one action or more), optional `stop`."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: Annotated[str, Field(pattern=NAME)]
    description: str | None = None
    enabled: bool = True
    when: When
    if_: Conditions | None = Field(default=None, alias="if")
    then: Annotated[tuple[Action, ...], AfterValidator(_some_actions)]
    stop: bool = False
    calendar: Annotated[str, Field(min_length=1)] = "default"

    @property
    def events(self) -> tuple[str, ...]:
        """The events this trigger reacts to (none for time-based triggers)."""
        if isinstance(self.when, TimeWhen):
            return ()
        return (self.when,) if isinstance(self.when, str) else tuple(self.when)

    @property
    def timed(self) -> TimeWhen | None:
        """The time-based `when`, if it is one."""
        return self.when if isinstance(self.when, TimeWhen) else None


class TriggersFile(BaseModel):
    """The file: `triggers: [...]`, evaluated in this order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    triggers: tuple[Trigger, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleEvent:
    """Something that happened, for the triggers: its kind, a stable id, and what it is about.

    For a time-based firing, `kind` is `unreplied_after` or `waiting_since` and `trigger`
    names the one trigger it is for.
    """

    kind: str
    id: str
    conversation_id: int | None
    at: datetime
    message_id: int | None = None
    trigger: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Firing:
    """A trigger that fires for an event, and the actions it asks for, in order."""

    trigger: str
    actions: tuple[Action, ...]

    def summary(self) -> list[dict[str, Any]]:
        """The actions as JSON-ready `{name: argument}` items."""
        return [a.summary() for a in self.actions]


def evaluate(ruleset: RuleSet, event: RuleEvent, facts: Facts, now: datetime) -> list[Firing]:
    """The triggers that fire for an event, in file order, up to the first firing one with `stop`.

    Every trigger sees the same facts (those of the event, not changed by earlier triggers'
    actions); `in_business_hours` is taken from the trigger's calendar at `now`.
    """
    firings: list[Firing] = []
    for trigger in candidates(ruleset.triggers.triggers, event):
        calendar = ruleset.calendars.get(trigger.calendar)
        facts_now = facts if calendar is None else replace(facts, in_business_hours=calendar.is_open(now))
        if matches(trigger.if_, facts_now):
            firings.append(Firing(trigger.name, trigger.then))
            if trigger.stop:
                break
    return firings


def candidates(triggers: Sequence[Trigger], event: RuleEvent) -> list[Trigger]:
    """The enabled triggers that react to this kind of event."""
    if event.kind in TIME_KINDS:
        return [t for t in triggers if t.enabled and t.name == event.trigger and t.timed is not None]
    return [t for t in triggers if t.enabled and event.kind in t.events]
