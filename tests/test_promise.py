"""Reply-time promises (E1, L8): target × margin in business time, rounded up, inside business hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.sla.calendar import BusinessCalendar
from hub.sla.promise import format_promise, promise_due

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
LEEDS = BusinessCalendar.build(
    "uk-support",
    "Europe/London",
    {d: ["09:00-12:30", "13:30-17:30"] for d in WEEKDAYS},
    country="GB",
    subdivision="ENG",
)
SHANGHAI = BusinessCalendar.build(
    "cn-support", "Asia/Shanghai", {d: ["09:00-12:00", "13:00-18:00"] for d in WEEKDAYS}, country="CN"
)
NEW_YORK_ALWAYS = BusinessCalendar.build(
    "us-24x7", "America/New_York", {d: ["00:00-24:00"] for d in (*WEEKDAYS, "sat", "sun")}
)
LONDON_TZ = ZoneInfo("Europe/London")
HOURS_2 = timedelta(hours=2)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_promise_is_target_times_margin_rounded_up_to_the_hour() -> None:
    # Tuesday 25 November 2025, 10:30 GMT; 2 h × 1.5 = 3 h of business time, lunch 12:30-13:30.
    due = promise_due(utc(2025, 11, 25, 10, 30), HOURS_2, 1.5, LEEDS)
    assert due == utc(2025, 11, 25, 15, 0)  # 14:30 after lunch, rounded up to 15:00
    assert format_promise(due, "en", LONDON_TZ) == "by Tuesday 25 November, 15:00"
    assert format_promise(due, "zh", LONDON_TZ) == "11月25日（周二）15:00前"


def test_rounding_that_would_leave_business_hours_stops_at_the_closing_time() -> None:
    # 14:10 + 3 h = 17:10; the next hour (18:00) is after closing, so the promise is 17:30.
    assert promise_due(utc(2025, 11, 25, 14, 10), HOURS_2, 1.5, LEEDS) == utc(2025, 11, 25, 17, 30)
    # 09:07 + 3 h = 12:07 (with no lunch yet); 13:00 falls in the lunch break, so 12:30.
    assert promise_due(utc(2025, 11, 25, 9, 7), HOURS_2, 1.5, LEEDS) == utc(2025, 11, 25, 12, 30)
    # Exactly at closing: rounding cannot move it.
    assert promise_due(utc(2025, 11, 25, 14, 30), HOURS_2, 1.5, LEEDS) == utc(2025, 11, 25, 17, 30)


def test_a_promise_carried_overnight_rounds_up_the_next_morning() -> None:
    # 16:50:33 + 3 h: 39 m 27 s today, the rest from 09:00 tomorrow = 11:20:33 → 12:00.
    due = promise_due(utc(2025, 11, 25, 16, 50, 33), HOURS_2, 1.5, LEEDS)
    assert due == utc(2025, 11, 26, 12, 0)


def test_margin_and_rounding_are_parameters() -> None:
    received = utc(2025, 11, 25, 9, 0)
    assert promise_due(received, HOURS_2, 1.0, LEEDS) == utc(2025, 11, 25, 11, 0)
    assert promise_due(received, HOURS_2, 2.0, LEEDS) == utc(2025, 11, 25, 14, 0)  # 3.5 h, lunch, 0.5 h
    quarter = timedelta(minutes=15)
    assert promise_due(utc(2025, 11, 25, 9, 2), timedelta(minutes=20), 1.5, LEEDS, quarter) == utc(
        2025, 11, 25, 9, 45
    )


def test_promise_across_the_spring_dst_change() -> None:
    # Friday 27 March 2026 16:00 GMT: 1.5 h today, the clocks go forward on Sunday, and the
    # remaining 1.5 h run from 09:00 BST on Monday: 10:30 BST, rounded to 11:00 BST.
    due = promise_due(utc(2026, 3, 27, 16, 0), HOURS_2, 1.5, LEEDS)
    assert due == utc(2026, 3, 30, 10, 0)
    assert format_promise(due, "en", LONDON_TZ) == "by Monday 30 March, 11:00"


def test_promise_skips_country_holidays() -> None:
    # Thursday 2 April 2026 16:00 BST; Good Friday and Easter Monday are closed in England.
    due = promise_due(utc(2026, 4, 2, 15, 0), HOURS_2, 1.5, LEEDS)
    assert format_promise(due, "en", LONDON_TZ) == "by Tuesday 7 April, 11:00"
    assert due == utc(2026, 4, 7, 10, 0)


def test_promise_over_the_spring_festival_in_chinese() -> None:
    # Friday 13 February 2026, 17:00 in Shanghai; 16-20 and 23 February are public holidays.
    due = promise_due(utc(2026, 2, 13, 9, 0), timedelta(hours=4), 1.5, SHANGHAI)
    assert due == utc(2026, 2, 24, 7, 0)
    assert format_promise(due, "zh", SHANGHAI.timezone) == "2月24日（周二）15:00前"
    assert format_promise(due, "zh-CN", SHANGHAI.timezone) == "2月24日（周二）15:00前"


def test_rounding_in_the_repeated_hour_of_an_autumn_dst_change() -> None:
    # New York, 1 November 2026: 01:00-01:59 happens twice. Rounding follows the wall clock.
    half_hour = timedelta(minutes=20)
    first_pass = promise_due(utc(2026, 11, 1, 5, 10), half_hour, 1.5, NEW_YORK_ALWAYS)  # 01:10 EDT
    assert first_pass == utc(2026, 11, 1, 7, 0)  # 02:00 EST, not the second 01:00 which reads earlier
    before = promise_due(utc(2026, 11, 1, 4, 10), half_hour, 1.5, NEW_YORK_ALWAYS)  # 00:10 EDT
    assert before == utc(2026, 11, 1, 5, 0)  # 01:00 EDT, the first one
    assert format_promise(first_pass, "en", NEW_YORK_ALWAYS.timezone) == "by Sunday 1 November, 02:00"


def test_rounding_to_a_boundary_skipped_by_the_spring_dst_change() -> None:
    # New York, 8 March 2026: 02:00 does not exist; 01:40 EST rounds up to 03:00 EDT.
    due = promise_due(utc(2026, 3, 8, 6, 20), timedelta(minutes=20), 1.0, NEW_YORK_ALWAYS)
    assert due == utc(2026, 3, 8, 7, 0)
    assert format_promise(due, "en", NEW_YORK_ALWAYS.timezone) == "by Sunday 8 March, 03:00"


def test_midnight_reads_as_the_end_of_the_day_before() -> None:
    midnight = utc(2026, 11, 24, 16, 0)  # 00:00 on Wednesday in Shanghai
    assert format_promise(midnight, "en", ZoneInfo("Asia/Shanghai")) == "by Tuesday 24 November, 24:00"
    assert format_promise(midnight, "zh", ZoneInfo("Asia/Shanghai")) == "11月24日（周二）24:00前"


def test_bad_arguments_are_refused() -> None:
    received = utc(2025, 11, 25, 9, 0)
    with pytest.raises(ValueError, match="margin"):
        promise_due(received, HOURS_2, 0.8, LEEDS)
    with pytest.raises(ValueError, match="target"):
        promise_due(received, timedelta(), 1.5, LEEDS)
    with pytest.raises(ValueError, match="rounding"):
        promise_due(received, HOURS_2, 1.5, LEEDS, timedelta(days=2))
    with pytest.raises(ValueError, match="aware"):
        promise_due(datetime(2025, 11, 25, 9, 0), HOURS_2, 1.5, LEEDS)  # noqa: DTZ001
    with pytest.raises(ValueError, match="time zone"):
        format_promise(datetime(2025, 11, 25, 9, 0), "en", LONDON_TZ)  # noqa: DTZ001
    with pytest.raises(ValueError, match="unsupported language"):
        format_promise(received, "fr", LONDON_TZ)


WINDOWS = [
    utc(2026, 3, 26),  # London spring forward, then Easter
    utc(2026, 10, 22),  # London fall back
    utc(2026, 2, 12),  # Spring Festival in China
    utc(2026, 10, 29),  # New York fall back
    utc(2026, 3, 6),  # New York spring forward
]


@settings(max_examples=120, deadline=None)
@given(
    calendar=st.sampled_from([LEEDS, SHANGHAI, NEW_YORK_ALWAYS]),
    received=st.builds(
        lambda base, seconds: base + timedelta(seconds=seconds),
        st.sampled_from(WINDOWS),
        st.integers(0, 5 * 24 * 3600),
    ),
    target_minutes=st.integers(1, 3 * 24 * 60),
    margin=st.sampled_from([1.0, 1.25, 1.5, 2.0]),
    rounding_minutes=st.sampled_from([15, 30, 60, 120]),
)
def test_promise_is_never_early_and_always_inside_business_hours(
    calendar: BusinessCalendar,
    received: datetime,
    target_minutes: int,
    margin: float,
    rounding_minutes: int,
) -> None:
    target, rounding = timedelta(minutes=target_minutes), timedelta(minutes=rounding_minutes)
    due = promise_due(received, target, margin, calendar, rounding)
    assert calendar.business_time(received, due) >= target * margin
    assert calendar.is_open(due - timedelta(seconds=1))
    earliest = calendar.add(received, target * margin)
    assert due - earliest <= rounding + timedelta(hours=1)  # an hour of slack for a DST change
    wall = due.astimezone(calendar.timezone)
    on_boundary = (wall.hour * 60 + wall.minute) % rounding_minutes == 0 and wall.second == 0
    at_closing = not calendar.is_open(due) or due == earliest
    assert on_boundary or at_closing
