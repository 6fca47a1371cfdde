"""Requests per second and latency of the incoming-call webhook, next to a bare aiohttp handler.

The benchmark starts a real hub (`python -m hub run`, SQLite) with a Twilio line whose team
has two available agents, and, in another process, a bare aiohttp server that answers
every POST with the same TwiML bytes the hub answers. From this process it posts signed
incoming-call webhooks (a new CallSid each, callers drawn from a pool, so most are known
contacts) with C concurrent connections for D seconds to each server in turn, and prints
requests per second, p50 and p99 latency, and the server process's CPU seconds per request
(and, for the hub, the CPU all `postgres` processes on the machine used per request).
After the last answer (of the warm-up too) the benchmark waits until the server is idle:
the CPU it spends meanwhile (calls still queued for the writer, rule triggers and SLA clocks
catching up) counts in its CPU per request, and `settle s` and `kept-up/s` (requests over
the load's and the settling's seconds) show work put off past the load.
The hub's path per request: the signature check, the caller (contact and agent) and the
team's ring list from memory (read from the store after a change empties them), the greeting
and the TwiML kept per greeting, agents and ring window; the call is queued for the writer,
which stores calls on their callers' conversations in batches after they are answered (its
CPU counts too: it runs in the hub process).

Usage: python bench/webhooks.py [--concurrency 16] [--seconds 10] [--callers 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measures import cpu_seconds, percentile, postgres_cpu_seconds, settled  # noqa: E402
from hub import config as hub_config  # noqa: E402
from hub.models import Availability, Role  # noqa: E402
from hub.services import open_services  # noqa: E402
from tests.fakes.twilio import signature  # noqa: E402
from tests.hubproc import HubProcess  # noqa: E402

ACCOUNT = "AC" + "b2" * 16
TOKEN = "bench-auth-token"
PUBLIC = "https://hub.example.com"
LINE = "+442079460000"
PATH = "/webhooks/twilio_voice/main/incoming"

CONFIG = f"""
[hub]
data_dir = "data"
public_url = "{PUBLIC}"
{{store}}
[web]
port = 0

[[channels]]
name = "main"
kind = "twilio_voice"
account_sid = "{ACCOUNT}"
auth_token = "{TOKEN}"
devices = {{ alice = "client:alice", bob = "+441134960001" }}
lines = [{{ number = "{LINE}", team = "Support" }}]
"""

BARE = """
import sys
from pathlib import Path
from aiohttp import web

body = Path(sys.argv[2]).read_bytes()

async def answer(request: web.Request) -> web.Response:
    await request.post()
    return web.Response(body=body, content_type="text/xml", charset="utf-8")

app = web.Application()
app.router.add_post("/{tail:.*}", answer)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


@dataclass
class Result:
    """One server's figures."""

    name: str
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    cpu_seconds: float
    settle_seconds: float = 0.0
    """How long the server kept working after the last answer (calls stored, triggers run)."""
    settle_cpu: float = 0.0
    caches: str = ""
    """The hub's in-memory caches' hit rates on the call path, warm-up included."""
    postgres_cpu: float = 0.0
    """CPU seconds of all `postgres` processes over the load and the settling (others' work too)."""

    @property
    def rate(self) -> float:
        """Requests answered per second."""
        return self.requests / self.seconds

    @property
    def kept_up(self) -> float:
        """Requests per second including the time the server needed to finish their work."""
        return self.requests / (self.seconds + self.settle_seconds)

    def line(self) -> str:
        """A row of the table."""
        rps = self.rate
        p50, p99 = percentile(self.latencies, 50), percentile(self.latencies, 99)
        per_request = (self.cpu_seconds + self.settle_cpu) / max(self.requests, 1) * 1000
        return (
            f"{self.name:<22} {rps:>8.0f} {p50:>8.2f} {p99:>8.2f} {per_request:>10.2f} "
            f"{self.settle_seconds:>8.1f} {self.kept_up:>9.0f} {self.requests:>8} {self.errors:>6}"
        )


async def prepare(folder: Path, store: str) -> tuple[Path, str]:
    """Write the configuration, migrate the store, add the team and its agents; a supervisor's token."""
    path = folder / "omnihub.toml"
    path.write_text(CONFIG.replace("{store}", store), encoding="utf-8")
    services = await open_services(hub_config.load(path))
    try:
        team = await services.directory.add_team("Support", "Customer Care")
        for name in ("alice", "bob"):
            agent = await services.directory.add_agent(
                name, None, Role.AGENT, availability=Availability.AVAILABLE
            )
            await services.directory.add_member(team.id, agent.id)
        supervisor = await services.directory.add_agent("sup", None, Role.SUPERVISOR)
        token = await services.directory.issue_token(supervisor.id, "bench")
    finally:
        await services.close()
    return path, token


def form(caller: int) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """An incoming-call webhook's fields and headers, signed over the public URL."""
    fields = [
        ("AccountSid", ACCOUNT),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", "CA" + secrets.token_hex(16)),
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
        ("From", f"+4420794{caller:05d}"),
        ("To", LINE),
    ]
    headers = {"X-Twilio-Signature": signature(TOKEN, PUBLIC + PATH, fields)}
    return fields, headers


