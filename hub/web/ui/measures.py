"""Call answering for the dashboard (P1), and how durations read there.

First-response times come from the SLA report, in business time, as the SLA measures them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select

from hub.models import CallOutcome, Direction
from hub.store import Database, schema

WINDOW = timedelta(days=30)
ANSWERED = (CallOutcome.ANSWERED_IN_TIME.value, CallOutcome.ANSWERED_LATE.value)


@dataclass(frozen=True, slots=True)
class Measures:
    """Call answering over the last 30 days."""

    calls: int
    calls_in_three_rings: int
    calls_answered: int

    @property
    def three_ring_share(self) -> float | None:
        """The share of inbound calls answered within three rings (etiquette P1)."""
        return self.calls_in_three_rings / self.calls if self.calls else None


async def collect(db: Database, now: datetime) -> Measures:
    """Inbound calls that started in the last 30 days, by outcome."""
    calls = schema.calls
    call_counts = (
        select(calls.c.outcome, func.count())
        .where(and_(calls.c.started_at >= now - WINDOW, calls.c.direction == Direction.INBOUND.value))
        .group_by(calls.c.outcome)
    )
    async with db.read() as conn:
        outcomes: dict[str, int] = dict((await conn.execute(call_counts)).all())
    return Measures(
        calls=sum(count for outcome, count in outcomes.items() if outcome != CallOutcome.RINGING.value),
        calls_in_three_rings=outcomes.get(CallOutcome.ANSWERED_IN_TIME.value, 0),
        calls_answered=sum(outcomes.get(o, 0) for o in ANSWERED),
    )


def duration(value: timedelta | None) -> str:
    """`2h 05m`, `14m`, or an em dash when there is nothing to measure."""
    if value is None:
        return "—"
    minutes = int(value.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"
