"""Twilio's form fields turned into the hub's call data, at the channel's edge."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from multidict import MultiDictProxy

from hub.calls import LegUpdate
from hub.models import Identity, IdentityKind

KEPT = ("CallStatus", "Direction", "From", "To", "CallDuration", "Duration", "SipResponseCode", "AnsweredBy")


def timestamp(value: str | None, fallback: datetime) -> datetime:
    """An RFC 2822 `Timestamp`, or the fallback when it is missing or malformed."""
    if not value:
        return fallback
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return fallback
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def caller(form: Mapping[str, str]) -> Identity:
    """The caller's E.164 identity; withheld or odd numbers become an external id."""
    found = _phone(form.get("From", ""))
    return found or Identity(IdentityKind.EXTERNAL, f"withheld:{form.get('CallSid', '')}")


@functools.lru_cache(maxsize=4096)
def _phone(number: str) -> Identity | None:
    """A number as an identity (remembered: parsing numbers is slow and callers call again)."""
    try:
        return Identity.of(IdentityKind.PHONE, number)
    except ValueError:
        return None


def parse_leg(
    form: MultiDictProxy[str], account: str, agents_by_device: Mapping[str, str], now: datetime
) -> LegUpdate | None:
    """One status callback as a leg update; None when it lacks a call id or a status.

    The leg rang an agent when its `To` is an agent's device and it is a child leg (a dialled
    agent) or a call the hub placed through the REST API (a callback call rings the agent first).
    """
    call_sid, status = form.get("CallSid"), form.get("CallStatus")
    if not call_sid or not status:
        return None
    parent = form.get("ParentCallSid") or None
    sequence = form.get("SequenceNumber", "")
    duration = form.get("CallDuration") or form.get("Duration")
    rings_agent = parent or form.get("Direction") == "outbound-api"
    agent = agents_by_device.get(_device(form.get("To", ""))) if rings_agent else None
    return LegUpdate(
        account=account,
        call_sid=call_sid,
        status=status,
        at=timestamp(form.get("Timestamp"), now),
        parent_sid=parent,
        sequence=int(sequence) if sequence.isdigit() else None,
        agent=agent,
        duration_seconds=float(duration) if duration and duration.isdigit() else None,
        data={k: form[k] for k in KEPT if k in form},
    )


def _device(to: str) -> str:
    if to.startswith("sip:"):
        return to.split(";")[0]
    return to.replace(" ", "")


def devices_index(devices: Mapping[str, str]) -> dict[str, str]:
    """Agent user names by the address their leg's `To` shows."""
    return {_device(device): user for user, device in devices.items()}
