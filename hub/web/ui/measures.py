"""Service measures for the dashboard from what the store holds: first responses and calls.

Times are wall-clock (the SLA engine's business-time reports replace them where present).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select

from hub.models import CallOutcome, Direction
from hub.store import Database, schema

WINDOW = timedelta(days=30)
ANSWERED = (CallOutcome.ANSWERED_IN_TIME.value, CallOutcome.ANSWERED_LATE.value)


@dataclass(frozen=True, slots=True)
class Measures:
    """First-response times and call answering over the last 30 days."""

    responded: int
    first_response_median: timedelta | None
    first_response_p90: timedelta | None
    calls: int
    calls_in_three_rings: int
    calls_answered: int

    @property
    def three_ring_share(self) -> float | None:
        """The share of inbound calls answered within three rings (etiquette P1)."""
        return self.calls_in_three_rings / self.calls if self.calls else None


async def collect(db: Database, now: datetime) -> Measures:
    """Measures of conversations and calls that started in the last 30 days."""
    m, c, calls = schema.messages, schema.conversations, schema.calls
    since = now - WINDOW
    first_in = (
        select(m.c.conversation_id, func.min(m.c.created_at).label("at"))
        .where(m.c.direction == Direction.INBOUND.value)
        .group_by(m.c.conversation_id)
        .subquery()
    )
    first_out = (
        select(m.c.conversation_id, func.min(m.c.created_at).label("at"))
        .where(m.c.direction == Direction.OUTBOUND.value, m.c.automatic.is_(False))
        .group_by(m.c.conversation_id)
        .subquery()
    )
    pairs = (
        select(first_in.c.at.label("asked"), first_out.c.at.label("answered"))
        .select_from(c)
        .join(first_in, first_in.c.conversation_id == c.c.id)
        .join(first_out, first_out.c.conversation_id == c.c.id)
        .where(c.c.created_at >= since, first_out.c.at >= first_in.c.at)
    )
    call_counts = (
        select(calls.c.outcome, func.count())
        .where(and_(calls.c.started_at >= since, calls.c.direction == Direction.INBOUND.value))
        .group_by(calls.c.outcome)
    )
    async with db.read() as conn:
        rows = (await conn.execute(pairs)).all()
        outcomes: dict[str, int] = dict((await conn.execute(call_counts)).all())
    waits = sorted(_seconds(asked, answered) for asked, answered in rows)
    return Measures(
        responded=len(waits),
        first_response_median=timedelta(seconds=statistics.median(waits)) if waits else None,
        first_response_p90=timedelta(seconds=_quantile(waits, 0.9)) if waits else None,
        calls=sum(count for outcome, count in outcomes.items() if outcome != CallOutcome.RINGING.value),
        calls_in_three_rings=outcomes.get(CallOutcome.ANSWERED_IN_TIME.value, 0),
        calls_answered=sum(outcomes.get(o, 0) for o in ANSWERED),
    )


def _seconds(asked: Any, answered: Any) -> float:
    return float((answered - asked).total_seconds())


def _quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def duration(value: timedelta | None) -> str:
    """`2h 05m`, `14m`, or an em dash when there is nothing to measure."""
    if value is None:
        return "—"
    minutes = int(value.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"
