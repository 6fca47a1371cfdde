"""Durations written like people write them: `30m`, `4h`, `1d`, `1h30m`, `90s`, `2w`."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

PART = re.compile(r"(\d+)\s*([wdhms])")
WHOLE = re.compile(r"^\s*(\d+\s*[wdhms]\s*)+$")
UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
EXPECTED = "expected a duration like 30m or 4h (units: w, d, h, m, s)"


def parse_duration(value: Any) -> timedelta:
    """A duration from its text; raise ValueError saying what was expected."""
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str) or not WHOLE.match(value.lower()):
        raise ValueError(f"{EXPECTED}; got {value!r}")
    total = timedelta()
    for number, unit in PART.findall(value.lower()):
        total += timedelta(**{UNITS[unit]: int(number)})
    if total <= timedelta():
        raise ValueError(f"{EXPECTED}, longer than zero; got {value!r}")
    return total


def format_duration(value: timedelta) -> str:
    """The shortest text that `parse_duration` reads back as the same duration."""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


Duration = Annotated[timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration)]
"""A rule-file duration field."""
