"""The three-ring answer SLA (P1) measured from call-leg events that arrive late, twice and out of order."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from hub.models import CallOutcome
from hub.sla.rings import AnswerTarget, LegEvent, measure

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
US = AnswerTarget.for_country("US")
CN = AnswerTarget.for_country("cn")
UK = AnswerTarget.for_country("GB")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def call(answer_after: float | None, hang_up_after: float | None = None) -> list[LegEvent]:
    """A caller arriving at T0, two agents rung from second 1, one answering after `answer_after` s."""
    events = [LegEvent("CA-parent", "initiated", at(0), 0), LegEvent("CA-parent", "ringing", at(0), 1)]
    for n, agent in enumerate(("CA-agent1", "CA-agent2")):
        events += [
            LegEvent(agent, "initiated", at(1), 0, "CA-parent"),
            LegEvent(agent, "ringing", at(1 + n), 1, "CA-parent"),
        ]
    if answer_after is not None:
        events.append(LegEvent("CA-agent2", "in-progress", at(1 + answer_after), 2, "CA-parent", "agent:li"))
        events.append(LegEvent("CA-agent1", "canceled", at(1 + answer_after), 2, "CA-parent"))
    if hang_up_after is not None:
        events.append(LegEvent("CA-parent", "completed", at(hang_up_after), 3))
    return events


def test_ring_windows_follow_the_country_cadence() -> None:
    assert US.window == timedelta(seconds=18)
    assert CN.window == timedelta(seconds=15)
    assert UK.window == timedelta(seconds=9)
    assert AnswerTarget.for_country("FR").window == timedelta(seconds=18)
    assert AnswerTarget(seconds=10).window == timedelta(seconds=10)


def test_answered_within_three_rings() -> None:
    timing = measure("CA-parent", call(answer_after=11, hang_up_after=200), US, at(300))
    assert timing.outcome is CallOutcome.ANSWERED_IN_TIME and timing.within_target
    assert timing.ring_time == timedelta(seconds=11) and timing.rings == 2
    assert timing.time_to_answer == timedelta(seconds=12)
    assert timing.answered_by == "agent:li" and timing.ended_at == at(200)


def test_the_same_call_is_late_on_a_faster_cadence() -> None:
    assert measure("CA-parent", call(answer_after=11), UK, at(60)).outcome is CallOutcome.ANSWERED_LATE
    late = measure("CA-parent", call(answer_after=19), US, at(60))
    assert late.outcome is CallOutcome.ANSWERED_LATE and late.rings == 4


def test_repeated_and_shuffled_events_give_the_same_timing() -> None:
    events = call(answer_after=7, hang_up_after=90)
    expected = measure("CA-parent", events, CN, at(100))
    rng = random.Random(5)
    for _ in range(20):
        noisy = events + rng.sample(events, k=len(events) // 2)
        rng.shuffle(noisy)
        assert measure("CA-parent", noisy, CN, at(100)) == expected


def test_a_late_answered_event_turns_a_missed_call_into_an_answered_one() -> None:
    events = call(answer_after=None)
    assert measure("CA-parent", events, US, at(10)).outcome is CallOutcome.RINGING
    assert measure("CA-parent", events, US, at(30)).outcome is CallOutcome.MISSED
    events.append(LegEvent("CA-agent1", "answered", at(17), 2, "CA-parent"))
    assert measure("CA-parent", events, US, at(30)).outcome is CallOutcome.ANSWERED_IN_TIME


@pytest.mark.parametrize(("hang_up", "outcome"), [(8, CallOutcome.ABANDONED), (40, CallOutcome.MISSED)])
def test_unanswered_calls_are_abandoned_or_missed(hang_up: float, outcome: CallOutcome) -> None:
    timing = measure("CA-parent", call(answer_after=None, hang_up_after=hang_up), US, at(60))
    assert timing.outcome is outcome and timing.answered_at is None and timing.rings is None
