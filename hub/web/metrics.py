"""Prometheus metrics: HTTP requests by route template, and the hub's state at scrape time."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler as AioHandler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from channels.base import ChannelState
from hub.models import ConversationStatus, Role
from hub.services import Services
from hub.stats import collect
from hub.web.routing import Ctx, RouteTable

routes = RouteTable("health")

UNMATCHED = "unmatched"
CANCELLED = 499


COUNTS_TTL_SECONDS = 10.0


class Metrics:
    """One app's metrics, in a registry of its own."""

    def __init__(self) -> None:
        self._refreshed_at = -COUNTS_TTL_SECONDS
        self._observers: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._stats: dict[str, Any] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "omnihub_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "omnihub_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            registry=self.registry,
        )
        self.conversations = Gauge(
            "omnihub_conversations", "Conversations by status", ["status"], registry=self.registry
        )
        self.outbox = Gauge(
            "omnihub_outbox_messages",
            "Outgoing messages by delivery status",
            ["status"],
            registry=self.registry,
        )
        self.quarantined = Gauge(
            "omnihub_quarantined_items", "Inbound items in quarantine, unresolved", registry=self.registry
        )
        self.call_cache = Gauge(
            "omnihub_call_cache_lookups",
            "Lookups of the incoming-call path's in-memory caches since the start, by cache and result",
            ["cache", "result"],
            registry=self.registry,
        )
        self.channel_state = Gauge(
            "omnihub_channel_state",
            "1 for each channel's current state, 0 for the others",
            ["channel", "kind", "state"],
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        key = (method, route, status)
        found = self._observers.get(key)
        if found is None:
            found = self._observers[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        count, latency = found
        count.inc()
        latency.observe(seconds)

    async def refresh(self, services: Services) -> None:
        """Read the hub's counts (at most every few seconds) and channel states into the gauges."""
        now = time.monotonic()
        if now - self._refreshed_at >= COUNTS_TTL_SECONDS:
            self._refreshed_at = now
            self._stats = await collect(services.db)
        stats = self._stats
        for status in ConversationStatus:
            self.conversations.labels(status.value).set(stats["conversations"][status.value])
        for status, count in stats["outbox"].items():
            self.outbox.labels(status).set(count)
        self.quarantined.set(stats["quarantined"])
        for cache, (hits, misses) in services.calls.cache_counts().items():
            self.call_cache.labels(cache, "hit").set(hits)
            self.call_cache.labels(cache, "miss").set(misses)
        for name, channel in services.channels.items():
            current = channel.state()
            for state in ChannelState:
                self.channel_state.labels(name, channel.kind, state.value).set(1 if state is current else 0)


METRICS = web.AppKey("metrics", Metrics)


@web.middleware
async def metrics_middleware(request: web.Request, handler: AioHandler) -> web.StreamResponse:
    """Time and count every request by its route template, never by its concrete path."""
    match = request.match_info
    resource = match.route.resource
    matched = match.http_exception is None and resource is not None
    route = resource.canonical if matched and resource is not None else UNMATCHED
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
    except asyncio.CancelledError:
        status = CANCELLED
        raise
    except web.HTTPException as err:
        status = err.status
        raise
    finally:
        request.app[METRICS].observe(request.method, route, status, time.perf_counter() - started)
    return response


@routes.get("/metrics", Role.SUPERVISOR)
async def metrics(ctx: Ctx) -> web.StreamResponse:
    """Prometheus metrics in the text exposition format."""
    collected = ctx.request.app[METRICS]
    await collected.refresh(ctx.services)
    return web.Response(
        body=generate_latest(collected.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
