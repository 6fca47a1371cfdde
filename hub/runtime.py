"""The running hub: starts store, channels, dispatcher, scheduler and web app; stops them all.

On SIGTERM or SIGINT everything stops within `runtime.shutdown_seconds` (10 s by default):
the web server stops accepting, channels stop receiving, sends in flight finish or are
released for a retry, submitted messages are committed, and no task is left pending.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

import channels as channel_registry
from channels.base import Channel, ChannelState, InboundSink
from hub import inbox, logs
from hub.aio import backoff, cancel_and_wait
from hub.config import Config
from hub.errors import HubError
from hub.outbox import Dispatcher
from hub.rules.queue import RULE_EVENT, RULE_TIME
from hub.scheduler import Scheduler
from hub.services import Services, open_services
from hub.sla.handlers import timer_handlers
from hub.web.relay import PgEventRelay, dsn

log = logging.getLogger(__name__)

WATCH_SECONDS = 0.5
CHANNEL_STOP_SECONDS = 3.0
HEALTHY_RESETS_AFTER = 60.0


class ChannelSupervisor:
    """Keeps one channel running: starts it, restarts it with backoff when it fails."""

    def __init__(
        self, channel: Channel, sink: InboundSink, max_backoff: float, base_backoff: float = 1.0
    ) -> None:
        self.channel = channel
        self.sink = sink
        self.max_backoff = max_backoff
        self.base_backoff = base_backoff
        self.failures = 0
        self.restarts = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start supervising."""
        self._task = asyncio.create_task(self._run(), name=f"channel-{self.channel.name}")

    async def stop(self) -> None:
        """Stop supervising, then stop the channel within a bounded time."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await self._stop_channel()

    async def _stop_channel(self) -> None:
        try:
            async with asyncio.timeout(CHANNEL_STOP_SECONDS):
                await self.channel.stop()
        except Exception:
            log.exception("channel %s did not stop cleanly", self.channel.name)

    async def _run(self) -> None:
        while True:
            try:
                await self.channel.start(self.sink)
            except Exception as err:  # noqa: BLE001
                self.failures += 1
                delay = backoff(self.failures, self.base_backoff, self.max_backoff)
                if self.failures == 1:
                    log.warning(
                        "channel %s failed to start (%s); retrying with backoff", self.channel.name, err
                    )
                else:
                    log.debug("channel %s start attempt %d failed: %s", self.channel.name, self.failures, err)
                await self._stop_channel()
                await asyncio.sleep(delay)
                continue
            if self.failures:
                log.info(
                    "channel %s is running again after %d failed starts", self.channel.name, self.failures
                )
            else:
                log.info("channel %s started", self.channel.name)
            self.failures = 0
            healthy_since = asyncio.get_running_loop().time()
            while self.channel.state() is not ChannelState.FAILED:  # noqa: ASYNC110
                await asyncio.sleep(WATCH_SECONDS)
            if asyncio.get_running_loop().time() - healthy_since > HEALTHY_RESETS_AFTER:
                self.restarts = 0
            self.restarts += 1
            if self.restarts == 1:
                log.warning("channel %s failed; restarting it", self.channel.name)
            else:
                log.debug("channel %s failed again (%d in a row)", self.channel.name, self.restarts)
            await self._stop_channel()
            await asyncio.sleep(backoff(self.restarts, self.base_backoff, self.max_backoff))


@dataclass
class Hub:
    """One hub process."""

    config: Config
    services: Services | None = None
    http: aiohttp.ClientSession | None = None
    dispatcher: Dispatcher | None = None
    runner: web.AppRunner | None = None
    supervisors: list[ChannelSupervisor] = field(default_factory=list)
    scheduler: Scheduler | None = None
    address: tuple[str, int] | None = None
    relay: PgEventRelay | None = None

    async def start(self) -> None:
        """Open the store, start channels, dispatcher and scheduler, and serve HTTP."""
        from hub.web.app import create_app

        self.services = services = await open_services(self.config)
        await services.rules.load()
        services.rules.start()
        self.http = aiohttp.ClientSession()
        services.attach_channels(self.http)
        services.inbox.start()
        if services.db.dialect == "postgresql":
            self.relay = PgEventRelay(
                dsn(services.db), services.db.schema, services.bus, services.peer_events
            )
            await self.relay.start()
        self.dispatcher = Dispatcher(
            services.db, services.outbox, services.channels, self.config.outbox, services.clock
        )
        self.dispatcher.start()
        for channel in services.channels.values():
            supervisor = ChannelSupervisor(
                channel, services.inbox.ingest, self.config.runtime.channel_restart_max_seconds
            )
            supervisor.start()
            self.supervisors.append(supervisor)
        handlers = {inbox.WAKE: inbox.wake, **timer_handlers(services.sla), **services.rule_engine.handlers()}
        self.scheduler = Scheduler(
            services.db,
            handlers,
            services.clock,
            bus=services.bus,
            prune_kinds=frozenset({RULE_EVENT, RULE_TIME}),
        )
        self.scheduler.start()
        services.sla.start()
        self.runner = web.AppRunner(
            create_app(services),
            handle_signals=False,
            shutdown_timeout=self.config.runtime.shutdown_seconds / 3,
        )
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.config.web.host, self.config.web.port)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.address = (host, port)
        log.info("omnihub is serving on http://%s:%d", host, port)

    async def stop(self) -> None:
        """Stop everything, in the order that loses nothing."""
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("web server", self._stop_web),
            ("dispatcher", self._stop_dispatcher),
            ("channels", self._stop_channels),
            ("scheduler", self._stop_scheduler),
            ("SLA clock", self._stop_sla),
            ("rules", self._stop_rules),
            ("event relay", self._stop_relay),
            ("inbox", self._stop_inbox),
            ("http client", self._close_http),
            ("store", self._close_store),
        ]
        for name, step in steps:
            try:
                await step()
            except Exception:
                log.exception("stopping the %s failed", name)

    async def _stop_web(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _stop_channels(self) -> None:
        await asyncio.gather(*(s.stop() for s in self.supervisors))

    async def _stop_scheduler(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.stop()

    async def _stop_sla(self) -> None:
        if self.services is not None:
            await self.services.sla.stop()

    async def _stop_rules(self) -> None:
        if self.services is not None:
            await self.services.rules.stop()

    async def _stop_dispatcher(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.stop(self.config.runtime.shutdown_seconds / 3)

    async def _stop_relay(self) -> None:
        if self.relay is not None:
            await self.relay.stop()

    async def _stop_inbox(self) -> None:
        if self.services is not None:
            await self.services.inbox.stop()

    async def _close_http(self) -> None:
        if self.http is not None:
            await self.http.close()

    async def _close_store(self) -> None:
        if self.services is not None:
            await self.services.db.dispose()


GC_THRESHOLDS = (20_000, 10, 10)
"""The collector's thresholds once startup objects are frozen: a young-generation pass every
20,000 new container objects, not 700 (the older generations as CPython's defaults). Batch
work (an SLA recomputation of 30,000 conversations) keeps tens of thousands of objects alive
at once, which CPython's defaults walked again and again: 12-15% of that work's CPU, about 4%
with these thresholds."""


def freeze_objects() -> None:
    """Move every object that exists now out of the garbage collector's sight, and collect the
    rest less often (`GC_THRESHOLDS`; see `serve`)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def serve(config: Config, stop: asyncio.Event, *, freeze_startup_objects: bool = False) -> int:
    """Run a hub until `stop` is set; return 0 if it stopped cleanly.

    With `freeze_startup_objects` (the `omnihub run` process), what exists once the hub has
    started (modules, configuration, compiled statements and templates) is moved out of the
    garbage collector's sight, so its full collections stay short pauses instead of ~100 ms ones.
    """
    hub = Hub(config)
    try:
        await hub.start()
        if freeze_startup_objects:
            freeze_objects()
    except HubError as err:
        log.error("cannot start: %s", err)  # noqa: TRY400
        await hub.stop()
        return 2
    except Exception:
        log.exception("cannot start")
        await hub.stop()
        return 1
    await stop.wait()
    log.info("stopping")
    deadline = config.runtime.shutdown_seconds
    try:
        async with asyncio.timeout(deadline):
            await hub.stop()
    except TimeoutError:
        log.error("shutdown took longer than %.0f s; cancelling what is left", deadline)  # noqa: TRY400
    leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in leftovers:
        log.error("task still pending at shutdown: %s", task.get_name())
        task.cancel()
    if leftovers:
        await asyncio.gather(*leftovers, return_exceptions=True)
        return 1
    log.info("stopped cleanly")
    return 0


async def _serve_with_signals(config: Config) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return await serve(config, stop, freeze_startup_objects=True)


def main(config: Config, verbose: bool = False) -> int:
    """Run the hub in this process until SIGTERM or SIGINT; return the exit code."""
    logs.configure(channel_registry.secrets(config), verbose)
    return asyncio.run(_serve_with_signals(config))
