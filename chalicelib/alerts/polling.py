"""Poll the alert sources: each distinct feed once per pass (an association's comuni often share
the MeteoAlarm region feed or the DPC bulletin), then every tenant listing it decides on its own.

Alerts cannot wait for EventBridge's one-minute tick, so the scheduled invocation loops: a pass,
a pause of the shortest `poll_every_seconds`, another pass, until too little time is left.
Each pass is a conditional GET per feed; an unchanged feed costs one request and one read.
A feed pushed by its WebSub hub (alerts.websub) goes through the same `read_alerts` and
`announce_alerts`, so a pushed body and a polled one are handled alike.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests

from chalicelib import observability as obs
from chalicelib.alerts.cap import MAX_CAP_BYTES, parse_cap
from chalicelib.alerts.errors import AlertError
from chalicelib.alerts.meteoalarm import MAX_LIST_BYTES, parse_atom, parse_warnings_json
from chalicelib.alerts.model import Alert
from chalicelib.alerts.pipeline import AlertOutcome, handle_alerts
from chalicelib.clock import iso, utcnow
from chalicelib.config.loader import current_config
from chalicelib.config.models import CapSource, Tenant
from chalicelib.http import new_session
from chalicelib.observability import logger
from chalicelib.publishing.lanes import enqueue
from chalicelib.sources.errors import FeedError
from chalicelib.sources.fetch import fetch_feed
from chalicelib.storage import deliveries as delivery_store
from chalicelib.storage.source_state import SourceState, get_source_state, save_source_state

# An unchanged feed still records a success this often (the staleness alarm reads it).
HEARTBEAT = timedelta(minutes=10)
# Leave this much of the invocation for the last pass (an unchanged pass takes milliseconds;
# deliveries are queued comune by comune, so a pass cut short loses nothing already announced).
# With a 60 s timeout and a 15 s period, passes run at 0, 15, 30 and 45 s of every minute.
PASS_BUDGET_SECONDS = 5.0

Member = tuple[Tenant, CapSource]


@dataclass
class FeedResult:
    url: str
    status: str  # unchanged | read | error | waiting
    complete: bool = True  # every tenant could handle the alerts
    reason: str | None = None
    outcomes: list[AlertOutcome] = field(default_factory=list)


@functools.cache
def feed_session() -> requests.Session:
    """The process's session for alert feeds and their CAP documents (kept alive across passes)."""
    return new_session()


def poll_alerts_until(seconds_left: Callable[[], float | None]) -> dict[str, Any]:
    """Passes over the alert feeds while the invocation has time for another one."""
    passes: list[dict[str, Any]] = []
    while True:
        passes.append(poll_alert_sources())
        left = seconds_left()
        pause = _pause_seconds()
        if left is None or left - pause < PASS_BUDGET_SECONDS:
            return {"passes": len(passes), "last": passes[-1]}
        time.sleep(pause)


def _pause_seconds() -> float:
    periods = [s.poll_every_seconds for t in current_config().tenants for s in t.alert_sources]
    return float(min(periods, default=60))


def poll_alert_sources(now: datetime | None = None) -> dict[str, Any]:
    """One pass: every distinct alert feed fetched once, each of its tenants deciding on its own."""
    now = now or utcnow()
    results = [_poll_feed_safely(url, members, now) for (url, _), members in alert_feeds().items()]
    return {
        "polled_at": iso(now),
        "feeds": [r.__dict__ | {"outcomes": [o.__dict__ for o in r.outcomes]} for r in results],
    }


def alert_feeds() -> dict[tuple[str, str], list[Member]]:
    """Every distinct alert feed, keyed by (url, format), with the tenants that list it."""
    feeds: dict[tuple[str, str], list[Member]] = defaultdict(list)
    for tenant in current_config().tenants:
        for source in tenant.alert_sources:
            feeds[(str(source.url), source.format)].append((tenant, source))
    return feeds


def _poll_feed_safely(url: str, members: list[Member], now: datetime) -> FeedResult:
    """_poll_feed, with anything unexpected contained to this feed: the others are still read."""
    try:
        return _poll_feed(url, members, now)
    except Exception:
        logger.exception("Alert feed crashed", extra={"sources": [f"{t.id}/{s.id}" for t, s in members]})
        obs.count(obs.FEED_ERRORS, reason="internal")
        return FeedResult(url, "error", reason="internal")


