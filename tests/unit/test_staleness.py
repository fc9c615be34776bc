"""When a source counts as stale (the StaleSources metric and its alarm)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chalicelib.publishing.housekeeping import STALE_AFTER, is_stale
from chalicelib.storage.source_state import SourceState

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def test_a_source_never_polled_is_not_stale() -> None:
    assert not is_stale(None, NOW)
    assert not is_stale(SourceState("t", "s"), NOW)


def test_a_source_is_stale_when_its_last_success_is_too_old() -> None:
    state = SourceState("t", "s").succeeded(NOW - STALE_AFTER - timedelta(minutes=1))
    assert is_stale(state, NOW)
    assert not is_stale(state, NOW - timedelta(minutes=2))


def test_a_source_that_never_worked_is_stale_counted_from_its_first_poll() -> None:
    first = NOW - STALE_AFTER - timedelta(minutes=1)
    state = (
        SourceState("t", "s")
        .failed(first, "timeout", "timed out", None)
        .failed(NOW, "timeout", "timed out", None)
    )
    assert state.first_poll == first
    assert is_stale(state, NOW)


def test_a_failing_source_with_a_recent_success_is_not_yet_stale() -> None:
    state = SourceState("t", "s").succeeded(NOW - timedelta(hours=1)).failed(NOW, "http_status", "503", None)
    assert state.failing and not is_stale(state, NOW)
