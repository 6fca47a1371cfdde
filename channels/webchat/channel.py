"""The web-chat channel: visitors chat over a websocket; agents' replies go back on it.

Routes under `/webhooks/webchat/<name>/`, open to any site (CORS without credentials; no
agent data, no cookies): `widget.js` (the script a company puts on its pages),
`config` (texts and whether the team is open now), `socket` (the visitor's websocket) and
`offline` (the form shown outside opening hours, which becomes a message).

A visitor is known by a random token the widget keeps in the browser's storage; the hub
stores only a hash of it as the contact's chat address, so the address shown to agents
cannot be used to take over the chat. Replies reach every open socket of that visitor; if
none is open, sending fails as transient and the outbox retries.

The greeting and the hold message come from the templates `chat_greeting` and `chat_hold`
in the visitor's language (the configured texts when they cannot be rendered); the hold
message goes out once per wait, when no agent has answered within the P3 rule's
`max_hold_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import secrets
from collections import OrderedDict, deque
from collections.abc import Sequence
from datetime import timedelta
from html import escape
from importlib import resources
from typing import Any, ClassVar

from aiohttp import WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from channels.base import Capabilities, ChannelContext, ChannelState, ChatScriptSource, InboundSink
from channels.webchat.limits import ConnectionCounter, MessageLimiter
from channels.webchat.settings import WebchatSettings
from hub.aio import cancel_and_wait
from hub.clock import utcnow
from hub.errors import ChannelUnavailable
from hub.ingest import Quarantined
from hub.models import (
    ChannelKind,
    DeliveryResult,
    Identity,
    IdentityKind,
    InboundMessage,
    OutboundMessage,
    OutboundStatus,
)

log = logging.getLogger(__name__)

TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TRANSCRIPT_LENGTH = 50
TRANSCRIPT_VISITORS = 5000
MAX_FRAME = 64 * 1024
DEFAULT_HOLD = timedelta(seconds=60)
"""The hold time (P3) when the hub gives the channel no rules."""
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "600",
    "Cross-Origin-Resource-Policy": "cross-origin",
}


DEMO_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


class OfflineForm(BaseModel):
    """What a visitor leaves outside opening hours."""

    model_config = ConfigDict(extra="forbid")

    visitor: str = Field(pattern=TOKEN.pattern)
    name: str | None = Field(None, max_length=200)
    email: str = Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    text: str = Field(min_length=1, max_length=100_000)
    language: str | None = Field(None, max_length=16)


def visitor_address(channel: str, token: str) -> str:
    """The chat address stored for a visitor: a hash of their token, never the token."""
    return "web-" + hashlib.sha256(f"{channel}\0{token}".encode()).hexdigest()[:32]


class WebchatChannel:
    """One chat widget account."""

    kind: ClassVar[str] = "webchat"
    carries: ClassVar[tuple[ChannelKind, ...]] = (ChannelKind.CHAT,)
    capabilities: ClassVar[Capabilities] = Capabilities(max_body=4000)

    def __init__(
        self,
        name: str,
        settings: WebchatSettings,
        public_url: str = "",
        scripts: ChatScriptSource | None = None,
    ) -> None:
        self.name = name
        self.public_url = public_url.rstrip("/")
        self.settings = settings
        self.scripts = scripts
        self._hold_tasks: dict[str, asyncio.Task[None]] = {}
        self.calendar = settings.calendar()
        self._sink: InboundSink | None = None
        self._state = ChannelState.STOPPED
        self._sockets: dict[str, set[web.WebSocketResponse]] = {}
        self._transcripts: OrderedDict[str, deque[dict[str, Any]]] = OrderedDict()
        self._limiter = MessageLimiter(settings.max_messages_per_minute)
        self._connections = ConnectionCounter(settings.max_connections_per_address)
        self._held: set[str] = set()
        self.prefix = f"/webhooks/{self.kind}/{name}"

    # Lifecycle

    async def start(self, sink: InboundSink) -> None:
        """Accept visitors."""
        self._sink = sink
        self._state = ChannelState.CONNECTED

    async def stop(self) -> None:
        """Close every visitor socket."""
        self._sink = None
        self._state = ChannelState.STOPPED
        for task in list(self._hold_tasks.values()):
            await cancel_and_wait(task)
        for sockets in list(self._sockets.values()):
            for socket in list(sockets):
                with contextlib.suppress(ConnectionError):
                    await socket.close(code=1001, message=b"server stopping")

    def state(self) -> ChannelState:
        """Connected while started."""
        return self._state

    def routes(self) -> Sequence[web.RouteDef]:
        """The widget script, its configuration, the visitor socket and the offline form."""
        return [
            web.get(f"{self.prefix}/widget.js", self._widget, allow_head=False),
            web.get(f"{self.prefix}/demo", self._demo, allow_head=False),
            web.get(f"{self.prefix}/config", self._config, allow_head=False),
            web.get(f"{self.prefix}/socket", self._socket, allow_head=False),
            web.post(f"{self.prefix}/offline", self._offline),
            web.options(f"{self.prefix}/offline", self._preflight),
        ]

    def is_open(self) -> bool:
        """Whether agents are there now (opening hours)."""
        return self.calendar.is_open(utcnow())

    # Sending

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Push a reply to the visitor's open sockets; transient failure if none is open."""
        address = message.recipient.address
        entry = {
            "type": "message",
            "from": "agent",
            "id": message.idempotency_key,
            "text": message.text,
            "at": utcnow().isoformat(),
        }
        sockets = [s for s in self._sockets.get(address, ()) if not s.closed]
        if not sockets:
            raise ChannelUnavailable(f"{self.name}: the visitor is not connected")
        self._remember(address, entry)
        self._answered(address)
        delivered = 0
        for socket in sockets:
            with contextlib.suppress(ConnectionError):
                await socket.send_json(entry)
                delivered += 1
        if not delivered:
            raise ChannelUnavailable(f"{self.name}: the visitor's connection dropped")
        return DeliveryResult(OutboundStatus.DELIVERED, provider_id=message.idempotency_key)

    # Routes

    def _cors(self, request: web.Request) -> dict[str, str]:
        headers = dict(CORS)
        origin = request.headers.get("Origin")
        if self.settings.allowed_origins and origin in self.settings.allowed_origins:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Vary"] = "Origin"
        return headers

    def _origin_allowed(self, request: web.Request) -> bool:
        allowed = self.settings.allowed_origins
        return not allowed or request.headers.get("Origin") in allowed

    async def _widget(self, request: web.Request) -> web.StreamResponse:
        script = await asyncio.to_thread(_widget_source)
        return web.Response(
            text=script,
            content_type="text/javascript",
            charset="utf-8",
            headers={**self._cors(request), "Cache-Control": "public, max-age=300"},
        )

    async def _demo(self, request: web.Request) -> web.StreamResponse:
        """A page with nothing but the widget tag, to try the widget out."""
        src = f"{self.prefix}/widget.js"
        tag = escape(f'<script src="{self.public_url}{src}" async></script>')
        html = (
            '<!doctype html><html><head><meta charset="utf-8"><title>Web chat</title></head><body>'
            "<h1>Web chat</h1><p>Put this tag on your site's pages:</p>"
            f"<pre>{tag}</pre>"
            f'<script src="{src}" data-channel="{self.name}"></script></body></html>'
        )
        return web.Response(
            text=html,
            content_type="text/html",
            headers={"Content-Security-Policy": DEMO_CSP, "X-Frame-Options": "DENY"},
        )

    async def _config(self, request: web.Request) -> web.StreamResponse:
        texts = self.settings.texts_for(request.query.get("lang", "en"))
        body = {"online": self.is_open(), **texts.model_dump()}
        return web.json_response(body, headers=self._cors(request), dumps=_dumps)

    async def _preflight(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=204, headers=self._cors(request))

    async def _offline(self, request: web.Request) -> web.StreamResponse:
        headers = self._cors(request)
        if not self._origin_allowed(request):
            refusal = {"error": "this site may not embed the widget"}
            return web.json_response(refusal, status=403, headers=headers)
        raw = await request.read()
        if len(raw) > MAX_FRAME * 2:
            return web.json_response({"error": "message too long"}, status=413, headers=headers)
        try:
            form = OfflineForm.model_validate_json(raw)
        except ValidationError as err:
            problems = [".".join(str(p) for p in e["loc"]) for e in err.errors(include_input=False)]
            return web.json_response(
                {"error": "invalid form", "fields": problems}, status=422, headers=headers
            )
        address = visitor_address(self.name, form.visitor)
        if not self._limiter.allow(address):
            return web.json_response({"error": "too many messages"}, status=429, headers=headers)
        text = f"{form.text}\n\n— {form.name or ''} <{form.email}>".strip()
        now = utcnow()
        promise = self.scripts.offline_promise(self.name, now) if self.scripts is not None else None
        meta: dict[str, Any] = {"offline": True, "email": form.email}
        if promise is not None:
            meta["promise_due_at"] = promise.isoformat()
        message = self._inbound(
            address,
            f"offline-{secrets.token_hex(8)}",
            text,
            name=form.name,
            language=form.language,
            meta=meta,
        )
        try:
            await self._deliver(message)
        except ChannelUnavailable:
            return web.json_response({"error": "chat is not available"}, status=503, headers=headers)
        lang = form.language or "en"
        said = None
        if self.scripts is not None and promise is not None:
            said = self.scripts.thanks(lang, form.name, promise)
        text = said or self.settings.texts_for(lang).thanks
        answer = {"ok": True, "text": text, "reply_by": promise.isoformat() if promise else None}
        return web.json_response(answer, headers=headers, dumps=_dumps)

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        if not self._origin_allowed(request):
            raise web.HTTPForbidden(text="this site may not use the widget")
        peer = request.remote or "unknown"
        if not self._connections.acquire(peer):
            raise web.HTTPTooManyRequests(text="too many chats from this address")
        try:
            return await self._chat(request)
        finally:
            self._connections.release(peer)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        token = request.query.get("visitor", "")
        fresh = not TOKEN.match(token)
        if fresh:
            token = secrets.token_urlsafe(24)
        language = request.query.get("lang", "en")[:16]
        name = request.query.get("name", "")[:200] or None
        address = visitor_address(self.name, token)
        texts = self.settings.texts_for(language)
        socket = web.WebSocketResponse(heartbeat=30, max_msg_size=MAX_FRAME)
        await socket.prepare(request)
        self._sockets.setdefault(address, set()).add(socket)
        try:
            history = list(self._transcripts.get(address, ()))
            await socket.send_json(
                {"type": "welcome", "visitor": token, "online": self.is_open(), "history": history}
            )
            if not history:
                said = self.scripts.greeting(language, name) if self.scripts is not None else None
                greeting = {"type": "message", "from": "system", "text": said or texts.greeting, "at": _now()}
                await socket.send_json(greeting)
            async for frame in socket:
                if frame.type is WSMsgType.TEXT:
                    await self._on_frame(socket, address, frame.data, name, language)
        finally:
            sockets = self._sockets.get(address)
            if sockets is not None:
                sockets.discard(socket)
                if not sockets:
                    del self._sockets[address]
                    self._limiter.forget(address)
                    self._answered(address)
        return socket

    async def _on_frame(
        self, socket: web.WebSocketResponse, address: str, data: str, name: str | None, language: str
    ) -> None:
        try:
            frame = json.loads(data)
        except ValueError:
            await socket.send_json({"type": "error", "error": "not JSON"})
            return
        if not isinstance(frame, dict) or frame.get("type") != "message":
            await socket.send_json({"type": "error", "error": "unknown message"})
            return
        text, client_id = frame.get("text"), frame.get("id")
        if not isinstance(text, str) or not text.strip():
            await socket.send_json({"type": "error", "error": "empty message"})
            return
        if len(text) > self.settings.max_text_length or not isinstance(client_id, str):
            await socket.send_json({"type": "error", "error": "message too long or without id"})
            return
        if not CLIENT_ID.match(client_id):
            await socket.send_json({"type": "error", "error": "bad message id"})
            return
        if not self._limiter.allow(address):
            await socket.send_json({"type": "error", "error": "rate_limited", "id": client_id})
            return
        message = self._inbound(address, client_id, text, name=name, language=language)
        try:
            await self._deliver(message)
        except ChannelUnavailable:
            await socket.send_json({"type": "error", "error": "unavailable", "id": client_id})
            return
        entry = {"type": "message", "from": "visitor", "id": client_id, "text": text, "at": _now()}
        self._remember(address, entry)
        for other in list(self._sockets.get(address, ())):
            with contextlib.suppress(ConnectionError):
                await other.send_json({**entry, "type": "ack"} if other is socket else entry)
        self._wait_for_agent(address, language, name)

    def _wait_for_agent(self, address: str, language: str, name: str | None) -> None:
        """P3: unless an agent answers within the hold time, apologise and ask the visitor to hold."""
        if address in self._held or address in self._hold_tasks:
            return
        after = self.scripts.hold_after() if self.scripts is not None else DEFAULT_HOLD
        if after is None:
            return
        self._hold_tasks[address] = asyncio.create_task(
            self._hold_later(address, language, name, after.total_seconds()), name="webchat-hold"
        )

    async def _hold_later(self, address: str, language: str, name: str | None, seconds: float) -> None:
        try:
            await asyncio.sleep(seconds)
            said = self.scripts.hold(language, name) if self.scripts is not None else None
            entry = {
                "type": "message",
                "from": "system",
                "text": said or self.settings.texts_for(language).hold,
                "at": _now(),
            }
            self._held.add(address)
            self._remember(address, entry)
            for socket in list(self._sockets.get(address, ())):
                with contextlib.suppress(ConnectionError):
                    await socket.send_json(entry)
        finally:
            if self._hold_tasks.get(address) is asyncio.current_task():
                del self._hold_tasks[address]

    def _answered(self, address: str) -> None:
        """An agent answered (or the visitor left): the wait, and its hold message, start over."""
        self._held.discard(address)
        task = self._hold_tasks.pop(address, None)
        if task is not None:
            task.cancel()

    def _inbound(
        self,
        address: str,
        client_id: str,
        text: str,
        *,
        name: str | None,
        language: str | None,
        meta: dict[str, Any] | None = None,
    ) -> InboundMessage:
        lang = None
        if language:
            lang = "zh" if language.lower().startswith("zh") else "en"
        return InboundMessage(
            channel=ChannelKind.CHAT,
            channel_account=self.name,
            external_id=f"{address}:{client_id}",
            sender=Identity(IdentityKind.CHAT, address),
            sender_name=name,
            text=text,
            received_at=utcnow(),
            language=lang,
            meta=meta or {},
        )

    async def _deliver(self, message: InboundMessage) -> None:
        if self._sink is None:
            raise ChannelUnavailable(f"{self.name} is not started")
        try:
            await self._sink(message)
        except Quarantined as err:
            log.warning("chat message from %s quarantined: %s", message.sender.address, err)

    def _remember(self, address: str, entry: dict[str, Any]) -> None:
        transcript = self._transcripts.get(address)
        if transcript is None:
            transcript = self._transcripts[address] = deque(maxlen=TRANSCRIPT_LENGTH)
            while len(self._transcripts) > TRANSCRIPT_VISITORS:
                self._transcripts.popitem(last=False)
        else:
            self._transcripts.move_to_end(address)
        transcript.append(entry)


def _now() -> str:
    return utcnow().isoformat()


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def _widget_source() -> str:
    return resources.files("channels.webchat").joinpath("widget.js").read_text(encoding="utf-8")


def create(name: str, settings: WebchatSettings, context: ChannelContext) -> WebchatChannel:
    """Build a web-chat channel from its configuration."""
    return WebchatChannel(name, settings, context.public_url, context.chat_scripts)