def _poll_feed(url: str, members: list[Member], now: datetime) -> FeedResult:
    states = [get_source_state(tenant.id, source.id) for tenant, source in members]
    lead = states[0]
    if lead.not_before and now < lead.not_before:
        return FeedResult(url, "waiting", reason="retry_after")  # the site asked us to wait
    try:
        fetched = fetch_feed(
            url,
            session=feed_session(),
            etag=lead.etag,
            last_modified=lead.last_modified,
            max_bytes=MAX_LIST_BYTES,
        )
        body_hash = hashlib.sha256(fetched.body).hexdigest()
        if fetched.not_modified or body_hash == lead.body_hash:
            for state in states:
                if state.failing or not state.last_success or now - state.last_success >= HEARTBEAT:
                    save_source_state(state.succeeded(now))
            return FeedResult(url, "unchanged")
        alerts, complete = read_alerts(members[0][1].format, fetched.body, fetched.url)
    except (FeedError, AlertError) as error:
        return _failed(url, members, states, error, now)
    result = announce_alerts(url, members, alerts, now)
    validators: dict[str, str | None] = {"etag": None, "last_modified": None, "body_hash": None}
    if complete and result.complete:  # else the next pass reads it all again (handled alerts are skipped)
        validators = {"etag": fetched.etag, "last_modified": fetched.last_modified, "body_hash": body_hash}
    for state in states:
        save_source_state(state.succeeded(now, initialized=True, **validators))
    return result


def announce_alerts(url: str, members: list[Member], alerts: tuple[Alert, ...], now: datetime) -> FeedResult:
    """Let every tenant listing the feed decide on its alerts, and queue what they announced.
    Shared by the poller and WebSub pushes: a feed body is handled the same whichever way it came."""
    result = FeedResult(url, "read")
    for tenant, source in members:
        try:
            outcomes, announced = handle_alerts(tenant, source, alerts, now)
        except Exception:
            # One comune's failure (its rows, its config) must not keep the alert from the others.
            logger.exception("Alert handling crashed", extra={"tenant": tenant.id, "source": source.id})
            obs.count(obs.FEED_ERRORS, reason="internal")
            result.complete = False
            continue
        result.outcomes.extend(outcomes)
        # Queued at once, tenant by tenant: a later failure or timeout cannot hold these back.
        for delivery in enqueue([d for a in announced for d in a.deliveries]):
            delivery_store.mark_enqueued(delivery, now)
    obs.count(obs.ALERTS_POSTED, sum(1 for o in result.outcomes if o.announcement))
    return result


def read_alerts(feed_format: str, body: bytes, url: str) -> tuple[tuple[Alert, ...], bool]:
    """The alerts of a feed body in one of the alert source formats, and whether all of them could
    be read (an Atom feed's linked documents may fail one by one). Raises AlertError only."""
    if feed_format == "meteoalarm_json":
        return parse_warnings_json(body, url=url), True
    if feed_format == "meteoalarm_atom":
        return _read_atom(body, url)
    return parse_cap(body, source_url=url), True


def _read_atom(body: bytes, url: str) -> tuple[tuple[Alert, ...], bool]:
    """The Atom feed lists each alert once per language and area: fetch each linked CAP document
    once per identifier. One broken document does not hide the others."""
    alerts: list[Alert] = []
    complete = True
    for entry in parse_atom(body, url=url).entries:
        if entry.cap_url is None:
            logger.warning("Atom entry without a CAP link", extra={"alert": entry.identifier})
            continue
        try:
            fetched = fetch_feed(
                entry.cap_url, session=feed_session(), etag=None, last_modified=None, max_bytes=MAX_CAP_BYTES
            )
            alerts.extend(parse_cap(fetched.body, source_url=fetched.url))
        except (FeedError, AlertError) as error:
            complete = False
            obs.count(obs.FEED_ERRORS, reason=error.reason)
            logger.warning(
                "Linked CAP document unreadable", extra={"alert": entry.identifier, "error": str(error)}
            )
    return tuple(alerts), complete


def _failed(
    url: str, members: list[Member], states: list[SourceState], error: FeedError | AlertError, now: datetime
) -> FeedResult:
    retry_after = getattr(error, "retry_after", None)
    not_before = now + timedelta(seconds=retry_after) if retry_after else None
    for state in states:
        save_source_state(state.failed(now, error.reason, str(error), not_before))
    obs.count(obs.FEED_ERRORS, reason=error.reason)
    logger.warning(
        "Alert feed failed",
        extra={
            "sources": [f"{t.id}/{s.id}" for t, s in members],
            "reason": error.reason,
            "error": str(error),
        },
    )
    return FeedResult(url, "error", reason=error.reason)
