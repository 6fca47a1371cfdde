"""Triggers: evaluation order and `stop` (pure), and their actions applied once per event in the store."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.events import event_row
from hub.inbox import WAKE, insert_note, wake
from hub.models import Availability, ChannelKind, ConversationStatus, Priority
from hub.rules import queue as rule_queue
from hub.rules.conditions import Facts
from hub.rules.engine import RuleEngine
from hub.rules.interest import STATUS_EVENTS, wanted_kinds
from hub.rules.loader import load_ruleset
from hub.rules.triggers import RuleEvent, evaluate
from hub.scheduler import Scheduler
from hub.services import Services
from hub.store import schema
from tests.conftest import FakeClock
from tests.conftest_web import add_agent
from tests.factories import inbound

AT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
FACTS = Facts(
    channel="email",
    mailbox="support",
    subject="Refund",
    body="I want a refund",
    sender="ana@example.com",
    language="en",
    tags=frozenset(),
    priority="normal",
    status="open",
    team=None,
    assignee=None,
    in_business_hours=None,
    contact_name="Ana",
)

ORDERED = """
triggers:
  - name: first
    when: message.received
    then: [{tag: one}]
  - name: not-matching
    when: message.received
    if: {all: [{field: channel, operator: is, value: sms}]}
    then: [{tag: never}]
  - name: other-event
    when: conversation.assigned
    then: [{tag: never}]
  - name: stopper
    when: [conversation.created, message.received]
    if: {any: [{field: body, operator: contains, value: refund}]}
    then: [{tag: two}, {set_priority: high}]
    stop: true
  - name: after-stop
    when: message.received
    then: [{tag: three}]
  - name: switched-off
    enabled: false
    when: message.received
    then: [{tag: never}]
  - name: office-hours
    when: conversation.created
    if: {all: [{field: in_business_hours, operator: is, value: false}]}
    then: [{tag: after-hours}]
  - name: late
    when: {unreplied_after: 2h}
    then: [{notify_supervisors: {message: late}}]
"""


def write_rules(folder: Path, triggers: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "triggers.yaml").write_text(triggers, encoding="utf-8")
    (folder / "calendars.yaml").write_text(
        "calendars:\n  default:\n    time_zone: Europe/London\n    hours: {mon: ['09:00-17:00']}\n",
        encoding="utf-8",
    )
    return folder


def test_triggers_fire_in_file_order_until_stop(tmp_path: Path) -> None:
    ruleset = load_ruleset(write_rules(tmp_path / "rules", ORDERED))
    received = RuleEvent("message.received", "e1", 1, AT)
    firings = evaluate(ruleset, received, FACTS, AT)
    assert [f.trigger for f in firings] == ["first", "stopper"]
    assert firings[1].summary() == [{"tag": ["two"]}, {"set_priority": "high"}]
    no_refund = replace(FACTS, body="thanks")
    assert [f.trigger for f in evaluate(ruleset, received, no_refund, AT)] == ["first", "after-stop"]


def test_business_hours_come_from_the_triggers_calendar_at_the_event_time(tmp_path: Path) -> None:
    ruleset = load_ruleset(write_rules(tmp_path / "rules", ORDERED))
    created = RuleEvent("conversation.created", "e2", 1, AT)
    facts = replace(FACTS, body="hello")
    assert [f.trigger for f in evaluate(ruleset, created, facts, AT)] == []
    night = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
    assert [f.trigger for f in evaluate(ruleset, created, facts, night)] == ["office-hours"]


def test_time_based_events_only_reach_their_own_trigger(tmp_path: Path) -> None:
    ruleset = load_ruleset(write_rules(tmp_path / "rules", ORDERED))
    late = RuleEvent("unreplied_after", "t1", 1, AT, trigger="late")
    assert [f.trigger for f in evaluate(ruleset, late, FACTS, AT)] == ["late"]
    other = RuleEvent("unreplied_after", "t2", 1, AT, trigger="first")
    assert evaluate(ruleset, other, FACTS, AT) == []


# In the store


ACTIONS = """
triggers:
  - name: complaint
    when: message.received
    if: {any: [{field: body, operator: matches, value: "refund|投诉"}]}
    then:
      - tag: [complaint, Refund]
      - set_priority: urgent
      - add_note: {text: "Complaint: apologise first (C1)."}
      - notify_supervisors: {message: "complaint received"}
      - reply_with_template: complaint_reply
      - assign_round_robin: {team: billing}
  - name: welcome
    when: conversation.created
    then:
      - assign: {agent: nobody-by-that-name}
      - tag: new
  - name: escalate-urgent
    when: conversation.assigned
    if: {all: [{field: priority, operator: is, value: urgent}, {field: team, operator: is, value: billing}]}
    then:
      - escalate: {team: tier2}
      - set_status: pending
