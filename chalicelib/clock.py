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
