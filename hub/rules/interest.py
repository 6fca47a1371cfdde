"""Which event kinds a rule set's triggers can react to, so that no other kind is queued for them."""

from __future__ import annotations

from collections.abc import Iterable

from hub.rules.triggers import Trigger

STATUS_EVENTS = ("conversation.status_changed", "conversation.reopened", "message.queued")
"""Events after which a conversation is no longer `waiting_since` its earlier anchor."""
NEW_CONVERSATION = "message.received"
"""The event `conversation.created` travels with (a new conversation's first message)."""


def wanted_kinds(triggers: Iterable[Trigger]) -> frozenset[str]:
    """The event kinds the enabled triggers react to or start waiting on (time-based triggers)."""
    kinds: set[str] = set()
    for trigger in triggers:
        if not trigger.enabled:
            continue
        timed = trigger.timed
        if timed is None:
            kinds.update(NEW_CONVERSATION if k == "conversation.created" else k for k in trigger.events)
        elif timed.kind == "unreplied_after":
            kinds.add("message.received")
        else:
            kinds.update((*STATUS_EVENTS, NEW_CONVERSATION))
    return frozenset(kinds)
