"""A call simulator for the fake Twilio: a caller dials a line and Twilio follows the hub's TwiML.

Time is virtual: the simulator keeps Twilio's clock and sets the hub's clock to it before
each request, so a three-ring window of 18 s takes no real time. It interprets `<Say>`,
`<Dial>` (with `<Client>`, `<Number>`, `<Sip>`, `timeout`, `action`, `url` whispers),
`<Redirect>`, `<Enqueue>` (waitUrl loops, `<Gather>`, `<Leave>`, action), `<Hangup>`.
Agents answer after N seconds, never, or are busy; the caller may hang up while ringing
or press a key while queued; a REST update takes a queued caller out of the queue. Leg
status callbacks are collected with `Timestamp` and `SequenceNumber` and delivered at once,
or later (twice, shuffled) with `flush`.
"""

from __future__ import annotations

import asyncio
import random
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tests.fakes.twilio import API_VERSION, Answer, Delivery, FakeCall, FakeTwilio, WebhookSender, sid

SAY_SECONDS = 2.0
PLACED_RING_SECONDS = 60.0
"""How long Twilio rings the device a REST-created call calls (its default `Timeout`)."""
STATUS_EVENTS = {
    "in-progress": "answered",
    "no-answer": "completed",
    "busy": "completed",
    "canceled": "completed",
}
"""The `statusCallbackEvent` each call status belongs to (others are their own)."""


@dataclass
class Agent:
    """How an agent's device behaves when it rings."""

    answer_after: float | None = None
    busy: bool = False
    talk_seconds: float | None = 60.0
    accept_whisper: bool = True


@dataclass
class SimCall:
    """One simulated inbound call and what happened to it."""

    sid: str
    caller: str
    line: str
    started_at: datetime
    hang_up_after: float | None = None
    queue_digits: str | None = None
    heard: list[str] = field(default_factory=list)
    visited: list[str] = field(default_factory=list)
    answered_by: str | None = None
    legs: dict[str, str] = field(default_factory=dict)
    dial_statuses: list[str] = field(default_factory=list)
    status: str = "ringing"
    ended: bool = False
    on_hold: asyncio.Event = field(default_factory=asyncio.Event)
    while_queued: Callable[[SimCall, int], Awaitable[None]] | None = None
    queued: bool = False
    redirect: str | None = None
    placed_status_url: str | None = None
    placed_events: tuple[str, ...] = ()


class Hangup(Exception):
    """The caller hung up."""


