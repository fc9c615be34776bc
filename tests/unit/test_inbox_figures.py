"""Response-time figures: the nearest-rank percentiles, buckets and waiting counts, Europe/Rome
periods, and measurements taken once per conversation."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.clock import ROME, iso
from chalicelib.config.models import OfficeHours
from chalicelib.inbox.figures import distribution, measured, nearest_rank, periods, summarise
from chalicelib.inbox.model import Citizen, Conversation

MONDAY_9 = datetime(2026, 11, 23, 9, tzinfo=ROME)
durations = st.lists(st.floats(0, 10 * 86400, allow_nan=False), max_size=60)


@settings(max_examples=300)
@given(durations.filter(bool), st.integers(1, 100))
def test_nearest_rank_is_an_observed_value_with_p_percent_at_or_below(
    values: list[float], percent: int
) -> None:
    rank = nearest_rank(values, percent)
    assert rank in values
    at_or_below = sum(1 for v in values if v <= rank)
    below = sum(1 for v in values if v < rank)
    assert 100 * at_or_below >= percent * len(values)  # at least p% within it
    assert 100 * below < percent * len(values)  # and it is the smallest such value


def test_nearest_rank_examples() -> None:
    assert nearest_rank([4, 1, 3, 2], 50) == 2  # the lower middle: no averaged, unobserved value
    assert nearest_rank([1, 2, 3], 50) == 2
    assert nearest_rank(list(range(1, 11)), 90) == 9
    assert nearest_rank(list(range(1, 101)), 7) == 7  # 7 / 100 * 100 is 7.000000000000001 in floats
    assert nearest_rank([], 50) is None


@given(durations, st.integers(0, 5))
def test_buckets_share_out_every_measured_value(values: list[float], waiting: int) -> None:
    shown = distribution(values, waiting)
    assert sum(b.count for b in shown.buckets) == shown.count == len(values)
    assert shown.waiting == waiting
    assert (shown.median_seconds is None) == (not values)


def test_bucket_bounds_are_exclusive() -> None:
    shown = distribution([899.9, 900, 3599, 86399, 86400, 10**6], 0)
    assert [(b.label, b.count) for b in shown.buckets] == [
        ("<15 min", 1),
        ("<1 h", 2),
        ("<3 h", 0),
        ("<8 h", 0),
        ("<24 h", 1),
        (">=24 h", 2),
    ]


def test_waiting_conversations_are_counted_not_zeroed() -> None:
    opened = iso(MONDAY_9)
    rows = [
        {"opened_at": opened, "first_response_office_seconds": 600.0, "resolution_office_seconds": 7200.0},
        {"opened_at": opened, "first_response_office_seconds": 1800.0},
        {"opened_at": opened},  # waiting for a reply
        {"opened_at": opened, "resolution_office_seconds": 60.0},  # closed without a reply
    ]
    shown = summarise(MONDAY_9, MONDAY_9 + timedelta(days=1), rows)
    assert shown.conversations == 4
    assert (shown.first_response.count, shown.first_response.waiting) == (2, 1)
    assert shown.first_response.median_seconds == 600.0 and shown.first_response.p90_seconds == 1800.0
    assert (shown.resolution.count, shown.resolution.waiting) == (2, 2)
    assert shown.resolved_without_reply == 1


def test_weeks_are_rome_weeks_across_dst_and_clipped_to_the_range() -> None:
    start, end = datetime(2026, 3, 25, 12, tzinfo=ROME), datetime(2026, 4, 8, tzinfo=ROME)
    weeks = periods(start, end, "week")
    assert weeks == [
        (start.astimezone(UTC), datetime(2026, 3, 30, tzinfo=ROME).astimezone(UTC)),  # CET to CEST: 167 h
        (
            datetime(2026, 3, 30, tzinfo=ROME).astimezone(UTC),
            datetime(2026, 4, 6, tzinfo=ROME).astimezone(UTC),
        ),
        (datetime(2026, 4, 6, tzinfo=ROME).astimezone(UTC), end.astimezone(UTC)),
    ]
    months = periods(datetime(2026, 12, 15, tzinfo=ROME), datetime(2027, 1, 2, tzinfo=ROME), "month")
    assert [lower.astimezone(ROME).date().isoformat() for lower, _ in months] == ["2026-12-15", "2027-01-01"]
    with pytest.raises(ValueError, match="more than"):
        periods(start, start + timedelta(days=500), "day")
    with pytest.raises(ValueError, match="before"):
        periods(end, start, "day")


@given(
    st.datetimes(datetime(2025, 1, 1), datetime(2027, 12, 31), timezones=st.just(UTC)),  # noqa: DTZ001 (hypothesis bounds are naive)
    st.integers(1, 90 * 86400),
    st.sampled_from(["day", "week", "month"]),
)
def test_periods_tile_the_range(start: datetime, seconds: int, period: str) -> None:
    end = start + timedelta(seconds=seconds)
    tiles = periods(start, end, period)  # type: ignore[arg-type]
    assert tiles[0][0] == start and tiles[-1][1] == end
    assert all(lower < upper for lower, upper in tiles)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(tiles))


def _conversation(**changes: object) -> Conversation:
    base = Conversation(
        tenant="comune-a",
        id="0" * 20,
        channel="telegram",
        platform="telegram",
        kind="direct",
        citizen_key="0" * 32,
        citizen=Citizen("telegram", "1", "Maria"),
        status="open",
        opened_at=MONDAY_9,
        last_activity_at=MONDAY_9,
        last_inbound_at=MONDAY_9,
        last_inbound_message_id="m",
        version=1,
        expires_at=0,
        figures_key=f"{iso(MONDAY_9)}#abc",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_measurements_are_taken_once_in_office_time() -> None:
    hours = OfficeHours()
    waiting = _conversation()
    answered = _conversation(first_response_at=MONDAY_9 + timedelta(hours=5))  # 13-14 is lunch
    resolved = replace(answered, resolved_at=MONDAY_9 + timedelta(hours=6))

    assert measured(waiting, answered, hours) == {
        "first_response_at": iso(MONDAY_9 + timedelta(hours=5)),
        "first_response_office_seconds": 4 * 3600,
    }
    assert measured(answered, resolved, hours) == {
        "resolved_at": iso(MONDAY_9 + timedelta(hours=6)),
        "resolution_office_seconds": 5 * 3600,
    }
    assert measured(resolved, replace(resolved, status="open"), hours) == {}
