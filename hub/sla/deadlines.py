"""SLA deadlines computed from a conversation's history, in business time, with pauses.

Pure functions: the same history, targets, calendar and `now` give the same deadlines, so a
status change, a reopen or a rules reload only needs a recomputation. Each metric runs in
cycles; a cycle runs while the conversation is in a running status and stands still while
it is in a pause status (pending, by default), so time spent waiting on the customer does not
count against the team.

- first_response: from the first inbound message to the first reply.
- next_response: from a customer message that follows a reply to the next reply.
- periodic_update: from a reply to the next reply, while the conversation is unresolved.
- resolution: from the first inbound message until the conversation is resolved; a reopen
  continues the same cycle.

With `human_only` (the default) automatic mail, such as an acknowledgement, satisfies nothing.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hub.models import ConversationStatus
from hub.sla.calendar import MICRO, BusinessCalendar, instant, micros


class Metric(enum.StrEnum):
    """What a deadline measures."""

    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    PERIODIC_UPDATE = "periodic_update"
    RESOLUTION = "resolution"


class StepKind(enum.StrEnum):
    """The facts of a conversation's history that move SLA clocks."""

    INBOUND = "inbound"
    REPLY = "reply"
    AUTO_REPLY = "auto_reply"
    STATUS = "status"


@dataclass(frozen=True, slots=True)
class Step:
    """One fact, with the new status for STATUS steps."""

    at: datetime
    kind: StepKind
    status: ConversationStatus | None = None


@dataclass(frozen=True, slots=True)
class Targets:
    """A policy's targets (business time) and how its clocks behave."""

    first_response: timedelta | None = None
    next_response: timedelta | None = None
    periodic_update: timedelta | None = None
    resolution: timedelta | None = None
    pause_statuses: frozenset[ConversationStatus] = frozenset({ConversationStatus.PENDING})
    warn_before: timedelta = timedelta()
    human_only: bool = True

    def target(self, metric: Metric) -> timedelta | None:
        """The target of a metric, if the policy sets one."""
        return getattr(self, metric.value)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Deadline:
    """One cycle of one metric: when it started, when it is due, and how it ended."""

    metric: Metric
    started_at: datetime
    due_at: datetime | None
    warn_at: datetime | None
    fulfilled_at: datetime | None
    breached_at: datetime | None
    paused: bool

    @property
    def active(self) -> bool:
        """Whether the cycle still waits to be fulfilled."""
        return self.fulfilled_at is None


@dataclass(slots=True)
class _Cycle:
    """A cycle while the history is walked: its running intervals in epoch microseconds."""

    metric: Metric
    started_at: datetime
    running: list[tuple[int, int | None]] = field(default_factory=list)
    fulfilled_at: datetime | None = None
    fulfilled: int = 0

    def pause(self, at: int) -> None:
        if self.running and self.running[-1][1] is None:
            self.running[-1] = (self.running[-1][0], at)

    def resume(self, at: int) -> None:
        if not self.running or self.running[-1][1] is not None:
            self.running.append((at, None))

    def fulfil(self, at: datetime, us: int) -> None:
        self.pause(us)
        self.fulfilled_at, self.fulfilled = at, us


