"""The SLA report: response times in business time, compliance, calls, promises and breaches over a period.

Cycles count in the period in which they started; a cycle counts as met when it was
fulfilled without a breach and as breached once its deadline passed unmet. Calls count
when they arrived in the period; "offered" calls are every inbound call that has ended.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.models import CallOutcome, Direction
from hub.store import schema

RESPONSE_METRICS = ("first_response", "next_response", "periodic_update", "resolution", "promise")
ANSWERED = (CallOutcome.ANSWERED_IN_TIME.value, CallOutcome.ANSWERED_LATE.value)


@dataclass(slots=True)
class Compliance:
    """Met and breached cycles of one group."""

    group: str
    metric: str
    met: int = 0
    breached: int = 0
    open: int = 0

    @property
    def rate(self) -> float | None:
        """Share of decided cycles that were met."""
        decided = self.met + self.breached
        return self.met / decided if decided else None


@dataclass(slots=True)
class SlaReport:
    """Everything `omnihub report sla` prints."""

    start: datetime
    end: datetime
    team: str | None
    first_response_median_seconds: float | None = None
    first_response_p90_seconds: float | None = None
    first_responses: int = 0
    compliance: dict[str, list[Compliance]] = field(default_factory=dict)
    calls_offered: int = 0
    calls_answered: int = 0
    calls_within_rings: int = 0
    calls_abandoned: int = 0
    average_speed_of_answer_seconds: float | None = None
    promises_made: int = 0
    promises_kept: int = 0
    receipt_checks_due: int = 0
    receipt_checks_done: int = 0
    breaches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def within_rings_rate(self) -> float | None:
        """Share of offered calls answered within the ring window."""
        return self.calls_within_rings / self.calls_offered if self.calls_offered else None

    @property
    def promises_kept_rate(self) -> float | None:
        """Share of decided promises that were kept."""
        return self.promises_kept / self.promises_made if self.promises_made else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        out = {k: v for k, v in asdict(self).items() if k != "compliance"}
        out.update(
            start=self.start.isoformat(),
            end=self.end.isoformat(),
            within_rings_rate=self.within_rings_rate,
            promises_kept_rate=self.promises_kept_rate,
            compliance={
                by: [{**asdict(c), "rate": c.rate} for c in rows] for by, rows in self.compliance.items()
            },
        )
        return out


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile (share in 0..1) of a sample."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


async def build(conn: AsyncConnection, start: datetime, end: datetime, team: str | None = None) -> SlaReport:
    """The report for cycles and calls that started in [start, end), optionally one team's."""
    report = SlaReport(start, end, team)
    cycles = await _cycles(conn, start, end, team)
    _responses(report, cycles)
    _compliance(report, cycles)
    report.breaches = [
        _breach(r) for r in sorted(cycles, key=lambda r: r.breached_at or end) if r.breached_at
    ]
    await _calls(conn, report, team)
    await _receipt_checks(conn, report, team)
    return report


def _of_team(query: Any, team_id: Any, team: str | None) -> Any:
    """Narrow a query to one team's rows, by the team's name."""
    if team is None:
        return query
    return query.where(team_id.in_(select(schema.teams.c.id).where(schema.teams.c.name == team)))


async def _cycles(conn: AsyncConnection, start: datetime, end: datetime, team: str | None) -> list[Any]:
    s, a, t = schema.sla_cycles, schema.agents, schema.teams
    query = (
        select(s, a.c.username.label("agent"), t.c.name.label("team"))
        .select_from(s.outerjoin(a, a.c.id == s.c.assignee_id).outerjoin(t, t.c.id == s.c.team_id))
        .where(s.c.started_at >= start, s.c.started_at < end)
    )
    query = _of_team(query, s.c.team_id, team)
    return list(await conn.execute(query))


def _responses(report: SlaReport, cycles: list[Any]) -> None:
    seconds = [
        float(r.business_seconds)
        for r in cycles
        if r.metric == "first_response" and r.fulfilled_at is not None and r.business_seconds is not None
    ]
    report.first_responses = len(seconds)
    report.first_response_median_seconds = percentile(seconds, 0.5)
    report.first_response_p90_seconds = percentile(seconds, 0.9)
    promises = [r for r in cycles if r.metric == "promise" and (r.fulfilled_at is not None or r.breached_at)]
    report.promises_made = len(promises)
    report.promises_kept = sum(1 for r in promises if r.breached_at is None)


def _compliance(report: SlaReport, cycles: list[Any]) -> None:
    groups: dict[str, dict[tuple[str, str], Compliance]] = defaultdict(dict)
    for r in cycles:
        for by, name in (
            ("metric", "all"),
            ("policy", r.policy or "-"),
            ("team", r.team or "-"),
            ("agent", r.agent or "-"),
        ):
            row = groups[by].setdefault((name, r.metric), Compliance(name, r.metric))
            if r.breached_at is not None:
                row.breached += 1
            elif r.fulfilled_at is not None:
                row.met += 1
            else:
                row.open += 1
    order = {m: i for i, m in enumerate(RESPONSE_METRICS)}
    report.compliance = {
        by: sorted(rows.values(), key=lambda c: (c.group, order.get(c.metric, 99)))
        for by, rows in groups.items()
    }


def _breach(r: Any) -> dict[str, Any]:
    return {
        "conversation_id": r.conversation_id,
        "metric": r.metric,
        "policy": r.policy,
        "team": r.team,
        "agent": r.agent,
        "due_at": r.due_at.isoformat() if r.due_at else None,
        "breached_at": r.breached_at.isoformat(),
        "fulfilled_at": r.fulfilled_at.isoformat() if r.fulfilled_at else None,
    }


async def _calls(conn: AsyncConnection, report: SlaReport, team: str | None) -> None:
    c, conv = schema.calls, schema.conversations
    query = (
        select(c.c.outcome, c.c.started_at, c.c.answered_at)
        .select_from(c.join(conv, conv.c.id == c.c.conversation_id))
        .where(
            c.c.started_at >= report.start,
            c.c.started_at < report.end,
            c.c.direction == Direction.INBOUND.value,
            c.c.outcome != CallOutcome.RINGING.value,
        )
    )
    query = _of_team(query, conv.c.team_id, team)
    waits = []
    for outcome, started_at, answered_at in await conn.execute(query):
        report.calls_offered += 1
        if outcome in ANSWERED:
            report.calls_answered += 1
            if answered_at is not None:
                waits.append((answered_at - started_at).total_seconds())
        report.calls_within_rings += outcome == CallOutcome.ANSWERED_IN_TIME.value
        report.calls_abandoned += outcome == CallOutcome.ABANDONED.value
    report.average_speed_of_answer_seconds = sum(waits) / len(waits) if waits else None


async def _receipt_checks(conn: AsyncConnection, report: SlaReport, team: str | None) -> None:
    tk, conv = schema.tasks, schema.conversations
    query = (
        select(tk.c.status)
        .select_from(tk.join(conv, conv.c.id == tk.c.conversation_id))
        .where(tk.c.kind == "receipt_check", tk.c.due_at >= report.start, tk.c.due_at < report.end)
    )
    query = _of_team(query, conv.c.team_id, team)
    for (status,) in await conn.execute(query):
        report.receipt_checks_due += 1
        report.receipt_checks_done += status == "done"
