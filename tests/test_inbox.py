"""The inbox on SQLite and PostgreSQL: ingest, contacts, threading, assignment, statuses, search."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from hub import quarantine
from hub.errors import Conflict, NotFound
from hub.inbox import WAKE, ConversationFilter, SortOrder, wake
from hub.ingest import Quarantined
from hub.models import (
    Availability,
    ChannelKind,
    ConversationStatus,
    Identity,
    IdentityKind,
    InboundAttachment,
    Priority,
    Role,
)
from hub.scheduler import Scheduler
from hub.services import Services
from hub.stats import collect
from hub.store import schema
from hub.store.search import index_terms, reindex_messages
from tests.conftest import FakeClock
from tests.factories import inbound


async def count(services: Services, table: schema.Table) -> int:
    async with services.db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def test_same_message_concurrently_is_stored_once(services: Services) -> None:
    services.inbox.start()
    message = inbound("<once@example.com>", subject="Parcel late")
    results = await asyncio.gather(*(services.inbox.ingest(message) for _ in range(20)))
    assert len({r.message_id for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1
    assert await count(services, schema.messages) == 1


async def test_same_external_id_on_two_accounts_is_two_messages(services: Services) -> None:
    a = await services.inbox.ingest(inbound("id-1", account="support"))
    b = await services.inbox.ingest(inbound("id-1", account="sales"))
    assert a.message_id != b.message_id and not b.duplicate


async def test_a_batch_finds_each_stored_message_by_its_own_account_and_id(services: Services) -> None:
    first = await services.inbox.ingest_many(
        [inbound("id-1", account="support"), inbound("id-2", account="sales")]
    )
    pairs = [
        ("id-1", "sales"),
        ("id-2", "sales"),
        ("id-2", "support"),
        ("id-1", "support"),
        ("id-3", "support"),
    ]
    batch = [inbound(external_id, account=account) for external_id, account in pairs]
    results = await services.inbox.ingest_many(batch)
    assert [r.duplicate for r in results] == [False, True, False, True, False]
    assert (results[1].message_id, results[3].message_id) == (first[1].message_id, first[0].message_id)
    assert len({r.message_id for r in results}) == len(batch)
    assert await count(services, schema.messages) == 5


async def test_a_batch_finds_each_sender_by_its_own_kind_and_address(services: Services) -> None:
    fax = await services.inbox.ingest(inbound("f-1", "+442079460101", channel=ChannelKind.FAX, account="fax"))
    sms = await services.inbox.ingest(inbound("s-1", "+442079460102", channel=ChannelKind.SMS, account="sms"))
    senders = [
        ("+442079460101", ChannelKind.SMS),
        ("+442079460102", ChannelKind.FAX),
        ("+442079460102", ChannelKind.SMS),
    ]
    batch = [
        inbound(f"b-{n}", address, channel=kind, account=kind.value)
        for n, (address, kind) in enumerate(senders)
    ]
    results = await services.inbox.ingest_many(batch)
    assert results[2].contact_id == sms.contact_id
    assert len({fax.contact_id, sms.contact_id, results[0].contact_id, results[1].contact_id}) == 4


async def test_group_commit_keeps_order_and_threads_within_a_batch(services: Services) -> None:
    services.inbox.start()
    first = inbound("<m0@x>", own_refs=("<m0@x>",), subject="Invoice 2291")
    replies = [
        inbound(
            f"<m{i}@x>", own_refs=(f"<m{i}@x>",), reply_refs=(f"<m{i - 1}@x>",), subject="Re: Invoice 2291"
        )
        for i in range(1, 40)
    ]
    results = await asyncio.gather(*(services.inbox.ingest(m) for m in [first, *replies]))
    assert {r.conversation_id for r in results} == {results[0].conversation_id}
    assert [r.new_conversation for r in results] == [True] + [False] * 39


async def test_contacts_resolve_by_normalised_identity(services: Services) -> None:
    a = await services.inbox.ingest(inbound("1", "Ana.Lopez@Example.COM"))
    b = await services.inbox.ingest(inbound("2", "ana.lopez@example.com"))
    assert a.contact_id == b.contact_id
    sms1 = await services.inbox.ingest(inbound("SM1", "+1 (415) 555-0100", channel=ChannelKind.SMS))
    sms2 = await services.inbox.ingest(inbound("SM2", "+14155550100", channel=ChannelKind.SMS))
    assert sms1.contact_id == sms2.contact_id != a.contact_id
    contact = await services.contacts.get(sms1.contact_id)
    assert contact.identities == (Identity(IdentityKind.PHONE, "+14155550100"),)


def test_invalid_identities_are_refused() -> None:
    with pytest.raises(ValueError, match="phone"):
        Identity.of("phone", "12")
    with pytest.raises(ValueError, match="e-mail"):
        Identity.of("email", "not-an-address")
    assert Identity.of("fax", "010 6552 9988", region="CN").address == "+861065529988"


async def test_email_threads_by_reference_then_token(services: Services) -> None:
    first = await services.inbox.ingest(inbound("<a1@x>", own_refs=("<a1@x>",), subject="Refund"))
    by_ref = await services.inbox.ingest(
        inbound("<a2@x>", "someone.else@example.com", reply_refs=("<zz@x>", "<a1@x>"), subject="Re: Refund")
    )
    assert by_ref.conversation_id == first.conversation_id
    token = f"[#{first.conversation_id}]"
    by_token = await services.inbox.ingest(inbound("<a3@x>", subject=f"Still waiting {token}"))
    assert by_token.conversation_id == first.conversation_id
    stranger = await services.inbox.ingest(
        inbound("<a4@x>", "mallory@example.net", subject=f"Hijack {token}")
    )
    assert stranger.new_conversation and stranger.conversation_id != first.conversation_id
    unrelated = await services.inbox.ingest(inbound("<a5@x>", subject="Another question"))
    assert unrelated.new_conversation


async def test_chat_threads_into_open_conversation_within_window(
    services: Services, clock: FakeClock
) -> None:
    def sms(ext: str) -> object:
        return inbound(ext, "+8613800138000", channel=ChannelKind.SMS, account="sms-cn", at=clock())

    first = await services.inbox.ingest(sms("SM1"))  # type: ignore[arg-type]
    clock.advance(hours=2)
    second = await services.inbox.ingest(sms("SM2"))  # type: ignore[arg-type]
    assert second.conversation_id == first.conversation_id
    other_line = await services.inbox.ingest(
        inbound("SM3", "+8613800138000", channel=ChannelKind.SMS, account="sms-us", at=clock())
    )
    assert other_line.conversation_id != first.conversation_id
    clock.advance(hours=30)
    later = await services.inbox.ingest(sms("SM4"))  # type: ignore[arg-type]
    assert later.new_conversation
    await services.inbox.set_status(later.conversation_id, ConversationStatus.RESOLVED)
    clock.advance(minutes=5)
    after_resolve = await services.inbox.ingest(sms("SM5"))  # type: ignore[arg-type]
    assert after_resolve.new_conversation


async def test_new_inbound_reopens(services: Services, clock: FakeClock) -> None:
    first = await services.inbox.ingest(inbound("<r1@x>", own_refs=("<r1@x>",)))
    cid = first.conversation_id
    await services.inbox.set_status(
        cid, ConversationStatus.SNOOZED, snoozed_until=clock() + timedelta(days=1)
    )
    reply = await services.inbox.ingest(inbound("<r2@x>", reply_refs=("<r1@x>",)))
    assert reply.reopened
    conv = await services.inbox.conversation(cid)
    assert conv.status is ConversationStatus.OPEN and conv.snoozed_until is None
    timeline = await services.inbox.timeline(cid)
    assert "conversation.reopened" in [e.kind for e in timeline.events]


async def test_merge_contacts_moves_conversations_and_identities(services: Services) -> None:
    mail = await services.inbox.ingest(inbound("<m@x>", "li.wei@example.cn"))
    chat = await services.inbox.ingest(inbound("visitor-77", "visitor-77", channel=ChannelKind.CHAT))
    merged = await services.contacts.merge(chat.contact_id, mail.contact_id)
    assert {i.kind for i in merged.identities} == {IdentityKind.EMAIL, IdentityKind.CHAT}
    assert (await services.inbox.conversation(chat.conversation_id)).contact_id == mail.contact_id
    later = await services.inbox.ingest(inbound("visitor-77-b", "visitor-77", channel=ChannelKind.CHAT))
    assert later.contact_id == mail.contact_id
    with pytest.raises(Conflict):
        await services.contacts.merge(chat.contact_id, mail.contact_id)
    assert len(await services.contacts.list()) == 1


async def test_round_robin_skips_unavailable_and_rotates(services: Services) -> None:
    d = services.directory
    team = await d.add_team("Support", "客服部")
    agents = [
        await d.add_agent(
            f"agent{i}", "correct horse battery", Role.AGENT, availability=Availability.AVAILABLE
        )
        for i in range(3)
    ]
    away = await d.add_agent("away", "correct horse battery", Role.AGENT)
    for a in [*agents, away]:
        await d.add_member(team.id, a.id)
    picks = []
    for i in range(6):
        r = await services.inbox.ingest(inbound(f"<rr{i}@x>"))
        conv = await services.inbox.assign_round_robin(r.conversation_id, team.id)
        picks.append(conv.assignee_id)
    ids = [a.id for a in agents]
    assert picks == ids + ids
    for a in agents:
        await d.update_agent(a.id, availability=Availability.AWAY)
    r = await services.inbox.ingest(inbound("<rr-none@x>"))
    conv = await services.inbox.assign_round_robin(r.conversation_id, team.id)
    assert conv.assignee_id is None and conv.team_id == team.id
    kinds = [e.kind for e in (await services.inbox.timeline(r.conversation_id)).events]
    assert "assignment.no_agent_available" in kinds


async def test_manual_assignment_and_errors(services: Services) -> None:
    agent = await services.directory.add_agent("bo", "correct horse battery", Role.AGENT)
    r = await services.inbox.ingest(inbound("<as@x>"))
    conv = await services.inbox.assign(r.conversation_id, agent.id, by=agent.id)
    assert conv.assignee_id == agent.id
    assert (await services.inbox.assign(r.conversation_id, None)).assignee_id is None
    with pytest.raises(NotFound):
        await services.inbox.assign(r.conversation_id, 9999)
    await services.directory.update_agent(agent.id, active=False)
    with pytest.raises(Conflict):
        await services.inbox.assign(r.conversation_id, agent.id)
    with pytest.raises(NotFound):
        await services.inbox.assign(424242, None)


async def test_later_messages_move_a_conversations_times_forward_and_never_back(
    services: Services, clock: FakeClock
) -> None:
    start = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
    first = await services.inbox.ingest(inbound("<t1@x>", own_refs=("<t1@x>",), at=start))
    cid = first.conversation_id
    await services.inbox.set_status(
        cid, ConversationStatus.SNOOZED, snoozed_until=clock() + timedelta(days=1)
    )
    clock.advance(minutes=3)
    batch = [
        inbound("<t2@x>", reply_refs=("<t1@x>",), at=start + timedelta(minutes=2)),
        inbound("<t3@x>", reply_refs=("<t1@x>",), at=start + timedelta(minutes=1)),
    ]
    results = await services.inbox.ingest_many(batch)
    assert {r.conversation_id for r in results} == {cid}
    conv = await services.inbox.conversation(cid)
    assert conv.status is ConversationStatus.OPEN and conv.snoozed_until is None
    assert conv.last_message_at == conv.last_inbound_at == start + timedelta(minutes=2)
    assert conv.updated_at == clock()
    await services.inbox.ingest(inbound("<t4@x>", reply_refs=("<t1@x>",), at=start))
    conv = await services.inbox.conversation(cid)
    assert conv.last_message_at == conv.last_inbound_at == start + timedelta(minutes=2)


async def test_snooze_and_wake(services: Services, clock: FakeClock) -> None:
    r = await services.inbox.ingest(inbound("<sn@x>"))
    with pytest.raises(Conflict):
        await services.inbox.set_status(r.conversation_id, ConversationStatus.SNOOZED)
    with pytest.raises(Conflict):
        await services.inbox.set_status(
            r.conversation_id, ConversationStatus.SNOOZED, snoozed_until=clock() - timedelta(minutes=1)
        )
    await services.inbox.set_status(
        r.conversation_id, ConversationStatus.SNOOZED, snoozed_until=clock() + timedelta(hours=1)
    )
    timers = Scheduler(services.db, {WAKE: wake, **services.rule_engine.handlers()}, clock)
    await services.rules.load()
    assert await timers.run_due() == 2  # the rule engine sees the message and the snooze
    assert await timers.run_due() == 0
    clock.advance(hours=1, seconds=1)
    assert await timers.run_due() == 1
    assert (await services.inbox.conversation(r.conversation_id)).status is ConversationStatus.OPEN


async def test_a_changed_snooze_wakes_only_at_its_new_time(services: Services, clock: FakeClock) -> None:
    r = await services.inbox.ingest(inbound("<sn2@x>"))
    cid = r.conversation_id
    await services.inbox.set_status(
        cid, ConversationStatus.SNOOZED, snoozed_until=clock() + timedelta(hours=1)
    )
    await services.inbox.set_status(
        cid, ConversationStatus.SNOOZED, snoozed_until=clock() + timedelta(hours=3)
    )
    timers = Scheduler(services.db, {WAKE: wake, **services.rule_engine.handlers()}, clock)
    await services.rules.load()
    assert await timers.run_due() == 3  # the rule engine sees the message and both snoozes
    clock.advance(hours=2)
    assert await timers.run_due() == 1
    assert (await services.inbox.conversation(cid)).status is ConversationStatus.SNOOZED
    clock.advance(hours=2)
    assert await timers.run_due() == 1
    conversation = await services.inbox.conversation(cid)
    assert conversation.status is ConversationStatus.OPEN and conversation.snoozed_until is None
    woken = [e for e in (await services.inbox.timeline(cid)).events if e.data.get("reason") == "snooze ended"]
    assert len(woken) == 1 and woken[0].at == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


async def test_notes_tags_priority_are_audited(services: Services) -> None:
    agent = await services.directory.add_agent("cy", "correct horse battery", Role.SUPERVISOR)
    r = await services.inbox.ingest(inbound("<nt@x>"))
    note = await services.inbox.add_note(r.conversation_id, agent.id, "Customer called twice; 先查物流")
    conv = await services.inbox.set_tags(
        r.conversation_id, add=["Complaint", " delivery  late "], by=agent.id
    )
    assert conv.tags == ("complaint", "delivery late")
    conv = await services.inbox.set_tags(r.conversation_id, remove=["complaint"], by=agent.id)
    assert conv.tags == ("delivery late",)
    conv = await services.inbox.set_priority(r.conversation_id, Priority.URGENT, by=agent.id)
    assert conv.priority is Priority.URGENT
    timeline = await services.inbox.timeline(r.conversation_id)
    assert [m.id for m in timeline.messages][-1] == note.id
    assert timeline.messages[-1].direction.value == "note"
    kinds = [e.kind for e in timeline.events]
    assert kinds.count("conversation.tagged") == 2 and "note.added" in kinds
    assert "conversation.priority_changed" in kinds
    assert all(e.agent_id == agent.id for e in timeline.events if e.kind != "conversation.created")


async def test_search_english_and_chinese(services: Services) -> None:
    en = await services.inbox.ingest(
        inbound("<s1@x>", text="My refund for order 5521 never arrived", subject="Refund missing")
    )
    zh = await services.inbox.ingest(
        inbound("<s2@x>", "wang@example.cn", text="您好，我想申请退款，快递一直没到。", subject="退款申请")
    )
    await services.inbox.ingest(inbound("<s3@x>", "zed@example.com", text="Thanks for the quick help"))
    assert [c.id for c in await services.inbox.search("refund")] == [en.conversation_id]
    assert [c.id for c in await services.inbox.search("退款")] == [zh.conversation_id]
    assert [c.id for c in await services.inbox.search("快递")] == [zh.conversation_id]
    assert [c.id for c in await services.inbox.search("refu")] == [en.conversation_id]
    assert [c.id for c in await services.inbox.search("ORDER 5521")] == [en.conversation_id]
    assert await services.inbox.search("nothing-like-this") == []
    assert await services.inbox.search("!!!") == []


async def test_reindexing_a_batch_replaces_the_terms_of_each_message_once(services: Services) -> None:
    first = await services.inbox.ingest(inbound("<r1@x>", text="Parcel stuck in customs"))
    second = await services.inbox.ingest(inbound("<r2@x>", "li@example.cn", text="发票没有收到"))
    rows = [
        {"id": first.message_id, "terms": index_terms("wrong words")},
        {"id": second.message_id, "terms": index_terms("Invoice 发票 resent")},
        {"id": first.message_id, "terms": index_terms("Parcel released from customs")},
    ]
    async with services.db.write() as conn:
        await reindex_messages(conn, rows)
    assert [c.id for c in await services.inbox.search("released")] == [first.conversation_id]
    assert await services.inbox.search("wrong") == []
    assert [c.id for c in await services.inbox.search("发票")] == [second.conversation_id]
    assert [c.id for c in await services.inbox.search("invoice")] == [second.conversation_id]


async def test_list_filters_and_sorting(services: Services, clock: FakeClock) -> None:
    agent = await services.directory.add_agent("di", "correct horse battery", Role.AGENT)
    ids = []
    for i, channel in enumerate([ChannelKind.EMAIL, ChannelKind.SMS, ChannelKind.FAX, ChannelKind.CHAT]):
        sender = {
            ChannelKind.EMAIL: "a@example.com",
            ChannelKind.SMS: "+14155550101",
            ChannelKind.FAX: "+14155550102",
            ChannelKind.CHAT: "v-1",
        }[channel]
        r = await services.inbox.ingest(inbound(f"L{i}", sender, channel=channel, at=clock()))
        ids.append(r.conversation_id)
        clock.advance(minutes=1)
    await services.inbox.assign(ids[0], agent.id)
    await services.inbox.set_priority(ids[2], Priority.HIGH)
    await services.inbox.set_status(ids[3], ConversationStatus.RESOLVED)
    await services.inbox.set_tags(ids[1], add=["vip"])

    async def listed(**kw: object) -> list[int]:
        items, total = await services.inbox.list(ConversationFilter(**kw))  # type: ignore[arg-type]
        assert total == len(items)
        return [c.id for c in items]

    assert await listed(assignee_id=agent.id) == [ids[0]]
    assert set(await listed(unassigned=True)) == set(ids[1:])
    assert await listed(channels=(ChannelKind.FAX,)) == [ids[2]]
    assert await listed(statuses=(ConversationStatus.RESOLVED,)) == [ids[3]]
    assert await listed(tag="VIP") == [ids[1]]
    assert (await listed(sort=SortOrder.PRIORITY))[0] == ids[2]
    assert await listed(sort=SortOrder.CREATED) == list(reversed(ids))
    page, total = await services.inbox.list(ConversationFilter(limit=2, offset=1, sort=SortOrder.CREATED))
    assert [c.id for c in page] == [ids[2], ids[1]] and total == 4


async def test_attachments_and_raw_stored_out_of_line(services: Services) -> None:
    limit = services.inbox.limits.max_attachment_bytes
    small = InboundAttachment("invoice.pdf", "application/pdf", b"%PDF-1.7 small")
    huge = InboundAttachment("scan.tiff", "image/tiff", b"\0" * (limit + 1))
    r = await services.inbox.ingest(inbound("<att@x>", attachments=(small, huge), raw=b"From: a\r\n\r\nbody"))
    timeline = await services.inbox.timeline(r.conversation_id)
    message = timeline.messages[0]
    assert [a.filename for a in message.attachments] == ["invoice.pdf"]
    assert await services.blobs.get(message.attachments[0].sha256) == b"%PDF-1.7 small"
    notes = message.meta["ingest_notes"]
    assert any("scan.tiff" in n and "over the limit" in n for n in notes)
    async with services.db.read() as conn:
        raw_sha = (await conn.execute(select(schema.messages.c.raw_sha256))).scalar_one()
    assert await services.blobs.get(raw_sha) == b"From: a\r\n\r\nbody"


async def test_hostile_values_are_fitted_not_fatal(services: Services) -> None:
    long_id = "<" + "x" * 2000 + "@example.com>"
    r = await services.inbox.ingest(
        inbound(long_id, text="null\x00byte", subject="S" * 5000, sender_name="N\x00" * 400)
    )
    again = await services.inbox.ingest(inbound(long_id))
    assert again.duplicate and again.message_id == r.message_id
    [message] = (await services.inbox.timeline(r.conversation_id)).messages
    assert message.text == "nullbyte" and len(message.subject or "") == 998
    assert message.external_id is not None and message.external_id.startswith("sha256:")
    assert len(message.meta["ingest_notes"]) == 3


async def test_one_broken_message_does_not_fail_its_batch(services: Services) -> None:
    services.inbox.start()
    good = [inbound(f"<g{i}@x>") for i in range(5)]
    bad = inbound("<bad@x>", meta={"not json": {1, 2}})
    results = await asyncio.gather(
        *(services.inbox.ingest(m) for m in [*good[:2], bad, *good[2:]]), return_exceptions=True
    )
    assert isinstance(results[2], Quarantined)
    assert "not JSON serializable" in results[2].reason
    assert all(not isinstance(r, BaseException) and not r.duplicate for i, r in enumerate(results) if i != 2)
    assert await count(services, schema.messages) == 5
    [entry] = await quarantine.entries(services.db)
    assert entry.id == results[2].quarantine_id and entry.external_id == "<bad@x>"
    assert entry.raw_sha256 is not None
    kept = json.loads(await services.blobs.get(entry.raw_sha256))
    assert kept["external_id"] == "<bad@x>" and kept["text"] == bad.text


async def test_unstorable_sender_is_quarantined_with_its_raw_bytes(services: Services) -> None:
    odd = dataclasses.replace(
        inbound("<odd@x>", raw=b"From: ...\r\n\r\nbody"),
        sender=Identity(IdentityKind.EMAIL, "a" * 400 + "@example.com"),
    )
    with pytest.raises(Quarantined, match="sender address is not storable") as err:
        await services.inbox.ingest(odd)
    [entry] = await quarantine.entries(services.db)
    assert entry.id == err.value.quarantine_id
    assert await services.blobs.get(entry.raw_sha256 or "") == b"From: ...\r\n\r\nbody"
    assert (await collect(services.db))["quarantined"] == 1


async def test_subscribers_hear_what_happened_after_it_is_committed(services: Services) -> None:
    heard = services.bus.subscribe()
    result = await services.inbox.ingest(inbound("<ev@x>"))
    kinds = [heard.get_nowait()["kind"] for _ in range(heard.qsize())]
    assert kinds == ["conversation.created", "message.received"]
    await services.inbox.set_priority(result.conversation_id, Priority.HIGH)
    assert heard.get_nowait()["kind"] == "conversation.priority_changed"
    services.bus.unsubscribe(heard)
    await services.inbox.set_priority(result.conversation_id, Priority.LOW)
    assert heard.empty()


async def test_due_order_pages_match_a_full_sort(services: Services, clock: FakeClock) -> None:
    statuses = list(ConversationStatus)
    expected: list[tuple[bool, datetime, int, str]] = []
    for i in range(24):
        r = await services.inbox.ingest(inbound(f"D{i}", f"d{i}@example.com", at=clock()))
        due = None if i % 5 == 0 else clock() + timedelta(minutes=(i * 7) % 11)
        promised = clock() - timedelta(minutes=1) if i % 10 == 0 or i == 3 else None
        status = statuses[i % len(statuses)]
        async with services.db.write() as conn:
            await conn.execute(
                schema.conversations.update()
                .where(schema.conversations.c.id == r.conversation_id)
                .values(due_at=due, status=status.value, promise_due_at=promised)
            )
        expected.append((due is None, due or clock(), r.conversation_id, status.value))
    expected.sort(key=lambda e: (e[0], e[1], e[2]))
    expected_first = min(e[2] for e in expected)

    async def page(offset: int, *wanted: ConversationStatus) -> list[int]:
        flt = ConversationFilter(statuses=wanted, sort=SortOrder.DUE, limit=5, offset=offset)
        items, total = await services.inbox.list(flt)
        assert total == sum(1 for e in expected if not wanted or e[3] in {s.value for s in wanted})
        return [c.id for c in items]

    everything = [cid for offset in range(0, 25, 5) for cid in await page(offset)]
    assert everything == [e[2] for e in expected]
    two = (ConversationStatus.OPEN, ConversationStatus.PENDING)
    assert await page(5, *two) == [e[2] for e in expected if e[3] in {"open", "pending"}][5:10]
    breached, total = await services.inbox.list(ConversationFilter(breached=True, sort=SortOrder.DUE))
    late = [e[2] for e in expected if e[2] - expected_first in {0, 3, 10, 20}]
    assert [c.id for c in breached] == late and total == 4
