"""The API channel's inbound webhook: signatures, validation, idempotency, quarantine."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from channels.api import SIGNATURE_HEADER, sign
from hub.inbox import ConversationFilter
from hub.models import Role
from hub.services import Services
from hub.web.app import create_app
from tests.conftest_web import as_role, services_with_channels

SECRET = "api-channel-secret-42"
PATH = "/webhooks/api/shop/messages"


@pytest.fixture
async def shop(make_config: Any, clock: Any) -> AsyncIterator[Services]:
    async with services_with_channels(
        make_config, clock, [{"name": "shop", "kind": "api", "secret": SECRET}]
    ) as svc:
        yield svc


async def client_for(shop: Services, aiohttp_client: Any) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(shop))


def signed(body: dict[str, Any] | bytes, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return raw, {SIGNATURE_HEADER: sign(secret, raw), "Content-Type": "application/json"}


MESSAGE = {
    "external_id": "m-1",
    "sender": {"kind": "phone", "address": "+44 20 7946 0958", "name": "Olivia"},
    "text": "Is my parcel on its way?",
    "received_at": "2099-01-01T00:00:00+00:00",
}


async def test_signed_message_is_stored_once(shop: Services, aiohttp_client: Any) -> None:
    client = await client_for(shop, aiohttp_client)
    raw, headers = signed(MESSAGE)
    first = await client.post(PATH, data=raw, headers=headers)
    again = await client.post(PATH, data=raw, headers=headers)
    one, two = await first.json(), await again.json()
    assert first.status == 200 and not one["duplicate"]
    assert two == {**one, "duplicate": True}
    timeline = await shop.inbox.timeline(one["conversation_id"])
    message = timeline.messages[0]
    assert message.sender == "+442079460958"
    assert message.created_at.year < 2099


async def test_forged_or_missing_signatures_are_refused(shop: Services, aiohttp_client: Any) -> None:
    client = await client_for(shop, aiohttp_client)
    raw, headers = signed(MESSAGE, secret="wrong")
    assert (await client.post(PATH, data=raw, headers=headers)).status == 403
    assert (await client.post(PATH, data=raw)).status == 403
    odd = {SIGNATURE_HEADER: "sha256=ünïcode", "Content-Type": "application/json"}
    assert (await client.post(PATH, data=raw, headers=odd)).status == 403
    tampered = raw.replace(b"parcel", b"refund")
    assert (await client.post(PATH, data=tampered, headers=signed(MESSAGE)[1])).status == 403
    assert (await shop.inbox.list(ConversationFilter()))[1] == 0


async def test_invalid_payload_names_the_field(shop: Services, aiohttp_client: Any) -> None:
    client = await client_for(shop, aiohttp_client)
    raw, headers = signed({**MESSAGE, "sender": {"kind": "phone", "address": "12"}})
    resp = await client.post(PATH, data=raw, headers=headers)
    assert resp.status == 422 and "phone" in (await resp.json())["error"]
    raw, headers = signed({k: v for k, v in MESSAGE.items() if k != "text"})
    resp = await client.post(PATH, data=raw, headers=headers)
    assert resp.status == 422 and (await resp.json())["field"] == "text"


async def test_unstorable_message_is_quarantined_and_acknowledged(
    shop: Services, aiohttp_client: Any
) -> None:
    client = await client_for(shop, aiohttp_client)
    raw, headers = signed({**MESSAGE, "sender": {"kind": "external", "address": "x" * 500}})
    resp = await client.post(PATH, data=raw, headers=headers)
    body = await resp.json()
    assert resp.status == 202 and body["quarantined"] >= 1 and "sender address" in body["reason"]
    supervisor = await as_role(client, shop, Role.SUPERVISOR)
    [item] = (await supervisor.get("/api/quarantine"))["items"]
    assert item["id"] == body["quarantined"] and item["external_id"] == "m-1"
    async with client.get(f"/api/quarantine/{item['id']}/raw", headers=supervisor.headers) as kept:
        assert kept.status == 200 and await kept.read() == raw
    agent = await as_role(client, shop, Role.AGENT)
    await agent.get("/api/quarantine", expect=403)
