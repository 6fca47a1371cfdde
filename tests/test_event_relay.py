"""Events reach the websockets of every hub process on one PostgreSQL database (LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import ClientSession, CookieJar

from hub import config as hub_config
from hub.events import EventBus
from hub.models import ChannelKind, Identity, InboundMessage
from hub.runtime import Hub
from hub.web.relay import PgEventRelay
from tests.conftest import PG_DSN, _pg_execute, unavailable
from tests.conftest_web import PASSWORD, add_agent

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg_schema() -> AsyncIterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        await _pg_execute(f"CREATE SCHEMA {schema}")
    except (OSError, asyncpg.PostgresError) as err:
        unavailable(f"PostgreSQL at {PG_DSN} ({err})")
    yield schema
    await _pg_execute(f"DROP SCHEMA {schema} CASCADE")


def event(kind: str, conversation_id: int) -> dict[str, Any]:
    return {
        "kind": kind,
        "at": datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
        "conversation_id": conversation_id,
        "agent_id": None,
        "data": {"message_id": 7},
    }


async def test_events_of_one_process_reach_the_other_processes_peer_bus_only(pg_schema: str) -> None:
    buses = [(EventBus(), EventBus()) for _ in range(3)]
    relays = [
        PgEventRelay(PG_DSN, pg_schema, buses[0][0], buses[0][1]),
        PgEventRelay(PG_DSN, pg_schema, buses[1][0], buses[1][1]),
        PgEventRelay(PG_DSN, f"{pg_schema}_other", buses[2][0], buses[2][1]),
    ]
    for relay in relays:
        await relay.start()
    try:
        own_peer, other_local, other_peer, elsewhere = (
            buses[0][1].subscribe(),
            buses[1][0].subscribe(),
            buses[1][1].subscribe(),
            buses[2][1].subscribe(),
        )
        buses[0][0].publish([event("message.received", 42)])
        received = await asyncio.wait_for(other_peer.get(), 5)
        assert received == event("message.received", 42)
        await asyncio.sleep(0.3)
        assert own_peer.empty() and other_local.empty() and elsewhere.empty()
    finally:
        for relay in relays:
            await relay.stop()


async def test_a_burst_of_events_arrives_whole_and_in_order(pg_schema: str) -> None:
    sender, receiver = (EventBus(), EventBus()), (EventBus(), EventBus())
    relays = [PgEventRelay(PG_DSN, pg_schema, *sender), PgEventRelay(PG_DSN, pg_schema, *receiver)]
    for relay in relays:
        await relay.start()
    try:
        heard = receiver[1].subscribe()
        burst = [{**event("message.received", i), "data": {"text": "词" * (i % 50) * 20}} for i in range(300)]
        sender[0].publish(burst)
        got = [await asyncio.wait_for(heard.get(), 5) for _ in burst]
        assert got == burst
    finally:
        for relay in relays:
            await relay.stop()


async def test_two_hub_processes_share_live_events(pg_schema: str, tmp_path: Path) -> None:
    hubs = []
    for name in ("a", "b"):
        config = hub_config.parse(
            {
                "hub": {"data_dir": str(tmp_path / name)},
                "store": {
                    "url": PG_DSN.replace("postgresql://", "postgresql+asyncpg://"),
                    "schema_name": pg_schema,
                },
                "web": {"port": 0},
                "channels": [{"name": "mail", "kind": "memory"}],
            },
            tmp_path,
        )
        hub = Hub(config)
        await hub.start()
        hubs.append(hub)
    try:
        a, b = hubs
        assert a.services is not None and b.services is not None and b.address is not None
        agent = await add_agent(b.services, password=PASSWORD)
        url = f"http://127.0.0.1:{b.address[1]}"
        async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
            async with http.post(
                f"{url}/api/login", json={"username": agent.username, "password": PASSWORD}
            ) as r:
                assert r.status == 200
            socket = await http.ws_connect(f"{url}/ws")
            await asyncio.sleep(0.2)
            message = InboundMessage(
                channel=ChannelKind.EMAIL,
                channel_account="mail",
                external_id="<relay@example.com>",
                sender=Identity.of("email", "chen@example.com"),
                text="Hello from the other process",
                received_at=datetime.now(UTC),
            )
            result = await a.services.channels["mail"].receive(message)  # type: ignore[attr-defined]
            while True:
                frame = json.loads((await socket.receive(timeout=5)).data)
                if frame["kind"] == "message.received":
                    break
            assert frame["conversation_id"] == result.conversation_id
            await socket.close()
    finally:
        for hub in hubs:
            await hub.stop()


async def test_relays_reconnect_after_losing_their_connections(pg_schema: str) -> None:
    buses = [(EventBus(), EventBus()) for _ in range(2)]
    relays = [PgEventRelay(PG_DSN, pg_schema, local, peers) for local, peers in buses]
    for relay in relays:
        await relay.start()
    try:
        pids = [relay._conn.get_server_pid() for relay in relays]
        await _pg_execute(f"SELECT pg_terminate_backend(pid) FROM unnest(ARRAY{pids}) AS pid")
        for relay, old in zip(relays, pids, strict=True):
            for _ in range(100):
                conn = relay._conn
                if conn is not None and not conn.is_closed() and conn.get_server_pid() != old:
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail("the relay did not reconnect")
        arrived = buses[1][1].subscribe()
        buses[0][0].publish([event("conversation.assigned", 5)])
        assert await asyncio.wait_for(arrived.get(), 5) == event("conversation.assigned", 5)
    finally:
        for relay in relays:
            await relay.stop()
