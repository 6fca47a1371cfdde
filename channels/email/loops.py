"""When the hub must never answer a mail automatically, and the limits on what it does send.

`verdict` reads one mail (RFC 3834 and the de-facto headers of common mailers) and says whether
an automatic reply (etiquette E1's acknowledgement) is allowed, and if not, why (the limit of
one acknowledgement per conversation per day is `hub.replies`'); `CircuitBreaker` stops
automatic mail to an address that receives too many in a window, and reports the trip once
so the hub can alert.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import Message
from email.utils import parseaddr

from channels.email import charsets

AUTO_HEADERS = {
    "Auto-Submitted": "auto-replied",
    "X-Auto-Response-Suppress": "All",
}
"""Headers our automatic mail carries so that other systems do not answer it."""

_SYSTEM_LOCAL = re.compile(
    r"^(?:mailer-daemon|postmaster|no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?|"
    r"(?:.+[-_.])?no[-_.]?reply|mail[-_.]?delivery[-_.]?(?:system|subsystem))(?:[+-].*)?$",
    re.IGNORECASE,
)
_PRECEDENCE = frozenset({"bulk", "list", "junk", "auto_reply"})
_SUPPRESS = frozenset({"all", "oof", "autoreply"})


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether an automatic reply to a mail is allowed; `reason` says why not."""

    allowed: bool
    reason: str | None = None

    def as_meta(self) -> dict[str, object]:
        """The form kept on the message's metadata: `auto_reply` and, if refused, the reason."""
        return {"auto_reply": self.allowed} | ({"auto_reply_reason": self.reason} if self.reason else {})


def verdict(msg: Message, sender: str, own_addresses: Collection[str] = ()) -> Verdict:
    """Decide for the mail `msg` from `sender`; `own_addresses` are the hub's, lower-cased."""
    reason = _refusal(msg, sender.lower(), {a.lower() for a in own_addresses})
    return Verdict(reason is None, reason)


def is_system_sender(address: str) -> bool:
    """mailer-daemon, postmaster, noreply and alike."""
    return bool(_SYSTEM_LOCAL.match(address.rsplit("@", 1)[0]))


def _refusal(msg: Message, sender: str, own: set[str]) -> str | None:
    first = charsets.first_values(msg)

    def value(name: str) -> str | None:
        raw = first.get(name.lower())
        return None if raw is None else str(charsets.parsed_header(name, raw))

    auto = value("Auto-Submitted")
    if auto is not None and auto.split(";")[0].strip().lower() != "no":
        return f"Auto-Submitted: {auto}"
    precedence = value("Precedence")
    if precedence is not None and precedence.strip().lower() in _PRECEDENCE:
        return f"Precedence: {precedence}"
    for key in msg:
        if key.lower().startswith("list-"):
            return f"mailing list header {key}"
    if msg.get_content_type() == "multipart/report":
        return "multipart/report (a bounce or receipt)"
    return_path = value("Return-Path")
    if return_path is not None and not parseaddr(return_path)[1] and "<>" in return_path.replace(" ", ""):
        return "empty return path"
    suppress = value("X-Auto-Response-Suppress")
    if suppress is not None and _SUPPRESS & {s.strip().lower() for s in suppress.split(",")}:
        return f"X-Auto-Response-Suppress: {suppress}"
    for key in ("X-Autoreply", "X-Autorespond", "X-Auto-Reply"):
        if key.lower() in first:
            return f"{key} header"
    if is_system_sender(sender):
        return f"system sender {sender}"
    if sender in own:
        return f"our own address {sender}"
    return None


@dataclass(slots=True)
class CircuitBreaker:
    """Stops automatic mail to an address after `limit` within `window`, for `cooldown`.

    `allow` answers whether one more automatic mail may go; `tripped` returns each address once
    when its breaker opens, for an alert.
    """

    limit: int = 5
    window: timedelta = timedelta(hours=1)
    cooldown: timedelta = timedelta(hours=24)
    _times: dict[str, deque[datetime]] = field(default_factory=dict)
    _open_until: dict[str, datetime] = field(default_factory=dict)
    _new_trips: list[str] = field(default_factory=list)

    def allow(self, address: str, now: datetime) -> bool:
        """True, and counted, if an automatic mail to `address` may go now."""
        address = address.lower()
        until = self._open_until.get(address)
        if until is not None:
            if now < until:
                return False
            del self._open_until[address]
        times = self._times.setdefault(address, deque())
        while times and now - times[0] >= self.window:
            times.popleft()
        if len(times) >= self.limit:
            self._open_until[address] = now + self.cooldown
            self._new_trips.append(address)
            times.clear()
            return False
        times.append(now)
        return True

    def is_open(self, address: str, now: datetime) -> bool:
        """Whether automatic mail to `address` is stopped now."""
        until = self._open_until.get(address.lower())
        return until is not None and now < until

    def tripped(self) -> list[str]:
        """Addresses whose breaker opened since the last call (each reported once)."""
        trips, self._new_trips = self._new_trips, []
        return trips
