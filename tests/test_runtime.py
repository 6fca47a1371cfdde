"""The runtime: channel supervision with backoff, and bounded, clean shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from channels.base import ChannelState
from channels.memory import MemoryChannel
from hub import runtime
from hub.models import InboundMessage, IngestResult
from hub.runtime import ChannelSupervisor
from tests.factories import inbound
from tests.hubproc import HubProcess, write_config


async def test_supervisor_retries_a_failing_start_then_restarts_a_failed_channel() -> None:
    received: list[InboundMessage] = []

    async def sink(message: InboundMessage) -> IngestResult:
        received.append(message)
        return IngestResult(len(received), 1, 1, duplicate=False, new_conversation=False)

    channel = MemoryChannel("flaky")
    channel.start_failures = 3
    supervisor = ChannelSupervisor(channel, sink, max_backoff=0.05, base_backoff=0.01)
    supervisor.start()
    try:
        async with asyncio.timeout(5):
            while channel.state() is not ChannelState.CONNECTED:
                await asyncio.sleep(0.01)
        assert channel.start_failures == 0 and supervisor.failures == 0
        await channel.receive(inbound("m1"))
        channel.break_down()
        async with asyncio.timeout(5):
            while channel.state() is not ChannelState.CONNECTED:
                await asyncio.sleep(0.01)
        assert supervisor.restarts == 1
        await channel.receive(inbound("m2"))
        assert [m.external_id for m in received] == ["m1", "m2"]
    finally:
        await supervisor.stop()
    assert channel.state() is ChannelState.STOPPED


@pytest.fixture
async def hub_process(tmp_path: Path) -> AsyncIterator[HubProcess]:
    process = HubProcess(tmp_path / "omnihub.toml")
    yield process
    await process.ensure_stopped()


@pytest.mark.slow
async def test_sigterm_stops_within_ten_seconds_even_with_a_hanging_send(
    tmp_path: Path, store_settings: dict[str, Any], hub_process: HubProcess
) -> None:
    hang = asyncio.Event()

    async def never_answers(request: web.Request) -> web.Response:
        await hang.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/out", never_answers)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        write_config(
            hub_process.config,
            {
                "hub": {"data_dir": str(tmp_path / "data")},
                "store": store_settings,
                "web": {"port": 0},
                "channels": [
                    {
                        "name": "partner",
                        "kind": "api",
                        "secret": "s-0123456789",
                        "outbound_url": f"http://{host}:{port}/out",
                    },
                    {"name": "demo", "kind": "memory"},
                ],
            },
        )
        from hub import config as hub_config
        from hub.services import open_services

        services = await open_services(hub_config.load(hub_process.config))
        result = await services.inbox.ingest(inbound("q1", account="partner"))
        await services.outbox.reply(result.conversation_id, "This send will hang", agent_id=None)
        await services.close()

        url = await hub_process.start()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/healthz") as resp:
                assert resp.status == 200
            async with http.get(f"{url}/readyz") as resp:
                assert resp.status == 200
        await asyncio.sleep(0.5)
        started = time.monotonic()
        code = await hub_process.terminate(15)
        took = time.monotonic() - started
        assert code == 0, hub_process.log
        assert took < 10, f"shutdown took {took:.1f} s"
        assert "stopped cleanly" in hub_process.log
        assert "Task was destroyed" not in hub_process.log
        assert "still pending" not in hub_process.log
        assert "released 1 unfinished sends" in hub_process.log
        assert "s-0123456789" not in hub_process.log
    finally:
        hang.set()
        await runner.cleanup()


@pytest.mark.slow
async def test_invalid_configuration_stops_start_with_key_path(
    tmp_path: Path, hub_process: HubProcess
) -> None:
    write_config(hub_process.config, {"web": {"port": "eighty"}, "channels": [{"name": "x", "kind": "api"}]})
    with pytest.raises(RuntimeError, match=r"web\.port") as err:
        await hub_process.start(within=20)
    assert "channels[0]" in str(err.value) or "web.port" in str(err.value)
    assert await hub_process.wait(10) == 2
    assert "Traceback" not in hub_process.log


@pytest.mark.slow
async def test_port_in_use_ends_start_cleanly(tmp_path: Path, hub_process: HubProcess) -> None:
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = blocker.sockets[0].getsockname()[1]
    try:
        write_config(
            hub_process.config,
            {"hub": {"data_dir": str(tmp_path / "data")}, "web": {"port": port}},
        )
        with pytest.raises(RuntimeError, match="hub exited early"):
            await hub_process.start(within=20)
        assert await hub_process.wait(10) == 1
        assert "cannot start" in hub_process.log
        assert "Task was destroyed" not in hub_process.log
    finally:
        blocker.close()
        await blocker.wait_closed()


async def test_the_run_process_moves_its_startup_objects_out_of_the_collectors_way(make_config: Any) -> None:
    config = make_config(web={"port": 0}, channels=[{"name": "mail", "kind": "memory"}])

    async def serve_until_frozen() -> tuple[int, int]:
        stop = asyncio.Event()
        frozen = 0

        async def watch() -> None:
            nonlocal frozen
            while gc.get_freeze_count() == 0:
                await asyncio.sleep(0.05)
            frozen = gc.get_freeze_count()
            stop.set()

        watcher = asyncio.create_task(watch())
        code = await runtime.serve(config, stop, freeze_startup_objects=True)
        await watcher
        return code, frozen

    gc.unfreeze()
    thresholds = gc.get_threshold()
    try:
        code, frozen = await asyncio.to_thread(asyncio.run, serve_until_frozen())
        tuned = gc.get_threshold()
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    assert code == 0 and frozen > 10_000
    assert tuned == runtime.GC_THRESHOLDS != thresholds
