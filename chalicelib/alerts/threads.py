"""What an alert means for one tenant's channels, given what was posted before: a new post, a
reply in the thread of the original, a prominent post for a level increase, an end-of-alert reply,
or nothing. Pure: the caller loads the thread and carries out the decision.

Alerts are objects that change: CAP Updates and Cancels name earlier alerts in `references`, and
every identifier of a thread maps to the same thread (a daily re-issue references yesterday's
update, not the first alert).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum

from chalicelib.alerts.model import Level


class Action(Enum):
    POST = "post"  # a new alert: a top-level post on every channel
    LEVEL_UP = "level_up"  # more severe than posted: a new prominent post, linked to the thread
    UPDATE = "update"  # a material change: a reply in the thread
    END = "end"  # cancelled, all clear, or below the tenant's level: the closing reply
    NOTHING = "nothing"


@dataclass(frozen=True)
class Facts:
    """The material facts of an alert for one tenant: a re-issue that changes none of them posts nothing."""

    level: Level
    hazard: str
    zones: tuple[str, ...]  # matched area names, sorted
    onset: datetime | None
    expires: datetime | None


@dataclass(frozen=True)
class Thread:
    """What was posted for an alert thread on a tenant's channels (stored per tenant)."""

    anchor: str  # the announcement whose posts later replies thread under
    facts: Facts
    ended: bool = False
    # The `sent` of the newest alert the thread was brought to (None: a row stored before it was
    # recorded): an older update read later (a slow poll, a retried job) must not rewind it. Only an
    # order, not what was posted: two threads that posted the same are equal, so unchanged rows are
    # not rewritten.
    sent: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    thread: Thread | None = None  # the thread as it is after this alert (to store), if any


def decide(
    *,
    facts: Facts | None,
    all_clear: bool,
    thread: Thread | None,
    min_level: Level,
    now: datetime,
) -> Decision:
    """`facts` is None when the alert does not concern the tenant (no matching area, not Actual).
    `thread` is the stored thread of any alert this one references, None for a new or unknown one."""
    if thread is None:
        return _unthreaded(facts, all_clear, min_level, now)
    return _threaded(facts, all_clear, thread, min_level, now)


def _threaded(
    facts: Facts | None, all_clear: bool, thread: Thread, min_level: Level, now: datetime
) -> Decision:
    over = _already_over(thread, now)
    if over:
        # An alert raised again after its thread ended or ran out (a daily re-issue of an expired
        # alert, an update after a cancel) is a new alert, in a thread of its own.
        return _unthreaded(facts, all_clear, min_level, now) if facts and not all_clear else over
    if all_clear or facts is None or facts.level < min_level:
        reason = "all clear" if all_clear else "no longer concerns the tenant"
        return Decision(Action.END, reason, replace(thread, ended=True))
    if _expired(facts, now):
        # Never posted late: an update that arrives after its own expiry says nothing.
        return Decision(Action.NOTHING, "expired", thread)
    if facts == thread.facts:
        return Decision(Action.NOTHING, "re-issue without material change", thread)
    if facts.level > thread.facts.level:
        return Decision(Action.LEVEL_UP, "level raised", replace(thread, facts=facts))
    return Decision(Action.UPDATE, "material change", replace(thread, facts=facts))


def _already_over(thread: Thread, now: datetime) -> Decision | None:
    if thread.ended:
        return Decision(Action.NOTHING, "thread already closed", thread)
    if _expired(thread.facts, now):
        # The posted alert ran out by itself: a late cancel or update closes the thread quietly.
        return Decision(Action.NOTHING, "thread expired", replace(thread, ended=True))
    return None


def _unthreaded(facts: Facts | None, all_clear: bool, min_level: Level, now: datetime) -> Decision:
    if all_clear:
        return Decision(Action.NOTHING, "end of an alert never posted")
    if facts is None:
        return Decision(Action.NOTHING, "does not concern the tenant")
    if facts.level < max(min_level, Level.YELLOW):  # green is never posted
        return Decision(Action.NOTHING, "below the tenant's level")
    if _expired(facts, now):
        return Decision(Action.NOTHING, "expired")
    return Decision(Action.POST, "new alert")


def _expired(facts: Facts, now: datetime) -> bool:
    return facts.expires is not None and facts.expires <= now
