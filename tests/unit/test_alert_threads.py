"""Alert threads: what an alert does to a tenant's channels given what was posted before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.alerts.model import Level
from chalicelib.alerts.threads import Action, Facts, Thread, decide

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
ORANGE = Facts(Level.ORANGE, "idrogeologico", ("Tosc-B",), NOW, NOW + timedelta(hours=20))
THREAD = Thread(anchor="20261122T0300001a2b3c4d", facts=ORANGE)


def _decide(
    facts: Facts | None,
    thread: Thread | None = None,
    *,
    all_clear: bool = False,
    min_level: Level = Level.YELLOW,
):
    return decide(facts=facts, all_clear=all_clear, thread=thread, min_level=min_level, now=NOW)


def test_a_new_alert_is_posted() -> None:
    assert _decide(ORANGE).action is Action.POST


@pytest.mark.parametrize(
    ("facts", "min_level", "why"),
    [
        (None, Level.YELLOW, "does not concern the tenant"),
        (Facts(Level.GREEN, "vento", ("Tosc-B",), NOW, NOW + timedelta(hours=5)), Level.GREEN, "below"),
        (Facts(Level.YELLOW, "vento", ("Tosc-B",), NOW, NOW + timedelta(hours=5)), Level.ORANGE, "below"),
        (Facts(Level.RED, "vento", ("Tosc-B",), NOW - timedelta(days=1), NOW), Level.YELLOW, "expired"),
    ],
)
def test_what_is_never_posted(facts: Facts | None, min_level: Level, why: str) -> None:
    decision = _decide(facts, min_level=min_level)
    assert decision.action is Action.NOTHING and why in decision.reason


def test_a_daily_reissue_without_material_change_posts_nothing_but_keeps_the_thread() -> None:
    decision = _decide(ORANGE, THREAD)
    assert (decision.action, decision.thread) == (Action.NOTHING, THREAD)


def test_a_material_change_replies_in_the_thread() -> None:
    later = Facts(Level.ORANGE, "idrogeologico", ("Tosc-B", "Tosc-C"), NOW, NOW + timedelta(hours=30))
    decision = _decide(later, THREAD)
    assert decision.action is Action.UPDATE
    assert decision.thread == Thread(THREAD.anchor, later)


def test_a_level_increase_is_a_new_prominent_post_and_raises_the_thread() -> None:
    red = Facts(Level.RED, "idrogeologico", ("Tosc-B",), NOW, NOW + timedelta(hours=20))
    decision = _decide(red, THREAD)
    assert decision.action is Action.LEVEL_UP and decision.thread is not None
    assert decision.thread.anchor == THREAD.anchor and decision.thread.facts.level is Level.RED


@pytest.mark.parametrize(
    ("facts", "all_clear"),
    [
        (ORANGE, True),  # Cancel, AllClear, expires == effective
        (None, False),  # the update no longer covers the tenant's area
        (Facts(Level.GREEN, "idrogeologico", ("Tosc-B",), NOW, NOW + timedelta(hours=20)), False),
    ],
)
def test_the_end_of_an_alert_closes_the_thread(facts: Facts | None, all_clear: bool) -> None:
    decision = _decide(facts, THREAD, all_clear=all_clear)
    assert decision.action is Action.END
    assert decision.thread == Thread(THREAD.anchor, ORANGE, ended=True)


def test_after_the_end_only_a_live_alert_raised_again_is_posted_as_new() -> None:
    closed = Thread(THREAD.anchor, ORANGE, ended=True)
    assert _decide(None, closed).action is Action.NOTHING
    assert _decide(ORANGE, closed, all_clear=True).action is Action.NOTHING
    # a daily re-issue of an alert whose thread was cancelled or ran out: a new thread
    assert _decide(ORANGE, closed).action is Action.POST


def test_an_update_of_an_expired_thread_that_is_live_again_is_a_new_alert() -> None:
    yesterday = Facts(
        Level.YELLOW, "temporali", ("Tosc-B",), NOW - timedelta(days=1), NOW - timedelta(hours=1)
    )
    today = Facts(Level.RED, "temporali", ("Tosc-B",), NOW, NOW + timedelta(hours=12))
    assert _decide(today, Thread("ieri", yesterday)).action is Action.POST


def test_cancel_of_an_unknown_alert_and_cancel_after_expiry_post_nothing() -> None:
    assert _decide(None, None, all_clear=True).action is Action.NOTHING
    expired = Thread(
        THREAD.anchor,
        Facts(Level.ORANGE, "vento", ("Tosc-B",), NOW - timedelta(days=1), NOW - timedelta(hours=1)),
    )
    decision = _decide(None, expired, all_clear=True)
    assert decision.action is Action.NOTHING and decision.thread is not None and decision.thread.ended


def test_an_update_of_an_unknown_alert_is_posted_as_new() -> None:
    assert _decide(ORANGE, None).action is Action.POST


LEVELS = st.sampled_from(list(Level))


@given(posted=LEVELS, update=LEVELS, min_level=LEVELS, all_clear=st.booleans())
def test_an_active_thread_never_gets_a_new_top_level_post_unless_the_level_rises(
    posted: Level, update: Level, min_level: Level, all_clear: bool
) -> None:
    thread = Thread("a", Facts(posted, "vento", ("Z",), NOW, NOW + timedelta(hours=5)))
    decision = _decide(
        Facts(update, "vento", ("Z",), NOW, NOW + timedelta(hours=6)),
        thread,
        all_clear=all_clear,
        min_level=min_level,
    )
    assert decision.action is not Action.POST
    if decision.action is Action.LEVEL_UP:
        assert update > posted and not all_clear
