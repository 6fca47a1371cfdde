"""The Twilio voice channel: one account's phone lines, with signed webhooks under one prefix.

Routes live under `/webhooks/twilio_voice/<name>/`. Every route is built with `signed`,
which checks `X-Twilio-Signature` (403 otherwise) before the handler sees the form.
Other Twilio features contribute routes with `TwilioVoiceChannel.extensions`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy
from twilio.rest import Client
from twilio.twiml.voice_response import Dial

from channels.base import Capabilities, ChannelContext, ChannelState, InboundSink
from channels.twilio import parse, rest
from channels.twilio import twiml as T
from channels.twilio.answers import AnswerCache
from channels.twilio.messaging import Messaging
from channels.twilio.settings import TwilioSettings
from channels.twilio.signature import SignedRequest, WebhookVerifier
from hub.calls import CallbackCall, CallDesk, CallPlan, IncomingCall, QueuePickup, TransferPlan
from hub.calls.routing import Ringable
from hub.clock import utcnow
from hub.errors import Conflict
from hub.etiquette import Draft, Finding
from hub.models import ChannelKind, Conversation, DeliveryResult, OutboundMessage

log = logging.getLogger(__name__)

SignedHandler = Callable[[web.Request, SignedRequest], Awaitable[web.StreamResponse]]
Extension = Callable[["TwilioVoiceChannel"], Sequence[web.RouteDef]]
TWIML = "text/xml"
CALLBACK_CALL = "callback"
"""The `placed` query of the status URL of a callback call's legs: its parent leg is not a caller."""


def twiml(body: str | bytes) -> web.Response:
    """A TwiML answer."""
    data = body.encode() if isinstance(body, str) else body
    return web.Response(body=data, content_type=TWIML, charset="utf-8")


