"""The agents' websocket: the event bus's events pushed live, and who views or types where.

An agent's browser opens `GET /ws` with its session cookie. The server checks the Origin
(a page on another site cannot open it with the agent's cookie), then forwards every bus
event as JSON. The browser reports `{"type": "viewing" | "typing" | "left",
"conversation_id": id}`; these go out on the bus as `presence` events, so other agents'
browsers (in this process or, through the PostgreSQL relay, in another) can warn of a
collision.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from hub.aio import cancel_and_wait
from hub.events import EventBus
from hub.models import Role
from hub.web.errors import Forbidden
from hub.web.routing import Ctx, RouteTable

log = logging.getLogger(__name__)

routes = RouteTable("events")

PRESENCE_STATES = frozenset({"viewing", "typing", "left"})
MAX_CLIENT_MESSAGE = 1024
HEARTBEAT_SECONDS = 25.0
RESYNC = json.dumps({"kind": "resync", "conversation_id": None, "agent_id": None, "data": {}})
"""Sent before the next event when a socket fell behind and lost events: the page reloads what it shows."""
SOCKETS = web.AppKey("agent_sockets", set[web.WebSocketResponse])


def origin_allowed(request: web.Request, public_url: str) -> bool:
    """Whether the Origin header (if a browser sent one) is this hub's own."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    own = {f"{request.scheme}://{request.host}".lower(), _origin(public_url)}
    return origin.lower() in own


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


WIRE_CACHE = 512
_wired: OrderedDict[int, tuple[dict[str, Any], str]] = OrderedDict()


def wire_event(event: dict[str, Any]) -> str:
    """An event as the browser receives it, serialised once however many sockets it goes to."""
    cached = _wired.get(id(event))
    if cached is not None and cached[0] is event:
        return cached[1]
    text = _serialise(event)
    _wired[id(event)] = (event, text)
    if len(_wired) > WIRE_CACHE:
        _wired.popitem(last=False)
    return text


def _serialise(event: dict[str, Any]) -> str:
    return json.dumps(
        {
            "kind": event["kind"],
            "at": event["at"].isoformat() if isinstance(event["at"], datetime) else event["at"],
            "conversation_id": event.get("conversation_id"),
            "agent_id": event.get("agent_id"),
            "data": event.get("data", {}),
        },
        ensure_ascii=False,
        default=str,
    )


def presence_event(
    agent_id: int, name: str, state: str, conversation_id: int, at: datetime
) -> dict[str, Any]:
    """A bus event saying where an agent is."""
    return {
        "kind": "presence",
        "at": at,
        "conversation_id": conversation_id,
        "agent_id": agent_id,
        "data": {"state": state, "name": name},
    }


@routes.get("/ws", Role.AGENT)
async def agent_socket(ctx: Ctx) -> web.StreamResponse:
    """Live events for the agents' UI (websocket; the Origin must be the hub's own)."""
    request, services = ctx.request, ctx.services
    if not origin_allowed(request, services.config.hub.public_url):
        raise Forbidden("websocket from another origin")
    socket = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=MAX_CLIENT_MESSAGE)
    await socket.prepare(request)
    sockets = request.app[SOCKETS]
    sockets.add(socket)
    queue, peers = services.bus.subscribe(), services.peer_events.subscribe()
    forwards = [
        asyncio.create_task(_forward(bus, q, socket), name="ws-forward")
        for bus, q in ((services.bus, queue), (services.peer_events, peers))
    ]
    agent = ctx.agent
    watching: set[int] = set()
    try:
        async for message in socket:
            if message.type is not WSMsgType.TEXT:
                continue
            report = _presence_report(message.data)
            if report is None:
                await socket.send_json({"kind": "error", "data": {"error": "unknown message"}})
                continue
            state, conversation_id = report
            if state == "left":
                watching.discard(conversation_id)
            else:
                watching.add(conversation_id)
            services.bus.publish(
                [presence_event(agent.id, agent.display_name, state, conversation_id, services.clock())]
            )
    finally:
        services.bus.publish(
            [presence_event(agent.id, agent.display_name, "left", cid, services.clock()) for cid in watching]
        )
        sockets.discard(socket)
        services.bus.unsubscribe(queue)
        services.peer_events.unsubscribe(peers)
        for forward in forwards:
            await cancel_and_wait(forward)
    return socket


def _presence_report(data: str) -> tuple[str, int] | None:
    try:
        parsed = json.loads(data)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    state, conversation_id = parsed.get("type"), parsed.get("conversation_id")
    if state not in PRESENCE_STATES or not isinstance(conversation_id, int) or conversation_id < 1:
        return None
    return state, conversation_id


async def _forward(
    bus: EventBus, queue: asyncio.Queue[dict[str, Any]], socket: web.WebSocketResponse
) -> None:
    while not socket.closed:
        event = await queue.get()
        try:
            if bus.overflowed(queue):
                await socket.send_str(RESYNC)
            await socket.send_str(wire_event(event))
        except ConnectionError:
            return


async def close_sockets(app: web.Application) -> None:
    """Close every agent socket when the server stops (on_shutdown)."""
    sockets = app[SOCKETS]
    for socket in [*sockets]:
        with contextlib.suppress(ConnectionError):
            await socket.close(code=1001, message=b"server stopping")


def setup(app: web.Application) -> None:
    """Keep the app's open sockets, to close them on shutdown."""
    app[SOCKETS] = set()
    app.on_shutdown.append(close_sockets)
