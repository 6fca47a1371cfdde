"""Recomputation skips a conversation only when nothing it depends on changed, on both databases."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from hub.models import ChannelKind, ConversationStatus
from hub.rules.conditions import Facts
from hub.services import Services
from hub.sla import followups
from hub.sla.calendar import BusinessCalendar
from hub.sla.cycles import compute_under
from hub.sla.deadlines import Step, StepKind
from hub.sla.freshness import moving_steps
from hub.sla.history import History, PromiseStep
from hub.sla.service import SlaService
from hub.store import schema
from tests.conftest import FakeClock
from tests.factories import inbound
from tests.sla_helpers import STANDARD, WEEKDAYS, book, london, sla_events

MON_9 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


async def computed_at(services: Services) -> dict[int, datetime]:
    """When each conversation's SLA state was last computed."""
    s = schema.sla_inputs
    async with services.db.read() as conn:
        return {r.conversation_id: r.computed_at for r in await conn.execute(select(s))}


async def state(services: Services) -> dict[str, Any]:
    """Everything a recomputation writes: cycles (without bookkeeping), due times and pending wake-ups."""
    s, c, t = schema.sla_cycles, schema.conversations, schema.timers
    async with services.db.read() as conn:
        cycles = {
            (r.conversation_id, r.metric, r.seq): (
                r.policy, r.started_at, r.due_at, r.warn_at, r.fulfilled_at, r.breached_at, r.paused,
                r.business_seconds,
            )
            for r in await conn.execute(select(s))
        }  # fmt: skip
        due = {r.id: (r.due_at, r.promise_due_at) for r in await conn.execute(select(c))}
        timers = {
            r.key: (r.due_at, r.status, r.payload)
            for r in await conn.execute(select(t).where(t.c.kind != "rules.event"))
        }
    return {"cycles": cycles, "due": due, "timers": timers}


async def skipped_is_computed_from_scratch(services: Services, service: SlaService) -> None:
    """The state left by skipped recomputations is what computing every conversation again writes."""
    skipped = await state(services)
    async with services.db.write() as conn:
        await conn.execute(delete(schema.sla_inputs))
    await service.recompute_all()
    assert await state(services) == skipped


async def three_conversations(services: Services, clock: FakeClock) -> list[int]:
    clock.now = MON_9
    ids = []
    for n in range(3):
        message = inbound(f"m{n}", f"c{n}@example.com", at=MON_9 + timedelta(minutes=n))
        ids.append((await services.inbox.ingest(message)).conversation_id)
    return ids


async def computed(services: Services, clock: FakeClock) -> tuple[list[int], SlaService]:
    """Three conversations, computed once under the standard policy."""
    ids = await three_conversations(services, clock)
    service = SlaService(services.db, services.bus, clock, book(STANDARD))
    await service.recompute_all()
    return ids, service


async def test_an_unchanged_conversation_is_skipped_and_its_state_is_what_a_full_computation_gives(
    services: Services, clock: FakeClock
) -> None:
    ids, service = await computed(services, clock)
    first = await computed_at(services)
    assert set(first) == set(ids)

    clock.advance(minutes=20)
    await service.recompute_all()
    assert await computed_at(services) == first
    await skipped_is_computed_from_scratch(services, service)
    assert set((await computed_at(services)).values()) == {clock.now}


async def test_a_changed_conversation_is_recomputed_and_the_others_are_not(
    services: Services, clock: FakeClock
) -> None:
    ids, service = await computed(services, clock)
    first = await computed_at(services)

    clock.advance(minutes=10)
    await services.outbox.reply(ids[1], "Your parcel left the depot this morning.", agent_id=None)
    await service.recompute_all()
    now = await computed_at(services)
    assert now[ids[1]] == clock.now
    assert {cid: now[cid] for cid in (ids[0], ids[2])} == {cid: first[cid] for cid in (ids[0], ids[2])}
    cycles = (await state(services))["cycles"]
    assert cycles[(ids[1], "first_response", 0)][4] == clock.now
    assert cycles[(ids[0], "first_response", 0)][4] is None

    clock.advance(minutes=10)
    await services.inbox.set_tags(ids[2], add=["complaint"])
    await service.recompute_all()
    assert (await state(services))["cycles"][(ids[2], "first_response", 0)][0] == "complaints"


