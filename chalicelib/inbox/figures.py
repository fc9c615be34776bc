"""Response-time figures: measured once per conversation, kept anonymous, reported honestly.

Each conversation has one figures row (channel, kind, when it opened, and once known the office
time to the first staff reply and to the first resolution). The row holds no conversation id and
no citizen data, so it survives erasure and retention. Measurements use the tenant's office hours
in force when they were taken; reopening never touches them.

Reports give, per period, the count, the median and the 90th percentile by the nearest-rank method
(the smallest measured value with at least p% of the values at or below it: always a real
observation, and "90% were answered within p90" holds exactly), a distribution in buckets, and the
conversations still waiting, which are counted as waiting, never as zeros.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from chalicelib.clock import ROME, epoch, iso
from chalicelib.config.models import OfficeHours
from chalicelib.inbox.hours import office_seconds
from chalicelib.inbox.model import Conversation
from chalicelib.storage import dynamo, keys

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = ("day", "week", "month")
FIGURES_TTL = timedelta(days=5 * 366)
MAX_PERIODS = 400
# The measurements a figures row gains: office seconds to the first staff reply, to the first resolution.
FIRST_RESPONSE = "first_response_office_seconds"
RESOLUTION = "resolution_office_seconds"
# Upper bounds of office time, in seconds; the last bucket is open-ended.
BUCKETS: tuple[tuple[str, float | None], ...] = (
    ("<15 min", 15 * 60),
    ("<1 h", 3600),
    ("<3 h", 3 * 3600),
    ("<8 h", 8 * 3600),
    ("<24 h", 24 * 3600),
    (">=24 h", None),
)


@dataclass(frozen=True)
class Bucket:
    label: str
    upper_seconds: float | None  # exclusive; None for the last, open-ended bucket
    count: int


@dataclass(frozen=True)
class Distribution:
    count: int  # measured
    waiting: int  # not measured yet: reported as waiting, never as a zero duration
    median_seconds: float | None  # None when nothing was measured
    p90_seconds: float | None
    buckets: tuple[Bucket, ...]


@dataclass(frozen=True)
class PeriodFigures:
    start: datetime
    end: datetime
    conversations: int  # opened in the period
    first_response: Distribution  # waiting: no staff reply yet and not resolved
    resolution: Distribution  # waiting: not resolved yet
    resolved_without_reply: int  # resolved with no staff reply (not waiting, not measured)


# ---- rows -----------------------------------------------------------------------------------


def row_key(tenant: str, figures_key: str) -> dict[str, str]:
    return {"pk": keys.figures_pk(tenant, figures_key[:7]), "sk": figures_key}


def base_attributes(conversation: Conversation) -> dict[str, Any]:
    return {
        "channel": conversation.channel,
        "kind": conversation.kind,
        "opened_at": iso(conversation.opened_at),
        "expires_at": epoch(conversation.opened_at + FIGURES_TTL),
    }


def measured(old: Conversation, new: Conversation, hours: OfficeHours) -> dict[str, Any]:
    """The measurements a change completes: the first response or the first resolution."""
    found: dict[str, Any] = {}
    if old.first_response_at is None and new.first_response_at is not None:
        found["first_response_at"] = iso(new.first_response_at)
        found[FIRST_RESPONSE] = office_seconds(new.opened_at, new.first_response_at, hours)
    if old.resolved_at is None and new.resolved_at is not None:
        found["resolved_at"] = iso(new.resolved_at)
        found[RESOLUTION] = office_seconds(new.opened_at, new.resolved_at, hours)
    return found


# ---- arithmetic -----------------------------------------------------------------------------


def nearest_rank(values: Sequence[float], percent: int) -> float | None:
    """The nearest-rank percentile: the value at rank ceil(percent/100 * n) of the sorted values."""
    if not values:
        return None
    rank = max(1, -(-percent * len(values) // 100))  # integer ceiling: no float rounding at the edges
    return sorted(values)[rank - 1]


def distribution(values: Sequence[float], waiting: int) -> Distribution:
    counts = [0] * len(BUCKETS)
    for value in values:
        counts[next(i for i, (_, upper) in enumerate(BUCKETS) if upper is None or value < upper)] += 1
    return Distribution(
        count=len(values),
        waiting=waiting,
        median_seconds=nearest_rank(values, 50),
        p90_seconds=nearest_rank(values, 90),
        buckets=tuple(Bucket(label, upper, n) for (label, upper), n in zip(BUCKETS, counts, strict=True)),
    )


def summarise(start: datetime, end: datetime, rows: Sequence[dict[str, Any]]) -> PeriodFigures:
    responses = [float(r[FIRST_RESPONSE]) for r in rows if FIRST_RESPONSE in r]
    resolutions = [float(r[RESOLUTION]) for r in rows if RESOLUTION in r]
    unanswered = [r for r in rows if FIRST_RESPONSE not in r]
    resolved_unanswered = sum(1 for r in unanswered if RESOLUTION in r)
    return PeriodFigures(
        start=start,
        end=end,
        conversations=len(rows),
        first_response=distribution(responses, len(unanswered) - resolved_unanswered),
        resolution=distribution(resolutions, len(rows) - len(resolutions)),
        resolved_without_reply=resolved_unanswered,
    )


def periods(start: datetime, end: datetime, period: Period) -> list[tuple[datetime, datetime]]:
    """Calendar periods of Europe/Rome (weeks start on Monday) covering [start, end), clipped to it."""
    if period not in PERIODS:
        raise ValueError(f"period: one of {', '.join(PERIODS)}")
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise ValueError("period: start and end must be aware, with start before end")
    bounds: list[tuple[datetime, datetime]] = []
    for lower, upper in _calendar(start, period):
        if lower >= end:
            break
        bounds.append((max(lower, start.astimezone(UTC)), min(upper, end.astimezone(UTC))))
        if len(bounds) > MAX_PERIODS:
            raise ValueError(f"period: more than {MAX_PERIODS} periods; choose a longer period")
    return bounds


def _calendar(start: datetime, period: Period) -> Iterator[tuple[datetime, datetime]]:
    local = start.astimezone(ROME).date()
    if period == "week":
        local -= timedelta(days=local.weekday())
    elif period == "month":
        local = local.replace(day=1)
    while True:
        following = (
            (local + timedelta(days=32)).replace(day=1)
            if period == "month"
            else local + timedelta(days=7 if period == "week" else 1)
        )
        yield _midnight(local), _midnight(following)
        local = following


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ROME).astimezone(UTC)


# ---- report ---------------------------------------------------------------------------------


def report(
    tenant: str, *, start: datetime, end: datetime, channel: str | None = None, period: Period = "week"
) -> list[PeriodFigures]:
    """Figures of the conversations opened in [start, end), per period, from the figures rows only."""
    bounds = periods(start, end, period)
    rows = sorted(_rows(tenant, bounds[0][0], bounds[-1][1], channel), key=lambda r: str(r["opened_at"]))
    opened = [str(r["opened_at"]) for r in rows]  # ISO UTC strings sort as the instants do
    return [
        summarise(
            lower,
            upper,
            rows[bisect.bisect_left(opened, iso(lower)) : bisect.bisect_left(opened, iso(upper))],
        )
        for lower, upper in bounds
    ]


def _rows(tenant: str, start: datetime, end: datetime, channel: str | None) -> Iterator[dict[str, Any]]:
    """One Query per UTC month in range (the partition), by the opened-at prefix of the sort key."""
    paginator = dynamo.client().get_paginator("query")
    month = start.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    while month < end:
        values = {
            ":pk": keys.figures_pk(tenant, month.strftime("%Y-%m")),
            ":low": iso(start),
            ":high": iso(end),
        }
        request: dict[str, Any] = {
            "TableName": dynamo.table_name(),
            # The sort key is "{opened iso}#{id}": between the two instants is [start, end).
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
        }
        if channel:
            request["FilterExpression"] = "#channel = :channel"
            request["ExpressionAttributeNames"] = {"#channel": "channel"}
            values[":channel"] = channel
        for page in paginator.paginate(**request, ExpressionAttributeValues=dynamo.values(values)):
            yield from (dynamo.from_dynamo(item) for item in page["Items"])
        month = (month + timedelta(days=32)).replace(day=1)
