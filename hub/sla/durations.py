"""Durations written in rule files: `90s`, `30m`, `4h`, `1h30m`, or a number of minutes."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smh])")
_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_duration(value: object) -> timedelta:
    """A timedelta from `1h30m`-style text or a number of minutes; ValueError says what is expected."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(minutes=value)
    text = str(value).strip().lower().replace(" ", "")
    if not text or _PART.sub("", text):
        raise ValueError(f"expected a duration like 30m, 4h or 1h30m (business time); got {value!r}")
    seconds = sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(text))
    return timedelta(seconds=seconds)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
"""A pydantic field type for rule-file durations."""


def format_duration(value: timedelta) -> str:
    """The rule-file spelling of a duration (`1h30m`)."""
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0m"