async def test_a_conversation_is_recomputed_once_a_moment_it_waits_for_has_passed(
    services: Services, clock: FakeClock
) -> None:
    [cid, *_], service = await computed(services, clock)
    clock.now = MON_9 + timedelta(minutes=44, seconds=59)
    await service.recompute_all()
    assert await sla_events(services) == []
    clock.now = MON_9 + timedelta(minutes=45)
    await service.recompute_all()
    assert (await computed_at(services))[cid] == clock.now
    assert await sla_events(services) == [("sla.warning", "first_response", MON_9 + timedelta(minutes=45))]
    clock.now = MON_9 + timedelta(hours=1)
    await service.recompute_all()
    assert (await state(services))["cycles"][(cid, "first_response", 0)][5] == MON_9 + timedelta(hours=1)
    assert [k for k, _, _ in await sla_events(services)][-1] == "sla.breached"


async def test_a_rules_change_recomputes_only_conversations_whose_policy_or_calendar_changed(
    services: Services, clock: FakeClock
) -> None:
    ids = await three_conversations(services, clock)
    await services.inbox.set_tags(ids[0], add=["complaint"])
    service = SlaService(services.db, services.bus, clock, book(STANDARD))
    await service.recompute_all()
    first = await computed_at(services)

    clock.advance(minutes=5)
    relaxed = {
        **STANDARD,
        "policies": [{**STANDARD["policies"][0], "first_response": "45m"}, STANDARD["policies"][1]],
    }
    service.set_book(book(relaxed))
    await service.recompute_all()
    now = await computed_at(services)
    assert now[ids[0]] == clock.now
    assert [now[ids[1]], now[ids[2]]] == [first[ids[1]], first[ids[2]]]
    assert (await state(services))["cycles"][(ids[0], "first_response", 0)][2] == MON_9 + timedelta(
        minutes=45
    )

    clock.advance(minutes=5)
    closed_today = BusinessCalendar.build(
        "default", "Europe/London", WEEKDAYS, country="GB", subdivision="ENG", closed=[date(2026, 11, 23)]
    )
    service.set_book(book(relaxed, {"default": closed_today}))
    await service.recompute_all()
    assert set((await computed_at(services)).values()) == {clock.now}
    tuesday_10 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert (await state(services))["cycles"][(ids[1], "first_response", 0)][2] == tuesday_10

    clock.advance(minutes=5)
    service.set_book(book(relaxed, {"default": london()}))
    await service.recompute_all()
    assert set((await computed_at(services)).values()) == {clock.now}
    assert (await state(services))["cycles"][(ids[1], "first_response", 0)][2] == MON_9 + timedelta(
        hours=1, minutes=1
    )


async def test_due_times_that_moved_are_rewritten_each_column_on_its_own(
    services: Services, clock: FakeClock
) -> None:
    ids, service = await computed(services, clock)
    right = await state(services)
    wrong = MON_9 - timedelta(days=3)
    c = schema.conversations
    async with services.db.write() as conn:
        await conn.execute(c.update().where(c.c.id == ids[0]).values(due_at=wrong))
        await conn.execute(c.update().where(c.c.id == ids[1]).values(promise_due_at=wrong))
        await conn.execute(c.update().where(c.c.id == ids[2]).values(due_at=None, promise_due_at=wrong))
        await conn.execute(delete(schema.sla_inputs))
    await service.recompute_all()
    assert (await state(services))["due"] == right["due"]


async def test_stored_cycles_are_rewritten_whole_whether_or_not_their_start_moved(
    services: Services, clock: FakeClock
) -> None:
    ids, service = await computed(services, clock)
    right = await state(services)
    wrong = MON_9 - timedelta(days=3)
    s = schema.sla_cycles
    async with services.db.write() as conn:
        await conn.execute(s.update().where(s.c.conversation_id == ids[0]).values(started_at=wrong))
        await conn.execute(
            s.update().where(s.c.conversation_id == ids[1]).values(due_at=wrong, policy="old", paused=True)
        )
        await conn.execute(delete(schema.sla_inputs))
    await service.recompute_all()
    assert (await state(services))["cycles"] == right["cycles"]