"""


async def drain(services: Services, clock: FakeClock, rounds: int = 10) -> int:
    timers = Scheduler(services.db, {WAKE: wake, **services.rule_engine.handlers()}, clock)
    total = 0
    for _ in range(rounds):
        fired = await timers.run_due()
        total += fired
        if not fired:
            break
    return total


async def events_of(services: Services, kind: str) -> list[dict[str, Any]]:
    e = schema.events
    async with services.db.read() as conn:
        rows = (await conn.execute(select(e).where(e.c.kind == kind).order_by(e.c.id))).mappings().all()
    return [dict(r) for r in rows]


async def test_actions_are_applied_and_audited(services: Services, clock: FakeClock, tmp_path: Path) -> None:
    write_rules(tmp_path / "rules", ACTIONS)
    await services.rules.load()
    billing = await services.directory.add_team("billing")
    tier2 = await services.directory.add_team("tier2")
    bob = await add_agent(services, username="bob")
    carol = await add_agent(services, username="carol")
    await services.directory.add_member(billing.id, bob.id)
    await services.directory.add_member(tier2.id, carol.id)

    result = await services.inbox.ingest(inbound("<c1@x>", text="I want a refund now"))
    assert await drain(services, clock) >= 3
    conv = await services.inbox.conversation(result.conversation_id)
    assert set(conv.tags) == {"complaint", "refund", "new"}
    assert conv.priority is Priority.URGENT
    assert conv.team_id == tier2.id and conv.assignee_id == carol.id
    assert conv.status is ConversationStatus.PENDING
    timeline = await services.inbox.timeline(conv.id)
    assert [m.text for m in timeline.messages if m.direction.value == "note"] == [
        "Complaint: apologise first (C1)."
    ]
    fired = await events_of(services, "rule.fired")
    assert [e["data"]["trigger"] for e in fired] == ["welcome", "complaint", "escalate-urgent"]
    assert fired[1]["data"]["event"] == f"rules:event:message:{result.message_id}"
    assert fired[1]["data"]["actions"][0] == {"tag": ["complaint", "Refund"]}
    [failed] = await events_of(services, "rule.action_failed")
    assert failed["data"]["trigger"] == "welcome" and "nobody-by-that-name" in failed["data"]["reason"]
    [notice] = await events_of(services, "rules.notification")
    assert notice["data"]["message"] == "complaint received"
    # No [company] address or phone is configured, so the signature breaks E6 and the reply is held back.
    [blocked] = await events_of(services, "rules.reply_blocked")
    assert blocked["data"]["template"] == "complaint_reply"
    assert {f["rule_id"] for f in blocked["data"]["findings"] if f["severity"] == "error"} == {"E6"}
    timeline = await services.inbox.timeline(conv.id)
    assert [m for m in timeline.messages if m.direction.value == "out"] == []
    assert await drain(services, clock) == 0
    assert len(await events_of(services, "rule.fired")) == 3


LOOP = """
triggers:
  - name: to-pending
    when: conversation.status_changed
    if: {all: [{field: status, operator: is, value: open}]}
    then: [{set_status: pending}]
  - name: to-open
    when: conversation.status_changed
    if: {all: [{field: status, operator: is, value: pending}]}
    then: [{set_status: open}]
