"""Business time across UTC years, and the limit on how far ahead `add` looks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from hub.sla.calendar import BusinessCalendar
from tests.test_calendar import LONDON, NEW_YORK_ALWAYS, brute_minutes

NEW_YEAR = datetime(2027, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("calendar", [LONDON, NEW_YORK_ALWAYS])
def test_spans_across_new_year_match_the_reference(calendar: BusinessCalendar) -> None:
    start = datetime(2026, 12, 30, 15, 17, tzinfo=UTC)
    end = datetime(2027, 1, 5, 10, 3, tzinfo=UTC)
    assert calendar.business_minutes(start, end) == brute_minutes(calendar, start, end)
    minutes = brute_minutes(calendar, start, end)
    due = calendar.add_minutes(start, minutes)
    assert due <= end
    assert brute_minutes(calendar, start, due) == minutes


def test_earlier_years_are_added_after_later_ones_were_used() -> None:
    calendar = BusinessCalendar.build("c", "UTC", {"mon": ["09:00-10:00"]})
    later = datetime(2030, 6, 3, 9, 0, tzinfo=UTC)  # a Monday
    assert calendar.add_minutes(later, 30) == later + timedelta(minutes=30)
    earlier = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday
    assert calendar.business_minutes(earlier, later) == 60 * (later - earlier).days // 7
    assert calendar.add_minutes(earlier, 90) == datetime(2026, 11, 30, 9, 30, tzinfo=UTC)


def test_add_looks_three_years_ahead_from_the_start_of_the_starting_year() -> None:
    start = datetime(2026, 6, 1, tzinfo=UTC)
    within = BusinessCalendar.build("c", "UTC", {}, extra_working={date(2028, 12, 31): ["23:00-24:00"]})
    assert within.add_minutes(start, 60) == NEW_YEAR + timedelta(days=365 + 366)
    beyond = BusinessCalendar.build("c", "UTC", {}, extra_working={date(2029, 1, 1): ["00:00-01:00"]})
    with pytest.raises(ValueError, match="within 3 years"):
        beyond.add_minutes(start, 60)
    assert beyond.add_minutes(datetime(2027, 1, 1, tzinfo=UTC), 60) == datetime(2029, 1, 1, 1, 0, tzinfo=UTC)