EVERY_TARGET = {
    "defaults": {"warn_before": "10m"},
    "policies": [
        {
            "name": "all",
            "first_response": "30m",
            "next_response": "1h",
            "periodic_update": "3h",
            "resolution": "6h",
            "human_only": False,
        },
    ],
}
STEP_CHOICES = [
    (StepKind.INBOUND, None),
    (StepKind.INBOUND, None),
    (StepKind.INBOUND, None),
    (StepKind.REPLY, None),
    (StepKind.AUTO_REPLY, None),
    (StepKind.STATUS, ConversationStatus.PENDING),
    (StepKind.STATUS, ConversationStatus.RESOLVED),
    (StepKind.STATUS, ConversationStatus.OPEN),
]


def random_history(rng: random.Random) -> History:
    at = MON_9 - timedelta(hours=rng.randrange(0, 48))
    steps = []
    for _ in range(rng.randrange(0, 12)):
        at += timedelta(minutes=rng.choice([0, 0, 1, 7, 50, 130]))
        kind, status = rng.choice(STEP_CHOICES)
        steps.append(Step(at, kind, status))
    facts = Facts(
        channel="email", mailbox="support", subject="", body="", sender="", language="", tags=frozenset(),
        priority="normal", status="open", team=None, assignee=None, in_business_hours=None, contact_name=None,
    )  # fmt: skip
    last = next((s.status for s in reversed(steps) if s.status is not None), ConversationStatus.OPEN)
    promises = [PromiseStep(s.at, s.at + timedelta(hours=2)) for s in steps if s.kind is StepKind.AUTO_REPLY]
    return History(1, facts, None, None, last, steps, promises)


def test_the_customer_messages_left_out_of_the_digest_change_nothing_a_recomputation_gives() -> None:
    rng = random.Random(6)
    books = [book(STANDARD), book(EVERY_TARGET)]
    dropped = 0
    for _ in range(3000):
        full = random_history(rng)
        moving = History(
            full.conversation_id, full.facts, full.team_id, full.assignee_id, full.status,
            list(moving_steps(full.steps)), full.promises,
        )  # fmt: skip
        dropped += len(full.steps) - len(moving.steps)
        assert {s.kind for s in full.steps} - {s.kind for s in moving.steps} <= {StepKind.INBOUND}
        for b in books:
            policy = b.policies[-1]
            for hours in (0, 1, 3, 30, 80):
                now = MON_9 + timedelta(hours=hours)
                assert compute_under(full, policy, b, now) == compute_under(moving, policy, b, now)
            for name, got in followups.wanted({1: full}, {1: policy}, b).items():
                assert got == followups.wanted({1: moving}, {1: policy}, b)[name]
    assert dropped > 1000


def test_a_customer_message_after_one_that_waits_changes_the_digest_only_if_it_starts_a_cycle() -> None:
    def steps(*kinds: StepKind) -> list[StepKind]:
        history = [Step(MON_9 + timedelta(minutes=n), k) for n, k in enumerate(kinds)]
        return [s.kind for s in moving_steps(history)]

    i, r = StepKind.INBOUND, StepKind.REPLY
    assert steps(i, i, i) == [i]
    assert steps(i, r, i, i) == [i, r, i]
    assert steps(r, i, i, i) == [r, i, i]
    assert steps(i, StepKind.STATUS, i) == [i, StepKind.STATUS, i]


async def test_a_second_message_while_the_first_waits_is_not_recomputed_and_one_after_a_reply_is(
    services: Services, clock: FakeClock
) -> None:
    clock.now = MON_9
    caller = "+442079460123"

    async def call(n: int) -> int:
        message = inbound(f"CA{n}", caller, channel=ChannelKind.VOICE, at=clock.now)
        return (await services.inbox.ingest(message)).conversation_id

    cid = await call(0)
    service = SlaService(services.db, services.bus, clock, book(STANDARD))
    await service.recompute_all()
    first = await computed_at(services)

    clock.advance(minutes=5)
    assert await call(1) == cid
    await service.recompute_all()
    assert await computed_at(services) == first
    await skipped_is_computed_from_scratch(services, service)

    clock.advance(minutes=5)
    await services.outbox.reply(cid, "We are calling you back in a minute.", agent_id=None)
    clock.advance(minutes=5)
    assert await call(2) == cid
    await service.recompute_all()
    assert (await computed_at(services))[cid] == clock.now
    cycles = (await state(services))["cycles"]
    assert cycles[(cid, "next_response", 0)][1] == clock.now
