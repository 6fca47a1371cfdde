"""SLA deadlines from conversation history: business time, pauses, human-only replies, cycles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.models import ConversationStatus
from hub.sla.calendar import BusinessCalendar
from hub.sla.deadlines import Deadline, Metric, Step, StepKind, Targets, deadlines

OFFICE = BusinessCalendar.build(
    "office", "UTC", {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
)
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
TARGETS = Targets(
    first_response=2 * HOUR,
    next_response=4 * HOUR,
    periodic_update=8 * HOUR,
    resolution=16 * HOUR,
    warn_before=timedelta(minutes=30),
)


def h(hours: float) -> datetime:
    return MONDAY + timedelta(hours=hours)


def inbound(hours: float) -> Step:
    return Step(h(hours), StepKind.INBOUND)


def reply(hours: float, automatic: bool = False) -> Step:
    return Step(h(hours), StepKind.AUTO_REPLY if automatic else StepKind.REPLY)


def status(hours: float, value: ConversationStatus) -> Step:
    return Step(h(hours), StepKind.STATUS, value)


def of(result: list[Deadline], metric: Metric) -> list[Deadline]:
    return [d for d in result if d.metric is metric]


def test_first_response_is_due_in_business_time_and_warns_before() -> None:
    late_friday = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)
    [first] = of(
        deadlines([Step(late_friday, StepKind.INBOUND)], TARGETS, OFFICE, late_friday), Metric.FIRST_RESPONSE
    )
    assert first.due_at == datetime(2026, 11, 30, 10, 0, tzinfo=UTC)  # Monday 10:00
    assert first.warn_at == datetime(2026, 11, 30, 9, 30, tzinfo=UTC)
    assert first.active and not first.paused and first.breached_at is None


def test_an_acknowledgement_does_not_count_but_a_human_reply_does() -> None:
    history = [inbound(0), reply(0.1, automatic=True), reply(1.5)]
    [first] = of(deadlines(history, TARGETS, OFFICE, h(3)), Metric.FIRST_RESPONSE)
    assert first.fulfilled_at == h(1.5) and first.breached_at is None
    loose = Targets(first_response=2 * HOUR, human_only=False)
    [first] = of(deadlines(history, loose, OFFICE, h(3)), Metric.FIRST_RESPONSE)
    assert first.fulfilled_at == h(0.1)


def test_pending_pauses_the_clock_and_a_reply_late_is_a_breach_at_the_due_time() -> None:
    history = [inbound(0), status(1, ConversationStatus.PENDING), status(4, ConversationStatus.OPEN)]
    [first] = of(deadlines(history, TARGETS, OFFICE, h(4.5)), Metric.FIRST_RESPONSE)
    assert first.due_at == h(5)  # one hour used before the pause, one left after it
    paused = of(deadlines(history[:2], TARGETS, OFFICE, h(3)), Metric.FIRST_RESPONSE)[0]
    assert paused.paused and paused.due_at is None and paused.breached_at is None
    late = of(deadlines([*history, reply(6)], TARGETS, OFFICE, h(7)), Metric.FIRST_RESPONSE)[0]
    assert late.fulfilled_at == h(6) and late.breached_at == h(5)


def test_breach_of_an_unanswered_conversation_is_dated_when_it_happened() -> None:
    [first] = of(deadlines([inbound(0)], TARGETS, OFFICE, h(30)), Metric.FIRST_RESPONSE)
    assert first.breached_at == h(2) and first.active


def test_next_response_runs_per_customer_message_after_a_reply() -> None:
    history = [inbound(0), reply(1), inbound(2), inbound(2.5), reply(3), inbound(5)]
    cycles = of(deadlines(history, TARGETS, OFFICE, h(5)), Metric.NEXT_RESPONSE)
    assert [(c.started_at, c.fulfilled_at) for c in cycles] == [(h(2), h(3)), (h(5), None)]
    assert cycles[1].due_at == h(24 + 1)  # 3 hours on Monday after 14:00, 1 on Tuesday


def test_periodic_updates_run_between_replies_until_resolved() -> None:
    history = [inbound(0), reply(1), reply(3), status(4, ConversationStatus.RESOLVED)]
    cycles = of(deadlines(history, TARGETS, OFFICE, h(5)), Metric.PERIODIC_UPDATE)
    assert [(c.started_at, c.fulfilled_at) for c in cycles] == [(h(1), h(3)), (h(3), None)]
    assert all(c.breached_at is None for c in cycles)


def test_resolution_continues_across_a_reopen() -> None:
    history = [inbound(0), reply(1), status(3, ConversationStatus.RESOLVED), inbound(24), reply(26)]
    [resolution] = of(deadlines(history, TARGETS, OFFICE, h(26)), Metric.RESOLUTION)
    assert resolution.active
    assert resolution.due_at == h(48 + 5)  # 3 hours used Monday; 13 left: 8 on Tuesday, 5 on Wednesday
    closed = [*history, status(27, ConversationStatus.RESOLVED)]
    [resolution] = of(deadlines(closed, TARGETS, OFFICE, h(27)), Metric.RESOLUTION)
    assert resolution.fulfilled_at == h(27) and resolution.breached_at is None


def test_metrics_without_a_target_produce_nothing() -> None:
    only_next = Targets(next_response=HOUR)
    result = deadlines([inbound(0), reply(1), inbound(2)], only_next, OFFICE, h(2))
    assert [(d.metric, d.started_at) for d in result] == [(Metric.NEXT_RESPONSE, h(2))]
