"""Jinja2 filters for dates, times and durations in the rendering's language and time zone.

Each reads `lang` and `timezone` from the template context, which `Templates` sets on every
render.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from jinja2.utils import pass_context

from hub.templates import dates


@lru_cache(maxsize=64)
def zone_named(name: str) -> ZoneInfo:
    """The time zone of an IANA name; ValueError naming it when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def _date_filter(
    fn: Callable[[datetime, str, ZoneInfo], str],
) -> Callable[[jinja2.runtime.Context, datetime], str]:
    @pass_context
    def apply(context: jinja2.runtime.Context, value: datetime) -> str:
        return fn(value, context["lang"], zone_named(context["timezone"]))

    return apply


@pass_context
def _date(context: jinja2.runtime.Context, value: datetime, year: bool = True) -> str:
    return dates.format_date(value, context["lang"], zone_named(context["timezone"]), year=year)


@pass_context
def _datetime(context: jinja2.runtime.Context, value: datetime, year: bool = False) -> str:
    return dates.format_datetime(value, context["lang"], zone_named(context["timezone"]), year=year)


@pass_context
def _duration(context: jinja2.runtime.Context, value: timedelta) -> str:
    return dates.format_duration(value, context["lang"])


FILTERS: Mapping[str, Callable[..., str]] = {
    "date": _date,
    "datetime": _datetime,
    "time": _date_filter(dates.format_time),
    "weekday": _date_filter(dates.format_weekday),
    "deadline": _date_filter(dates.format_deadline),
    "duration": _duration,
}
"""Filters in the customer's language (`lang`) and time zone (`timezone`) of the render."""
