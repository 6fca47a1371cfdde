"""Business-time arithmetic, checked minute by minute against a brute-force reference."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.sla.calendar import BusinessCalendar, parse_hours

LONDON = BusinessCalendar.build(
    "uk-support",
    "Europe/London",
    {d: ["09:00-12:30", "13:30-17:30"] for d in ("mon", "tue", "wed", "thu", "fri")}
    | {"sat": ["10:00-14:00"]},
    country="GB",
    subdivision="ENG",
    closed=[date(2026, 3, 30)],
)
SHANGHAI = BusinessCalendar.build(
    "cn-support",
    "Asia/Shanghai",
    {d: ["09:00-12:00", "13:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
    country="CN",
    extra_working={date(2026, 10, 10): ["09:00-18:00"]},
)
NEW_YORK_ALWAYS = BusinessCalendar.build(
    "us-24x7",
    "America/New_York",
    {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
)
SANTIAGO_NIGHTS = BusinessCalendar.build(
    "cl-nights", "America/Santiago", {d: ["00:00-02:30", "22:00-24:00"] for d in ("fri", "sat", "sun")}
)
CALENDARS = [LONDON, SHANGHAI, NEW_YORK_ALWAYS, SANTIAGO_NIGHTS]


def brute_minutes(calendar: BusinessCalendar, start: datetime, end: datetime) -> int:
    count, t = 0, start
    while t < end:
        count += calendar.is_open(t)
        t += timedelta(minutes=1)
    return count


# Each window holds a DST change of one of the zones, or a holiday.
WINDOWS = [
    datetime(2026, 3, 27, tzinfo=UTC),  # London spring forward (29 March), Good Friday, 30 March closed
    datetime(2026, 10, 23, tzinfo=UTC),  # London fall back (25 October)
    datetime(2026, 3, 6, tzinfo=UTC),  # New York spring forward (8 March)
    datetime(2026, 10, 30, tzinfo=UTC),  # New York fall back (1 November)
    datetime(2026, 4, 3, tzinfo=UTC),  # Santiago fall back (5 April, at midnight)
    datetime(2026, 9, 4, tzinfo=UTC),  # Santiago spring forward (6 September, at midnight)
    datetime(2026, 9, 28, tzinfo=UTC),  # China: National Day week, Saturday 10 October worked
]

starts = st.builds(
    lambda base, minutes: base + timedelta(minutes=minutes),
    st.sampled_from(WINDOWS),
    st.integers(0, 6 * 24 * 60),
)


@settings(max_examples=150, deadline=None)
@given(calendar=st.sampled_from(CALENDARS), start=starts, length=st.integers(0, 3 * 24 * 60))
def test_business_minutes_match_the_minute_by_minute_reference(
    calendar: BusinessCalendar, start: datetime, length: int
) -> None:
    end = start + timedelta(minutes=length)
    assert calendar.business_minutes(start, end) == brute_minutes(calendar, start, end)


@settings(max_examples=150, deadline=None)
@given(calendar=st.sampled_from(CALENDARS), start=starts, minutes=st.integers(0, 1500))
def test_adding_business_minutes_lands_on_the_earliest_instant(
    calendar: BusinessCalendar, start: datetime, minutes: int
) -> None:
    due = calendar.add_minutes(start, minutes)
    assert brute_minutes(calendar, start, due) == minutes
    if minutes:
        assert brute_minutes(calendar, start, due - timedelta(minutes=1)) == minutes - 1


def test_fall_back_counts_the_repeated_hour_of_a_24_hour_desk() -> None:
    start = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # 00:00 EDT
    end = datetime(2026, 11, 2, 5, 0, tzinfo=UTC)  # 00:00 EST the next day: 25 real hours
    assert NEW_YORK_ALWAYS.business_minutes(start, end) == 25 * 60


def test_holidays_split_shifts_and_extra_working_days() -> None:
    friday_1730 = datetime(2026, 4, 3, 16, 30, tzinfo=UTC)  # Good Friday: closed in England
    assert LONDON.add_minutes(friday_1730, 60) == datetime(
        2026, 4, 4, 10, 0, tzinfo=UTC
    )  # Saturday 11:00 BST
    monday = datetime(2026, 4, 6, 8, 0, tzinfo=UTC)  # Easter Monday 09:00 BST: closed
    assert LONDON.add_minutes(monday, 1) == datetime(2026, 4, 7, 8, 1, tzinfo=UTC)
    before_lunch = datetime(2026, 4, 7, 11, 0, tzinfo=UTC)  # 12:00 BST, 30 minutes before lunch
    assert LONDON.add_minutes(before_lunch, 45) == datetime(2026, 4, 7, 12, 45, tzinfo=UTC)  # 13:45 BST
    national_day = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, a holiday
    assert SHANGHAI.business_minutes(national_day, national_day + timedelta(days=1)) == 0
    worked_saturday = datetime(2026, 10, 10, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    assert SHANGHAI.business_minutes(worked_saturday, worked_saturday + timedelta(hours=9)) == 9 * 60


def test_configuration_errors_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="overlap"):
        parse_hours(["09:00-12:00", "11:00-13:00"])
    with pytest.raises(ValueError, match="not a range"):
        parse_hours(["9 to 5"])
    with pytest.raises(ValueError, match="start before it ends"):
        parse_hours(["17:00-09:00"])
    with pytest.raises(ValueError, match="unknown weekdays"):
        BusinessCalendar.build("x", "UTC", {"monday": ["09:00-17:00"]})
    with pytest.raises(ValueError, match="no holiday data"):
        BusinessCalendar.build("x", "UTC", {}, country="XX")
    closed = BusinessCalendar.build("never", "UTC", {})
    with pytest.raises(ValueError, match="no 0:01:00 of business time"):
        closed.add_minutes(datetime(2026, 1, 1, tzinfo=UTC), 1)
