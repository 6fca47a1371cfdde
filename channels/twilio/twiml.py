"""TwiML for calls: greeting and ringing, fallbacks, the queue, transfers and the whisper."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta

from twilio.twiml.voice_response import Dial, Enqueue, Gather, VoiceResponse

from hub.calls.routing import Ringable

LEG_EVENTS = "initiated ringing answered completed"
VOICES = {"en": "en-GB", "zh": "cmn-CN"}

PHRASES: Mapping[str, Mapping[str, str]] = {
    "en": {
        "position": "You are number {position} in the queue.",
        "offer": "To be called back instead, press {key}.",
        "callback": "Thank you. We will call you back as soon as we can. Goodbye.",
        "transfer": "I am transferring you to {name}{department}. Please hold.",
        "whisper": "Transferred call from {caller}. Reason: {reason}. Press 1 to accept.",
        "not_in_service": "Sorry, this number is not in service.",
        "connecting": "Please hold while we connect you to {name}.",
        "calling_back": "Calling {customer} back. {points}",
        "voicemail_goodbye": "Thank you for your message. Goodbye.",
    },
    "zh": {
        "position": "您前面还有{ahead}位来电者，请稍候。",
        "offer": "如需我们给您回电，请按{key}。",
        "callback": "谢谢，我们会尽快给您回电。再见。",
        "transfer": "现在为您转接{department}{name}，请稍候。",
        "whisper": "转接来电：{caller}。事由：{reason}。接听请按1。",
        "not_in_service": "对不起，您拨打的号码暂停服务。",
        "connecting": "正在为您转接{name}，请稍候。",
        "calling_back": "正在回拨{customer}。{points}",
        "voicemail_goodbye": "谢谢您的留言，再见。",
    },
}


def phrase(lang: str, sentence: str, **values: object) -> str:
    """A fixed spoken sentence in the caller's language."""
    return PHRASES["zh" if lang == "zh" else "en"][sentence].format(**values)


def say(response: VoiceResponse | Gather, text: str, lang: str) -> None:
    """Speak text in the language's voice."""
    response.say(text, language=VOICES.get(lang, VOICES["en"]))


def ring_seconds(window: timedelta) -> int:
    """The Dial timeout for a ring window, in whole seconds (Twilio's unit)."""
    return max(1, math.ceil(window.total_seconds()))


def dial(
    agents: Iterable[Ringable],
    devices: Mapping[str, str],
    *,
    window: timedelta,
    action: str,
    status_url: str,
    whisper: Callable[[Ringable], str] | None = None,
) -> Dial | None:
    """Ring every agent with a device at once for the window; None when nobody can be rung."""
    nouns = [(agent, devices[agent.username]) for agent in agents if agent.username in devices]
    if not nouns:
        return None
    d = Dial(answer_on_bridge=True, timeout=ring_seconds(window), action=action)
    for agent, device in nouns:
        extra = {"url": whisper(agent)} if whisper is not None else {}
        events = {"status_callback_event": LEG_EVENTS, "status_callback": status_url}
        if device.startswith("client:"):
            d.client(device.removeprefix("client:"), **events, **extra)
        elif device.startswith("sip:"):
            d.sip(device, **events, **extra)
        else:
            d.number(device_address(device), **events, **extra)
    return d


def device_address(device: str) -> str:
    """A device as Twilio dials it: `client:` and `sip:` addresses as they are, numbers without spaces."""
    return device if device.startswith(("client:", "sip:")) else device.replace(" ", "")


def answer(greeting: str | None, lang: str, ringing: Dial | None, fallback: str) -> str:
    """Greet, then ring; when nobody can be rung, go straight to the fallback."""
    r = VoiceResponse()
    if greeting:
        say(r, greeting, lang)
    if ringing is not None:
        r.append(ringing)
    else:
        r.redirect(fallback)
    return str(r)


def call_customer(briefing: str, lang: str, customer: str, caller_id: str, status_url: str) -> str:
    """The agent's side of a callback: what it is about, then the customer rung from the line's number."""
    r = VoiceResponse()
    say(r, briefing, lang)
    d = Dial(answer_on_bridge=True, caller_id=caller_id)
    d.number(customer, status_callback_event=LEG_EVENTS, status_callback=status_url)
    r.append(d)
    return str(r)


def redirect(url: str, text: str | None = None, lang: str = "en") -> str:
    """Optionally say something, then continue at another URL."""
    r = VoiceResponse()
    if text:
        say(r, text, lang)
    r.redirect(url)
    return str(r)


def enqueue(queue: str, wait_url: str, action: str) -> str:
    """Hold the caller in a queue."""
    r = VoiceResponse()
    r.append(Enqueue(queue, wait_url=wait_url, action=action))
    return str(r)


def queue_wait(hold: str, position: int, lang: str, key: str, gather_action: str, seconds: int) -> str:
    """What a waiting caller hears: the hold message, their position, the callback offer (P3)."""
    r = VoiceResponse()
    say(r, hold, lang)
    say(r, phrase(lang, "position", position=position, ahead=max(0, position - 1)), lang)
    g = Gather(num_digits=1, action=gather_action, timeout=seconds)
    say(g, phrase(lang, "offer", key=key), lang)
    r.append(g)
    return str(r)


def leave() -> str:
    """Take the caller out of the queue (to the Enqueue action)."""
    r = VoiceResponse()
    r.leave()
    return str(r)


def goodbye(text: str | None, lang: str) -> str:
    """Optionally say something, then hang up."""
    r = VoiceResponse()
    if text:
        say(r, text, lang)
    r.hangup()
    return str(r)


def empty() -> str:
    """Nothing more to do here (a whisper accepted: the bridge follows)."""
    return str(VoiceResponse())


def whisper(text: str, lang: str, action: str) -> str:
    """What a transfer's target hears before the bridge: press 1 to accept, else the leg ends."""
    r = VoiceResponse()
    g = Gather(num_digits=1, action=action, timeout=8)
    say(g, text, lang)
    r.append(g)
    r.hangup()
    return str(r)


def transfer(announcement: str, lang: str, ringing: Dial) -> str:
    """Tell the caller whom they are transferred to (P4), then ring the target."""
    r = VoiceResponse()
    say(r, announcement, lang)
    r.append(ringing)
    return str(r)
