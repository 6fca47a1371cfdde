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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hub.models import ConversationStatus
from hub.sla.calendar import BusinessCalendar


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
    metric: Metric
    started_at: datetime
    running: list[tuple[datetime, datetime | None]] = field(default_factory=list)
    fulfilled_at: datetime | None = None

    def pause(self, at: datetime) -> None:
        if self.running and self.running[-1][1] is None:
            self.running[-1] = (self.running[-1][0], at)

    def resume(self, at: datetime) -> None:
        if not self.running or self.running[-1][1] is not None:
            self.running.append((at, None))

    def fulfil(self, at: datetime) -> None:
        self.pause(at)
        self.fulfilled_at = at


def deadlines(
    history: Sequence[Step], targets: Targets, calendar: BusinessCalendar, now: datetime
) -> list[Deadline]:
    """Every cycle of every metric the targets set, oldest first."""
    cycles: list[_Cycle] = []
    open_cycles: dict[Metric, _Cycle] = {}
    status = ConversationStatus.OPEN
    seen_inbound = replied = False

    def running() -> bool:
        return status not in targets.pause_statuses and status is not ConversationStatus.RESOLVED

    def start(metric: Metric, at: datetime) -> None:
        if targets.target(metric) is None or metric in open_cycles:
            return
        cycle = _Cycle(metric, at)
        if running():
            cycle.resume(at)
        cycles.append(cycle)
        open_cycles[metric] = cycle

    def fulfil(metric: Metric, at: datetime) -> None:
        cycle = open_cycles.pop(metric, None)
        if cycle is not None:
            cycle.fulfil(at)

    def change_status(new: ConversationStatus, at: datetime) -> None:
        nonlocal status
        was_resolved = status is ConversationStatus.RESOLVED
        status = new
        for cycle in open_cycles.values():
            if running():
                cycle.resume(at)
            else:
                cycle.pause(at)
        if new is ConversationStatus.RESOLVED:
            fulfil(Metric.RESOLUTION, at)
            open_cycles.pop(Metric.PERIODIC_UPDATE, None)
            open_cycles.pop(Metric.NEXT_RESPONSE, None)
        elif was_resolved:
            previous = next((c for c in reversed(cycles) if c.metric is Metric.RESOLUTION), None)
            if previous is not None and Metric.RESOLUTION not in open_cycles:
                previous.fulfilled_at = None
                if running():
                    previous.resume(at)
                open_cycles[Metric.RESOLUTION] = previous

    for step in sorted(history, key=lambda s: s.at):
        if step.kind is StepKind.INBOUND:
            if status is not ConversationStatus.OPEN:
                change_status(ConversationStatus.OPEN, step.at)
            if not seen_inbound:
                start(Metric.FIRST_RESPONSE, step.at)
                start(Metric.RESOLUTION, step.at)
            elif replied:
                start(Metric.NEXT_RESPONSE, step.at)
            seen_inbound = True
        elif step.kind is StepKind.REPLY or (step.kind is StepKind.AUTO_REPLY and not targets.human_only):
            fulfil(Metric.FIRST_RESPONSE, step.at)
            fulfil(Metric.NEXT_RESPONSE, step.at)
            fulfil(Metric.PERIODIC_UPDATE, step.at)
            replied = True
            if status is not ConversationStatus.RESOLVED:
                start(Metric.PERIODIC_UPDATE, step.at)
        elif step.kind is StepKind.STATUS and step.status is not None and step.status is not status:
            change_status(step.status, step.at)
    return [_deadline(c, targets, calendar, now) for c in cycles]


def _deadline(cycle: _Cycle, targets: Targets, calendar: BusinessCalendar, now: datetime) -> Deadline:
    target = targets.target(cycle.metric)
    assert target is not None
    reached = _reach(calendar, cycle.running, target)
    warn = _reach(calendar, cycle.running, max(target - targets.warn_before, timedelta()))
    end = cycle.fulfilled_at or now
    late = reached is not None and (reached < end or (reached == end and cycle.fulfilled_at is None))
    breached = reached if late else None
    paused = cycle.fulfilled_at is None and (not cycle.running or cycle.running[-1][1] is not None)
    return Deadline(
        metric=cycle.metric,
        started_at=cycle.started_at,
        due_at=reached,
        warn_at=warn if targets.warn_before else None,
        fulfilled_at=cycle.fulfilled_at,
        breached_at=breached,
        paused=paused,
    )


def _reach(
    calendar: BusinessCalendar, running: list[tuple[datetime, datetime | None]], amount: timedelta
) -> datetime | None:
    """When the running intervals accumulate `amount` of business time (None if they never do)."""
    left = amount
    for start, end in running:
        if end is None:
            return calendar.add(start, left)
        used = calendar.business_time(start, end)
        if used >= left:
            return calendar.add(start, left)
        left -= used
    return None