"""


async def test_triggers_that_undo_each_other_stop_after_a_few_rounds(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    write_rules(tmp_path / "rules", LOOP)
    await services.rules.load()
    result = await services.inbox.ingest(inbound("<loop@x>"))
    await services.inbox.set_status(result.conversation_id, ConversationStatus.PENDING)
    await drain(services, clock, rounds=50)
    assert 1 <= len(await events_of(services, "rule.fired")) <= 10
    assert await drain(services, clock) == 0


UNREPLIED = """
triggers:
  - name: late
    when: {unreplied_after: 2h}
    if: {all: [{field: status, operator: in, value: [open, pending]}]}
    then: [{tag: late}]
  - name: waiting
    when: {waiting_since: 1d}
    if: {all: [{field: status, operator: is, value: pending}]}
    then: [{set_status: resolved}]
"""


async def test_time_based_triggers_recheck_when_due(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    write_rules(tmp_path / "rules", UNREPLIED)
    await services.rules.load()
    at = clock()
    quiet = await services.inbox.ingest(inbound("<q@x>", "quiet@example.com", at=at))
    answered = await services.inbox.ingest(inbound("<a@x>", "answered@example.com", at=at))
    await drain(services, clock)
    clock.advance(minutes=30)
    await services.outbox.reply(answered.conversation_id, "We are on it.", agent_id=None)
    await drain(services, clock)
    clock.advance(hours=2)
    await drain(services, clock)
    assert "late" in (await services.inbox.conversation(quiet.conversation_id)).tags
    replied = await services.inbox.conversation(answered.conversation_id)
    assert "late" not in replied.tags and replied.status is ConversationStatus.PENDING
    clock.advance(hours=21)
    await drain(services, clock)
    assert (await services.inbox.conversation(answered.conversation_id)).status is ConversationStatus.PENDING
    clock.advance(hours=1)
    await drain(services, clock)
    assert (await services.inbox.conversation(answered.conversation_id)).status is ConversationStatus.RESOLVED
    assert (await services.inbox.conversation(quiet.conversation_id)).status is ConversationStatus.OPEN


EVERY_MESSAGE = """
triggers:
  - name: note-each
    when: message.received
    then: [{add_note: {text: seen}}, {tag: seen}]
  - name: on-create
    when: conversation.created
    then: [{set_priority: high}]
