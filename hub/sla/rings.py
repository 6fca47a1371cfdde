"""The three-ring answer SLA (etiquette rule P1): ring windows, and timings measured from call legs.

A caller hears a ring cycle every few seconds (about 6 s in North America, 5 s in China,
3 s in the UK). Agents' phones ring for at most `answer_within_rings` cycles before the
call falls back. Every call's timing is measured from the provider's leg events, which may
arrive late, twice or out of order: they are deduplicated and put in time order first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from hub.models import CallOutcome

RING_CYCLE_SECONDS: Mapping[str, float] = {"US": 6.0, "CA": 6.0, "CN": 5.0, "GB": 3.0, "IE": 3.0}
"""Seconds per ring cycle by country; other countries use DEFAULT_RING_CYCLE_SECONDS."""
DEFAULT_RING_CYCLE_SECONDS = 6.0

RINGING = frozenset({"ringing"})
ANSWERED = frozenset({"in-progress", "answered"})
ENDED = frozenset({"completed", "busy", "no-answer", "canceled", "failed"})


@dataclass(frozen=True, slots=True)
class AnswerTarget:
    """How fast calls must be answered: a number of rings at a cadence, or plain seconds."""

    rings: int = 3
    ring_cycle_seconds: float = DEFAULT_RING_CYCLE_SECONDS
    seconds: float | None = None

    @classmethod
    def for_country(cls, country: str, rings: int = 3, seconds: float | None = None) -> AnswerTarget:
        """The target with the country's ring cadence."""
        cycle = RING_CYCLE_SECONDS.get(country.upper(), DEFAULT_RING_CYCLE_SECONDS)
        return cls(rings=rings, ring_cycle_seconds=cycle, seconds=seconds)

    @property
    def window(self) -> timedelta:
        """How long agents' phones ring before the call falls back."""
        return timedelta(
            seconds=self.seconds if self.seconds is not None else self.rings * self.ring_cycle_seconds
        )


@dataclass(frozen=True, slots=True)
class LegEvent:
    """One status callback of one call leg (the caller's parent leg or an agent's child leg)."""

    call_sid: str
    status: str
    at: datetime
    sequence: int | None = None
    parent_sid: str | None = None
    answered_by: str | None = None


@dataclass(frozen=True, slots=True)
class CallTiming:
    """What the SLA reports about one call."""

    arrived_at: datetime | None
    ringing_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    answered_by: str | None
    ring_time: timedelta | None
    time_to_answer: timedelta | None
    rings: int | None
    outcome: CallOutcome

    @property
    def within_target(self) -> bool:
        """Whether the call was answered in time."""
        return self.outcome is CallOutcome.ANSWERED_IN_TIME


def ordered(events: Iterable[LegEvent]) -> list[LegEvent]:
    """Events without repeats, in the order they happened (sequence numbers break ties)."""
    unique = {(e.call_sid, e.status, e.sequence, e.at): e for e in events}
    return sorted(unique.values(), key=lambda e: (e.at, e.sequence if e.sequence is not None else -1))


def measure(parent_sid: str, events: Iterable[LegEvent], target: AnswerTarget, now: datetime) -> CallTiming:
    """The timing and outcome of a call from its legs' events, as far as they go at `now`.

    Arrival is the caller's first event; ringing starts with the first agent leg that rings
    (or the caller's own ringing when the provider reports no agent legs); the call is answered
    when the first agent leg is. A call nobody answered is ABANDONED if the caller hung up
    before the ring window ran out, MISSED once it has run out; RINGING until either.
    """
    timeline = ordered(events)
    parent = [e for e in timeline if e.call_sid == parent_sid]
    legs = [e for e in timeline if e.call_sid != parent_sid]
    arrived = parent[0].at if parent else (timeline[0].at if timeline else None)
    ringing = _first(legs, RINGING) or _first(parent, RINGING) or arrived
    answer = next((e for e in legs if e.status in ANSWERED), None)
    ended_event = next((e for e in parent if e.status in ENDED), None)
    ended = ended_event.at if ended_event else None
    if answer is not None and ringing is not None and arrived is not None:
        ring_time = max(answer.at - ringing, timedelta())
        rings = max(1, math.ceil(ring_time.total_seconds() / target.ring_cycle_seconds))
        late = ring_time > target.window
        return CallTiming(
            arrived,
            ringing,
            answer.at,
            ended,
            answer.answered_by or answer.call_sid,
            ring_time,
            max(answer.at - arrived, timedelta()),
            rings,
            CallOutcome.ANSWERED_LATE if late else CallOutcome.ANSWERED_IN_TIME,
        )
    outcome = CallOutcome.RINGING
    window_over = ringing is not None and now - ringing >= target.window
    if ended is not None and ringing is not None and ended - ringing < target.window:
        outcome = CallOutcome.ABANDONED
    elif window_over or ended is not None:
        outcome = CallOutcome.MISSED
    return CallTiming(arrived, ringing, None, ended, None, None, None, None, outcome)


def _first(events: list[LegEvent], statuses: frozenset[str]) -> datetime | None:
    return next((e.at for e in events if e.status in statuses), None)