class TwilioVoiceChannel:
    """The phone lines of one Twilio account."""

    kind: ClassVar[str] = "twilio_voice"
    capabilities: ClassVar[Capabilities] = Capabilities()
    carries: ClassVar[tuple[ChannelKind, ...]] = (ChannelKind.SMS,)
    """Replies leave as texts (SMS, or WhatsApp where the customer wrote on WhatsApp)."""
    extensions: ClassVar[list[Extension]] = []
    """Functions adding routes (voicemail, messaging) to every channel of this kind."""

    def __init__(self, name: str, settings: TwilioSettings, context: ChannelContext) -> None:
        self.name = name
        self.settings = settings
        self.context = context
        self.prefix = f"/webhooks/{self.kind}/{name}"
        self.public_base = settings.public_url or context.public_url.rstrip("/")
        self.verifier = WebhookVerifier(
            settings.auth_token.get_secret_value(),
            self.public_base,
            trust_forwarded=settings.trust_forwarded_headers,
        )
        self._sink: InboundSink | None = None
        self._state = ChannelState.STOPPED
        self._client: Client | None = None
        self._agents_by_device = parse.devices_index(settings.devices)
        self._answers = AnswerCache()

    # Lifecycle

    async def start(self, sink: InboundSink) -> None:
        """Accept webhooks from now on."""
        self._sink = sink
        self._state = ChannelState.CONNECTED

    async def stop(self) -> None:
        """Refuse webhooks from now on."""
        self._sink = None
        self._state = ChannelState.STOPPED

    def state(self) -> ChannelState:
        """Connected while started."""
        return self._state

    @property
    def sink(self) -> InboundSink | None:
        """Where inbound messages go while the channel runs."""
        return self._sink

    # Routes and URLs

    def routes(self) -> Sequence[web.RouteDef]:
        """The voice webhooks and those of the extensions."""
        own = [
            self.signed("incoming", self._incoming),
            self.signed("dial-action", self._dial_action),
            self.signed("queue-wait", self._queue_wait),
            self.signed("queue-key", self._queue_key),
            self.signed("queue-action", self._queue_action),
            self.signed("status", self._status),
            self.signed("whisper", self._whisper),
            self.signed("whisper-answer", self._whisper_answer),
        ]
        return [*own, *(r for extension in self.extensions for r in extension(self))]

    def path(self, route: str) -> str:
        """The local path of a route of this channel."""
        return f"{self.prefix}/{route}"

    def url(self, route: str, **query: str | int) -> str:
        """The public URL of a route, as written into TwiML and signed by Twilio."""
        tail = f"?{urlencode(query)}" if query else ""
        return f"{self.public_base}{self.path(route)}{tail}"

    def signed(self, route: str, handler: SignedHandler) -> web.RouteDef:
        """A POST route whose handler runs only for requests signed by Twilio."""

        async def endpoint(request: web.Request) -> web.StreamResponse:
            signed = await self.verifier.verify(request)
            if self._sink is None:
                raise web.HTTPServiceUnavailable(reason="channel is not running")
            return await handler(request, signed)

        endpoint.__name__ = f"twilio_{route.replace('-', '_')}"
        return web.post(self.path(route), endpoint)

    # REST

    def client(self) -> Client:
        """The account's REST client on the process's HTTP client (call inside the running loop)."""
        if self._client is None:
            s = self.settings
            self._client = rest.client(
                self.context.http,
                s.account_sid,
                s.auth_token.get_secret_value(),
                s.api_base_url,
                s.request_timeout_seconds,
            )
        return self._client

    # Sending

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Text replies go out by SMS, or by WhatsApp on WhatsApp conversations."""
        return await Messaging.of(self).send(message)

    async def draft_findings(
        self, conversation: Conversation, draft: Draft, language: str, meta: Mapping[str, Any]
    ) -> list[Finding]:
        """What keeps a reply from going out by SMS or WhatsApp, for the composer."""
        return await Messaging.of(self).draft_findings(conversation, draft, language, meta)

    def now(self) -> datetime:
        """The hub's time (its clock, which tests move), for what this channel stores."""
        return self.context.calls.clock() if self.context.calls is not None else utcnow()

    # Calls

    @property
    def desk(self) -> CallDesk:
        """The hub's call desk."""
        if self.context.calls is None:
            raise web.HTTPServiceUnavailable(reason="the hub has no call desk")
        return self.context.calls

    async def _incoming(self, request: web.Request, signed: SignedRequest) -> web.StreamResponse:
        form = signed.form
        line = self.settings.line_for(form.get("To", ""))
        if line is None:
            log.warning("%s: a call to %s, which is not a configured line", self.name, form.get("To"))
            return twiml(T.goodbye(T.phrase("en", "not_in_service"), "en"))
        call = IncomingCall(
            account=self.name,
            call_sid=form.get("CallSid", ""),
            caller=parse.caller(form),
            line=line.line_name,
            team=line.team,
            arrived_at=self.desk.clock(),
            language=line.language,
            raw=signed.body,
        )
        if not call.call_sid:
            raise web.HTTPBadRequest(reason="CallSid is missing")
        try:
            plan = self.desk.plan_now(call)
            if not isinstance(plan, CallPlan):
                async with asyncio.timeout(self.settings.answer_deadline_seconds):
                    plan = await plan
        except TimeoutError:
            self._record(call, "voicemail", reason="the store answered too slowly", slow=True)
            return twiml(T.redirect(self.url("voicemail")))
        except Exception as err:
            log.exception("%s: cannot plan call %s; sending it to voicemail", self.name, call.call_sid)
            self._record(call, "voicemail", reason=f"the call could not be planned: {type(err).__name__}")
            return twiml(T.redirect(self.url("voicemail")))
        self._record(call, "agents")
        key = (plan.greeting, line.language, plan.ring.agents, plan.window)
        return twiml(self._answers.get(self.settings, key, lambda: self._answer(plan, line.language)))

    def _answer(self, plan: CallPlan, lang: str) -> str:
        ringing = self._dial(plan.ring.agents, plan.window, 0)
        return T.answer(plan.greeting, lang, ringing, self.url("dial-action", step=0))

    def _record(self, call: IncomingCall, route: str, **data: str | bool) -> None:
        """Have the call stored after the answer; under overload, say it was not."""
        try:
            self.desk.record(call, route, **data)
        except asyncio.QueueFull:
            log.exception(
                "%s: too many calls waiting to be stored; %s is not recorded", self.name, call.call_sid
            )

    def _dial(
        self,
        agents: Sequence[Ringable],
        window: timedelta,
        step: int,
        whisper: Callable[[Ringable], str] | None = None,
        **query: str | int,
    ) -> Dial | None:
        return T.dial(
            agents,
            self.settings.devices,
            window=window,
            action=self.url("dial-action", step=step, **query),
            status_url=self.url("status"),
            whisper=whisper,
        )

    async def _dial_action(self, request: web.Request, signed: SignedRequest) -> web.StreamResponse:
        form = signed.form
        if form.get("DialCallStatus") in ("completed", "answered"):
            return twiml(T.goodbye(None, "en"))
        await self._ensure_stored(signed)
        return await self._fallback(form, _step(request))

    async def _fallback(self, form: MultiDictProxy[str], step: int) -> web.Response:
        """The line's fallback step `step` for a caller nobody answered."""
        line = self.settings.line_for(form.get("To", ""))
        call_sid = form.get("CallSid", "")
        steps = line.fallback if line is not None else []
        lang = line.language if line is not None else "en"
        if step >= len(steps) or steps[step] == "voicemail":
            await self.desk.set_route(self.name, call_sid, "voicemail")
            return twiml(T.redirect(self.url("voicemail")))
        assert line is not None
        if steps[step] == "queue":
            await self.desk.set_route(self.name, call_sid, "queue")
            return twiml(
                T.enqueue(
                    f"{self.name}-{line.number}",
                    self.url("queue-wait", step=step),
                    self.url("queue-action", step=step),
                )
            )
        team = steps[step].removeprefix("team:")
        ring = await self.desk.ring_team(self.name, call_sid, team)
        window = self.desk.sla.answer_target(line.line_name).window
        ringing = self._dial(ring.agents, window, step + 1)
        if ringing is None:
            return await self._fallback(form, step + 1)
        text = T.phrase(lang, "connecting", name=ring.department or ring.name)
        return twiml(T.answer(text, lang, ringing, self.url("dial-action", step=step + 1)))

    async def _queue_wait(self, request: web.Request, signed: SignedRequest) -> web.StreamResponse:
        form = signed.form
        line = self.settings.line_for(form.get("To", ""))
        lang = line.language if line is not None else "en"
        waited = _int(form.get("QueueTime"))
        queue = self.settings.queue
        if waited >= queue.max_wait_seconds:
            return twiml(T.leave())
        await self._ensure_stored(signed)
        if waited >= queue.prompt_after:
            await self.desk.queue_waited(self.name, form.get("CallSid", ""), waited)
        hold = await self.desk.hold_message(self.name, form.get("CallSid", ""), lang)
        position = max(1, _int(form.get("QueuePosition")))
        key_url = self.url("queue-key", step=_step(request))
        return twiml(
            T.queue_wait(hold, position, lang, queue.callback_key, key_url, queue.announce_every_seconds)
        )

    async def _queue_key(self, request: web.Request, signed: SignedRequest) -> web.StreamResponse:
        form = signed.form
        if form.get("Digits") != self.settings.queue.callback_key:
            return twiml(T.empty())
        await self._ensure_stored(signed)
        await self.desk.set_route(self.name, form.get("CallSid", ""), "callback", key=form.get("Digits"))
        return twiml(T.leave())

    async def _queue_action(self, request: web.Request, signed: SignedRequest) -> web.StreamResponse:
        form = signed.form
        result = form.get("QueueResult", "")
        if result in ("bridged", "hangup", "system-shutdown", "redirected"):
            return twiml(T.goodbye(None, "en"))
        line = self.settings.line_for(form.get("To", ""))
        lang = line.language if line is not None else "en"
        await self._ensure_stored(signed)
        if await self.desk.route_of(self.name, form.get("CallSid", "")) == "callback":
            return twiml(T.goodbye(T.phrase(lang, "callback"), lang))
        return await self._fallback(form, _step(request) + 1)

    async def _status(self, request: web.Request, signed: SignedRequest) -> web.StreamResponse:
        leg = parse.parse_leg(signed.form, self.name, self._agents_by_device, self.desk.clock())
        if leg is None:
            raise web.HTTPBadRequest(reason="CallSid and CallStatus are required")
        placed = request.query.get("placed") == CALLBACK_CALL
        await self.desk.leg(
            leg, None if placed else self._arrival(signed, leg.parent_sid or leg.call_sid, leg.at)
        )
        return web.Response(status=204)

    async def _ensure_stored(self, signed: SignedRequest) -> None:
        """Store the caller's call from a later webhook if its answer's write was lost."""
        arrival = self._arrival(signed, signed.form.get("CallSid", ""), self.desk.clock())
        if arrival is not None and arrival.call_sid:
            await self.desk.ensure_stored(arrival)

    def _arrival(self, signed: SignedRequest, call_sid: str, at: datetime) -> IncomingCall | None:
        """The call as a callback with its caller shows it (an agent's leg names no line: one line only)."""
        form = signed.form
        line = self.settings.line_for(form.get("To", ""))
        if line is None and len(self.settings.lines) == 1:
            line = self.settings.lines[0]
        caller_number = form.get("From")
        if line is None or not caller_number:
            return None
        caller = parse.caller({"From": caller_number, "CallSid": call_sid})
        return IncomingCall(
            self.name, call_sid, caller, line.line_name, line.team, at, line.language, signed.body
        )

    # Transfer (P4)

    async def transfer(self, plan: TransferPlan) -> None:
        """Announce the target to the caller and ring them with a whisper; they accept before the bridge."""
        line = next((line for line in self.settings.lines if line.line_name == plan.line), None)
        lang = line.language if line is not None else "en"
        department = f", {plan.department}" if plan.department and lang != "zh" else (plan.department or "")
        announcement = T.phrase(lang, "transfer", name=plan.target_name, department=department)
        window = self.desk.sla.answer_target(plan.line).window
        whisper_url = self.url("whisper", call=plan.call_id, reason=plan.reason, lang=lang)
        ringing = self._dial(
            plan.targets, window, 0, whisper=lambda _agent: whisper_url, transfer=plan.call_id
        )
        if ringing is None:
            raise Conflict(f"cannot transfer: {plan.target_name} has no phone device configured")
        body = T.transfer(announcement, lang, ringing)
        await rest.call(self.client().calls(plan.call_sid).update_async(twiml=body), "transfer")

    async def pick_up(self, plan: QueuePickup) -> None:
        """Ring the agent for the caller; if they do not answer, the caller goes back to the queue."""
        line = next((line for line in self.settings.lines if line.line_name == plan.line), None)
        if line is None or "queue" not in line.fallback:
            raise Conflict(f"the line {plan.line} has no queue")
        ringing = self._dial(
            [plan.agent], self.desk.sla.answer_target(plan.line).window, line.fallback.index("queue")
        )
        if ringing is None:
            raise Conflict(f"cannot take the call: {plan.agent.display_name} has no phone device configured")
        text = T.phrase(line.language, "connecting", name=plan.agent.display_name)
        body = T.answer(text, line.language, ringing, self.url("voicemail"))
        await rest.call(self.client().calls(plan.call_sid).update_async(twiml=body), "pick-up")

    async def call_back(self, plan: CallbackCall) -> str:
        """Ring the agent's device; once they answer, brief them and dial the customer from the line (P6)."""
        lines = self.settings.lines
        line = next((x for x in lines if x.line_name == plan.line), lines[0] if lines else None)
        device = self.settings.devices.get(plan.agent.username)
        if line is None:
            raise Conflict(f"the account {self.name} has no line to call from")
        if device is None:
            raise Conflict(f"cannot call: {plan.agent.display_name} has no phone device configured")
        briefing = T.phrase(
            line.language, "calling_back", customer=plan.customer, points=" ".join(plan.points)
        )
        status = self.url("status", placed=CALLBACK_CALL)
        body = T.call_customer(briefing.strip(), line.language, plan.customer, line.number, status)
        to = T.device_address(device)
        created = await rest.call(
            self.client().calls.create_async(
                to=to, from_=line.number, twiml=body, status_callback=status,
                status_callback_event=T.LEG_EVENTS.split(), status_callback_method="POST",
            ),
            "callback call",
        )  # fmt: skip
        return str(created.sid)

    async def _whisper(self, request: web.Request, signed: SignedRequest) -> web.StreamResponse:
        q = request.query
        lang = q.get("lang", "en")
        caller = await self.desk.caller_of(_int(q.get("call")))
        text = T.phrase(lang, "whisper", caller=caller, reason=q.get("reason", ""))
        return twiml(T.whisper(text, lang, self.url("whisper-answer")))

    async def _whisper_answer(self, request: web.Request, signed: SignedRequest) -> web.StreamResponse:
        if signed.form.get("Digits") == "1":
            return twiml(T.empty())
        return twiml(T.goodbye(None, "en"))


def _step(request: web.Request) -> int:
    return _int(request.query.get("step"))


def _int(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0


def create(name: str, settings: TwilioSettings, context: ChannelContext) -> TwilioVoiceChannel:
    """Build a Twilio voice channel from its configuration."""
    return TwilioVoiceChannel(name, settings, context)
