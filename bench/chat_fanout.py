"""How long a web-chat visitor's message takes to reach an agent's websocket, under load.

The benchmark starts a real hub (`python -m hub run`, SQLite or PostgreSQL) with the
web-chat channel, connects one agent's websocket (`/ws`) and C visitor websockets (the
widget's protocol), and lets every visitor send a message every P seconds for D seconds.
For each message it measures the time from the visitor's send to the agent's socket
receiving `message.received` for it, and prints p50, p95, p99 and the maximum.

Usage: python bench/chat_fanout.py [--chats 500] [--period 2] [--seconds 20] [--pg DSN]
       [--only sqlite|postgresql] [--timeline] [--hub-log FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measures import cpu_seconds, percentile  # noqa: E402
from hub import config as hub_config  # noqa: E402
from hub.models import Role  # noqa: E402
from hub.services import open_services  # noqa: E402
from tests.hubproc import HubProcess, write_config  # noqa: E402

TEXTS = ["Is the oak table in stock?", "我的订单什么时候到?", "Can I change my address?", "谢谢!"]


async def prepare(folder: Path, store: dict[str, str]) -> tuple[Path, str]:
    """Write the hub's configuration, migrate the store, add an agent; return config and token."""
    data = {
        "hub": {"data_dir": str(folder / "data")},
        "store": store,
        "web": {"port": 0},
        "channels": [
            {
                "name": "site",
                "kind": "webchat",
                "max_messages_per_minute": 600,
                "max_connections_per_address": 10000,
            }
        ],
    }
    path = write_config(folder / "omnihub.toml", data)
    services = await open_services(hub_config.load(path))
    try:
        agent = await services.directory.add_agent("bench", None, Role.AGENT)
        token = await services.directory.issue_token(agent.id, "bench")
    finally:
        await services.close()
    return path, token


async def visitor(
    http: aiohttp.ClientSession, url: str, period: float, until: float, sent: dict[str, float]
) -> int:
    count = 0
    async with http.ws_connect(f"{url}/webhooks/webchat/site/socket") as socket:
        await socket.receive_json()
        await asyncio.sleep(random.uniform(0, period))
        while time.monotonic() < until:
            client_id = uuid.uuid4().hex
            sent[client_id] = time.monotonic()
            await socket.send_str(
                json.dumps({"type": "message", "id": client_id, "text": random.choice(TEXTS)})
            )
            while True:
                frame = await socket.receive_json()
                if frame.get("type") == "ack" or frame.get("type") == "error":
                    break
            count += 1
            await asyncio.sleep(period)
    return count


def print_timeline(pairs: list[tuple[float, float]]) -> None:
    """Median and worst latency of the messages sent in each second of the run."""
    start = min(at for at, _ in pairs)
    by_second: dict[int, list[float]] = {}
    for at, seen in pairs:
        by_second.setdefault(int(at - start), []).append(seen - at)
    for second, window in sorted(by_second.items()):
        window.sort()
        median, worst = window[len(window) // 2] * 1000, window[-1] * 1000
        print(f"    t={second:>3}s n={len(window):>4} p50={median:6.1f} max={worst:6.1f}")


async def run(
    store: dict[str, str],
    chats: int,
    period: float,
    seconds: float,
    *,
    timeline: bool = False,
    hub_log: Path | None = None,
) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        config, token = await prepare(Path(tmp), store)
        hub = HubProcess(config)
        url = await hub.start()
        assert hub.proc is not None
        pid = hub.proc.pid
        cpu_before = cpu_seconds(pid)
        received: dict[int, float] = {}
        try:
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as http:
                agent = await http.ws_connect(f"{url}/ws", headers={"Authorization": f"Bearer {token}"})

                async def listen() -> None:
                    async for frame in agent:
                        event = json.loads(frame.data)
                        if event["kind"] == "message.received":
                            received[event["data"]["message_id"]] = time.monotonic()

                listener = asyncio.create_task(listen())
                sent: dict[str, float] = {}
                until = time.monotonic() + seconds
                counts = await asyncio.gather(
                    *(visitor(http, url, period, until, sent) for _ in range(chats))
                )
                await asyncio.sleep(1)
                listener.cancel()
                await agent.close()
            cpu = cpu_seconds(pid) - cpu_before
        finally:
            await hub.terminate(15)
            if hub_log is not None:
                await asyncio.to_thread(hub_log.write_text, hub.log, encoding="utf-8")
        services = await open_services(hub_config.load(config), migrate=False)
        try:
            from sqlalchemy import select

            from hub.store import schema

            m = schema.messages
            async with services.db.read() as conn:
                rows = (
                    await conn.execute(select(m.c.id, m.c.external_id).where(m.c.id.in_(list(received))))
                ).all()
        finally:
            await services.close()
    latencies = [received[mid] - sent[external.split(":", 1)[1]] for mid, external in rows]
    if timeline:
        print_timeline([(sent[e.split(":", 1)[1]], received[mid]) for mid, e in rows])
    per_message = cpu / max(sum(counts), 1) * 1000
    seen = f"{len(latencies)} seen by the agent"
    print(f"  {sum(counts)} messages sent, {seen}; hub CPU {per_message:.2f} ms a message")
    return sorted(latencies)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chats", type=int, default=500)
    parser.add_argument("--period", type=float, default=2.0, help="seconds between a visitor's messages")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--pg", default=os.environ.get("OMNIHUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--only", choices=["sqlite", "postgresql"], help="run on one database")
    parser.add_argument("--timeline", action="store_true", help="print latency per second of the run")
    parser.add_argument("--hub-log", type=Path, help="write the hub process's log to this file")
    args = parser.parse_args()
    stores: list[tuple[str, dict[str, str]]] = [("sqlite", {})]
    schema_name = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        conn = await asyncpg.connect(args.pg, timeout=5)
        await conn.execute(f"CREATE SCHEMA {schema_name}")
        await conn.close()
        stores.append(
            (
                "postgresql",
                {
                    "url": args.pg.replace("postgresql://", "postgresql+asyncpg://"),
                    "schema_name": schema_name,
                },
            )
        )
    except (OSError, asyncpg.PostgresError) as err:
        print(f"PostgreSQL not reachable ({err}); SQLite only")
    print(f"web chat: {args.chats} visitors, one message each every {args.period:g} s for {args.seconds:g} s")
    print(f"{'database':<12} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    try:
        for name, store in stores:
            if args.only and name != args.only:
                continue
            if name == "sqlite":
                store = {"url": "sqlite+aiosqlite:///data/omnihub.db"}
            latencies = await run(
                store, args.chats, args.period, args.seconds, timeline=args.timeline, hub_log=args.hub_log
            )
            print(
                f"{name:<12} {percentile(latencies, 50):>8.1f} {percentile(latencies, 95):>8.1f} "
                f"{percentile(latencies, 99):>8.1f} {latencies[-1] * 1000:>8.1f}"
            )
    finally:
        if len(stores) > 1:
            conn = await asyncpg.connect(args.pg, timeout=5)
            await conn.execute(f"DROP SCHEMA {schema_name} CASCADE")
            await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
