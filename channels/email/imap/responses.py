"""Reading aioimaplib's raw response lines: SELECT status codes, SEARCH results, FETCH items."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

_CODE = re.compile(rb"\[(UIDVALIDITY|UIDNEXT|HIGHESTMODSEQ) (\d+)\]")
_EXISTS = re.compile(rb"^(\d+) EXISTS")
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_LITERAL = re.compile(rb"\{(\d+)\}$")
_FETCH = re.compile(rb"^\d+ FETCH \(")
_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]+)"')
_DATE_TIME = re.compile(rb" ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)")
_MONTHS = {m: n for n, m in enumerate(b"jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    """What SELECT told about a mailbox."""

    uidvalidity: int
    uidnext: int | None
    highest_modseq: int | None
    exists: int


def mailbox_status(lines: Sequence[bytes | bytearray]) -> MailboxStatus:
    """The UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and EXISTS count of a SELECT response."""
    codes: dict[bytes, int] = {}
    exists = 0
    for line in lines:
        if isinstance(line, bytearray):
            continue
        for name, value in _CODE.findall(line):
            codes[name] = int(value)
        found = _EXISTS.match(line)
        if found:
            exists = int(found.group(1))
    if b"UIDVALIDITY" not in codes:
        raise ValueError("SELECT response without UIDVALIDITY")
    return MailboxStatus(codes[b"UIDVALIDITY"], codes.get(b"UIDNEXT"), codes.get(b"HIGHESTMODSEQ"), exists)


def search_uids(lines: Sequence[bytes | bytearray]) -> list[int]:
    """The UIDs of a (UID) SEARCH response, ascending."""
    uids: list[int] = []
    for line in lines:
        if not isinstance(line, bytes):
            continue
        words = line.split()
        if words and words[0] == b"SEARCH":
            words = words[1:]
        if words and all(w.isdigit() for w in words):
            uids.extend(int(w) for w in words)
    return sorted(uids)


def sizes(lines: Sequence[bytes | bytearray]) -> dict[int, int]:
    """UID -> RFC822.SIZE from a `UID FETCH … (UID RFC822.SIZE)` response."""
    found: dict[int, int] = {}
    for line in lines:
        if not isinstance(line, bytes) or not _FETCH.match(line):
            continue
        uid, size = _UID.search(line), _SIZE.search(line)
        if uid and size:
            found[int(uid.group(1))] = int(size.group(1))
    return found


def bodies(lines: Sequence[bytes | bytearray]) -> dict[int, bytes]:
    """UID -> message bytes from a `UID FETCH … (UID BODY.PEEK[])` response.

    A body is the literal after the FETCH line that announces it with `{size}`; the UID may
    come before the literal or, on some servers, in the line after it.
    """
    found: dict[int, bytes] = {}
    pending: bytes | None = None
    pending_uid: int | None = None
    for line in lines:
        if isinstance(line, bytearray):
            if pending is not None:
                if pending_uid is not None:
                    found[pending_uid] = bytes(line)
                    pending = None
                else:
                    pending = bytes(line)
            continue
        if _FETCH.match(line) and _LITERAL.search(line):
            uid = _UID.search(line)
            pending, pending_uid = b"", int(uid.group(1)) if uid else None
        elif pending and pending_uid is None:
            uid = _UID.search(line)
            if uid:
                found[int(uid.group(1))] = pending
            pending = None
    return found


def internal_dates(lines: Sequence[bytes | bytearray]) -> dict[int, datetime]:
    """UID -> INTERNALDATE (when the server received the mail) from a FETCH response."""
    found: dict[int, datetime] = {}
    for line in lines:
        if not isinstance(line, bytes) or not _FETCH.match(line):
            continue
        uid, date = _UID.search(line), _INTERNALDATE.search(line)
        if uid and date:
            try:
                found[int(uid.group(1))] = internal_date(date.group(1))
            except ValueError:
                continue
    return found


def internal_date(text: bytes) -> datetime:
    """An IMAP date-time (`17-Jul-1996 02:44:25 -0700`); ValueError if it is not one."""
    parts = _DATE_TIME.fullmatch(text)
    month = _MONTHS.get(parts.group(2).lower()) if parts else None
    if parts is None or month is None:
        raise ValueError(f"not an IMAP date-time: {text!r}")
    day, _, year, hour, minute, second, sign, zh, zm = parts.groups()
    return datetime(
        int(year), month, int(day), int(hour), int(minute), int(second), tzinfo=_zone(sign, zh, zm)
    )


@functools.lru_cache(maxsize=64)
def _zone(sign: bytes, hours: bytes, minutes: bytes) -> timezone:
    offset = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(-offset if sign == b"-" else offset)