async def load(name: str, url: str, pid: int, concurrency: int, seconds: float, callers: int) -> Result:
    """Post incoming calls for a while from `concurrency` connections."""
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker(seed: int) -> None:
            nonlocal errors
            n = seed
            while time.monotonic() < until:
                fields, headers = form(n % callers)
                n += concurrency
                started = time.monotonic()
                async with http.post(url + PATH, data=fields, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                latencies.append(time.monotonic() - started)

        cpu_before = cpu_seconds(pid)
        postgres_before = postgres_cpu_seconds()
        began = time.monotonic()
        until = began + seconds
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        took = time.monotonic() - began
        cpu = cpu_seconds(pid) - cpu_before
    settle_seconds, settle_cpu = await settled(pid)
    postgres = postgres_cpu_seconds() - postgres_before
    return Result(
        name, len(latencies), errors, took, latencies, cpu, settle_seconds, settle_cpu, postgres_cpu=postgres
    )


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def bench_hub(store: str, args: argparse.Namespace) -> tuple[Result, bytes]:
    """Start a hub on a store, load it, stop it; return its figures and its TwiML."""
    with tempfile.TemporaryDirectory() as tmp:
        config, token = await prepare(Path(tmp), store)
        hub = HubProcess(config)
        url = await hub.start()
        try:
            async with aiohttp.ClientSession() as http:
                fields, headers = form(0)
                async with http.post(url + PATH, data=fields, headers=headers) as response:
                    assert response.status == 200, await response.text()
                    body = await response.read()
            assert hub.proc is not None
            await load("warm-up", url, hub.proc.pid, args.concurrency, 2, args.callers)
            result = await load("hub", url, hub.proc.pid, args.concurrency, args.seconds, args.callers)
            result.caches = await cache_rates(url, token)
        finally:
            await hub.terminate(15)
    return result, body


async def cache_rates(url: str, token: str) -> str:
    """The call path's cache hit rates, from the hub's metrics."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics", headers=headers) as response:
        text = await response.text()
    counts: dict[tuple[str, str], float] = {}
    for found in re.finditer(r'omnihub_call_cache_lookups\{cache="(\w+)",result="(\w+)"\} (\S+)', text):
        counts[found[1], found[2]] = float(found[3])
    rates = []
    for cache in ("callers", "rings"):
        hits, misses = counts.get((cache, "hit"), 0), counts.get((cache, "miss"), 0)
        rates.append(f"{cache} {hits / max(hits + misses, 1):.1%} of {hits + misses:,.0f}")
    return "cache hits: " + ", ".join(rates)


async def bench_bare(body: bytes, args: argparse.Namespace) -> Result:
    """Start the bare handler answering `body`, load it, stop it."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "twiml.xml").write_bytes(body)
        (folder / "bare.py").write_text(BARE, encoding="utf-8")
        port = free_port()
        bare = await asyncio.create_subprocess_exec(
            sys.executable, str(folder / "bare.py"), str(port), str(folder / "twiml.xml")
        )
        try:
            url = f"http://127.0.0.1:{port}"
            await _wait_for(url)
            await load("warm-up", url, bare.pid, args.concurrency, 2, args.callers)
            return await load(
                "bare aiohttp handler", url, bare.pid, args.concurrency, args.seconds, args.callers
            )
        finally:
            bare.terminate()
            await bare.wait()


async def pg_store(dsn: str) -> tuple[str, str] | None:
    """A fresh schema on the PostgreSQL server, as a [store] snippet, or None if unreachable."""
    name = f"bench_{secrets.token_hex(4)}"
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
        await conn.execute(f"CREATE SCHEMA {name}")
        await conn.close()
    except (OSError, asyncpg.PostgresError) as err:
        print(f"PostgreSQL not reachable ({err}); SQLite only")
        return None
    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    return name, f'[store]\nurl = "{url}"\nschema_name = "{name}"\n'


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--callers", type=int, default=200)
    parser.add_argument(
        "--pg", default=os.environ.get("OMNIHUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    )
    args = parser.parse_args()
    results = []
    sqlite, body = await bench_hub("", args)
    sqlite.name = "hub on SQLite"
    pg = await pg_store(args.pg)
    if pg is not None:
        try:
            on_pg, _ = await bench_hub(pg[1], args)
            on_pg.name = "hub on PostgreSQL"
            results.append(on_pg)
        finally:
            conn = await asyncpg.connect(args.pg, timeout=5)
            await conn.execute(f"DROP SCHEMA {pg[0]} CASCADE")
            await conn.close()
    bare = await bench_bare(body, args)
    print(
        f"incoming-call webhook: {args.concurrency} connections, {args.seconds:g} s each, {len(body)} bytes"
    )
    print(f"load: {os.getloadavg()[0]:.2f} (1-min average), {os.cpu_count()} cores")
    header = f"{'server':<22} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms/req':>10}"
    print(f"{header} {'settle s':>8} {'kept-up/s':>9} {'requests':>8} {'errors':>6}")
    for result in (bare, sqlite, *results):
        print(result.line())
    for result in (sqlite, *results):
        ratio = bare.rate / max(result.rate, 1e-9)
        kept = bare.kept_up / max(result.kept_up, 1e-9)
        print(
            f"{result.name}: the bare handler serves {ratio:.2f}x its requests per second, "
            f"{kept:.2f}x counting the work finished after the last answer (target: within 2x); "
            f"{result.caches}"
        )
    for result in (sqlite, *results):
        per_request = result.postgres_cpu / max(result.requests, 1) * 1000
        print(
            f"{result.name}: PostgreSQL server CPU {per_request:.3f} ms/req "
            "(all postgres processes over the load and the settling; on SQLite, other work's)"
        )


async def _wait_for(url: str) -> None:
    async with aiohttp.ClientSession() as http, asyncio.timeout(15):
        while True:
            try:
                async with http.get(url + "/health") as response:
                    await response.read()
                    return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)


if __name__ == "__main__":
    asyncio.run(main())
