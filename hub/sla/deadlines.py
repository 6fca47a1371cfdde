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
import operator
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
    _amounts: dict[Metric, tuple[int, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

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


Row = tuple[
    Metric, datetime, datetime | None, datetime | None, datetime | None, datetime | None, bool, int | None
]
"""A deadline's fields in order, then the business µs from its start to its fulfilment (None while active)."""


@dataclass(slots=True)
class _Cycle:
    """A cycle while the history is walked: its start and running intervals in epoch microseconds."""

    metric: Metric
    started_at: datetime
    started: int
    running: list[tuple[int, int | None]]
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
    return [Deadline(*row[:7]) for row in deadline_rows(history, targets, calendar, now)]


def deadline_rows(
    history: Sequence[Step], targets: Targets, calendar: BusinessCalendar, now: datetime
) -> list[Row]:
    """`deadlines` as plain tuples, each with the business time from its start to its fulfilment."""
    amounts = _amounts(targets)
    now_us = micros(now)
    return [_row(c, amounts[c.metric], calendar, now_us) for c in _walk(history, targets, amounts)]


def _walk(history: Sequence[Step], targets: Targets, amounts: dict[Metric, tuple[int, ...]]) -> list[_Cycle]:
    """The cycles the history starts, with their running intervals."""
    cycles: list[_Cycle] = []
    open_cycles: dict[Metric, _Cycle] = {}
    status = ConversationStatus.OPEN
    pause_statuses = targets.pause_statuses
    running = status not in pause_statuses
    seen_inbound = replied = False
    replies = (StepKind.REPLY,) if targets.human_only else (StepKind.REPLY, StepKind.AUTO_REPLY)
    for step in sorted(history, key=_at):
        at, kind = step.at, step.kind
        us = micros(at)
        if kind is StepKind.INBOUND:
            if status is not ConversationStatus.OPEN:
                status, running = _change_status(
                    cycles, open_cycles, status, ConversationStatus.OPEN, pause_statuses, at, us
                )
            if not seen_inbound:
                seen_inbound = True
                for metric in FIRST_METRICS:
                    if metric in amounts and metric not in open_cycles:
                        _start(cycles, open_cycles, metric, at, us, running)
            elif replied and Metric.NEXT_RESPONSE in amounts and Metric.NEXT_RESPONSE not in open_cycles:
                _start(cycles, open_cycles, Metric.NEXT_RESPONSE, at, us, running)
        elif kind in replies:
            if open_cycles:
                for metric in REPLY_METRICS:
                    if (cycle := open_cycles.pop(metric, None)) is not None:
                        cycle.fulfil(at, us)
            replied = True
            if (
                status is not ConversationStatus.RESOLVED
                and Metric.PERIODIC_UPDATE in amounts
                and Metric.PERIODIC_UPDATE not in open_cycles
            ):
                _start(cycles, open_cycles, Metric.PERIODIC_UPDATE, at, us, running)
        elif kind is StepKind.STATUS and step.status is not None and step.status is not status:
            status, running = _change_status(cycles, open_cycles, status, step.status, pause_statuses, at, us)
    return cycles


FIRST_METRICS = (Metric.FIRST_RESPONSE, Metric.RESOLUTION)
"""What the first customer message starts."""
REPLY_METRICS = (Metric.FIRST_RESPONSE, Metric.NEXT_RESPONSE, Metric.PERIODIC_UPDATE)
"""What a reply fulfils."""


def _start(
    cycles: list[_Cycle],
    open_cycles: dict[Metric, _Cycle],
    metric: Metric,
    at: datetime,
    us: int,
    running: bool,
) -> None:
    cycle = _Cycle(metric, at, us, [(us, None)] if running else [])
    cycles.append(cycle)
    open_cycles[metric] = cycle


def _change_status(
    cycles: list[_Cycle],
    open_cycles: dict[Metric, _Cycle],
    was: ConversationStatus,
    new: ConversationStatus,
    pause_statuses: frozenset[ConversationStatus],
    at: datetime,
    us: int,
) -> tuple[ConversationStatus, bool]:
    """Pause or resume the open cycles as the status changes; the new status, and whether it runs."""
    running = new not in pause_statuses and new is not ConversationStatus.RESOLVED
    for cycle in open_cycles.values():
        if running:
            cycle.resume(us)
        else:
            cycle.pause(us)
    if new is ConversationStatus.RESOLVED:
        if (resolution := open_cycles.pop(Metric.RESOLUTION, None)) is not None:
            resolution.fulfil(at, us)
        open_cycles.pop(Metric.PERIODIC_UPDATE, None)
        open_cycles.pop(Metric.NEXT_RESPONSE, None)
    elif was is ConversationStatus.RESOLVED:
        previous = next((c for c in reversed(cycles) if c.metric is Metric.RESOLUTION), None)
        if previous is not None and Metric.RESOLUTION not in open_cycles:
            previous.fulfilled_at = None
            if running:
                previous.resume(us)
            open_cycles[Metric.RESOLUTION] = previous
    return new, running


_at = operator.attrgetter("at")


def _amounts(targets: Targets) -> dict[Metric, tuple[int, ...]]:
    """Per metric with a target: the target, then the warning point if any, in µs of business time."""
    out = targets._amounts
    if not out:
        for metric in Metric:
            target = targets.target(metric)
            if target is None:
                continue
            if targets.warn_before:
                out[metric] = (target // MICRO, max(target - targets.warn_before, timedelta()) // MICRO)
            else:
                out[metric] = (target // MICRO,)
    return out


def _row(cycle: _Cycle, amounts: tuple[int, ...], calendar: BusinessCalendar, now: int) -> Row:
    running = cycle.running
    if len(running) == 1:
        reached = calendar.reach(*running[0], amounts)
    else:
        reached = [_reach(calendar, running, amount) for amount in amounts]
    due, fulfilled_at = reached[0], cycle.fulfilled_at
    if fulfilled_at is None:
        late = due is not None and due <= now
        business = None
    else:
        late = due is not None and due < cycle.fulfilled
        business = calendar.business_micros(cycle.started, cycle.fulfilled)
    due_at = None if due is None else _instant(due)
    warn = reached[1] if len(reached) > 1 else None
    return (
        cycle.metric,
        cycle.started_at,
        due_at,
        None if warn is None else _instant(warn),
        fulfilled_at,
        due_at if late else None,
        fulfilled_at is None and (not running or running[-1][1] is not None),
        business,
    )


_instant = functools.lru_cache(maxsize=4096)(instant)
"""`instant`, remembered: conversations that start while the calendar is closed share their deadlines."""


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
