"""Business-hours calendars and exact business-time arithmetic across DST changes and holidays.

An instant is business time when its local wall-clock time falls inside the opening hours of
its local date. So a 24-hour calendar counts the repeated hour of an autumn DST change twice
and the skipped spring hour not at all, exactly as a clock on the office wall would; an
opening at 09:00 on a DST day opens at 09:00 local, whatever the offset.

Internally, time is cut into pieces of constant UTC offset; within a piece local time is
UTC plus the offset, so the opening hours of each local day map to UTC spans directly.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays as holiday_data

Hours = tuple[tuple[int, int], ...]
"""Opening intervals of one day as (start, end) minutes after local midnight, end ≤ 1440."""

DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)
SEARCH_YEARS = 3
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_hours(ranges: list[str]) -> Hours:
    """`["09:00-12:30", "13:30-17:30"]` as sorted, non-overlapping minute intervals; `24:00` ends a day."""
    intervals: list[tuple[int, int]] = []
    for text in ranges:
        try:
            start_text, end_text = text.replace(" ", "").split("-")
            start, end = _minutes(start_text), _minutes(end_text)
        except ValueError:
            raise ValueError(f"{text!r} is not a range like 09:00-17:30") from None
        if not start < end <= 1440:
            raise ValueError(f"{text!r} must start before it ends, within one day")
        intervals.append((start, end))
    intervals.sort()
    for (_, end), (start, _) in itertools.pairwise(intervals):
        if start < end:
            raise ValueError(f"opening hours overlap: {ranges}")
    return tuple(intervals)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    value = int(hours) * 60 + int(minutes)
    if not (0 <= int(minutes) < 60 and 0 <= value <= 1440):
        raise ValueError(hhmm)
    return value


@dataclass(frozen=True)
class BusinessCalendar:
    """Weekly opening hours in a time zone, less holidays, plus extra working days."""

    name: str
    timezone: ZoneInfo
    weekly: tuple[Hours, Hours, Hours, Hours, Hours, Hours, Hours]
    closed: frozenset[date] = frozenset()
    extra_working: Mapping[date, Hours] = field(default_factory=dict)
    public_holiday: Callable[[date], bool] | None = None
    holidays_from: str | None = None
    """Where `public_holiday` comes from (country and subdivision), when it was built from them."""
    _years: dict[int, list[tuple[int, int]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _timeline: list[_Timeline] = field(default_factory=list, init=False, repr=False, compare=False)

    @classmethod
    def build(
        cls,
        name: str,
        timezone: str,
        weekly: Mapping[str, list[str]],
        *,
        country: str | None = None,
        subdivision: str | None = None,
        closed: list[date] | None = None,
        extra_working: Mapping[date, list[str]] | None = None,
    ) -> BusinessCalendar:
        """A calendar from configuration values; raise ValueError naming what is wrong."""
        unknown = set(weekly) - set(WEEKDAYS)
        if unknown:
            raise ValueError(f"unknown weekdays {sorted(unknown)}; use {', '.join(WEEKDAYS)}")
        days = tuple(parse_hours(weekly.get(d, [])) for d in WEEKDAYS)
        public = None
        if country:
            try:
                table = holiday_data.country_holidays(country, subdiv=subdivision)
            except NotImplementedError as err:
                raise ValueError(f"no holiday data for {country!r}/{subdivision!r}: {err}") from None
            public = table.__contains__
        return cls(
            name=name,
            timezone=ZoneInfo(timezone),
            weekly=days,  # type: ignore[arg-type]
            closed=frozenset(closed or ()),
            extra_working={d: parse_hours(h) for d, h in (extra_working or {}).items()},
            public_holiday=public,
            holidays_from=f"{country}/{subdivision or ''}" if country else None,
        )

    def hours_on(self, day: date) -> Hours:
        """The opening hours of a local date."""
        if day in self.extra_working:
            return self.extra_working[day]
        if day in self.closed or (self.public_holiday is not None and self.public_holiday(day)):
            return ()
        return self.weekly[day.weekday()]

    def is_open(self, at: datetime) -> bool:
        """Whether an instant is business time."""
        local = at.astimezone(self.timezone)
        minute = local.hour * 60 + local.minute
        return any(s <= minute < e for s, e in self.hours_on(local.date()))

    def business_time(self, start: datetime, end: datetime) -> timedelta:
        """How much business time lies in [start, end)."""
        if end <= start:
            return timedelta()
        return timedelta(microseconds=self.business_micros(micros(start), micros(end)))

    def business_micros(self, start: int, end: int) -> int:
        """`business_time` between two instants in epoch microseconds, in microseconds."""
        if end <= start:
            return 0
        t = self._timeline[0] if self._timeline else None
        if t is None or not (t.low <= start and end < t.high):
            t = self._covering(start, end)
        return t.position(end) - t.position(start)

    def business_minutes(self, start: datetime, end: datetime) -> int:
        """Whole business minutes in [start, end)."""
        return self.business_time(start, end) // MINUTE

    def add(self, start: datetime, amount: timedelta) -> datetime:
        """The earliest instant by which `amount` of business time has passed since `start`."""
        if amount <= timedelta():
            return start
        return instant(self.add_micros(micros(start), amount // MICRO))

    def add_micros(self, start: int, amount: int) -> int:
        """`add` in epoch microseconds and microseconds of business time."""
        if amount <= 0:
            return start
        t = self._timeline[0] if self._timeline else None
        if t is not None and t.low <= start < t.high:
            starts = t.starts
            i = bisect_right(starts, start) - 1
            target = amount + (0 if i < 0 else t.before[i] + min(start, t.ends[i]) - starts[i])
            if target <= t.total:
                i = bisect_left(t.after, target)
                reached = starts[i] + target - t.before[i]
                if reached - start <= SURELY_WITHIN_SEARCH:
                    return reached
        return self._add_micros(start, amount)

    def reach(self, start: int, end: int | None, amounts: tuple[int, ...]) -> list[int | None]:
        """For each amount, `add_micros(start, amount)` if that is by `end` (None: open-ended), else None."""
        t = self._timeline[0] if self._timeline else None
        if t is None or not (t.low <= start and (start if end is None else end) < t.high):
            t = self._covering(start, start if end is None else end)
        starts, ends, before = t.starts, t.ends, t.before
        i = bisect_right(starts, start) - 1
        at = 0 if i < 0 else before[i] + min(start, ends[i]) - starts[i]
        if end is None:
            most = None
        else:
            i = bisect_right(starts, end) - 1
            most = (0 if i < 0 else before[i] + min(end, ends[i]) - starts[i]) - at
        total, after = t.total, t.after
        out: list[int | None] = []
        for amount in amounts:
            target = at + amount
            if amount <= 0:
                out.append(start)
            elif most is not None and amount > most:
                out.append(None)
            elif target > total:
                out.append(self._add_micros(start, amount))
            else:
                i = bisect_left(after, target)
                reached = starts[i] + target - before[i]
                if reached - start > SURELY_WITHIN_SEARCH:
                    reached = self._add_micros(start, amount)
                out.append(reached)
        return out

    def _add_micros(self, start: int, amount: int) -> int:
        t = self._covering(start, start)
        target = t.position(start) + amount
        if target > t.total and t.last < (last := _year_of(start) + SEARCH_YEARS - 1):
            t = self._cover(t.first, last)
        reached = t.instant(target) if target <= t.total else None
        if (
            reached is not None
            and reached - start > SURELY_WITHIN_SEARCH
            and reached > YEAR_STARTS[_year_of(start) + SEARCH_YEARS - 1970]
        ):
            reached = None
        if reached is None:
            raise ValueError(
                f"calendar {self.name!r} has no {timedelta(microseconds=amount)} of business time "
                f"within {SEARCH_YEARS} years"
            )
        return reached

    def add_minutes(self, start: datetime, minutes: int) -> datetime:
        """`add` in whole minutes."""
        return self.add(start, timedelta(minutes=minutes))

    def spans(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Business time in [start, end) as UTC spans, in order."""
        t, end = start.astimezone(UTC), end.astimezone(UTC)
        while t < end:
            offset = self._offset(t)
            piece_end = min(self._next_change(t, offset), end)
            local_from = (t + offset).replace(tzinfo=None)
            local_to = (piece_end + offset).replace(tzinfo=None)
            day = local_from.date()
            while (midnight := datetime.combine(day, time())) < local_to:
                for open_at, close_at in self.hours_on(day):
                    a = max(midnight + timedelta(minutes=open_at), local_from)
                    b = min(midnight + timedelta(minutes=close_at), local_to)
                    if a < b:
                        yield (a - offset).replace(tzinfo=UTC), (b - offset).replace(tzinfo=UTC)
                day += DAY
            t = piece_end

    def _year(self, year: int) -> list[tuple[int, int]]:
        """The business spans of one UTC year in epoch microseconds, built once."""
        found = self._years.get(year)
        if found is None:
            begin, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
            found = self._years[year] = [(micros(a), micros(b)) for a, b in self.spans(begin, end)]
        return found

    def _covering(self, start: int, end: int) -> _Timeline:
        """A timeline that holds both instants."""
        if self._timeline:
            t = self._timeline[0]
            if t.low <= start and end < t.high:
                return t
            return self._cover(min(t.first, _year_of(start)), max(t.last, _year_of(end)))
        return self._cover(_year_of(start), _year_of(end))

    def _cover(self, first: int, last: int) -> _Timeline:
        if self._timeline:
            first, last = min(first, self._timeline[0].first), max(last, self._timeline[0].last)
        t = _Timeline.build(first, last, [self._year(y) for y in range(first, last + 1)])
        self._timeline[:] = [t]
        return t

    def _offset(self, at: datetime) -> timedelta:
        offset = at.astimezone(self.timezone).utcoffset()
        assert offset is not None
        return offset

    def _next_change(self, at: datetime, offset: timedelta) -> datetime:
        """The first instant after `at`, within a day, where the UTC offset changes (or a day on)."""
        horizon = at + DAY
        if self._offset(horizon) == offset:
            return horizon
        low, high = at, horizon
        while high - low > timedelta(seconds=1):
            middle = low + (high - low) / 2
            if self._offset(middle) == offset:
                low = middle
            else:
                high = middle
        return high.replace(microsecond=0)


