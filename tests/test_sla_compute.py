"""The optimised SLA computation gives what the plain reference gives, on random histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.models import ConversationStatus
from hub.rules.conditions import Facts
from hub.sla import freshness
from hub.sla.calendar import BusinessCalendar
from hub.sla.cycles import compute_under, outlook
from hub.sla.deadlines import Step, StepKind, Targets, deadlines
from hub.sla.history import History, PromiseStep
from hub.sla.policy import Policy, PolicyBook, Promises, Timers
from hub.sla.rings import AnswerTarget
from tests import sla_reference
from tests.test_calendar import CALENDARS, WINDOWS

FACTS = Facts(
    channel="email", mailbox=None, subject="", body="", sender="", language="", tags=frozenset(),
    priority="normal", status="open", team=None, assignee=None, in_business_hours=None, contact_name=None,
)  # fmt: skip
STATUSES = list(ConversationStatus)
BASES = [*WINDOWS, datetime(2026, 12, 27, tzinfo=UTC)]
"""Weeks with DST changes and holidays, and one across a new year."""


@st.composite
def moments(draw: st.DrawFn, base: datetime) -> datetime:
    """Instants within a week of `base`: on the hour (so deadlines meet replies and `now`), or any."""
    if draw(st.booleans()):
        return base + timedelta(hours=draw(st.integers(0, 7 * 24)))
    minutes = draw(st.integers(0, 7 * 24 * 60))
    micros = draw(st.sampled_from([0, 0, 1, 999_999]) | st.integers(0, 59_999_999))
    return base + timedelta(minutes=minutes, microseconds=micros)


@st.composite
def steps(draw: st.DrawFn, base: datetime) -> Step:
    kind = draw(st.sampled_from(list(StepKind)))
    status = draw(st.sampled_from(STATUSES)) if kind is StepKind.STATUS else None
    return Step(draw(moments(base)), kind, status)


minutes = st.none() | st.builds(
    lambda m: timedelta(minutes=m), st.sampled_from([0, 30, 60, 120, 480]) | st.integers(0, 3000)
)
targets = st.builds(
    Targets,
    first_response=minutes,
    next_response=minutes,
    periodic_update=minutes,
    resolution=minutes,
    pause_statuses=st.frozensets(st.sampled_from(STATUSES)),
    warn_before=st.sampled_from([timedelta(), timedelta(minutes=15), timedelta(hours=40)]),
    human_only=st.booleans(),
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[BusinessCalendar, list[Step], Targets, datetime, list[PromiseStep]]:
    base = draw(st.sampled_from(BASES))
    history = sorted(draw(st.lists(steps(base), max_size=8)), key=lambda s: s.at)
    promises = draw(st.lists(st.tuples(moments(base), st.integers(0, 30)), max_size=2))
    promised = sorted((PromiseStep(at, at + timedelta(hours=h)) for at, h in promises), key=lambda p: p.at)
    return draw(st.sampled_from(CALENDARS)), history, draw(targets), draw(moments(base)), promised


@settings(max_examples=400, deadline=None)
@given(case=cases())
def test_deadlines_match_the_reference(
    case: tuple[BusinessCalendar, list[Step], Targets, datetime, list[PromiseStep]],
) -> None:
    calendar, history, policy_targets, now, _ = case
    assert deadlines(history, policy_targets, calendar, now) == sla_reference.deadlines(
        history, policy_targets, calendar, now
    )


@settings(max_examples=300, deadline=None)
@given(case=cases(), with_policy=st.booleans())
def test_cycles_match_the_reference(
    case: tuple[BusinessCalendar, list[Step], Targets, datetime, list[PromiseStep]], with_policy: bool
) -> None:
    calendar, history, policy_targets, now, promised = case
    policy = Policy("p", None, calendar, policy_targets, None, AnswerTarget())
    book = PolicyBook((policy,), calendar, AnswerTarget(), Promises(), Timers())
    h = History(7, FACTS, 3, None, ConversationStatus.OPEN, history, promised)
    chosen = policy if with_policy else None
    cycles = compute_under(h, chosen, book, now)
    assert cycles == sla_reference.compute_under(h, chosen, book, now)
    assert outlook(cycles, now) == sla_reference.outlook(cycles, now)


@settings(max_examples=200, deadline=None)
@given(
    case=cases(),
    key=st.sampled_from(["", "standard", "ü" * 600]) | st.text(),
    team=st.none() | st.integers(1, 9),
    status=st.sampled_from(STATUSES),
)
def test_digests_match_the_reference(
    case: tuple[BusinessCalendar, list[Step], Targets, datetime, list[PromiseStep]],
    key: str,
    team: int | None,
    status: ConversationStatus,
) -> None:
    _, history, _, _, promised = case
    h = History(7, FACTS, team, 4, status, history, promised)
    assert freshness.digest(h, key) == sla_reference.digest(h, key)
    assert freshness.digest(h, key) == sla_reference.digest(h, key)