"""


async def test_two_schedulers_fire_each_trigger_once_per_event(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    write_rules(tmp_path / "rules", EVERY_MESSAGE)
    await services.rules.load()
    count = 40
    results = await services.inbox.ingest_many(
        [
            inbound(f"m{i}", f"+4479460000{i % 10:02d}", channel=ChannelKind.SMS, text=f"message {i}")
            for i in range(count)
        ]
    )
    conversations = {r.conversation_id for r in results}
    assert len(conversations) == 10
    handlers = {WAKE: wake, **services.rule_engine.handlers()}
    workers = [Scheduler(services.db, handlers, clock, batch=7, worker_id=f"w{i}") for i in range(2)]

    async def work(s: Scheduler) -> int:
        total = 0
        while fired := await s.run_due():
            total += fired
            await asyncio.sleep(0)
        return total

    await asyncio.gather(*(work(w) for w in workers))
    fired = await events_of(services, "rule.fired")
    per_trigger = {
        name: [e for e in fired if e["data"]["trigger"] == name] for name in ("note-each", "on-create")
    }
    assert len(per_trigger["note-each"]) == count
    assert len({e["data"]["event"] for e in per_trigger["note-each"]}) == count
    assert sorted(e["conversation_id"] for e in per_trigger["on-create"]) == sorted(conversations)
    m = schema.messages
    async with services.db.read() as conn:
        notes = (
            await conn.execute(select(func.count()).select_from(m).where(m.c.direction == "note"))
        ).scalar()
    assert notes == count


async def test_no_rules_loaded_leaves_events_for_later(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    write_rules(tmp_path / "rules", EVERY_MESSAGE)
    await services.inbox.ingest(inbound("<later@x>"))
    timers = Scheduler(services.db, services.rule_engine.handlers(), clock, max_attempts=3)
    await timers.run_due()
    assert await events_of(services, "rule.fired") == []
    await services.rules.load()
    clock.advance(minutes=10)
    await timers.run_due()
    assert len(await events_of(services, "rule.fired")) == 2


async def test_round_robin_needs_an_available_agent(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    write_rules(
        tmp_path / "rules",
        "triggers:\n  - name: rr\n    when: message.received\n"
        "    then: [{assign_round_robin: {team: desk}}]\n",
    )
    await services.rules.load()
    desk = await services.directory.add_team("desk")
    away = await add_agent(services, username="away", availability=Availability.AWAY)
    await services.directory.add_member(desk.id, away.id)
    result = await services.inbox.ingest(inbound("<rr@x>"))
    await drain(services, clock)
    conv = await services.inbox.conversation(result.conversation_id)
    assert conv.team_id == desk.id and conv.assignee_id is None
    assert len(await events_of(services, "assignment.no_agent_available")) == 1


class FlakyReplies:
    """Writes its reply as a note; its first two calls fail, after the actions before them ran.

    The scheduler tries a failed batch once more at once, timer by timer, so two failures make
    one failed attempt that is retried later.
    """

    def __init__(self) -> None:
        self.calls = 0

    async def send_template(
        self, conn: AsyncConnection, conversation_id: int, template: str, now: datetime
    ) -> list[dict[str, Any]]:
        self.calls += 1
        if self.calls <= 2:
            raise ConnectionError("renderer went away")
        _, events = await insert_note(conn, conversation_id, None, f"[{template}]", now)
        return events


async def test_a_failure_halfway_through_the_actions_leaves_nothing_and_the_retry_applies_them_once(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    write_rules(
        tmp_path / "rules",
        "triggers:\n  - name: ack\n    when: message.received\n"
        "    then: [{tag: acked}, {add_note: {text: before}}, {reply_with_template: acknowledgement}]\n",
    )
    await services.rules.load()
    replies = FlakyReplies()
    engine = RuleEngine(lambda: services.rules.current, replies, clock)
    timers = Scheduler(services.db, engine.handlers(), clock)
    result = await services.inbox.ingest(inbound("<flaky@x>"))
    assert await timers.run_due() == 1
    conv = await services.inbox.conversation(result.conversation_id)
    assert conv.tags == () and await events_of(services, "rule.fired") == []
    clock.advance(minutes=5)
    assert await timers.run_due() == 1
    timeline = await services.inbox.timeline(result.conversation_id)
    assert [m.text for m in timeline.messages if m.direction.value == "note"] == [
        "before",
        "[acknowledgement]",
    ]
    assert (await services.inbox.conversation(result.conversation_id)).tags == ("acked",)
    assert len(await events_of(services, "rule.fired")) == 1 and replies.calls == 3


CREATED_THEN_RECEIVED = """
triggers:
  - name: tag-new
    when: conversation.created
    then: [{tag: new-customer}]
  - name: welcome-new
    when: message.received
    if: {all: [{field: tags, operator: contains, value: new-customer}]}
    then: [{set_priority: high}]
"""


async def test_a_message_trigger_sees_what_the_creation_trigger_just_did(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    write_rules(tmp_path / "rules", CREATED_THEN_RECEIVED)
    await services.rules.load()
    first = await services.inbox.ingest(inbound("<first@x>"))
    await drain(services, clock)
    conversation = await services.inbox.conversation(first.conversation_id)
    assert "new-customer" in conversation.tags and conversation.priority is Priority.HIGH
    fired = [e["data"]["trigger"] for e in await events_of(services, "rule.fired")]
    assert fired == ["tag-new", "welcome-new"]


BREACHES = """
triggers:
  - name: breached
    when: sla.breached
    then: [{add_note: {text: "Breached."}}]
