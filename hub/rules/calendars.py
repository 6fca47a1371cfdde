"""`calendars.yaml`: named business-hours calendars, built into `BusinessCalendar` objects."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holiday_data
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from hub.sla.calendar import WEEKDAYS, BusinessCalendar, parse_hours

DEFAULT = "default"


@functools.cache
def _supported() -> dict[str, list[str]]:
    return dict(holiday_data.list_supported_countries())


def _hours(value: list[str]) -> list[str]:
    parse_hours(value)
    return value


Hours = Annotated[list[str], AfterValidator(_hours)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Holidays(BaseModel):
    """Public holidays of a country (and subdivision), plus dates the office is closed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    country: str | None = None
    subdivision: str | None = None
    dates: list[dt.date] = []

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str | None) -> str | None:
        if value is not None and value.upper() not in _supported():
            raise ValueError(f"no public holiday data for country {value!r}; use a code like GB, CN, US")
        return value.upper() if value else value

    @model_validator(mode="after")
    def _known_subdivision(self) -> Holidays:
        if self.subdivision is not None:
            if self.country is None:
                raise ValueError("a subdivision needs a country")
            known = _supported().get(self.country, [])
            if self.subdivision not in known:
                raise ValueError(
                    f"no subdivision {self.subdivision!r} for {self.country}; known: {', '.join(known[:20])}"
                )
        return self


class CalendarSpec(BaseModel):
    """One calendar: a time zone, weekly opening hours (split shifts allowed), holidays, extra days."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time_zone: str
    hours: dict[Weekday, Hours]
    holidays: Holidays = Holidays()
    extra_working_days: dict[dt.date, Hours] = {}

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"expected a time zone like Europe/London or Asia/Shanghai; got {value!r}"
            ) from None
        return value

    def build(self, name: str) -> BusinessCalendar:
        """The calendar object."""
        return BusinessCalendar.build(
            name,
            self.time_zone,
            {str(day): hours for day, hours in self.hours.items()},
            country=self.holidays.country,
            subdivision=self.holidays.subdivision,
            closed=list(self.holidays.dates),
            extra_working=dict(self.extra_working_days),
        )


BUILT_IN = CalendarSpec(
    time_zone="UTC",
    hours={day: ["09:00-17:00"] for day in WEEKDAYS[:5]},
)


class CalendarsFile(BaseModel):
    """The file: `calendars: {<name>: {...}}`; a calendar named `default` must exist."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    calendars: dict[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")], CalendarSpec] = Field(
        default_factory=lambda: {DEFAULT: BUILT_IN}
    )

    @field_validator("calendars")
    @classmethod
    def _has_default(cls, value: dict[str, CalendarSpec]) -> dict[str, CalendarSpec]:
        if DEFAULT not in value:
            raise ValueError(f"a calendar named {DEFAULT!r} must exist; found: {', '.join(value) or 'none'}")
        return value

    def build(self) -> Mapping[str, BusinessCalendar]:
        """Every calendar, by name."""
        return {name: spec.build(name) for name, spec in self.calendars.items()}
