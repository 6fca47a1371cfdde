"""The conversation API: lists and filters, timelines, replies, notes, assignment, statuses."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from hub.models import ChannelKind, ConversationStatus, InboundAttachment, Priority, Role
from hub.services import Services
from hub.store import schema
from hub.web import create_app
from tests.conftest import FakeClock
from tests.conftest_web import Caller, add_agent, as_role
from tests.factories import inbound

Client = TestClient[Any, Any]


@dataclass
class Data:
    """Four conversations on three channels, from four contacts."""

    parcel: int
    callback: int
    refund: int
    invoice: int
    ana_contact: int
    attachment: int


@pytest.fixture
async def client(aiohttp_client: Any, services: Services) -> Client:
    return await aiohttp_client(create_app(services))


@pytest.fixture
async def agent(client: Client, services: Services) -> Caller:
    return await as_role(client, services, Role.AGENT)


@pytest.fixture
async def data(services: Services, clock: FakeClock) -> Data:
    inbox = services.inbox
    parcel = await inbox.ingest(
        inbound(
            "<p1@x>",
            subject="Where is my parcel?",
            text="My order 2291 has not arrived.",
            attachments=(InboundAttachment("receipt.txt", "text/plain", b"order 2291, paid"),),
        )
    )
    clock.advance(minutes=1)
    callback = await inbox.ingest(
        inbound(
            "SM1", "+49 151 23456789", channel=ChannelKind.SMS, account="sms-line", text="Please call me back"
        )
    )
    clock.advance(minutes=1)
    refund = await inbox.ingest(
        inbound("chat-1", "visitor-1", channel=ChannelKind.CHAT, account="webchat", text="我想申请退款")
    )
    clock.advance(minutes=1)
    invoice = await inbox.ingest(
        inbound("<i1@x>", "bob@example.com", subject="Invoice question", text="The invoice is wrong.")
    )
    timeline = await inbox.timeline(parcel.conversation_id)
    return Data(
        parcel.conversation_id,
        callback.conversation_id,
        refund.conversation_id,
        invoice.conversation_id,
        parcel.contact_id,
        timeline.messages[0].attachments[0].id,
    )


def ids(body: dict[str, Any]) -> list[int]:
    return [c["id"] for c in body["items"]]


async def test_list_all_newest_first(agent: Caller, data: Data) -> None:
    body = await agent.get("/api/conversations")
    assert body["total"] == 4
    assert ids(body) == [data.invoice, data.refund, data.callback, data.parcel]
    first = body["items"][0]
    assert first["status"] == "open"
    assert first["priority"] == "normal"
    assert first["channel"] == "email"


async def test_list_filters(agent: Caller, services: Services, data: Data, clock: FakeClock) -> None:
    other = await add_agent(services, Role.AGENT)
    team = await services.directory.add_team("Billing")
    inbox = services.inbox
    await inbox.assign(data.parcel, agent.agent_id)
    await inbox.assign(data.callback, other.id)
    await inbox.set_status(data.invoice, ConversationStatus.PENDING)
    await inbox.set_tags(data.refund, add=["Refund"])
    async with services.db.write() as conn:
        await conn.execute(
            update(schema.conversations)
            .where(schema.conversations.c.id == data.callback)
            .values(due_at=clock() - timedelta(hours=1))
        )
        await conn.execute(
            update(schema.conversations)
            .where(schema.conversations.c.id == data.refund)
            .values(team_id=team.id)
        )

    async def listed(query: str) -> list[int]:
        return sorted(ids(await agent.get(f"/api/conversations?{query}")))

    assert await listed("status=pending") == [data.invoice]
    assert await listed("status=open,pending") == sorted(
        [data.parcel, data.callback, data.refund, data.invoice]
    )
    assert await listed("status=resolved") == []
    assert await listed("assignee=me") == [data.parcel]
    assert await listed(f"assignee={other.id}") == [data.callback]
    assert await listed("assignee=unassigned") == sorted([data.refund, data.invoice])
    assert await listed(f"team={team.id}") == [data.refund]
    assert await listed("channel=sms,chat") == sorted([data.callback, data.refund])
    assert await listed("channel=email") == sorted([data.parcel, data.invoice])
    assert await listed("tag=refund") == [data.refund]
    assert await listed(f"contact={data.ana_contact}") == [data.parcel]
    assert await listed("breached=1") == [data.callback]
    assert await listed("q=invoice") == [data.invoice]
    assert await listed("q=arrived&channel=email") == [data.parcel]


async def test_list_sorts_and_pages(agent: Caller, services: Services, data: Data, clock: FakeClock) -> None:
    clock.advance(minutes=1)
    await services.inbox.set_priority(data.callback, Priority.URGENT)
    clock.advance(minutes=1)
    await services.inbox.set_priority(data.refund, Priority.HIGH)
    async with services.db.write() as conn:
        await conn.execute(
            update(schema.conversations)
            .where(schema.conversations.c.id == data.invoice)
            .values(due_at=services.clock())
        )
    assert ids(await agent.get("/api/conversations?sort=created")) == [
        data.invoice,
        data.refund,
        data.callback,
        data.parcel,
    ]
    updated = ids(await agent.get("/api/conversations?sort=updated"))
    assert updated == [data.refund, data.callback, data.invoice, data.parcel]
    assert ids(await agent.get("/api/conversations?sort=priority"))[:2] == [data.callback, data.refund]
    assert ids(await agent.get("/api/conversations?sort=due"))[0] == data.invoice
    page = await agent.get("/api/conversations?sort=created&limit=2&offset=1")
    assert ids(page) == [data.refund, data.callback]
    assert page["total"] == 4
    assert (page["limit"], page["offset"]) == (2, 1)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("offset=-1", "offset"),
        ("status=open,bogus", "status.1"),
        ("channel=pigeon", "channel.0"),
        ("sort=random", "sort"),
        ("assignee=someone", "assignee"),
        ("team=abc", "team"),
        ("colour=red", "colour"),
        ("contact=0", "contact"),
        ("team=99999999999999999999", "team"),
    ],
)
async def test_list_rejects_bad_parameters(agent: Caller, query: str, field: str) -> None:
    body = await agent.get(f"/api/conversations?{query}", expect=422)
    assert body["field"] == field
    assert body["error"]
    assert body["problems"][0]["field"] == field


async def test_detail_has_contact_and_timeline(agent: Caller, services: Services, data: Data) -> None:
    await agent.post(f"/api/conversations/{data.parcel}/notes", {"text": "Checked with DHL"}, expect=201)
    await agent.post(f"/api/conversations/{data.parcel}/reply", {"text": "It ships today."}, expect=202)
    body = await agent.get(f"/api/conversations/{data.parcel}")
    assert body["conversation"]["id"] == data.parcel
    assert body["conversation"]["subject"] == "Where is my parcel?"
    assert body["contact"]["id"] == data.ana_contact
    assert body["contact"]["identities"] == [{"kind": "email", "address": "ana@example.com"}]
    inbound_message, note, reply = body["messages"]
    assert inbound_message["direction"] == "in"
    assert inbound_message["attachments"][0]["filename"] == "receipt.txt"
    assert inbound_message["attachments"][0]["id"] == data.attachment
    assert note["direction"] == "note"
    assert note["delivery"] is None
    assert reply["direction"] == "out"
    assert reply["delivery"] == "queued"
    assert body["calls"] == []
    kinds = [e["kind"] for e in body["events"]]
    assert "note.added" in kinds
    assert "message.queued" in kinds


async def test_attachment_download(agent: Caller, data: Data) -> None:
    async with agent.client.get(f"/api/attachments/{data.attachment}", headers=agent.headers) as response:
        assert response.status == 200
        assert await response.read() == b"order 2291, paid"
        assert response.headers["Content-Type"].startswith("text/plain")
        assert response.headers["Content-Disposition"].startswith("attachment;")
        assert "receipt.txt" in response.headers["Content-Disposition"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    await agent.get("/api/attachments/999", expect=404)


async def test_reply_is_queued_once_per_idempotency_key(
    agent: Caller, services: Services, data: Data
) -> None:
    path = f"/api/conversations/{data.parcel}/reply"
    key = {"Idempotency-Key": "send-button-1"}
    first = await agent.post(
        path, {"text": "Your parcel ships today.", "subject": "Parcel"}, headers=key, expect=202
    )
    assert first["direction"] == "out"
    assert first["delivery"] == "queued"
    assert first["author_id"] == agent.agent_id
    again = await agent.post(
        path, {"text": "Your parcel ships today.", "subject": "Parcel"}, headers=key, expect=202
    )
    assert again["id"] == first["id"]
    other = await agent.post(path, {"text": "One more thing."}, expect=202)
    assert other["id"] != first["id"]
    assert [e.message_id for e in await services.outbox.entries()] == [other["id"], first["id"]]
    conversation = await services.inbox.conversation(data.parcel)
    assert conversation.status.value == "pending"


async def test_reply_validation(agent: Caller, data: Data) -> None:
    path = f"/api/conversations/{data.parcel}/reply"
    assert (await agent.post(path, {}, expect=422))["field"] == "text"
    assert (await agent.post(path, {"text": "   "}, expect=422))["field"] == "text"
    assert (await agent.post(path, {"text": "hi", "cc": "x"}, expect=422))["field"] == "cc"
    body = await agent.post(path, {"text": "hi"}, headers={"Idempotency-Key": "k" * 101}, expect=422)
    assert body["field"] == "Idempotency-Key"
    await agent.post("/api/conversations/999/reply", {"text": "hi"}, expect=404)


async def test_notes(agent: Caller, data: Data) -> None:
    note = await agent.post(
        f"/api/conversations/{data.refund}/notes", {"text": "客户要求退款 已转财务"}, expect=201
    )
    assert note["direction"] == "note"
    assert note["text"] == "客户要求退款 已转财务"
    assert note["author_id"] == agent.agent_id
    await agent.post("/api/conversations/999/notes", {"text": "x"}, expect=404)


async def test_assign_manually_and_unassign(agent: Caller, services: Services, data: Data) -> None:
    other = await add_agent(services, Role.AGENT)
    path = f"/api/conversations/{data.parcel}/assign"
    assert (await agent.post(path, {"agent_id": other.id}))["assignee_id"] == other.id
    assert (await agent.post(path, {"agent_id": None}))["assignee_id"] is None
    await agent.post(path, {"agent_id": 999}, expect=404)
    assert (await agent.post(path, {}, expect=422))["field"] == "agent_id"
    assert (await agent.post(path, {"agent_id": "x"}, expect=422))["field"] == "agent_id"
    assert (await agent.post(path, {"agent_id": 1, "team_id": 1}, expect=422))["field"] == "team_id"
    await services.directory.update_agent(other.id, active=False)
    await agent.post(path, {"agent_id": other.id}, expect=409)


async def test_assign_round_robin(agent: Caller, services: Services, data: Data) -> None:
    team = await services.directory.add_team("Support")
    first, second = await add_agent(services), await add_agent(services)
    for member in (first, second):
        await services.directory.add_member(team.id, member.id)
    assigned = []
    for conversation in (data.parcel, data.callback, data.invoice):
        body = await agent.post(
            f"/api/conversations/{conversation}/assign", {"team_id": team.id, "round_robin": True}
        )
        assert body["team_id"] == team.id
        assigned.append(body["assignee_id"])
    assert assigned[0] != assigned[1]
    assert assigned[2] == assigned[0]
    assert set(assigned) == {first.id, second.id}
    path = f"/api/conversations/{data.refund}/assign"
    assert (await agent.post(path, {"round_robin": True}, expect=422))["field"] == "team_id"
    await agent.post(path, {"team_id": 999, "round_robin": True}, expect=404)


async def test_status_and_snooze(agent: Caller, clock: FakeClock, data: Data) -> None:
    path = f"/api/conversations/{data.parcel}/status"
    assert (await agent.post(path, {"status": "resolved"}))["status"] == "resolved"
    later = (clock() + timedelta(days=1)).isoformat()
    body = await agent.post(path, {"status": "snoozed", "snoozed_until": later})
    assert body["status"] == "snoozed"
    assert body["snoozed_until"] == later
    reopened = await agent.post(path, {"status": "open"})
    assert reopened["snoozed_until"] is None
    earlier = (clock() - timedelta(minutes=1)).isoformat()
    for payload in (
        {"status": "snoozed"},
        {"status": "snoozed", "snoozed_until": earlier},
        {"status": "snoozed", "snoozed_until": "2030-01-01T09:00:00"},
        {"status": "open", "snoozed_until": later},
    ):
        assert (await agent.post(path, payload, expect=422))["field"] == "snoozed_until"
    assert (await agent.post(path, {"status": "closed"}, expect=422))["field"] == "status"
    await agent.post("/api/conversations/999/status", {"status": "open"}, expect=404)


async def test_tags(agent: Caller, data: Data) -> None:
    path = f"/api/conversations/{data.parcel}/tags"
    body = await agent.post(path, {"add": ["VIP", "late delivery"]})
    assert body["tags"] == ["late delivery", "vip"]
    body = await agent.post(path, {"add": ["refund"], "remove": ["vip"]})
    assert body["tags"] == ["late delivery", "refund"]
    assert (await agent.post(path, {"add": ["x" * 65]}, expect=422))["field"] == "add.0"
    assert (await agent.post(path, {"add": "vip"}, expect=422))["field"] == "add"


async def test_priority(agent: Caller, data: Data) -> None:
    path = f"/api/conversations/{data.parcel}/priority"
    assert (await agent.post(path, {"priority": "urgent"}))["priority"] == "urgent"
    assert (await agent.post(path, {"priority": "low"}))["priority"] == "low"
    assert (await agent.post(path, {"priority": "asap"}, expect=422))["field"] == "priority"
    assert (await agent.post(path, {"priority": 3}, expect=422))["field"] == "priority"


async def test_search_in_english_and_chinese(agent: Caller, data: Data) -> None:
    assert ids(await agent.get("/api/search?q=parcel")) == [data.parcel]
    assert ids(await agent.get("/api/search?q=ARRIV")) == [data.parcel]
    assert ids(await agent.get("/api/search?q=退款")) == [data.refund]
    assert ids(await agent.get("/api/search?q=申请退款")) == [data.refund]
    assert ids(await agent.get("/api/search?q=nothing-like-this")) == []
    assert (await agent.get("/api/search", expect=422))["field"] == "q"


async def test_not_found(agent: Caller) -> None:
    body = await agent.get("/api/conversations/999", expect=404)
    assert "999" in body["error"]
    await agent.get("/api/conversations/99999999999999999999", expect=404)
    await agent.post("/api/conversations/999/tags", {"add": ["x"]}, expect=404)
    await agent.post("/api/conversations/999/priority", {"priority": "high"}, expect=404)


async def test_malformed_and_wrong_bodies(agent: Caller, data: Data) -> None:
    path = f"/api/conversations/{data.parcel}/notes"
    body = await agent.call(
        "POST", path, data=b'{"text": "unterminated', headers={"Content-Type": "application/json"}, expect=400
    )
    assert body["error"] == "the request body is not valid JSON"
    await agent.call(
        "POST",
        path,
        data=b"\xff\xfe",
        headers={"Content-Type": "application/json; charset=utf-8"},
        expect=400,
    )
    body = await agent.call(
        "POST", path, data=b'{"text": "hi"}', headers={"Content-Type": "text/plain"}, expect=415
    )
    assert "application/json" in body["error"]
    assert (await agent.post(path, ["a list"], expect=422))["error"]
    assert (await agent.post(path, {"text": 5}, expect=422))["field"] == "text"


async def test_body_over_the_size_limit_is_413(agent: Caller, data: Data) -> None:
    payload = io.BytesIO(b'{"text": "' + b"x" * (31 * 1024 * 1024) + b'"}')
    body = await agent.call(
        "POST",
        f"/api/conversations/{data.parcel}/notes",
        data=payload,
        headers={"Content-Type": "application/json"},
        expect=413,
    )
    assert body["error"]