MICRO = timedelta(microseconds=1)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(at: datetime) -> int:
    """An aware instant as microseconds since the epoch."""
    d = at - EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def instant(at: int) -> datetime:
    """Microseconds since the epoch as an aware UTC datetime."""
    return EPOCH + timedelta(0, 0, at)


YEAR_STARTS = [micros(datetime(y, 1, 1, tzinfo=UTC)) for y in range(1970, 2400)]


def _year_of(micros: int) -> int:
    return 1969 + bisect_right(YEAR_STARTS, micros)


SURELY_WITHIN_SEARCH = (SEARCH_YEARS - 1) * 365 * 86_400 * 1_000_000
"""Instants less than this after a start lie within `SEARCH_YEARS` UTC years of the start's year."""


@dataclass(frozen=True, slots=True)
class _Timeline:
    """Business spans of consecutive UTC years in epoch microseconds, with running totals, for bisection."""

    first: int
    last: int
    low: int
    high: int
    starts: list[int]
    ends: list[int]
    before: list[int]
    after: list[int]
    total: int

    @classmethod
    def build(cls, first: int, last: int, years: list[list[tuple[int, int]]]) -> _Timeline:
        starts, ends, before, after = [], [], [], []
        total = 0
        for spans in years:
            for a, b in spans:
                starts.append(a)
                ends.append(b)
                before.append(total)
                total += b - a
                after.append(total)
        low, high = YEAR_STARTS[first - 1970], YEAR_STARTS[last + 1 - 1970]
        return cls(first, last, low, high, starts, ends, before, after, total)

    def position(self, at: int) -> int:
        """Business microseconds from the start of the first year to `at`."""
        i = bisect_right(self.starts, at) - 1
        if i < 0:
            return 0
        return self.before[i] + min(at, self.ends[i]) - self.starts[i]

    def instant(self, position: int) -> int:
        """The earliest instant at which `position` business microseconds have passed."""
        i = bisect_left(self.after, position)
        return self.starts[i] + position - self.before[i]