"""


async def test_events_queued_together_for_a_conversation_wait_as_one_row_and_each_fires_once(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    write_rules(tmp_path / "rules", BREACHES)
    await services.rules.load()
    result = await services.inbox.ingest(inbound("<many@x>"))
    cid = result.conversation_id
    now = clock()
    breaches = [
        event_row("sla.breached", now - timedelta(minutes=m), cid, None, metric=metric, cycle=0)
        for m, metric in ((30, "resolution"), (90, "first_response"), (60, "next_response"))
    ]
    t = schema.timers
    async with services.db.write() as conn:
        assert await rule_queue.enqueue(conn, breaches, now) == 3
        pending = await conn.execute(
            select(func.count()).where(t.c.kind == rule_queue.RULE_EVENT, t.c.status == "pending")
        )
        assert pending.scalar_one() == 1  # one for the three breaches; no trigger reacts to the message
    await drain(services, clock)
    fired = [e for e in await events_of(services, "rule.fired") if e["data"]["trigger"] == "breached"]
    assert len(fired) == 3 and len({e["data"]["event"] for e in fired}) == 3
    async with services.db.read() as conn:
        due = dict((await conn.execute(select(t.c.key, t.c.due_at).where(t.c.kind == "rules.event"))).all())
    assert [due[e["data"]["event"]] for e in fired] == sorted(e["at"] for e in breaches)
    assert await drain(services, clock) == 0


async def test_only_events_some_trigger_reacts_to_are_queued(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    write_rules(tmp_path / "rules", ORDERED)
    await services.rules.load()
    result = await services.inbox.ingest(inbound("<interest@x>"))
    cid, now = result.conversation_id, clock()
    breach = event_row("sla.breached", now, cid, None, metric="first_response", cycle=0)
    assigned = event_row("conversation.assigned", now, cid, None, team=None)
    t = schema.timers

    async def queued_kinds() -> list[str]:
        async with services.db.write() as conn:
            assert await rule_queue.enqueue(conn, [breach, assigned], now) == 1
            rows = await conn.execute(
                select(t.c.payload).where(
                    t.c.kind == rule_queue.RULE_EVENT, t.c.status == "pending", t.c.conversation_id == cid
                )
            )
            return sorted(p["event"] for p in rows.scalars())

    assert await queued_kinds() == ["conversation.assigned", "message.received"]
    write_rules(tmp_path / "rules", BREACHES)
    await services.rules.load()
    assert await queued_kinds() == ["conversation.assigned", "message.received", "sla.breached"]
    await drain(services, clock)
    fired = [e for e in await events_of(services, "rule.fired") if e["data"]["trigger"] == "breached"]
    assert len(fired) == 1


def test_the_kinds_wanted_follow_the_triggers_and_what_timed_ones_wait_on(tmp_path: Path) -> None:
    ordered = load_ruleset(write_rules(tmp_path / "a", ORDERED)).triggers.triggers
    assert wanted_kinds(ordered) == {"message.received", "conversation.assigned"}
    waiting = """
triggers:
  - name: idle
    when: {waiting_since: 3d}
    then: [{set_status: resolved}]
  - name: switched-off
    enabled: false
    when: sla.breached
    then: [{tag: never}]
"""
    idle = load_ruleset(write_rules(tmp_path / "b", waiting)).triggers.triggers
    assert wanted_kinds(idle) == {"message.received", *STATUS_EVENTS}
    shipped = load_ruleset(Path(__file__).resolve().parent.parent / "rules").triggers.triggers
    assert {"message.received", "call.missed", "voicemail.received", "fax.received"} <= wanted_kinds(shipped)
    assert not {k for k in wanted_kinds(shipped) if k.startswith("sla.")}
