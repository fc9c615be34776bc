"""Office-time arithmetic: Europe/Rome wall-clock hours with DST, lunch breaks, weekends, Italian
national holidays (Easter Monday computed), patron saint and closed days; property tests for the
laws the figures and the SLA rely on (additivity, bounds, inverse)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.clock import ROME
from chalicelib.config.models import OfficeHours
from chalicelib.inbox.hours import (
    add_office_seconds,
    easter_sunday,
    is_closed,
    national_holidays,
    office_seconds,
)

HOUR = 3600.0
DEFAULT = OfficeHours()  # Mon-Thu 09-13 + 14-17, Fri 09-13
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
ALWAYS = OfficeHours(**{day: ["00:00-24:00"] for day in WEEKDAYS})


def rome(*args: int) -> datetime:
    return datetime(*args, tzinfo=ROME)  # type: ignore[misc]


def test_easter_matches_the_calendar() -> None:
    known = {
        2024: date(2024, 3, 31),
        2025: date(2025, 4, 20),
        2026: date(2026, 4, 5),
        2038: date(2038, 4, 25),
    }
    assert {year: easter_sunday(year) for year in known} == known
    assert date(2026, 4, 6) in national_holidays(2026)  # Easter Monday


def test_national_holidays_include_san_francesco_from_2026() -> None:
    assert date(2025, 10, 4) not in national_holidays(2025)
    assert date(2026, 10, 4) in national_holidays(2026)
    assert len(national_holidays(2027)) == 12


def test_lunch_break_and_weekend_do_not_count() -> None:
    # Monday 12:50 -> 14:10: 10 minutes before lunch, 10 after.
    assert office_seconds(rome(2026, 11, 23, 12, 50), rome(2026, 11, 23, 14, 10), DEFAULT) == 20 * 60
    # Friday 12:00 -> Monday 10:00: Friday 12-13 and Monday 9-10.
    assert office_seconds(rome(2026, 11, 20, 12, 0), rome(2026, 11, 23, 10, 0), DEFAULT) == 2 * HOUR


def test_holidays_patron_and_closed_days_are_closed() -> None:
    hours = OfficeHours(patron_saint_day="06-24", closed_on=[date(2026, 12, 7)])
    for day in (date(2026, 4, 6), date(2026, 6, 24), date(2026, 12, 7), date(2026, 12, 8)):
        assert is_closed(day, hours)
        start = datetime.combine(day, datetime.min.time(), tzinfo=ROME)
        assert office_seconds(start, start + timedelta(days=1), hours) == 0
    assert not is_closed(date(2026, 6, 23), hours)


def test_dst_days_count_real_time() -> None:
    # An office open all day has 23 hours on the spring-forward day and 25 on the fall-back day.
    assert office_seconds(rome(2026, 3, 29), rome(2026, 3, 30), ALWAYS) == 23 * HOUR
    assert office_seconds(rome(2026, 10, 25), rome(2026, 10, 26), ALWAYS) == 25 * HOUR
    night = OfficeHours(sunday=["01:00-04:00"])
    assert office_seconds(rome(2026, 3, 29), rome(2026, 3, 30), night) == 2 * HOUR
    assert office_seconds(rome(2026, 10, 25), rome(2026, 10, 26), night) == 4 * HOUR
    # Wall times inside the spring-forward gap (02:45) do not exist: 01:00 CET to 04:00 CEST is 2 real
    # hours, not the 1 h 45 + 1 h the two intervals would add up to.
    gap = OfficeHours(sunday=["01:00-02:45", "03:00-04:00"])
    assert office_seconds(rome(2026, 3, 29), rome(2026, 3, 30), gap) == 2 * HOUR
    # Daytime hours are not affected.
    assert office_seconds(rome(2026, 3, 30, 8), rome(2026, 3, 30, 18), DEFAULT) == 7 * HOUR


def test_sla_deadline_skips_lunch_weekend_and_easter_monday() -> None:
    # Friday 3 April 2026, 12:30 + 3 h: 30 min on Friday, Easter Monday closed, Tuesday 9:00 + 2.5 h.
    assert add_office_seconds(rome(2026, 4, 3, 12, 30), 3 * HOUR, DEFAULT) == rome(2026, 4, 7, 11, 30)
    # Monday 12:30 + 1 h: 30 min before lunch, 30 after.
    assert add_office_seconds(rome(2026, 11, 23, 12, 30), HOUR, DEFAULT) == rome(2026, 11, 23, 14, 30)
    assert add_office_seconds(rome(2026, 11, 22, 3), 0, DEFAULT) == rome(2026, 11, 22, 3)


def test_a_never_open_office_and_naive_times_are_refused() -> None:
    closed = OfficeHours(monday=[], tuesday=[], wednesday=[], thursday=[], friday=[])
    with pytest.raises(ValueError, match="never open"):
        add_office_seconds(rome(2026, 1, 1), 60, closed)
    with pytest.raises(ValueError, match="aware"):
        office_seconds(datetime(2026, 1, 1), datetime(2026, 1, 2), DEFAULT)  # noqa: DTZ001


# ---- properties ------------------------------------------------------------------------------


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# Interval boundaries on a 15-minute grid, including the DST gap and "24:00" as an end.
day_intervals = (
    st.lists(st.integers(0, 96), min_size=0, max_size=6, unique=True)
    .map(sorted)
    .map(lambda marks: marks[: len(marks) // 2 * 2])
    .map(
        lambda marks: [
            f"{_hhmm(a * 15)}-{_hhmm(b * 15)}" for a, b in zip(marks[::2], marks[1::2], strict=True)
        ]
    )
)
office_hours = st.builds(
    OfficeHours,
    monday=day_intervals,
    tuesday=day_intervals,
    wednesday=day_intervals,
    thursday=day_intervals,
    friday=day_intervals,
    saturday=day_intervals,
    sunday=day_intervals,
    patron_saint_day=st.sampled_from([None, "03-29", "06-24", "10-25"]),
    closed_on=st.lists(st.dates(date(2026, 3, 20), date(2026, 11, 5)), max_size=3),
)
# Moments near the DST changes, Easter and ordinary weeks of 2026.
ANCHORS = [
    datetime(2026, 3, 29, 1, tzinfo=UTC),
    datetime(2026, 10, 25, 1, tzinfo=UTC),
    datetime(2026, 4, 5, tzinfo=UTC),
]
moments = st.builds(
    lambda anchor, offset: anchor + timedelta(seconds=offset),
    st.sampled_from(ANCHORS),
    st.integers(-4 * 86400, 4 * 86400),
)


@settings(max_examples=150, deadline=None)
@given(office_hours, moments, moments, moments)
def test_office_time_is_additive(hours: OfficeHours, x: datetime, y: datetime, z: datetime) -> None:
    a, b, c = sorted((x, y, z))
    whole = office_seconds(a, c, hours)
    assert math.isclose(whole, office_seconds(a, b, hours) + office_seconds(b, c, hours), abs_tol=1e-6)


@settings(max_examples=150, deadline=None)
@given(office_hours, moments, moments)
def test_office_time_is_within_wall_time(hours: OfficeHours, x: datetime, y: datetime) -> None:
    start, end = sorted((x, y))
    assert 0 <= office_seconds(start, end, hours) <= (end - start).total_seconds()
    assert office_seconds(end, start, hours) == 0 or start == end


@settings(max_examples=150, deadline=None)
@given(office_hours, moments, st.floats(0, 1))
def test_add_office_seconds_inverts_office_seconds(hours: OfficeHours, start: datetime, share: float) -> None:
    # A target the calendar reaches within 60 days, whatever its hours.
    seconds = share * office_seconds(start, start + timedelta(days=60), hours)
    due = add_office_seconds(start, seconds, hours)
    assert start <= due <= start + timedelta(days=60)
    assert math.isclose(office_seconds(start, due, hours), seconds, abs_tol=1e-5)
    # The earliest such moment: a second earlier, less office time had passed (when any was needed).
    if seconds >= 1:
        assert office_seconds(start, due - timedelta(seconds=1), hours) < seconds


@settings(max_examples=100, deadline=None)
@given(office_hours, moments, moments)
def test_the_deadline_of_a_measured_interval_is_not_after_its_end(
    hours: OfficeHours, x: datetime, y: datetime
) -> None:
    start, end = sorted((x, y))
    measured = office_seconds(start, end, hours)
    if measured:
        assert add_office_seconds(start, measured, hours) <= end + timedelta(microseconds=1)


@settings(max_examples=100, deadline=None)
@given(office_hours, st.dates(date(2026, 1, 1), date(2026, 12, 31)))
def test_closed_days_have_no_office_time(hours: OfficeHours, day: date) -> None:
    start = datetime.combine(day, datetime.min.time(), tzinfo=ROME)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=ROME)
    if is_closed(day, hours):
        assert office_seconds(start, end, hours) == 0
