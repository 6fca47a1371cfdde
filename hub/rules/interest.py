"""Which event kinds a rule set's triggers can react to, so that no other kind is queued for them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hub.rules.triggers import Trigger

STATUS_EVENTS = ("conversation.status_changed", "conversation.reopened", "message.queued")
"""Events after which a conversation is no longer `waiting_since` its earlier anchor."""
NEW_CONVERSATION = "message.received"
"""The event `conversation.created` travels with (a new conversation's first message)."""
WAITS_ON = {"unreplied_after": ("message.received",), "waiting_since": (*STATUS_EVENTS, NEW_CONVERSATION)}
"""The events each kind of time-based trigger starts waiting on (`waiting_since`: a new
conversation's first message, not every message)."""


def wanted_kinds(triggers: Iterable[Trigger]) -> frozenset[str]:
    """The event kinds the enabled triggers react to or start waiting on (time-based triggers)."""
    kinds: set[str] = set()
    for trigger in triggers:
        if not trigger.enabled:
            continue
        timed = trigger.timed
        if timed is None:
            kinds.update(NEW_CONVERSATION if k == "conversation.created" else k for k in trigger.events)
        else:
            kinds.update(WAITS_ON.get(timed.kind, ()))
    return frozenset(kinds)


def waits_on(timed_kind: str, kind: str, data: Mapping[str, Any]) -> bool:
    """Whether a time-based trigger of `timed_kind` starts waiting on this event."""
    if timed_kind == "waiting_since" and kind == NEW_CONVERSATION:
        return bool(data.get("new_conversation"))
    return kind in WAITS_ON.get(timed_kind, ())
