"""A plain reference of SLA deadlines and cycles: the history walk step by step, business time by `add`.

It follows the rules of `hub.sla.deadlines` and `hub.sla.cycles` in the most direct way, on the
calendar's datetime API (itself checked minute by minute against `is_open`), so the optimised
code can be compared with it on random histories.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hub.models import ConversationStatus
from hub.sla.calendar import BusinessCalendar
from hub.sla.cycles import METRICS, PROMISE, Cycle, Outlook
from hub.sla.deadlines import Deadline, Metric, Step, StepKind, Targets
from hub.sla.freshness import KINDS, moving_steps
from hub.sla.history import History
from hub.sla.policy import Policy, PolicyBook

OPEN, RESOLVED = ConversationStatus.OPEN, ConversationStatus.RESOLVED


@dataclass
class _Cycle:
    metric: Metric
    started_at: datetime
    running: list[tuple[datetime, datetime | None]] = field(default_factory=list)
    fulfilled_at: datetime | None = None


def deadlines(
    history: Sequence[Step], targets: Targets, calendar: BusinessCalendar, now: datetime
) -> list[Deadline]:
    """Every cycle of every metric the targets set, oldest first."""
    cycles: list[_Cycle] = []
    open_cycles: dict[Metric, _Cycle] = {}
    state = {"status": OPEN}

    def running() -> bool:
        return state["status"] not in targets.pause_statuses and state["status"] is not RESOLVED

    def pause(cycle: _Cycle, at: datetime) -> None:
        if cycle.running and cycle.running[-1][1] is None:
            cycle.running[-1] = (cycle.running[-1][0], at)

    def resume(cycle: _Cycle, at: datetime) -> None:
        if not cycle.running or cycle.running[-1][1] is not None:
            cycle.running.append((at, None))

    def start(metric: Metric, at: datetime) -> None:
        if targets.target(metric) is None or metric in open_cycles:
            return
        cycle = _Cycle(metric, at)
        if running():
            resume(cycle, at)
        cycles.append(cycle)
        open_cycles[metric] = cycle

    def fulfil(metric: Metric, at: datetime) -> None:
        cycle = open_cycles.pop(metric, None)
        if cycle is not None:
            pause(cycle, at)
            cycle.fulfilled_at = at

    def change_status(new: ConversationStatus, at: datetime) -> None:
        was_resolved = state["status"] is RESOLVED
        state["status"] = new
        for cycle in open_cycles.values():
            if running():
                resume(cycle, at)
            else:
                pause(cycle, at)
        if new is RESOLVED:
            fulfil(Metric.RESOLUTION, at)
            open_cycles.pop(Metric.PERIODIC_UPDATE, None)
            open_cycles.pop(Metric.NEXT_RESPONSE, None)
        elif was_resolved:
            previous = [c for c in cycles if c.metric is Metric.RESOLUTION]
            if previous and Metric.RESOLUTION not in open_cycles:
                previous[-1].fulfilled_at = None
                if running():
                    resume(previous[-1], at)
                open_cycles[Metric.RESOLUTION] = previous[-1]

    seen_inbound = replied = False
    for step in sorted(history, key=lambda s: s.at):
        if step.kind is StepKind.INBOUND:
            if state["status"] is not OPEN:
                change_status(OPEN, step.at)
            if not seen_inbound:
                start(Metric.FIRST_RESPONSE, step.at)
                start(Metric.RESOLUTION, step.at)
            elif replied:
                start(Metric.NEXT_RESPONSE, step.at)
            seen_inbound = True
        elif step.kind is StepKind.REPLY or (step.kind is StepKind.AUTO_REPLY and not targets.human_only):
            for metric in (Metric.FIRST_RESPONSE, Metric.NEXT_RESPONSE, Metric.PERIODIC_UPDATE):
                fulfil(metric, step.at)
            replied = True
            if state["status"] is not RESOLVED:
                start(Metric.PERIODIC_UPDATE, step.at)
        elif step.kind is StepKind.STATUS and step.status is not None and step.status is not state["status"]:
            change_status(step.status, step.at)
    return [_deadline(c, targets, calendar, now) for c in cycles]


def _deadline(cycle: _Cycle, targets: Targets, calendar: BusinessCalendar, now: datetime) -> Deadline:
    target = targets.target(cycle.metric)
    assert target is not None
    due = _reach(calendar, cycle.running, target)
    warn = None
    if targets.warn_before:
        warn = _reach(calendar, cycle.running, max(target - targets.warn_before, timedelta()))
    fulfilled = cycle.fulfilled_at is not None
    end = cycle.fulfilled_at or now
    late = due is not None and (due < end or (due == end and not fulfilled))
    return Deadline(
        metric=cycle.metric,
        started_at=cycle.started_at,
        due_at=due,
        warn_at=warn,
        fulfilled_at=cycle.fulfilled_at,
        breached_at=due if late else None,
        paused=not fulfilled and (not cycle.running or cycle.running[-1][1] is not None),
    )


def _reach(
    calendar: BusinessCalendar, running: list[tuple[datetime, datetime | None]], amount: timedelta
) -> datetime | None:
    left = amount
    for start, end in running:
        if end is None or calendar.business_time(start, end) >= left:
            return calendar.add(start, left)
        left -= calendar.business_time(start, end)
    return None


def compute_under(h: History, policy: Policy | None, book: PolicyBook, now: datetime) -> list[Cycle]:
    """Every cycle of one conversation under a given policy (None: only its promises)."""
    cycles: list[Cycle] = []
    calendar = policy.calendar if policy else book.default_calendar
    ids = (h.conversation_id,)
    if policy is not None:
        seqs: dict[Metric, int] = {}
        for d in deadlines(h.steps, policy.targets, calendar, now):
            seqs[d.metric] = seqs.get(d.metric, -1) + 1
            cycles.append(
                Cycle(
                    *ids, METRICS[d.metric], seqs[d.metric], policy.name, h.team_id, h.assignee_id,
                    d.started_at, d.due_at, d.warn_at, d.fulfilled_at, d.breached_at, d.paused,
                    _seconds(calendar, d.started_at, d.fulfilled_at),
                )
            )  # fmt: skip
    warn_before = policy.targets.warn_before if policy else timedelta()
    replies = [s.at for s in h.steps if s.kind is StepKind.REPLY]
    for seq, p in enumerate(sorted(h.promises, key=lambda p: p.at)):
        kept = next((at for at in replies if at > p.at), None)
        breached = p.due_at < (kept or now) or (kept is None and p.due_at == now)
        cycles.append(
            Cycle(
                *ids, PROMISE, seq, policy.name if policy else "", h.team_id, h.assignee_id, p.at,
                p.due_at, p.due_at - warn_before if warn_before else None, kept,
                p.due_at if breached else None, False, _seconds(calendar, p.at, kept),
            )
        )  # fmt: skip
    return cycles


def _seconds(calendar: BusinessCalendar, start: datetime, end: datetime | None) -> int | None:
    return None if end is None else calendar.business_time(start, end) // timedelta(seconds=1)


def outlook(cycles: list[Cycle], now: datetime) -> Outlook:
    """The earliest of each kind of moment after `now` (and deadlines of running cycles), cycle by cycle."""
    later = [m for c in cycles for m in (c.warn_at, c.due_at, c.fulfilled_at, c.breached_at) if m and m > now]
    running = [c for c in cycles if c.fulfilled_at is None and not c.paused]
    checks = [m for c in running for m in (c.warn_at, c.due_at) if m and m > now]
    dues = [c.due_at for c in running if c.due_at and c.metric != PROMISE]
    promised = [c.due_at for c in running if c.due_at and c.metric == PROMISE]
    return Outlook(*(min(found, default=None) for found in (later, checks, dues, promised)))


def digest(h: History, policy_key: str) -> str:
    """The input digest: the policy key, the conversation's fields, its moving steps and its promises."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    parts = [policy_key, str(h.team_id), str(h.assignee_id), h.status.value]
    for s in moving_steps(h.steps):
        parts.append(f"{(s.at - epoch) // timedelta(microseconds=1)}{KINDS[s.kind]}{s.status or ''}")
    parts.extend(f"p{p.at.isoformat()}>{p.due_at.isoformat()}" for p in h.promises)
    return hashlib.blake2b("|".join(parts).encode(), digest_size=16).hexdigest()
