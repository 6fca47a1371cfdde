"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from channels.base import ChannelState
from hub.services import Services
from hub.web.routing import Access, Ctx, RouteTable, respond

log = logging.getLogger(__name__)

routes = RouteTable("health")

DB_TIMEOUT_SECONDS = 5


@routes.get("/healthz", Access.PUBLIC)
async def healthz(ctx: Ctx) -> web.StreamResponse:
    """The process is alive and answering."""
    return respond({"status": "ok"})


@routes.get("/readyz", Access.PUBLIC)
async def readyz(ctx: Ctx) -> web.StreamResponse:
    """The database answers and every channel is connected (else 503 with details)."""
    database = await _database_ok(ctx.services)
    channels = {name: channel.state().value for name, channel in ctx.services.channels.items()}
    ready = database and all(state == ChannelState.CONNECTED for state in channels.values())
    body = {
        "status": "ready" if ready else "not ready",
        "database": "ok" if database else "unavailable",
        "channels": channels,
    }
    return respond(body, status=200 if ready else 503)


async def _database_ok(services: Services) -> bool:
    try:
        async with asyncio.timeout(DB_TIMEOUT_SECONDS), services.db.read() as conn:
            await conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError, TimeoutError):
        log.warning("readiness: the database does not answer", exc_info=True)
        return False
    return True
