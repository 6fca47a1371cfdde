"""A conversation's SLA cycles as stored in `sla_cycles`: pure functions of its history and policy.

Each metric's cycles come from `deadlines`; each reply-time promise (E1, L8) is one more
cycle, `promise`, kept by the first human reply after it and broken at its due time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from hub.sla.calendar import BusinessCalendar, micros
from hub.sla.deadlines import Metric, StepKind, deadline_rows
from hub.sla.history import History
from hub.sla.policy import Policy, PolicyBook

PROMISE = "promise"
_tuple_new = tuple.__new__
"""Builds a `Cycle` from a tuple of its fields without the Python-level `__new__` of a NamedTuple."""
METRICS = {m: m.value for m in Metric}


class Cycle(NamedTuple):
    """One computed cycle, as stored in `sla_cycles`."""

    conversation_id: int
    metric: str
    seq: int
    policy: str
    team_id: int | None
    assignee_id: int | None
    started_at: datetime
    due_at: datetime | None
    warn_at: datetime | None
    fulfilled_at: datetime | None
    breached_at: datetime | None
    paused: bool
    business_seconds: int | None

    def moments(self, now: datetime) -> dict[str, datetime]:
        """The events this cycle has earned by `now`, with when each happened."""
        out = {}
        if (
            self.warn_at
            and self.warn_at <= now
            and (self.fulfilled_at is None or self.fulfilled_at > self.warn_at)
        ):
            out["warning"] = self.warn_at
        if self.breached_at and self.breached_at <= now:
            out["breached"] = self.breached_at
        if self.fulfilled_at and self.fulfilled_at <= now:
            out["fulfilled"] = self.fulfilled_at
        return out


class Outlook(NamedTuple):
    """What a conversation's cycles hold ahead of `now`."""

    recheck_at: datetime | None
    """The first warning, deadline, fulfilment or breach after `now`: until then the result holds."""
    check_at: datetime | None
    """The next warning or deadline of a cycle that is running: when the clock must look again."""
    due_at: datetime | None
    """The earliest deadline of a running SLA cycle (the conversation's `due_at`)."""
    promise_due_at: datetime | None
    """The same for promises."""


def outlook(cycles: list[Cycle], now: datetime) -> Outlook:
    """The cycles' next moments and deadlines, in one pass."""
    recheck = check = due = promise = None
    for _, metric, _, _, _, _, _, due_at, warn_at, fulfilled_at, breached_at, paused, _ in cycles:
        running = fulfilled_at is None and not paused
        if warn_at is not None and warn_at > now:
            if recheck is None or warn_at < recheck:
                recheck = warn_at
            if running and (check is None or warn_at < check):
                check = warn_at
        if due_at is not None:
            if due_at > now:
                if recheck is None or due_at < recheck:
                    recheck = due_at
                if running and (check is None or due_at < check):
                    check = due_at
            if running:
                if metric == PROMISE:
                    if promise is None or due_at < promise:
                        promise = due_at
                elif due is None or due_at < due:
                    due = due_at
        if fulfilled_at is not None and fulfilled_at > now and (recheck is None or fulfilled_at < recheck):
            recheck = fulfilled_at
        if breached_at is not None and breached_at > now and (recheck is None or breached_at < recheck):
            recheck = breached_at
    return Outlook(recheck, check, due, promise)


def compute(h: History, book: PolicyBook, now: datetime) -> tuple[Policy | None, list[Cycle]]:
    """Every cycle of one conversation under the policy its facts select now."""
    policy = book.select(h.facts)
    return policy, compute_under(h, policy, book, now)


def compute_under(h: History, policy: Policy | None, book: PolicyBook, now: datetime) -> list[Cycle]:
    """Every cycle of one conversation under a given policy (None: only its promises)."""
    cycles: list[Cycle] = []
    cid, team, assignee = h.conversation_id, h.team_id, h.assignee_id
    calendar = policy.calendar if policy else book.default_calendar
    if policy is not None:
        name = policy.name
        seqs: dict[str, int] = {}
        for metric, started_at, due_at, warn_at, fulfilled_at, breached_at, paused, business in deadline_rows(
            h.steps, policy.targets, calendar, now
        ):
            kind = METRICS[metric]
            seq = seqs[kind] = seqs.get(kind, -1) + 1
            seconds = None if business is None else business // 1_000_000
            cycles.append(
                _tuple_new(
                    Cycle,
                    (
                        cid,
                        kind,
                        seq,
                        name,
                        team,
                        assignee,
                        started_at,
                        due_at,
                        warn_at,
                        fulfilled_at,
                        breached_at,
                        paused,
                        seconds,
                    ),
                )
            )
    if h.promises:
        cycles.extend(_promises(h, policy, calendar, now))
    return cycles


def _promises(h: History, policy: Policy | None, calendar: BusinessCalendar, now: datetime) -> list[Cycle]:
    warn_before = policy.targets.warn_before if policy else timedelta()
    replies = [s.at for s in h.steps if s.kind is StepKind.REPLY]
    out = []
    for seq, promise in enumerate(sorted(h.promises, key=lambda p: p.at)):
        kept = next((at for at in replies if at > promise.at), None)
        breached = (
            promise.due_at
            if promise.due_at < (kept or now) or (kept is None and promise.due_at == now)
            else None
        )
        out.append(
            Cycle(
                h.conversation_id,
                PROMISE,
                seq,
                policy.name if policy else "",
                h.team_id,
                h.assignee_id,
                promise.at,
                promise.due_at,
                promise.due_at - warn_before if warn_before else None,
                kept,
                breached,
                False,
                _business_seconds(calendar, promise.at, kept),
            )
        )
    return out


def _business_seconds(calendar: BusinessCalendar, start: datetime, end: datetime | None) -> int | None:
    if end is None:
        return None
    return calendar.business_micros(micros(start), micros(end)) // 1_000_000
