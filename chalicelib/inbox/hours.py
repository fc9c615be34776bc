"""Office time: how much of an interval fell in a tenant's office hours, in Europe/Rome.

Office hours are wall-clock intervals per weekday; closed days are Italian national holidays,
the comune's patron saint's day and its own closed dates. Each open interval is turned into a real
(UTC) interval before measuring, so DST days count what really elapsed: an office open 00:00-24:00
has 23 hours on the last Sunday of March and 25 on the last Sunday of October. Office time is the
measure of [start, end) intersected with those intervals, hence additive:
office(a, c) == office(a, b) + office(b, c).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

from chalicelib.clock import ROME
from chalicelib.config.models import OfficeHours

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# add_office_seconds gives up after this many days: a target no office calendar reaches.
_HORIZON_DAYS = 3 * 366
_HOURS_A_DAY = 24
# Fixed-date national holidays (L. 260/1949 and later amendments).
_FIXED_HOLIDAYS = ((1, 1), (1, 6), (4, 25), (5, 1), (6, 2), (8, 15), (11, 1), (12, 8), (12, 25), (12, 26))
# San Francesco d'Assisi, a national holiday again from 2026 (L. 151/2025).
_SAN_FRANCESCO = (10, 4)
_SAN_FRANCESCO_SINCE = 2026

Interval = tuple[datetime, datetime]


def easter_sunday(year: int) -> date:
    """Gregorian Easter (the anonymous algorithm, Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    weekday_offset = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * weekday_offset) // 451
    month = (h + weekday_offset - 7 * m + 114) // 31
    day = (h + weekday_offset - 7 * m + 114) % 31 + 1
    return date(year, month, day)


@functools.cache
def national_holidays(year: int) -> frozenset[date]:
    fixed = [*_FIXED_HOLIDAYS, *([_SAN_FRANCESCO] if year >= _SAN_FRANCESCO_SINCE else [])]
    easter_monday = easter_sunday(year) + timedelta(days=1)
    return frozenset({date(year, month, day) for month, day in fixed} | {easter_monday})


def is_closed(day: date, hours: OfficeHours) -> bool:
    """A closed day whatever its weekday's hours say."""
    if day in national_holidays(day.year) or day in hours.closed_on:
        return True
    return hours.patron_saint_day is not None and day.strftime("%m-%d") == hours.patron_saint_day


def office_seconds(start: datetime, end: datetime, hours: OfficeHours) -> float:
    """Seconds of office time in [start, end); 0 when end is not after start."""
    return _office_time(_utc(start), _utc(end), hours).total_seconds()


def add_office_seconds(start: datetime, seconds: float, hours: OfficeHours) -> datetime:
    """The earliest moment by which `seconds` of office time have passed since `start` (the
    inverse of office_seconds: office_seconds(start, result) == seconds). When an SLA is due."""
    if seconds < 0:
        raise ValueError("seconds must not be negative")
    start = _utc(start)
    remaining = timedelta(seconds=seconds)
    if not remaining:
        return start
    if not any(getattr(hours, day) for day in _WEEKDAYS):
        raise ValueError("the office is never open")
    for day in _days(start, start + timedelta(days=_HORIZON_DAYS)):
        for opens, closes in _open_intervals(day, hours):
            begin = max(opens, start)
            if closes <= begin:
                continue
            if remaining <= closes - begin:
                return begin + remaining
            remaining -= closes - begin
    raise ValueError(f"office time of {seconds} s is not reached within {_HORIZON_DAYS} days")


def _office_time(start: datetime, end: datetime, hours: OfficeHours) -> timedelta:
    total = timedelta()
    if end <= start:
        return total
    for day in _days(start, end):
        for opens, closes in _open_intervals(day, hours):
            begin, finish = max(opens, start), min(closes, end)
            if finish > begin:
                total += finish - begin
    return total


def _days(start: datetime, end: datetime) -> Iterator[date]:
    """Every Rome calendar day that [start, end] touches."""
    day, last = start.astimezone(ROME).date(), end.astimezone(ROME).date()
    while day <= last:
        yield day
        day += timedelta(days=1)


def _open_intervals(day: date, hours: OfficeHours) -> list[Interval]:
    """The day's open intervals as real UTC intervals, merged. On the spring-forward day a wall time
    that does not exist (02:30) maps past the gap, which may make intervals overlap or vanish:
    merging keeps office time a plain measure (never counted twice, never above wall time)."""
    if is_closed(day, hours):
        return []
    spans = sorted(
        (opens, closes)
        for opens, closes in (_interval(day, text) for text in getattr(hours, _WEEKDAYS[day.weekday()]))
        if closes > opens
    )
    merged: list[Interval] = []
    for opens, closes in spans:
        if merged and opens <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], closes))
        else:
            merged.append((opens, closes))
    return merged


def _interval(day: date, text: str) -> Interval:
    opens, closes = text.split("-")
    return _moment(day, opens), _moment(day, closes)


def _moment(day: date, hhmm: str) -> datetime:
    hour, minute = (int(part) for part in hhmm.split(":"))
    if hour == _HOURS_A_DAY:  # "24:00" (the pattern allows up to 24:59): the end of the day, no later
        return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=ROME).astimezone(UTC)
    return datetime.combine(day, time(hour, minute), tzinfo=ROME).astimezone(UTC)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("office time needs aware datetimes")
    return moment.astimezone(UTC)