class CallSimulator:
    """Plays Twilio's part in calls to the hub."""

    def __init__(
        self,
        fake: FakeTwilio,
        sender: WebhookSender,
        set_clock: Callable[[datetime], None],
        *,
        incoming_url: str,
        status_url: str,
        start: datetime,
        immediate: bool = True,
        stop_at: Callable[[str], bool] = lambda url: url.endswith("/voicemail"),
    ) -> None:
        self.fake = fake
        self.sender = sender
        self.set_clock = set_clock
        self.incoming_url = incoming_url
        self.status_url = status_url
        self.now = start
        self.immediate = immediate
        self.stop_at = stop_at
        self.agents: dict[str, Agent] = {}
        self.pending: list[Delivery] = []
        self.answers: list[tuple[str, Answer]] = []
        self._calls: dict[str, SimCall] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        fake.on_call_update.append(self._updated)

    # Driving calls

    async def call(
        self,
        caller: str,
        line: str,
        *,
        hang_up_after: float | None = None,
        queue_digits: str | None = None,
        while_queued: Callable[[SimCall, int], Awaitable[None]] | None = None,
    ) -> SimCall:
        """Dial a line and follow the hub's TwiML until the call ends or is bridged open-ended.

        `while_queued` is awaited with the call and the seconds waited before each queue wait request.
        """
        fake_call = self.fake.new_call(line, caller, direction="inbound", status="ringing")
        call = SimCall(fake_call.sid, caller, line, self.now, hang_up_after, queue_digits)
        call.while_queued = while_queued
        self._calls[call.sid] = call
        try:
            answer = await self._request(call, self.incoming_url, {})
            await self._run(call, answer.text)
        except Hangup:
            await self._end(call)
        await self._flush_if_immediate()
        return call

    async def place(self, created: FakeCall) -> SimCall:
        """Play a call the hub created through the REST API: the device it calls (an agent's) rings,
        and once it answers Twilio runs the call's TwiML; `caller` is that device, `line` the number
        it shows. Its own status callbacks go to its `StatusCallback`, for the events asked."""
        form = created.created_with
        call = SimCall(created.sid, created.to, created.from_, self.now)
        call.placed_status_url = form.get("StatusCallback")
        call.placed_events = created.status_events
        self._calls[call.sid] = call
        device = self.agents.get(created.to, Agent())
        self._placed_status(call, "initiated")
        self._placed_status(call, "ringing")
        if device.busy or device.answer_after is None or device.answer_after >= PLACED_RING_SECONDS:
            self.advance(0 if device.busy else PLACED_RING_SECONDS)
            await self._end(call, "busy" if device.busy else "no-answer")
        else:
            self.advance(device.answer_after)
            call.status = "in-progress"
            self._placed_status(call, "in-progress")
            try:
                await self._run(call, form["Twiml"])
            except Hangup:
                await self._end(call)
        await self._flush_if_immediate()
        return call

    def advance(self, seconds: float) -> None:
        """Move Twilio's clock on."""
        self.now += timedelta(seconds=seconds)
        self.set_clock(self.now)

    async def hang_up(self, call: SimCall) -> None:
        """The caller (or the agent) ends a bridged call now."""
        if call.answered_by:
            child = next(s for s, d in call.legs.items() if d == call.answered_by)
            self._leg_status(call, child, "completed", extra={"CallDuration": "1"})
        await self._end(call)
        await self._flush_if_immediate()

    async def flush(
        self, *, twice: bool = False, seed: int | None = None, reverse: bool = False
    ) -> list[Answer]:
        """Deliver the collected status callbacks (late), optionally twice and out of order."""
        batch, self.pending = self.pending, []
        shuffle = random.Random(seed) if seed is not None else None
        return await self.sender.deliver(batch, twice=twice, shuffle=shuffle, reverse=reverse)

    async def settle(self) -> None:
        """Wait for the work REST updates started."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    # TwiML

    async def _run(self, call: SimCall, document: str) -> None:
        root = ET.fromstring(document)
        for verb in root:
            if call.ended:
                return
            if verb.tag == "Say":
                call.heard.append(verb.text or "")
                self._tick(call, SAY_SECONDS)
            elif verb.tag == "Pause":
                self._tick(call, float(verb.get("length", "1")))
            elif verb.tag == "Hangup":
                await self._end(call)
                return
            elif verb.tag == "Redirect":
                await self._follow(call, (verb.text or "").strip())
                return
            elif verb.tag == "Dial":
                await self._dial(call, verb)
                return
            elif verb.tag == "Enqueue":
                await self._enqueue(call, verb)
                return
            else:
                raise AssertionError(f"the simulator does not know <{verb.tag}>")
        await self._end(call)

    async def _follow(self, call: SimCall, url: str, params: dict[str, str] | None = None) -> None:
        call.visited.append(url)
        if self.stop_at(url):
            self._tick(call, 20)
            await self._end(call)
            return
        answer = await self._request(call, url, params or {})
        await self._run(call, answer.text)

    async def _dial(self, call: SimCall, dial: ET.Element) -> None:
        timeout = float(dial.get("timeout", "30"))
        action = dial.get("action")
        started = self.now
        rung: list[tuple[str, str, Agent, ET.Element]] = []
        for noun in dial:
            device = _device(noun)
            child = sid("CA")
            call.legs[child] = device
            self.fake.calls[child] = FakeCall(
                child, self.fake.account_sid, device, call.line, "queued", call.sid
            )
            rung.append((child, device, self.agents.get(device, Agent()), noun))
            self._leg_status(call, child, "initiated", noun=noun)
            self._leg_status(call, child, "ringing", noun=noun)
        hang_up_at = (
            call.started_at + timedelta(seconds=call.hang_up_after)
            if call.hang_up_after is not None
            else None
        )
        answering = sorted(
            (a.answer_after, child, device, noun)
            for child, device, a, noun in rung
            if not a.busy and a.answer_after is not None and a.answer_after < timeout
        )
        for child, _, a, noun in rung:
            if a.busy:
                self._leg_status(call, child, "busy", noun=noun)
        winner = None
        for after, child, device, noun in answering:
            at = started + timedelta(seconds=after)
            if hang_up_at is not None and hang_up_at <= at:
                break
            self._at(at)
            if noun.get("url") and not await self._whisper(call, child, device, noun):
                self._leg_status(call, child, "completed", noun=noun)
                continue
            winner = (child, device, noun)
            break
        if winner is None:
            end_at = started + timedelta(seconds=timeout)
            if hang_up_at is not None and hang_up_at <= end_at:
                self._at(hang_up_at)
                for child, _, a, noun in rung:
                    if not a.busy:
                        self._leg_status(call, child, "canceled", noun=noun)
                raise Hangup
            self._at(end_at)
            for child, _, a, noun in rung:
                if not a.busy:
                    self._leg_status(call, child, "no-answer", noun=noun)
            call.dial_statuses.append("no-answer")
            if action:
                await self._follow(call, action, {"DialCallStatus": "no-answer"})
            else:
                await self._end(call)
            return
        child, device, noun = winner
        call.answered_by = device
        call.status = "in-progress"
        self._leg_status(call, child, "in-progress", noun=noun)
        for other, _, a, other_noun in rung:
            if other != child and not a.busy:
                self._leg_status(call, other, "canceled", noun=other_noun)
        talk = self.agents.get(device, Agent()).talk_seconds
        if talk is None:
            await self._flush_if_immediate()
            call.on_hold.set()
            return
        self._tick(call, talk)
        self._leg_status(call, child, "completed", noun=noun, extra={"CallDuration": str(int(talk))})
        call.dial_statuses.append("completed")
        if action:
            params = {"DialCallStatus": "completed", "DialCallSid": child, "DialCallDuration": str(int(talk))}
            await self._follow(call, action, params)
        else:
            await self._end(call)

    async def _whisper(self, call: SimCall, child: str, device: str, noun: ET.Element) -> bool:
        """Run the whisper TwiML on the agent's leg; True if they accepted."""
        params = {"CallSid": child, "ParentCallSid": call.sid, "To": device, "CallStatus": "in-progress"}
        answer = await self._post(noun.get("url", ""), params)
        root = ET.fromstring(answer.text)
        gather = root.find("Gather")
        if gather is None:
            return True
        said = gather.find("Say")
        call.heard.append(f"[whisper to {device}] {said.text if said is not None else ''}")
        if not self.agents.get(device, Agent()).accept_whisper:
            return False
        reply = await self._post(gather.get("action", ""), {**params, "Digits": "1"})
        return ET.fromstring(reply.text).find("Hangup") is None

    async def _enqueue(self, call: SimCall, enqueue: ET.Element) -> None:
        wait_url, action = enqueue.get("waitUrl", ""), enqueue.get("action", "")
        entered = self.now
        result = "leave"
        call.queued = True
        while True:
            waited = int((self.now - entered).total_seconds())
            if call.while_queued is not None:
                await call.while_queued(call, waited)
            if call.redirect is not None:
                document, call.redirect, call.queued = call.redirect, None, False
                await self._run(call, document)
                return
            hang_up_at = (
                call.started_at + timedelta(seconds=call.hang_up_after)
                if call.hang_up_after is not None
                else None
            )
            if hang_up_at is not None and self.now >= hang_up_at:
                result = "hangup"
                break
            answer = await self._request(call, wait_url, {"QueuePosition": "1", "QueueTime": str(waited)})
            if await self._wait_verbs(call, answer.text):
                break
        call.queued = False
        params = {"QueueResult": result, "QueueTime": str(int((self.now - entered).total_seconds()))}
        answer = await self._request(call, action, params)
        if result == "hangup":
            raise Hangup
        await self._run(call, answer.text)

    async def _wait_verbs(self, call: SimCall, document: str) -> bool:
        """Play a wait document; True when it makes the caller leave the queue."""
        for verb in ET.fromstring(document):
            if verb.tag == "Say":
                call.heard.append(verb.text or "")
                self._tick(call, SAY_SECONDS)
            elif verb.tag == "Leave":
                return True
            elif verb.tag == "Gather":
                for said in verb.findall("Say"):
                    call.heard.append(said.text or "")
                if call.queue_digits:
                    digits, call.queue_digits = call.queue_digits, None
                    reply = await self._request(call, verb.get("action", ""), {"Digits": digits})
                    return await self._wait_verbs(call, reply.text)
                self._tick(call, float(verb.get("timeout", "5")))
        return False

    # Requests and callbacks

    def _params(self, call: SimCall) -> dict[str, str]:
        return {
            "AccountSid": self.fake.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": call.sid,
            "CallStatus": call.status,
            "Direction": "inbound",
            "From": call.caller,
            "To": call.line,
            "Caller": call.caller,
            "Called": call.line,
        }

    async def _request(self, call: SimCall, url: str, extra: dict[str, str]) -> Answer:
        answer = await self._post(url, {**self._params(call), **extra})
        assert answer.status == 200, (url, answer)
        return answer

    async def _post(self, url: str, params: dict[str, str]) -> Answer:
        self.set_clock(self.now)
        answer = await self.sender.post(url, params)
        self.answers.append((url, answer))
        return answer

    def _leg_status(
        self,
        call: SimCall,
        child: str,
        status: str,
        *,
        noun: ET.Element | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        url = noun.get("statusCallback") if noun is not None else call.placed_status_url or self.status_url
        if noun is not None and url is None:
            return
        wanted = (noun.get("statusCallbackEvent", "") if noun is not None else "").split()
        if noun is not None and STATUS_EVENTS.get(status, status) not in wanted:
            return
        params = self.sender.status_params(
            child,
            status,
            self.now,
            account_sid=self.fake.account_sid,
            parent_sid=call.sid,
            extra={"To": call.legs[child], "From": call.line, "Direction": "outbound-dial", **(extra or {})},
        )
        self.pending.append(Delivery(url or self.status_url, params))

    def _placed_status(self, call: SimCall, status: str, extra: dict[str, str] | None = None) -> None:
        """A status callback of a call the hub placed, if it asked for that event."""
        event = STATUS_EVENTS.get(status, status)
        if call.placed_status_url is None or event not in (call.placed_events or ("completed",)):
            return
        params = self.sender.status_params(
            call.sid, status, self.now, account_sid=self.fake.account_sid,
            extra={"From": call.line, "To": call.caller, "Direction": "outbound-api", **(extra or {})},
        )  # fmt: skip
        self.pending.append(Delivery(call.placed_status_url, params))

    async def _end(self, call: SimCall, status: str = "completed") -> None:
        if call.ended:
            return
        call.ended = True
        call.status = status
        self.fake.calls[call.sid].status = status
        duration = int((self.now - call.started_at).total_seconds())
        if call.placed_status_url is not None:
            self._placed_status(call, status, {"CallDuration": str(duration)})
            return
        params = self.sender.status_params(
            call.sid,
            "completed",
            self.now,
            account_sid=self.fake.account_sid,
            extra={
                "From": call.caller,
                "To": call.line,
                "Direction": "inbound",
                "CallDuration": str(duration),
            },
        )
        self.pending.append(Delivery(self.status_url, params))

    async def _flush_if_immediate(self) -> None:
        if self.immediate:
            await self.flush()

    def _tick(self, call: SimCall, seconds: float) -> None:
        if call.hang_up_after is not None:
            hang_up_at = call.started_at + timedelta(seconds=call.hang_up_after)
            if self.now + timedelta(seconds=seconds) >= hang_up_at > self.now:
                self._at(hang_up_at)
                raise Hangup
        self.advance(seconds)

    def _at(self, moment: datetime) -> None:
        self.now = max(self.now, moment)
        self.set_clock(self.now)

    # REST updates (transfers)

    async def _updated(self, fake_call: FakeCall, update: dict[str, str]) -> None:
        call = self._calls.get(fake_call.sid)
        if call is None or "Twiml" not in update:
            return
        if call.queued:
            call.redirect = update["Twiml"]
            return
        task = asyncio.create_task(self._redirected(call, update["Twiml"]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _redirected(self, call: SimCall, document: str) -> None:
        await asyncio.sleep(0)
        if call.answered_by:
            child = next(s for s, d in call.legs.items() if d == call.answered_by)
            self._leg_status(call, child, "completed", extra={"CallDuration": "1"})
            call.answered_by = None
        call.on_hold.clear()
        try:
            await self._run(call, document)
        except Hangup:
            await self._end(call)
        await self._flush_if_immediate()


def _device(noun: ET.Element) -> str:
    text = (noun.text or "").strip()
    return f"client:{text}" if noun.tag == "Client" else text


def leg_params(call: SimCall) -> dict[str, Any]:
    """The caller's fields as the hub sees them (for tests that post by hand)."""
    return {"CallSid": call.sid, "From": call.caller, "To": call.line}
