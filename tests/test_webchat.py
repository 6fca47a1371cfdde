"""The web-chat channel over real websockets: visitors in, replies out, limits, offline form, CORS."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse, WSServerHandshakeError
from aiohttp.test_utils import TestClient

from channels.webchat.channel import WebchatChannel, visitor_address
from channels.webchat.limits import MessageLimiter
from channels.webchat.settings import WebchatSettings
from hub.inbox import ConversationFilter
from hub.models import ChannelKind, Identity, IdentityKind, InboundMessage, Role
from hub.outbox import Dispatcher
from hub.reply_routes import carried
from hub.services import Services
from hub.web import create_app
from tests.conftest import FakeClock
from tests.conftest_web import add_agent, as_role, services_with_channels

Client = TestClient[Any, Any]
BASE = "/webhooks/webchat/site"
SHOP = "https://shop.example.com"
ROOT = Path(__file__).resolve().parent.parent


def hub_fixture(**settings: Any) -> Any:
    @pytest.fixture
    async def hub(make_config: Any, clock: FakeClock) -> AsyncIterator[Services]:
        channels = [{"name": "site", "kind": "webchat", **settings}]
        async with services_with_channels(make_config, clock, channels) as services:
            yield services

    return hub


hub = hub_fixture(max_messages_per_minute=3)


@pytest.fixture
async def client(aiohttp_client: Any, hub: Services) -> Client:
    return await aiohttp_client(create_app(hub))


async def next_of(socket: ClientWebSocketResponse, kind: str, sender: str | None = None) -> dict[str, Any]:
    """The next frame of a type (and sender), skipping others."""
    while True:
        frame = json.loads((await socket.receive(timeout=5)).data)
        if frame["type"] == kind and (sender is None or frame.get("from") == sender):
            return frame


async def say(socket: ClientWebSocketResponse, text: str, message_id: str) -> None:
    await socket.send_str(json.dumps({"type": "message", "id": message_id, "text": text}))


async def test_a_visitor_chats_and_an_agent_reply_comes_back_on_the_socket(
    client: Client, hub: Services
) -> None:
    socket = await client.ws_connect(f"{BASE}/socket?lang=zh&name=Lily", headers={"Origin": SHOP})
    welcome = await next_of(socket, "welcome")
    token = welcome["visitor"]
    assert len(token) >= 20 and welcome["history"] == []
    greeting = await next_of(socket, "message", "system")
    assert greeting["text"].startswith("Lily，您好！这里是") and "请问有什么可以帮您" in greeting["text"]

    await say(socket, "我的沙发腿断了", "m1")
    ack = await next_of(socket, "ack")
    assert ack["id"] == "m1"

    items, _ = await hub.inbox.list(ConversationFilter(channels=(ChannelKind.CHAT,)))
    assert len(items) == 1 and items[0].channel_account == "site"
    contact = await hub.contacts.get(items[0].contact_id)
    assert contact.name == "Lily" and contact.language == "zh"
    (identity,) = contact.identities
    assert identity.kind is IdentityKind.CHAT
    assert identity.address == visitor_address("site", token)
    assert token not in identity.address

    agent = await add_agent(hub)
    await hub.outbox.reply(items[0].id, "很抱歉,我们明天寄新的。", agent_id=agent.id)
    dispatcher = Dispatcher(hub.db, hub.outbox, hub.channels, hub.config.outbox, hub.clock)
    assert await dispatcher.dispatch_once() == 1
    reply = await next_of(socket, "message", "agent")
    assert reply["text"] == "很抱歉,我们明天寄新的。"
    entries = await hub.outbox.entries()
    assert [e.status.value for e in entries] == ["delivered"]
    await socket.close()

    again = await client.ws_connect(f"{BASE}/socket?visitor={token}", headers={"Origin": SHOP})
    back = await next_of(again, "welcome")
    assert back["visitor"] == token
    assert [(e["from"], e["text"]) for e in back["history"]] == [
        ("visitor", "我的沙发腿断了"),
        ("agent", "很抱歉,我们明天寄新的。"),
    ]
    await say(again, "谢谢", "m2")
    await next_of(again, "ack")
    items, _ = await hub.inbox.list(ConversationFilter(channels=(ChannelKind.CHAT,)))
    assert len(items) == 1
    await again.close()


async def test_a_reply_to_a_visitor_who_left_is_retried_not_lost(client: Client, hub: Services) -> None:
    socket = await client.ws_connect(f"{BASE}/socket")
    await next_of(socket, "welcome")
    await say(socket, "hello", "m1")
    await next_of(socket, "ack")
    await socket.close()
    items, _ = await hub.inbox.list(ConversationFilter())
    await hub.outbox.reply(items[0].id, "Hi there", agent_id=(await add_agent(hub)).id)
    dispatcher = Dispatcher(hub.db, hub.outbox, hub.channels, hub.config.outbox, hub.clock)
    await dispatcher.dispatch_once()
    (entry,) = await hub.outbox.entries()
    assert entry.status.value == "queued"
    assert "not connected" in (entry.last_error or "")


async def test_visitors_are_rate_limited_and_bad_frames_refused(client: Client, hub: Services) -> None:
    socket = await client.ws_connect(f"{BASE}/socket")
    await next_of(socket, "welcome")
    for index in range(3):
        await say(socket, f"message {index}", f"m{index}")
        await next_of(socket, "ack")
    await say(socket, "one too many", "m9")
    refused = await next_of(socket, "error")
    assert refused == {"type": "error", "error": "rate_limited", "id": "m9"}
    await socket.send_str("not json")
    assert (await next_of(socket, "error"))["error"] == "not JSON"
    await socket.send_str(json.dumps({"type": "message", "id": "../x", "text": "hi"}))
    assert (await next_of(socket, "error"))["error"] == "bad message id"
    await socket.send_str(json.dumps({"type": "message", "id": "big", "text": "x" * 5000}))
    assert "too long" in (await next_of(socket, "error"))["error"]
    _, total = await hub.inbox.list(ConversationFilter())
    stats = await hub.inbox.timeline((await hub.inbox.list(ConversationFilter()))[0][0].id)
    assert total == 1 and len(stats.messages) == 3
    await socket.close()


def test_the_limiter_forgets_after_a_minute() -> None:
    now = [0.0]
    limiter = MessageLimiter(2, now=lambda: now[0])
    assert limiter.allow("a") and limiter.allow("a") and not limiter.allow("a")
    assert limiter.allow("b")
    now[0] = 60.0
    assert limiter.allow("a")


def test_a_chat_widget_account_carries_chat_replies() -> None:
    assert carried(WebchatChannel("site", WebchatSettings())) == (ChannelKind.CHAT,)


async def test_widget_and_config_are_open_to_other_sites_without_credentials(client: Client) -> None:
    async with client.get(f"{BASE}/widget.js", headers={"Origin": SHOP}) as response:
        assert response.status == 200
        assert response.content_type == "text/javascript"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in response.headers
        assert "Set-Cookie" not in response.headers
        assert "localStorage" in await response.text()
    async with client.get(f"{BASE}/config?lang=en") as response:
        body = await response.json()
        assert body["online"] is True and body["greeting"].startswith("Hello")
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    async with client.options(f"{BASE}/offline", headers={"Origin": SHOP}) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Methods"] == "GET, POST, OPTIONS"
    async with client.get(f"{BASE}/demo") as response:
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        page = await response.text()
        assert f'<script src="{BASE}/widget.js" data-channel="site"></script>' in page
        assert "&lt;script src=&quot;http://127.0.0.1:8080/webhooks/webchat/site/widget.js" in page
    async with client.get("/api/me", headers={"Origin": SHOP}) as response:
        assert response.status == 401
        assert "Access-Control-Allow-Origin" not in response.headers


closed_hub = hub_fixture(hours={}, allowed_origins=[SHOP])


@pytest.fixture
async def closed_client(aiohttp_client: Any, closed_hub: Services) -> Client:
    return await aiohttp_client(create_app(closed_hub))


async def test_outside_opening_hours_the_offline_form_becomes_a_mergeable_message(
    closed_client: Client, closed_hub: Services
) -> None:
    async with closed_client.get(f"{BASE}/config?lang=zh", headers={"Origin": SHOP}) as response:
        body = await response.json()
        assert body["online"] is False and "邮箱" in body["offline"]
        assert response.headers["Access-Control-Allow-Origin"] == SHOP
    token = "t" * 24
    form = {"visitor": token, "name": "Priya", "email": "priya@example.com", "text": "Please call me back"}
    async with closed_client.post(f"{BASE}/offline", json=form, headers={"Origin": SHOP}) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["text"].startswith("Thank you")
    async with closed_client.post(
        f"{BASE}/offline", json={**form, "email": "not-an-address"}, headers={"Origin": SHOP}
    ) as response:
        assert response.status == 422
        assert (await response.json())["fields"] == ["email"]
    async with closed_client.post(
        f"{BASE}/offline", json=form, headers={"Origin": "https://evil.example"}
    ) as r:
        assert r.status == 403
    with pytest.raises(WSServerHandshakeError) as refused:
        await closed_client.ws_connect(f"{BASE}/socket", headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403
    (conversation,), _ = await closed_hub.inbox.list(ConversationFilter())
    timeline = await closed_hub.inbox.timeline(conversation.id)
    (message,) = timeline.messages
    assert message.meta == {"offline": True, "email": "priya@example.com", "sender_name": "Priya"}
    assert "priya@example.com" in message.text

    mail = await closed_hub.inbox.ingest(_mail("priya@example.com"))
    supervisor = await as_role(closed_client, closed_hub, Role.SUPERVISOR)
    merged = await supervisor.post(
        f"/api/contacts/{conversation.contact_id}/merge", {"into": mail.contact_id}
    )
    assert {i["kind"] for i in merged["identities"]} == {"chat", "email"}


def _mail(address: str) -> InboundMessage:
    return InboundMessage(
        channel=ChannelKind.EMAIL,
        channel_account="mailbox",
        external_id="<m1@example.com>",
        sender=Identity.of("email", address),
        text="Any news?",
        received_at=datetime.now(UTC),
    )


def ruled_hub(**settings: Any) -> Any:
    @pytest.fixture
    async def hub(make_config: Any, clock: FakeClock, tmp_path: Path) -> AsyncIterator[Services]:
        """A hub with the shipped rules, asking chat visitors to hold after one second (P3)."""
        rules = tmp_path / "rules"
        shutil.copytree(ROOT / "rules", rules)
        etiquette = rules / "etiquette.yaml"
        text = etiquette.read_text(encoding="utf-8").replace("max_hold_seconds: 60", "max_hold_seconds: 1")
        etiquette.write_text(text, encoding="utf-8")
        company = {"name": "Lanhai Home", "department": "Customer Care"}

        def config(**sections: Any) -> Any:
            return make_config(rules_dir=str(rules), company=company, **sections)

        channels = [{"name": "site", "kind": "webchat", **settings}]
        async with services_with_channels(config, clock, channels) as services:
            await services.rules.load()
            yield services

    return hub


held = ruled_hub()
closed_ruled = ruled_hub(hours={})


async def test_greeting_and_hold_come_from_templates_and_hold_waits_for_the_rule(
    aiohttp_client: Any, held: Services
) -> None:
    client = await aiohttp_client(create_app(held))
    socket = await client.ws_connect(f"{BASE}/socket?lang=en&name=Tom", headers={"Origin": SHOP})
    await next_of(socket, "welcome")
    greeting = await next_of(socket, "message", "system")
    assert greeting["text"] == "Hello Tom, this is Lanhai Home, Customer Care. How can we help you today?"
    await say(socket, "Is the oak table in stock?", "m1")
    await next_of(socket, "ack")
    started = time.monotonic()
    hold = await next_of(socket, "message", "system")
    assert time.monotonic() - started >= 0.8
    assert hold["text"].startswith("Sorry to keep you waiting, Tom.")
    await say(socket, "Hello?", "m2")
    await next_of(socket, "ack")
    with pytest.raises(TimeoutError):
        await socket.receive(timeout=1.5)

    zh = await client.ws_connect(f"{BASE}/socket?lang=zh", headers={"Origin": SHOP})
    await next_of(zh, "welcome")
    assert (await next_of(zh, "message", "system"))["text"].startswith("您好！这里是Lanhai HomeCustomer Care")
    await say(zh, "橡木桌有货吗？", "z1")
    await next_of(zh, "ack")
    cid = (await held.inbox.list(ConversationFilter(channels=(ChannelKind.CHAT,))))[0][0].id
    agent = await add_agent(held)
    await held.composer.reply(cid, "有货，今天可以发货。", agent=agent)
    await Dispatcher(held.db, held.outbox, held.channels, held.config.outbox, held.clock).dispatch_once()
    assert (await next_of(zh, "message", "agent"))["text"] == "有货，今天可以发货。"
    with pytest.raises(TimeoutError):
        await zh.receive(timeout=1.5)


async def test_an_offline_message_is_answered_with_a_tracked_reply_time_promise(
    aiohttp_client: Any, closed_ruled: Services
) -> None:
    client = await aiohttp_client(create_app(closed_ruled))
    form = {"visitor": "v" * 24, "name": "Priya", "email": "priya@example.com", "text": "Do you deliver?"}
    async with client.post(f"{BASE}/offline", json=form, headers={"Origin": SHOP}) as response:
        assert response.status == 200
        answer = await response.json()
    reply_by = datetime.fromisoformat(answer["reply_by"])
    assert reply_by > datetime.now(UTC)
    assert answer["text"].startswith("Thank you, Priya. We have your message and will reply by e-mail by ")
    (conversation,), _ = await closed_ruled.inbox.list(ConversationFilter())
    (message,) = (await closed_ruled.inbox.timeline(conversation.id)).messages
    assert message.meta["promise_due_at"] == answer["reply_by"]
    await closed_ruled.sla.recompute([conversation.id])
    assert (await closed_ruled.inbox.conversation(conversation.id)).promise_due_at == reply_by
    async with client.post(f"{BASE}/offline", json={**form, "language": "zh"}, headers={"Origin": SHOP}) as r:
        assert (await r.json())["text"].startswith("谢谢，Priya！我们已收到您的留言，会在")
