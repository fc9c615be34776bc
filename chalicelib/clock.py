"""Time in one place: aware UTC datetimes for storage, Europe/Rome for what people read."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

ROME = ZoneInfo("Europe/Rome")


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """Milliseconds, fixed width: these strings are compared and sorted as DynamoDB keys."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def seconds_left(lambda_context: object) -> float | None:
    """Time left in this invocation, from the Lambda context (None where there is none)."""
    remaining = getattr(lambda_context, "get_remaining_time_in_millis", None)
    return float(remaining()) / 1000 if callable(remaining) else None
