"""A real hub process killed with SIGKILL loses nothing and duplicates nothing."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import ColumnElement, Table, func, select

from channels.api import SIGNATURE_HEADER, sign
from hub import config as hub_config
from hub.services import open_services
from hub.store import Database, schema
from tests.factories import inbound
from tests.hubproc import HubProcess, write_config

pytestmark = pytest.mark.slow

SECRET = "crash-test-secret-0123"
MESSAGES = 1000


def hub_settings(tmp_path: Path, store: dict[str, Any], outbound_url: str = "") -> dict[str, Any]:
    channel: dict[str, Any] = {"name": "partner", "kind": "api", "secret": SECRET}
    if outbound_url:
        channel["outbound_url"] = outbound_url
    return {
        "hub": {"data_dir": str(tmp_path / "data")},
        "store": store,
        "web": {"port": 0},
        "outbox": {
            "lease_seconds": 3,
            "base_delay_seconds": 0.2,
            "max_delay_seconds": 1,
            "poll_seconds": 0.1,
            "concurrency": 8,
        },
        "channels": [channel],
    }


@pytest.fixture
async def hub_process(tmp_path: Path) -> AsyncIterator[HubProcess]:
    process = HubProcess(tmp_path / "omnihub.toml")
    yield process
    await process.ensure_stopped()


async def count(config_path: Path, table: Table, *where: ColumnElement[bool]) -> int:
    """Rows in a table of the hub's store, read as a separate process would."""
    config = hub_config.load(config_path)
    db = Database(config.store_url, schema=config.store.schema_name)
    try:
        async with db.read() as conn:
            return (await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one()
    finally:
        await db.dispose()


def payload(i: int) -> bytes:
    return json.dumps(
        {
            "external_id": f"order-{i}",
            "sender": {
                "kind": "email",
                "address": f"customer{i % 97}@example.com",
                "name": f"Customer {i % 97}",
            },
            "subject": f"Order {i} has not arrived",
            "text": f"Hello, my order {i} was due last week. 我的订单{i}还没有到。",
        }
    ).encode()


async def post_all(url: str, indices: list[int], acked: set[int], concurrency: int = 40) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in indices:
        queue.put_nowait(i)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            body = payload(i)
            try:
                async with session.post(
                    f"{url}/webhooks/api/partner/messages",
                    data=body,
                    headers={SIGNATURE_HEADER: sign(SECRET, body), "Content-Type": "application/json"},
                ) as resp:
                    if resp.status == 200:
                        acked.add(i)
            except aiohttp.ClientError:
                return

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))


async def test_sigkill_while_ingesting_loses_and_duplicates_nothing(
    tmp_path: Path, store_settings: dict[str, Any], hub_process: HubProcess
) -> None:
    write_config(hub_process.config, hub_settings(tmp_path, store_settings))
    url = await hub_process.start()
    acked: set[int] = set()
    posting = asyncio.create_task(post_all(url, list(range(MESSAGES)), acked))
    while len(acked) < MESSAGES // 4:
        await asyncio.sleep(0.005)
    await hub_process.kill()
    await posting
    assert MESSAGES // 4 <= len(acked) < MESSAGES, "the kill must land in the middle of ingesting"
    assert await count(hub_process.config, schema.messages) >= len(acked), "an acknowledged message was lost"

    url = await hub_process.start()
    again: set[int] = set()
    await post_all(url, list(range(MESSAGES)), again)
    assert again == set(range(MESSAGES))
    assert await count(hub_process.config, schema.messages) == MESSAGES
    assert await hub_process.terminate(15) == 0


class Sink:
    """An HTTP endpoint that honours Idempotency-Key, like payment and messaging APIs do."""

    def __init__(self, hold_at: int) -> None:
        self.attempts: Counter[str] = Counter()
        self.delivered: dict[str, dict[str, Any]] = {}
        self.hold_at = hold_at
        self.held_key = ""
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        key = request.headers["Idempotency-Key"]
        body = await request.read()
        assert request.headers[SIGNATURE_HEADER] == sign(SECRET, body)
        self.attempts[key] += 1
        if key not in self.delivered:
            self.delivered[key] = json.loads(body)
            if len(self.delivered) == self.hold_at:
                self.held_key = key
                self.holding.set()
                await self.release.wait()
        return web.json_response({"id": f"sink-{key}"})


async def test_sigkill_while_sending_sends_each_message_once(
    tmp_path: Path, store_settings: dict[str, Any], hub_process: HubProcess
) -> None:
    replies = 200
    sink = Sink(hold_at=replies // 2)
    app = web.Application()
    app.router.add_post("/outbound", sink.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        settings = hub_settings(tmp_path, store_settings, f"http://{host}:{port}/outbound")
        write_config(hub_process.config, settings)
        services = await open_services(hub_config.load(hub_process.config))
        try:
            for i in range(replies // 4):
                result = await services.inbox.ingest(inbound(f"q{i}", f"c{i}@example.com", account="partner"))
                for n in range(4):
                    await services.outbox.reply(result.conversation_id, f"Answer {n} to {i}", agent_id=None)
        finally:
            await services.close()

        await hub_process.start()
        await asyncio.wait_for(sink.holding.wait(), 30)
        await hub_process.kill()
        sink.release.set()
        assert len(sink.delivered) < replies

        await hub_process.start()
        async with asyncio.timeout(60):
            while len(sink.delivered) < replies or await count(
                hub_process.config, schema.outbox, schema.outbox.c.status.not_in(["sent", "delivered"])
            ):
                await asyncio.sleep(0.1)
        assert len(sink.delivered) == replies
        assert {v["text"] for v in sink.delivered.values()} == {
            f"Answer {n} to {i}" for i in range(replies // 4) for n in range(4)
        }
        assert sink.attempts[sink.held_key] >= 2, "the send cut off by the kill was retried"
        assert await hub_process.terminate(15) == 0
    finally:
        sink.release.set()
        await runner.cleanup()
