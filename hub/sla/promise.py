"""Reply-time promises (E1, L8): the internal target times a margin, rounded up in business time.

L8: promise carefully, then beat the promise. The promise is `target × margin` of business
time after the message arrived, rounded up to the next `rounding` boundary of the calendar's
local wall clock ("by 16:00", not "by 15:37"). A promise must fall inside business hours: when
rounding up would cross the end of the opening hours the promise falls in (closing time, a
lunch break), the promise is that end instead ("by 17:30"). Either way the promise is never
earlier than `target × margin` of business time, and never later than the next boundary.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hub.sla.calendar import BusinessCalendar
from hub.templates.dates import format_deadline

DEFAULT_MARGIN = 1.5
DEFAULT_ROUNDING = timedelta(hours=1)
_DAY = timedelta(days=1)
_SECOND = timedelta(seconds=1)
_MINUTE = timedelta(minutes=1)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def promise_due(
    received_at: datetime,
    target: timedelta,
    margin: float,
    calendar: BusinessCalendar,
    rounding: timedelta = DEFAULT_ROUNDING,
) -> datetime:
    """When to promise a reply to a message received at `received_at` (aware), in UTC."""
    if received_at.tzinfo is None:
        raise ValueError("received_at must be an aware datetime")
    if target <= timedelta():
        raise ValueError(f"the target must be positive, not {target}")
    if margin < 1:
        raise ValueError(f"the promise margin must be at least 1 (L8: promise carefully), not {margin}")
    if not timedelta() < rounding <= _DAY:
        raise ValueError(f"rounding must be more than zero and at most a day, not {rounding}")
    earliest = calendar.add(received_at, target * margin).astimezone(UTC)
    rounded = _round_up(earliest, rounding, calendar.timezone)
    return min(rounded, _open_until(calendar, earliest, rounded))


def _round_up(at: datetime, rounding: timedelta, tz: ZoneInfo) -> datetime:
    """The earliest instant at or after `at` whose local wall-clock time is on a boundary."""
    candidate = at
    while True:
        wall = candidate.astimezone(tz).replace(tzinfo=None)
        midnight = wall.replace(hour=0, minute=0, second=0, microsecond=0)
        steps = -(-(wall - midnight) // rounding)
        boundary = midnight + steps * rounding
        for fold in (0, 1):
            instant = boundary.replace(tzinfo=tz, fold=fold).astimezone(UTC)
            exists = instant.astimezone(tz).replace(tzinfo=None) == boundary
            if exists and instant >= at:
                return instant
        # The boundary is skipped by a DST change: continue from the first real instant after it.
        candidate = max(boundary.replace(tzinfo=tz).astimezone(UTC), candidate + _SECOND)


def _open_until(calendar: BusinessCalendar, start: datetime, limit: datetime) -> datetime:
    """The end of the business time running without a break from `start`, looked for up to `limit`.

    Opening hours end on whole minutes, so the search runs over whole minutes after `start`.
    """
    if limit <= start or calendar.business_time(start, limit) == limit - start:
        return limit
    first = start + (-(start - _EPOCH) % _MINUTE)
    low, high = 0, (limit - first) // _MINUTE
    while low < high:
        middle = (low + high + 1) // 2
        end = first + middle * _MINUTE
        if calendar.business_time(start, end) == end - start:
            low = middle
        else:
            high = middle - 1
    return first + low * _MINUTE


def format_promise(at: datetime, lang: str, tz: ZoneInfo) -> str:
    """The promise as the customer reads it: `by Tuesday 25 November, 17:00` / `11月25日（周二）17:00前`."""
    return format_deadline(at, lang, tz)
