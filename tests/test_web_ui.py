"""The UI's pages, reads and agents' websocket, over HTTP: CSP, login redirect, data, presence."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse, WSServerHandshakeError
from aiohttp.test_utils import TestClient
from sqlalchemy import insert
from yarl import URL

from hub.events import QUEUE_LIMIT, event_row
from hub.models import ChannelKind, Identity, InboundMessage, Role
from hub.services import Services
from hub.store import schema
from hub.web import create_app
from hub.web.ui.shell import PAGE_CSP
from tests.conftest import FakeClock
from tests.conftest_web import PASSWORD, Caller, add_agent, as_role, services_with_channels

ROOT = Path(__file__).resolve().parent.parent
Client = TestClient[Any, Any]
SCRIPT_TAG = re.compile(r"<script([^>]*)>")


@pytest.fixture
async def hub(make_config: Any, clock: FakeClock) -> AsyncIterator[Services]:
    def config(**sections: Any) -> Any:
        return make_config(rules_dir=str(ROOT / "rules"), **sections)

    async with services_with_channels(config, clock, [{"name": "mail", "kind": "memory"}]) as services:
        yield services


@pytest.fixture
async def client(aiohttp_client: Any, hub: Services) -> Client:
    return await aiohttp_client(create_app(hub))


async def logged_in(client: Client, hub: Services, role: Role = Role.AGENT, language: str = "en") -> str:
    """Log in by cookie as a new user; return the CSRF token."""
    agent = await add_agent(hub, role, password=PASSWORD)
    if language != "en":
        await hub.directory.update_agent(agent.id, language=language)
    async with client.post("/api/login", json={"username": agent.username, "password": PASSWORD}) as r:
        assert r.status == 200
        return str((await r.json())["csrf_token"])


def mail(external_id: str, subject: str, text: str, html: str | None = None) -> InboundMessage:
    return InboundMessage(
        channel=ChannelKind.EMAIL,
        channel_account="mail",
        external_id=external_id,
        sender=Identity.of("email", "priya.patel@example.com"),
        sender_name="Priya Patel",
        subject=subject,
        text=text,
        html=html,
        received_at=datetime(2026, 11, 23, 8, 0, tzinfo=UTC),
    )


def page_data(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', html)
    assert found
    return dict(json.loads(found.group(1)))


async def test_pages_send_a_browser_without_login_to_the_login_page(client: Client) -> None:
    for path in ("/", "/inbox", "/conversations/5", "/dashboard"):
        async with client.get(path, allow_redirects=False) as response:
            assert response.status == 302
            location = URL(response.headers["Location"])
            assert (location.path, location.query["next"]) == ("/login", path)
    async with client.get("/api/inbox") as response:
        assert response.status == 401


async def test_every_page_has_a_strict_csp_and_no_inline_script(client: Client, hub: Services) -> None:
    async with client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"}) as response:
        assert response.headers["Content-Security-Policy"] == PAGE_CSP
        login = await response.text()
    assert '<html lang="zh">' in login and "登录" in login
    await logged_in(client, hub, Role.SUPERVISOR)
    pages = [login]
    for path in ("/inbox", "/conversations/1", "/dashboard"):
        async with client.get(path) as response:
            assert response.status == 200, path
            assert response.headers["Content-Security-Policy"] == PAGE_CSP
            assert response.headers["X-Frame-Options"] == "DENY"
            pages.append(await response.text())
    assert "'unsafe-inline'" not in PAGE_CSP and "'unsafe-eval'" not in PAGE_CSP
    assert "script-src 'self'" in PAGE_CSP
    for html in pages:
        for attributes in SCRIPT_TAG.findall(html):
            assert 'type="module" src="/static/' in attributes or 'type="application/json"' in attributes
        assert " on" not in re.sub(r"<script.*?</script>", "", html).lower().replace(" one", "")


async def test_page_data_cannot_break_out_of_its_block(client: Client, hub: Services) -> None:
    agent = await add_agent(hub, password=PASSWORD)
    await hub.directory.update_agent(agent.id, display_name="</script><script>alert(1)</script>")
    async with client.post("/api/login", json={"username": agent.username, "password": PASSWORD}) as r:
        csrf = (await r.json())["csrf_token"]
    async with client.get("/inbox") as response:
        html = await response.text()
    assert "<script>alert(1)" not in html
    data = page_data(html)
    assert data["agent"]["display_name"] == "</script><script>alert(1)</script>"
    assert data["csrf_token"] == csrf


async def test_the_ui_language_follows_the_user(client: Client, hub: Services) -> None:
    await logged_in(client, hub, language="zh")
    async with client.get("/inbox") as response:
        html = await response.text()
    assert '<html lang="zh">' in html and "收件箱" in html


async def test_static_files_are_served_and_nothing_else(client: Client) -> None:
    async with client.get("/static/inbox.js") as response:
        assert response.status == 200
        assert response.content_type == "text/javascript"
        assert "openConversation" in await response.text()
    async with client.get("/static/app.css") as response:
        assert response.content_type == "text/css"
    for path in ("/static/missing.js", "/static/..%2Fpages.py", "/static/pages.py"):
        async with client.get(path) as response:
            assert response.status == 404, path


async def test_inbox_list_names_the_customer_and_previews_the_last_message(
    client: Client, hub: Services
) -> None:
    first = await hub.inbox.ingest(mail("<a@x>", "Order #48213", "My order has\n not arrived."))
    await hub.inbox.add_note(first.conversation_id, (await add_agent(hub)).id, "internal only")
    agent = await as_role(client, hub, Role.AGENT)
    body = await agent.get("/api/inbox?channel=email&sort=due")
    (item,) = body["items"]
    assert item["contact"] == {"name": "Priya Patel", "address": "priya.patel@example.com"}
    assert item["preview"] == {"text": "My order has not arrived.", "direction": "in"}
    assert item["due_at"] is None and "promise_due_at" in item
    assert body["total"] == 1 and body["now"]
    assert (await agent.get("/api/inbox?assignee=unassigned"))["total"] == 1
    assert (await agent.get("/api/inbox?assignee=me"))["total"] == 0


async def test_mail_html_is_served_for_a_locked_frame(client: Client, hub: Services) -> None:
    html = '<p>Hi</p><script>alert(1)</script><img src="https://tracker.example/p.gif">'
    result = await hub.inbox.ingest(mail("<b@x>", "Hello", "Hi", html))
    timeline = await hub.inbox.timeline(result.conversation_id)
    message_id = timeline.messages[0].id
    agent = await as_role(client, hub, Role.AGENT)
    async with client.get(f"/api/messages/{message_id}/html", headers=agent.headers) as response:
        assert response.status == 200
        policy = response.headers["Content-Security-Policy"]
        assert "sandbox" in policy and "default-src 'none'" in policy
        assert "img-src data: cid:;" in policy and "script-src" not in policy
        assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
        assert html in await response.text()
    async with client.get(f"/api/messages/{message_id}/html?images=true", headers=agent.headers) as response:
        assert "img-src data: cid: https: http:;" in response.headers["Content-Security-Policy"]
    await agent.get("/api/messages/999/html", expect=404)


async def test_csv_export_is_for_supervisors_and_defuses_formulas(client: Client, hub: Services) -> None:
    await hub.inbox.ingest(mail("<c@x>", '=HYPERLINK("http://evil","x")', "hi"))
    await hub.inbox.ingest(mail("<d@x>", "Plain, with comma", "hi"))
    agent = await as_role(client, hub, Role.AGENT)
    await agent.get("/api/export/conversations.csv", expect=403)
    supervisor = await as_role(client, hub, Role.SUPERVISOR)
    async with client.get("/api/export/conversations.csv", headers=supervisor.headers) as response:
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert "attachment" in response.headers["Content-Disposition"]
        rows = list(csv.reader(io.StringIO(await response.text())))
    assert rows[0][:3] == ["id", "channel", "channel_account"]
    subjects = sorted(row[4] for row in rows[1:])
    assert subjects == ['\'=HYPERLINK("http://evil","x")', "Plain, with comma"]


async def test_dashboard_renders_counts_and_charts(client: Client, hub: Services) -> None:
    await hub.inbox.ingest(mail("<e@x>", "Hello", "hi"))
    await logged_in(client, hub, Role.SUPERVISOR)
    async with client.get("/dashboard") as response:
        html = await response.text()
    assert html.count("<svg") == 3
    assert 'class="availability' in html and "Supervisor dashboard" in html
    assert re.search(r"<td>mail</td><td>memory</td><td>connected</td>", html)


async def receive_kind(socket: ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    while True:
        raw = await socket.receive(timeout=5)
        event = json.loads(raw.data)
        if event["kind"] == kind:
            return dict(event)


async def test_agent_socket_pushes_events_and_presence(aiohttp_client: Any, hub: Services) -> None:
    app = create_app(hub)
    first, second = await aiohttp_client(app), await aiohttp_client(app)
    await logged_in(first, hub)
    await logged_in(second, hub)
    socket = await first.ws_connect("/ws", headers={"Origin": str(first.make_url("")).rstrip("/")})
    other = await second.ws_connect("/ws", headers={"Origin": str(second.make_url("")).rstrip("/")})
    result = await hub.inbox.ingest(mail("<f@x>", "Live", "hello"))
    event = await receive_kind(socket, "message.received")
    assert event["conversation_id"] == result.conversation_id
    assert event["data"]["channel"] == "email"

    await other.send_str(json.dumps({"type": "typing", "conversation_id": result.conversation_id}))
    presence = await receive_kind(socket, "presence")
    assert presence["conversation_id"] == result.conversation_id
    assert presence["data"]["state"] == "typing"
    await other.send_str(json.dumps({"type": "dance", "conversation_id": 1}))
    assert (await receive_kind(other, "error"))["data"]["error"] == "unknown message"
    await other.send_str(json.dumps({"type": "viewing", "conversation_id": result.conversation_id}))
    await receive_kind(socket, "presence")
    await other.close()
    left = await receive_kind(socket, "presence")
    assert left["data"]["state"] == "left"
    await socket.close()


async def test_agent_socket_refuses_other_origins_and_strangers(client: Client, hub: Services) -> None:
    with pytest.raises(WSServerHandshakeError) as anonymous:
        await client.ws_connect("/ws")
    assert anonymous.value.status == 401
    await logged_in(client, hub)
    with pytest.raises(WSServerHandshakeError) as foreign:
        await client.ws_connect("/ws", headers={"Origin": "https://evil.example"})
    assert foreign.value.status == 403


async def test_agent_sockets_close_when_the_server_stops(aiohttp_client: Any, hub: Services) -> None:
    client = await aiohttp_client(create_app(hub))
    await logged_in(client, hub)
    socket = await client.ws_connect("/ws")
    assert client.app is not None
    await client.app.shutdown()
    message = await socket.receive(timeout=5)
    assert message.type.name in {"CLOSE", "CLOSED", "CLOSING"}
    await asyncio.sleep(0)


async def test_ui_reads_need_an_agent(client: Client) -> None:
    anonymous = Caller(client)
    await anonymous.get("/api/inbox", expect=401)
    await anonymous.get("/api/messages/1/html", expect=401)


async def test_dashboard_measures_first_responses_in_business_time_and_three_ring_calls(
    client: Client, hub: Services, clock: FakeClock
) -> None:
    await hub.rules.load()
    agent = await add_agent(hub)
    # the mails were received at 08:00; replies at 09:30 and 11:00 (the clock starts at 09:00)
    first = await hub.inbox.ingest(mail("<g@x>", "Late", "where is it"))
    clock.advance(minutes=30)
    await hub.outbox.reply(first.conversation_id, "On its way", agent_id=agent.id)
    second = await hub.inbox.ingest(mail("<h@x>", "Broken", "it broke"))
    clock.advance(minutes=90)
    await hub.outbox.reply(second.conversation_id, "Sorry", agent_id=agent.id)
    await hub.inbox.ingest(mail("<i@x>", "Unanswered", "hello?"))
    await hub.sla.recompute([first.conversation_id, second.conversation_id])
    outcomes = ["answered_in_time", "answered_late", "abandoned", "ringing"]
    async with hub.db.write() as conn:
        await conn.execute(
            insert(schema.calls),
            [
                {
                    "conversation_id": first.conversation_id,
                    "contact_id": first.contact_id,
                    "channel_account": "phone",
                    "external_id": f"call-{index}",
                    "direction": "in",
                    "started_at": clock.now,
                    "outcome": outcome,
                }
                for index, outcome in enumerate(outcomes)
            ],
        )
    await logged_in(client, hub, Role.SUPERVISOR)
    async with client.get("/dashboard") as response:
        html = await response.text()
    # business hours open at 09:00: 30m and 2h of business time, where the wall clock says 1h30m and 3h
    assert '<b id="first-response">30m</b><small>p90 2h 00m · n=2</small>' in html
    assert "First response in business time (SLA), median, 30 days" in html
    assert html.count('id="first-response"') == 1 and "sla-first-response" not in html
    assert '<b id="three-rings">33%</b>' in html
    assert 'id="compliance"' in html and 'id="promises-kept">—</b>' in html


async def test_dashboard_shows_complaints_per_department_and_the_rules_in_force(
    client: Client, hub: Services
) -> None:
    await hub.rules.load()
    team = await hub.directory.add_team("returns", department="Returns desk")
    complaint = await hub.inbox.ingest(mail("<c@x>", "Broken again", "I want to complain"))
    await hub.inbox.set_tags(complaint.conversation_id, add=["complaint"])
    async with hub.db.write() as conn:
        await conn.execute(
            schema.conversations.update()
            .where(schema.conversations.c.id == complaint.conversation_id)
            .values(team_id=team.id)
        )
    await logged_in(client, hub, Role.SUPERVISOR)
    async with client.get("/dashboard") as response:
        html = await response.text()
    assert '<table id="complaints"><tr><td>Returns desk</td><td>1</td></tr></table>' in html
    assert f"{hub.rules.status().version}" in html and 'id="rules-error"' not in html


async def test_a_socket_that_fell_behind_is_told_to_reload(aiohttp_client: Any, hub: Services) -> None:
    client = await aiohttp_client(create_app(hub))
    await logged_in(client, hub)
    socket = await client.ws_connect("/ws", headers={"Origin": str(client.make_url("")).rstrip("/")})
    result = await hub.inbox.ingest(mail("<g@x>", "Flood", "hi"))
    await receive_kind(socket, "message.received")
    flood = [
        event_row("test.flood", hub.clock(), result.conversation_id, n=n) for n in range(QUEUE_LIMIT + 200)
    ]
    hub.bus.publish(flood)
    await receive_kind(socket, "resync")
    seen = [(await receive_kind(socket, "test.flood"))["data"]["n"] for _ in range(QUEUE_LIMIT)]
    assert seen == list(range(200, QUEUE_LIMIT + 200))
    hub.bus.publish(flood[:1])
    raw = await socket.receive(timeout=5)
    assert json.loads(raw.data)["kind"] == "test.flood"
    await socket.close()