def deadlines(
    history: Sequence[Step], targets: Targets, calendar: BusinessCalendar, now: datetime
) -> list[Deadline]:
    """Every cycle of every metric the targets set, oldest first."""
    amounts = _amounts(targets)
    cycles: list[_Cycle] = []
    open_cycles: dict[Metric, _Cycle] = {}
    status = ConversationStatus.OPEN
    seen_inbound = replied = False
    pause_statuses = targets.pause_statuses

    def running() -> bool:
        return status not in pause_statuses and status is not ConversationStatus.RESOLVED

    def start(metric: Metric, at: datetime, us: int) -> None:
        if metric not in amounts or metric in open_cycles:
            return
        cycle = _Cycle(metric, at)
        if running():
            cycle.resume(us)
        cycles.append(cycle)
        open_cycles[metric] = cycle

    def fulfil(metric: Metric, at: datetime, us: int) -> None:
        cycle = open_cycles.pop(metric, None)
        if cycle is not None:
            cycle.fulfil(at, us)

    def change_status(new: ConversationStatus, at: datetime, us: int) -> None:
        nonlocal status
        was_resolved = status is ConversationStatus.RESOLVED
        status = new
        for cycle in open_cycles.values():
            if running():
                cycle.resume(us)
            else:
                cycle.pause(us)
        if new is ConversationStatus.RESOLVED:
            fulfil(Metric.RESOLUTION, at, us)
            open_cycles.pop(Metric.PERIODIC_UPDATE, None)
            open_cycles.pop(Metric.NEXT_RESPONSE, None)
        elif was_resolved:
            previous = next((c for c in reversed(cycles) if c.metric is Metric.RESOLUTION), None)
            if previous is not None and Metric.RESOLUTION not in open_cycles:
                previous.fulfilled_at = None
                if running():
                    previous.resume(us)
                open_cycles[Metric.RESOLUTION] = previous

    for step in sorted(history, key=_at):
        at, kind = step.at, step.kind
        us = micros(at)
        if kind is StepKind.INBOUND:
            if status is not ConversationStatus.OPEN:
                change_status(ConversationStatus.OPEN, at, us)
            if not seen_inbound:
                start(Metric.FIRST_RESPONSE, at, us)
                start(Metric.RESOLUTION, at, us)
            elif replied:
                start(Metric.NEXT_RESPONSE, at, us)
            seen_inbound = True
        elif kind is StepKind.REPLY or (kind is StepKind.AUTO_REPLY and not targets.human_only):
            fulfil(Metric.FIRST_RESPONSE, at, us)
            fulfil(Metric.NEXT_RESPONSE, at, us)
            fulfil(Metric.PERIODIC_UPDATE, at, us)
            replied = True
            if status is not ConversationStatus.RESOLVED:
                start(Metric.PERIODIC_UPDATE, at, us)
        elif kind is StepKind.STATUS and step.status is not None and step.status is not status:
            change_status(step.status, at, us)
    now_us = micros(now)
    return [_deadline(c, amounts[c.metric], calendar, now_us) for c in cycles]


def _at(step: Step) -> datetime:
    return step.at


@functools.lru_cache(maxsize=256)
def _amounts(targets: Targets) -> dict[Metric, tuple[int, int | None]]:
    """Per metric with a target: the target and the warning point, in microseconds of business time."""
    out = {}
    for metric in Metric:
        target = targets.target(metric)
        if target is not None:
            warn = max(target - targets.warn_before, timedelta()) // MICRO if targets.warn_before else None
            out[metric] = (target // MICRO, warn)
    return out


def _deadline(
    cycle: _Cycle, amounts: tuple[int, int | None], calendar: BusinessCalendar, now: int
) -> Deadline:
    target, warn_amount = amounts
    running = cycle.running
    reached = _reach(calendar, running, target)
    warn = None if warn_amount is None else _reach(calendar, running, warn_amount)
    fulfilled = cycle.fulfilled_at is not None
    end = cycle.fulfilled if fulfilled else now
    late = reached is not None and (reached < end or (reached == end and not fulfilled))
    due_at = None if reached is None else instant(reached)
    return Deadline(
        metric=cycle.metric,
        started_at=cycle.started_at,
        due_at=due_at,
        warn_at=None if warn is None else instant(warn),
        fulfilled_at=cycle.fulfilled_at,
        breached_at=due_at if late else None,
        paused=not fulfilled and (not running or running[-1][1] is not None),
    )


def _reach(calendar: BusinessCalendar, running: list[tuple[int, int | None]], amount: int) -> int | None:
    """When the running intervals (epoch µs) accumulate `amount` µs of business time (None if never)."""
    left = amount
    for start, end in running:
        if end is None:
            return calendar.add_micros(start, left)
        used = calendar.business_micros(start, end)
        if used >= left:
            return calendar.add_micros(start, left)
        left -= used
    return None
