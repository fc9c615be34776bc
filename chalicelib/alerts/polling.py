"""Poll the alert sources: each distinct feed once per pass (an association's comuni, or every comune
of Italy, may share the MeteoAlarm feed or the DPC bulletin), then every tenant listing it decides on
its own (chalicelib/alerts/fanout.py: inline for a few, by jobs on the urgent lane for many).

Alerts cannot wait for EventBridge's one-minute tick, so the scheduled invocation loops: a pass,
a pause of the shortest `poll_every_seconds`, another pass, until too little time is left.
Each pass is a conditional GET per feed and one read of the feed's state row, however many tenants
list it; an unchanged feed costs nothing more. A changed feed is read once (an Atom feed fetches only
the CAP documents its last snapshot lacks, in parallel), its alerts stored as a snapshot, then
announced. A change in who lists the feed (or in their zones) makes the next pass announce the
current body again, changed or not, so a comune added mid-crisis gets the alerts in force.
A body pushed by the feed's WebSub hub (alerts.websub) is handled by `run_push_job` the same way.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from typing import Any

import requests
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import observability as obs
from chalicelib.alerts.cap import MAX_CAP_BYTES, parse_cap
from chalicelib.alerts.errors import AlertError
from chalicelib.alerts.fanout import (
    Feed,
    FeedResult,
    Member,
    alert_feeds,
    announce,
    feed_by_key,
    members_digest,
    run_announce_job,
)
from chalicelib.alerts.meteoalarm import MAX_LIST_BYTES, AtomEntry, parse_atom, parse_warnings_json
from chalicelib.alerts.model import Alert
from chalicelib.clock import iso, utcnow
from chalicelib.config.loader import current_config
from chalicelib.http import new_session
from chalicelib.observability import logger
from chalicelib.publishing.lanes import AlertJob, AnnounceJob, PushJob
from chalicelib.sources.errors import FeedError
from chalicelib.sources.fetch import fetch_feed
from chalicelib.storage.alert_feeds import feed_key, get_pushed_body, get_snapshot, put_snapshot
from chalicelib.storage.source_state import SourceState, feed_state, save_feed_state

# An unchanged feed still records a success this often (the staleness alarm reads it).
HEARTBEAT = timedelta(minutes=10)
# Leave this much of the invocation for the last pass (an unchanged pass takes milliseconds;
# deliveries are queued comune by comune, so a pass cut short loses nothing already announced).
# With a 60 s timeout and a 15 s period, passes run at 0, 15, 30 and 45 s of every minute.
PASS_BUDGET_SECONDS = 5.0
# An Atom feed's new CAP documents are fetched this many at a time (the feed session's pool holds 10)
# and must all be in within the deadline: one that is not makes the read incomplete (read again next
# pass) without holding back the alerts of the others.
ATOM_FETCH_WORKERS = 6
ATOM_DEADLINE_SECONDS = 8.0
ATOM_FORMAT = "meteoalarm_atom"


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
    results = [_poll_feed_safely(feed, members, now) for feed, members in alert_feeds().items()]
    return {
        "polled_at": iso(now),
        "feeds": [r.__dict__ | {"outcomes": [o.__dict__ for o in r.outcomes]} for r in results],
    }


def _poll_feed_safely(feed: Feed, members: list[Member], now: datetime) -> FeedResult:
    """_poll_feed, with anything unexpected contained to this feed: the others are still read."""
    try:
        return _poll_feed(feed, members, now)
    except Exception:
        logger.exception("Alert feed crashed", extra={"feed": feed[0], "members": len(members)})
        obs.count(obs.FEED_ERRORS, reason="internal")
        return FeedResult(feed[0], "error", reason="internal")


def _poll_feed(feed: Feed, members: list[Member], now: datetime) -> FeedResult:
    url, key = feed[0], feed_key(*feed)
    state = feed_state(key)
    if state.not_before and now < state.not_before:
        return FeedResult(url, "waiting", reason="retry_after")  # the site asked us to wait
    digest = members_digest(members)
    same_members = digest == state.members_digest
    try:
        fetched = fetch_feed(
            url,
            session=feed_session(),
            # New members need the body even if it has not changed: ask for it unconditionally.
            etag=state.etag if same_members else None,
            last_modified=state.last_modified if same_members else None,
            max_bytes=MAX_LIST_BYTES,
        )
        body_hash = hashlib.sha256(fetched.body).hexdigest()
        if same_members and (fetched.not_modified or body_hash == state.body_hash):
            if state.failing or not state.last_success or now - state.last_success >= HEARTBEAT:
                _save(state.succeeded(now))
            return FeedResult(url, "unchanged")
        result, snapshot = read_and_announce(feed, members, fetched.body, fetched.url, state=state, now=now)
    except (FeedError, AlertError) as error:
        return _failed(feed, members, state, error, now)
    # An incomplete read is read again next pass (no validators kept), fetching only what it lacks.
    # The members' digest is kept even so: with `announced_snapshot`, that read announces again only
    # if it finds something new (or the announce itself was incomplete).
    validators: dict[str, str | None] = dict.fromkeys(("etag", "last_modified", "body_hash"))
    if result.complete:
        validators = {"etag": fetched.etag, "last_modified": fetched.last_modified, "body_hash": body_hash}
    _save(
        state.succeeded(
            now,
            initialized=True,
            snapshot=snapshot or state.snapshot,
            members_digest=digest,
            announced_snapshot=result.announced,
            **validators,
        )
    )
    return result


def _save(state: SourceState) -> None:
    """Save the feed's state unless its row was written since this pass read it. An announce job of
    this pass may already have run and found other members (forget_members): writing the digest back
    would keep the next pass from announcing again. Another pass's or a push's write is as recent as
    this one; whatever this pass could not record (its validators) only makes the next pass read the
    feed again."""
    if not save_feed_state(state):
        logger.info("Alert feed state written meanwhile: this pass's not saved", extra={"feed": state.source})


def read_and_announce(
    feed: Feed, members: list[Member], body: bytes, url: str, *, state: SourceState, now: datetime
) -> tuple[FeedResult, str | None]:
    """Read a feed body (an Atom feed reusing what the feed's last snapshot holds), store its alerts
    as a snapshot and announce them; the result (incomplete if any part of the read was) and the
    snapshot's key. Raises AlertError only."""
    feed_format = feed[1]
    known = _previous_alerts(feed, state) if feed_format == ATOM_FORMAT else ()
    alerts, complete = read_alerts(feed_format, body, url, known=known)
    snapshot = _store_snapshot(feed, alerts, now)
    if snapshot is not None and (snapshot, members_digest(members)) == (
        state.announced_snapshot,
        state.members_digest,
    ):
        # These alerts already went to these members: a body read again because a CAP document of
        # it is broken must not queue every job again each pass.
        logger.info("Alerts already announced", extra={"feed": feed[0], "complete": complete})
        result = FeedResult(feed[0], "read", announced=snapshot)
    else:
        result = announce(feed, members, alerts, snapshot, now)
        result.announced = snapshot if result.complete else None
    result.complete = result.complete and complete
    return result, snapshot


def _previous_alerts(feed: Feed, state: SourceState) -> tuple[Alert, ...]:
    if state.snapshot is None:
        return ()
    try:
        return get_snapshot(feed_key(*feed), state.snapshot) or ()
    except (ClientError, BotoCoreError, ValueError):
        logger.warning("Previous alert snapshot unreadable: every CAP document is fetched", exc_info=True)
        return ()


def _store_snapshot(feed: Feed, alerts: tuple[Alert, ...], now: datetime) -> str | None:
    """The snapshot's key, or None: then a small feed is announced inline, a large one not at all
    (read again next pass; fanout.announce)."""
    try:
        snapshot = put_snapshot(feed_key(*feed), alerts, now)
    except (ClientError, BotoCoreError):
        logger.warning("Alert snapshot not stored", extra={"feed": feed[0]}, exc_info=True)
        obs.count(obs.FEED_ERRORS, reason="snapshot")
        return None
    if snapshot is None:
        logger.warning("Alert snapshot too large for an item", extra={"feed": feed[0]})
        obs.count(obs.ALERT_SNAPSHOTS_TOO_LARGE)
    return snapshot


def read_alerts(
    feed_format: str, body: bytes, url: str, *, known: tuple[Alert, ...] = ()
) -> tuple[tuple[Alert, ...], bool]:
    """The alerts of a feed body in one of the alert source formats, and whether all of them could
    be read (an Atom feed's linked documents may fail one by one; those among `known`, read
    before, are not fetched again). Raises AlertError only."""
    if feed_format == "meteoalarm_json":
        return parse_warnings_json(body, url=url), True
    if feed_format == ATOM_FORMAT:
        return _read_atom(body, url, known)
    return parse_cap(body, source_url=url), True


def _read_atom(body: bytes, url: str, known: tuple[Alert, ...]) -> tuple[tuple[Alert, ...], bool]:
    """The Atom feed lists each alert once per language and area: its CAP document is fetched once
    per identifier, and not at all when an earlier read holds it (a CAP identifier is never reused
    for other content). The new ones are fetched in parallel, within ATOM_DEADLINE_SECONDS; a
    broken or late document does not hide the others."""
    held: dict[str, list[Alert]] = {}
    for alert in known:
        held.setdefault(alert.identifier, []).append(alert)
    alerts: list[Alert] = []
    wanted: list[AtomEntry] = []
    for entry in parse_atom(body, url=url).entries:
        if entry.identifier in held:
            alerts.extend(held[entry.identifier])
        elif entry.cap_url is None:
            logger.warning("Atom entry without a CAP link", extra={"alert": entry.identifier})
        else:
            wanted.append(entry)
    fetched, complete = _fetch_caps(wanted)
    alerts.extend(alert for entry in wanted for alert in fetched.get(entry.identifier, ()))
    return tuple(alerts), complete


def _fetch_caps(entries: list[AtomEntry]) -> tuple[Mapping[str, tuple[Alert, ...]], bool]:
    """Each entry's CAP document, by identifier; and whether every one was read in time."""
    if not entries:
        return {}, True
    pool = ThreadPoolExecutor(max_workers=min(ATOM_FETCH_WORKERS, len(entries)), thread_name_prefix="cap")
    futures: dict[Future[tuple[Alert, ...]], AtomEntry] = {
        pool.submit(_fetch_cap, entry.cap_url): entry for entry in entries if entry.cap_url
    }
    done, late = wait(futures, timeout=ATOM_DEADLINE_SECONDS)
    # Not waited for: a late fetch ends on its own timeouts, in the background, and is dropped.
    pool.shutdown(wait=False, cancel_futures=True)
    read: dict[str, tuple[Alert, ...]] = {}
    complete = not late
    for future in done:
        entry = futures[future]
        try:
            read[entry.identifier] = future.result()
        except (FeedError, AlertError) as error:
            complete = False
            obs.count(obs.FEED_ERRORS, reason=error.reason)
            logger.warning(
                "Linked CAP document unreadable", extra={"alert": entry.identifier, "error": str(error)}
            )
    if late:
        obs.count(obs.FEED_ERRORS, len(late), reason="deadline")
        logger.warning(
            "Linked CAP documents not read in time",
            extra={"alerts": [futures[f].identifier for f in late], "deadline_s": ATOM_DEADLINE_SECONDS},
        )
    return read, complete


def _fetch_cap(cap_url: str) -> tuple[Alert, ...]:
    fetched = fetch_feed(
        cap_url, session=feed_session(), etag=None, last_modified=None, max_bytes=MAX_CAP_BYTES
    )
    return parse_cap(fetched.body, source_url=fetched.url)


def run_alert_job(job: AlertJob) -> None:
    """An alert job from the urgent lane (chalicelib/publishing/publisher.py hands them here)."""
    if isinstance(job, AnnounceJob):
        run_announce_job(job)
    else:
        run_push_job(job)


def run_push_job(job: PushJob) -> None:
    """A PushJob, from the urgent lane: the body a WebSub hub pushed, read and announced as a polled
    body is (or the feed polled now, when the body could not be kept). The poller stays the safety
    net: a push read incompletely is read again when the poller sees the change."""
    found = feed_by_key(job.feed)
    if found is None:  # the source left the config; the next renewal ends the subscription
        logger.info("WebSub push for a feed no tenant lists", extra={"feed": job.feed})
        return
    feed, members = found
    now = utcnow()
    body = get_pushed_body(job.feed, job.push) if job.push else None
    if body is None:
        result = _poll_feed_safely(feed, members, now)
        logger.info("WebSub push handled by a poll", extra={"feed": feed[0], "status": result.status})
        return
    try:
        result, _ = read_and_announce(feed, members, body, feed[0], state=feed_state(job.feed), now=now)
    except AlertError as error:
        obs.count(obs.FEED_ERRORS, reason=error.reason)
        logger.warning(
            "WebSub push unreadable", extra={"feed": feed[0], "reason": error.reason, "error": str(error)}
        )
        return
    logger.info(
        "WebSub push handled",
        extra={
            "feed": feed[0],
            "complete": result.complete,
            "jobs": result.jobs,
            "announced": sum(1 for outcome in result.outcomes if outcome.announcement),
        },
    )


def _failed(
    feed: Feed, members: list[Member], state: SourceState, error: FeedError | AlertError, now: datetime
) -> FeedResult:
    retry_after = getattr(error, "retry_after", None)
    not_before = now + timedelta(seconds=retry_after) if retry_after else None
    _save(state.failed(now, error.reason, str(error), not_before))
    obs.count(obs.FEED_ERRORS, reason=error.reason)
    logger.warning(
        "Alert feed failed",
        extra={"feed": feed[0], "members": len(members), "reason": error.reason, "error": str(error)},
    )
    return FeedResult(feed[0], "error", reason=error.reason)
