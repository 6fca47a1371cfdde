"""SLA policies from `rules/sla.yaml`: targets per metric, chosen by the first policy whose `when` matches.

```yaml
defaults: {calendar: default, pause_statuses: [pending], warn_before: 15m, human_only: true}
phone: {country: GB, answer_within_rings: 3, ring_cycle_seconds: {US: 6, CN: 5, GB: 3}}
promises: {margin: 1.5, rounding: 1h}
timers: {confirm_receipt_after: 16h, follow_up_after: 16h, fax_confirm_within: 2h,
         customer_daytime: "09:00-20:00"}
policies:
  - name: complaints
    when: {all: [{field: tags, operator: contains, value: complaint}]}
    first_response: 1h
    resolution: 8h
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.models import ConversationStatus
from hub.rules.conditions import Conditions, Facts
from hub.rules.durations import Duration
from hub.sla.calendar import BusinessCalendar, parse_hours
from hub.sla.deadlines import Targets
from hub.sla.rings import AnswerTarget


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Strict):
    """Values every policy inherits unless it sets its own."""

    calendar: str = "default"
    pause_statuses: list[ConversationStatus] = Field(default_factory=lambda: [ConversationStatus.PENDING])
    warn_before: Duration = timedelta(minutes=15)
    human_only: bool = True


class Phone(_Strict):
    """The three-ring answer SLA (P1): rings by the locale's ring cycle, or a target in seconds."""

    country: str = "GB"
    answer_within_rings: int = Field(3, ge=1, le=20)
    answer_within_seconds: float | None = Field(None, gt=0)
    ring_cycle_seconds: dict[str, float] = Field(default_factory=dict)


class Promises(_Strict):
    """Reply-time promises (E1, L8): the internal target times a margin, rounded up."""

    margin: float = Field(1.5, ge=1.0, le=10.0)
    rounding: Duration = timedelta(hours=1)


class Timers(_Strict):
    """Follow-up work scheduled on the hub's timers (E2, C3, F3, P6)."""

    confirm_receipt_after: Duration | None = timedelta(hours=16)
    receipt_check_within: Duration = timedelta(hours=4)
    follow_up_after: Duration | None = timedelta(hours=16)
    follow_up_within: Duration = timedelta(hours=8)
    fax_confirm_within: Duration = timedelta(hours=2)
    callback_within: Duration = timedelta(hours=2)
    customer_daytime: str = "09:00-20:00"

    @field_validator("customer_daytime")
    @classmethod
    def _daytime(cls, value: str) -> str:
        parse_hours([value])
        return value


class PhoneAnswer(_Strict):
    """A policy's own phone answer target."""

    rings: int | None = Field(None, ge=1, le=20)
    seconds: float | None = Field(None, gt=0)


class PolicyFile(_Strict):
    """One policy as written in the file."""

    name: str = Field(min_length=1, max_length=100)
    when: Conditions | None = None
    calendar: str | None = None
    first_response: Duration | None = None
    next_response: Duration | None = None
    periodic_update: Duration | None = None
    resolution: Duration | None = None
    callback: Duration | None = None
    phone_answer: PhoneAnswer | None = None
    pause_statuses: list[ConversationStatus] | None = None
    warn_before: Duration | None = None
    human_only: bool | None = None


class SlaFile(_Strict):
    """`rules/sla.yaml`."""

    defaults: Defaults = Field(default_factory=Defaults)
    phone: Phone = Field(default_factory=Phone)
    promises: Promises = Field(default_factory=Promises)
    timers: Timers = Field(default_factory=Timers)
    policies: list[PolicyFile] = Field(default_factory=list)

    @field_validator("policies")
    @classmethod
    def _unique(cls, policies: list[PolicyFile]) -> list[PolicyFile]:
        seen: set[str] = set()
        for p in policies:
            if p.name in seen:
                raise ValueError(f"two policies are named {p.name!r}")
            seen.add(p.name)
        return policies

    def calendar_names(self) -> set[str]:
        """Every calendar the file refers to (for the cross-file check)."""
        return {self.defaults.calendar} | {p.calendar for p in self.policies if p.calendar}


@dataclass(frozen=True, slots=True)
class Policy:
    """A resolved policy: its targets in business time on one calendar."""

    name: str
    when: Conditions | None
    calendar: BusinessCalendar
    targets: Targets
    callback: timedelta | None
    answer: AnswerTarget


@dataclass(frozen=True, slots=True)
class PolicyBook:
    """All policies in file order, and the settings shared by them."""

    policies: tuple[Policy, ...]
    default_calendar: BusinessCalendar
    answer: AnswerTarget
    promises: Promises
    timers: Timers

    @classmethod
    def build(cls, file: SlaFile, calendars: Mapping[str, BusinessCalendar]) -> PolicyBook:
        """Resolve a validated file against the calendars; KeyError names a missing calendar."""
        d = file.defaults
        base = _answer(file.phone, None)
        policies = []
        for p in file.policies:
            calendar = calendars[p.calendar or d.calendar]
            targets = Targets(
                first_response=p.first_response,
                next_response=p.next_response,
                periodic_update=p.periodic_update,
                resolution=p.resolution,
                pause_statuses=frozenset(
                    p.pause_statuses if p.pause_statuses is not None else d.pause_statuses
                ),
                warn_before=p.warn_before if p.warn_before is not None else d.warn_before,
                human_only=p.human_only if p.human_only is not None else d.human_only,
            )
            answer = _answer(file.phone, p.phone_answer)
            policies.append(Policy(p.name, p.when, calendar, targets, p.callback, answer))
        return cls(tuple(policies), calendars[d.calendar], base, file.promises, file.timers)

    def select(self, facts: Facts) -> Policy | None:
        """The first policy whose conditions the facts pass."""
        for p in self.policies:
            if p.when is None or p.when.test(facts):
                return p
        return None


def _answer(phone: Phone, own: PhoneAnswer | None) -> AnswerTarget:
    rings = own.rings if own and own.rings else phone.answer_within_rings
    seconds = own.seconds if own and own.seconds else phone.answer_within_seconds
    cycle = phone.ring_cycle_seconds.get(phone.country.upper())
    target = AnswerTarget.for_country(phone.country, rings=rings, seconds=seconds)
    if cycle is not None:
        target = AnswerTarget(rings=target.rings, ring_cycle_seconds=cycle, seconds=target.seconds)
    return target
