"""Dates, times and durations written out in English or Simplified Chinese, in a given time zone.

Tiny hand-written tables instead of Babel: the hub speaks two languages and needs five forms.
A time of exactly midnight ends the previous day ("Tuesday 25 November, 24:00"), which is how
a promise "by the end of Tuesday" reads on a calendar that closes at 24:00.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Language = Literal["en", "zh"]
LANGUAGES: tuple[Language, ...] = ("en", "zh")

EN_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
EN_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
ZH_WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


def normalize_language(tag: str) -> Language | None:
    """`en`, `en-GB`, `zh`, `zh-CN`, `zh_Hans`… as `en` or `zh`; None for any other language."""
    base = tag.strip().replace("_", "-").split("-")[0].lower()
    if base == "en":
        return "en"
    if base == "zh":
        return "zh"
    return None


def language(tag: str) -> Language:
    """`normalize_language`, or ValueError for a language the hub does not write."""
    found = normalize_language(tag)
    if found is None:
        raise ValueError(f"unsupported language {tag!r}; use one of {', '.join(LANGUAGES)}")
    return found


def local(at: datetime, tz: ZoneInfo) -> datetime:
    """An aware instant on the wall clock of `tz`; a naive datetime is a ValueError."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{at.isoformat()} has no time zone; the hub keeps aware UTC instants")
    return at.astimezone(tz)


def _end_of_day(at: datetime) -> tuple[datetime, str]:
    """The day to name and the HH:MM to show, midnight written as 24:00 of the day before."""
    if at.hour == 0 and at.minute == 0 and at.second == 0 and at.microsecond == 0:
        return at - timedelta(days=1), "24:00"
    return at, f"{at.hour:02d}:{at.minute:02d}"


def format_weekday(at: datetime, lang: str, tz: ZoneInfo) -> str:
    """`Tuesday` / `周二`."""
    day = local(at, tz)
    return ZH_WEEKDAYS[day.weekday()] if language(lang) == "zh" else EN_WEEKDAYS[day.weekday()]


def format_date(at: datetime, lang: str, tz: ZoneInfo, *, year: bool = True) -> str:
    """`Tuesday 25 November 2025` / `2025年11月25日（周二）`."""
    return _date(local(at, tz), language(lang), year=year)


def _date(day: datetime, lang: Language, *, year: bool) -> str:
    if lang == "zh":
        prefix = f"{day.year}年" if year else ""
        return f"{prefix}{day.month}月{day.day}日（{ZH_WEEKDAYS[day.weekday()]}）"
    suffix = f" {day.year}" if year else ""
    return f"{EN_WEEKDAYS[day.weekday()]} {day.day} {EN_MONTHS[day.month - 1]}{suffix}"


def format_time(at: datetime, lang: str, tz: ZoneInfo) -> str:
    """`17:00` in both languages (24-hour clock)."""
    language(lang)
    day = local(at, tz)
    return f"{day.hour:02d}:{day.minute:02d}"


def format_datetime(at: datetime, lang: str, tz: ZoneInfo, *, year: bool = False) -> str:
    """`Tuesday 25 November, 17:00` / `11月25日（周二）17:00`; midnight is 24:00 of the day before."""
    lang_ = language(lang)
    day, clock = _end_of_day(local(at, tz))
    date_text = _date(day, lang_, year=year)
    return f"{date_text}{clock}" if lang_ == "zh" else f"{date_text}, {clock}"


def format_deadline(at: datetime, lang: str, tz: ZoneInfo) -> str:
    """A promise: `by Tuesday 25 November, 17:00` / `11月25日（周二）17:00前`."""
    text = format_datetime(at, lang, tz)
    return f"{text}前" if language(lang) == "zh" else f"by {text}"


def format_duration(amount: timedelta, lang: str) -> str:
    """`1 day 2 hours 30 minutes` / `1天2小时30分钟`, to the minute; under a minute is `1 minute`."""
    lang_ = language(lang)
    if amount < timedelta():
        raise ValueError(f"a duration cannot be negative: {amount}")
    minutes = max(1, round(amount.total_seconds() / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [(days, "day", "天"), (hours, "hour", "小时"), (minutes, "minute", "分钟")]
    if lang_ == "zh":
        return "".join(f"{n}{zh}" for n, _, zh in parts if n)
    return " ".join(f"{n} {en}{'' if n == 1 else 's'}" for n, en, _ in parts if n)
