"""Poll every configured feed source once: conditional GET, parse, dedupe, announce, enqueue.

Each source is polled on its own thread and its own try: one broken feed (timeout, bomb, 50 MB body,
bad encoding) is logged, counted and marked failing with its reason, and never stops the others.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests

from chalicelib import observability as obs
from chalicelib.clock import iso, utcnow
from chalicelib.config.loader import current_config
from chalicelib.config.models import Source, Tenant
from chalicelib.http import new_session
from chalicelib.observability import logger
from chalicelib.publishing.announce import announce
from chalicelib.publishing.lanes import enqueue
from chalicelib.sources.cms import FeedItem, parse_feed
from chalicelib.sources.dedupe import dedupe_keys, is_duplicate
from chalicelib.sources.errors import FeedError
from chalicelib.sources.fetch import fetch_feed
from chalicelib.storage import deliveries as delivery_store
from chalicelib.storage.deliveries import Delivery
from chalicelib.storage.seen import mark_seen, seen_keys
from chalicelib.storage.source_state import SourceState, get_source_state, save_source_state

MAX_PARALLEL_SOURCES = 8
# The longest one source can take: redirects, each with connect and read timeouts, then the body
# (fetch_feed's own 30 s cap), then parsing and DynamoDB.
SOURCE_TIME_BUDGET_SECONDS = 60
# A schedule tick can fire a little early; don't skip a source for a few seconds.
SCHEDULE_SLACK = timedelta(seconds=5)
# The poll_sources schedule in app.py.
SCHEDULE_PERIOD_SECONDS = 60
# The longest wait a feed's Cache-Control max-age can impose between polls.
MAX_CACHE_WAIT = timedelta(minutes=5)
# An unchanged source still records a success this often (staleness alarms read it).
HEARTBEAT = timedelta(minutes=10)


@dataclass
class PollResult:
    tenant: str
    source: str
    status: str  # not_due | unchanged | polled | error | deferred
    new: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    reason: str | None = None
    announcements: list[str] = field(default_factory=list)
    first_poll: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, {}, [])}


@functools.cache
def _session() -> requests.Session:
    return new_session(pool_size=MAX_PARALLEL_SOURCES)


def poll_all_sources(now: datetime | None = None, seconds_left: float | None = None) -> dict[str, Any]:
    """Poll every source; with `seconds_left` (the invocation's remaining time), sources not yet
    started when too little time is left wait for the next run instead of being cut off."""
    now = now or utcnow()
    deadline = time.monotonic() + seconds_left - SOURCE_TIME_BUDGET_SECONDS if seconds_left else None

    def poll(job: tuple[Tenant, Source]) -> PollResult:
        tenant, source = job
        if deadline is not None and time.monotonic() > deadline:
            return PollResult(tenant.id, source.id, "deferred", reason="out_of_time")
        return poll_source_safely(tenant, source, now)

    jobs = [(tenant, source) for tenant in current_config().tenants for source in tenant.news_sources]
    with ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL_SOURCES, len(jobs)))) as pool:
        results = list(pool.map(poll, jobs))
    if any(r.status == "deferred" for r in results):
        logger.warning("Out of time: some sources wait for the next run")
    return {"polled_at": iso(now), "sources": [r.as_dict() for r in results]}


def poll_source_safely(tenant: Tenant, source: Source, now: datetime) -> PollResult:
    """poll_source, with anything unexpected contained to this source."""
    try:
        return poll_source(tenant, source, now)
    except Exception:
        logger.exception("Source poll crashed", extra={"tenant": tenant.id, "source": source.id})
        obs.count(obs.FEED_ERRORS, reason="internal")
        _record_crash(tenant, source, now)
        return PollResult(tenant.id, source.id, "error", reason="internal")


def _record_crash(tenant: Tenant, source: Source, now: datetime) -> None:
    """Show the crash on /health and in the staleness alarm, if storage itself still works."""
    try:
        state = get_source_state(tenant.id, source.id)
        save_source_state(state.failed(now, "internal", "unexpected error (see logs)", state.not_before))
    except Exception:
        logger.exception("Could not record the crash", extra={"tenant": tenant.id, "source": source.id})


def poll_source(tenant: Tenant, source: Source, now: datetime) -> PollResult:
    state = get_source_state(tenant.id, source.id)
    if not _due(state, source, now):
        return PollResult(tenant.id, source.id, "not_due")
    try:
        fetched = fetch_feed(
            str(source.url),
            session=_session(),
            etag=state.etag,
            last_modified=state.last_modified,
            max_bytes=source.max_body_bytes,
        )
        not_before = _cache_wait(fetched.max_age, now)
        validators = {"etag": fetched.etag, "last_modified": fetched.last_modified, "not_before": not_before}
        body_hash = hashlib.sha256(fetched.body).hexdigest()
        # A 304, or a server that ignored the conditional GET and sent the same body: no parse.
        if fetched.not_modified or body_hash == state.body_hash:
            return _unchanged(tenant, source, state, now, validators)
        parsed = parse_feed(
            fetched.body,
            url=fetched.url,
            content_type=fetched.content_type,
            tolerate_malformed=source.tolerate_malformed,
        )
    except FeedError as error:
        return _failed(tenant, source, state, error, now)
    for warning in parsed.warnings:
        logger.warning("Feed warning", extra={"tenant": tenant.id, "source": source.id, "warning": warning})
    result = PollResult(tenant.id, source.id, "polled", first_poll=not state.initialized)
    complete = _process_items(result, tenant, source, parsed.items, now)
    if not complete:
        # Items wait for the next poll: it must fetch and parse again, not get a 304.
        validators = {"etag": None, "last_modified": None, "not_before": not_before}
    save_source_state(
        state.succeeded(
            now,
            # An empty first document is no history: the backlog policy waits for real items.
            initialized=state.initialized or bool(parsed.items),
            body_hash=body_hash if complete else None,
            **validators,
        )
    )
    return result


def _cache_wait(max_age: int | None, now: datetime) -> datetime | None:
    """When the site's Cache-Control lets us ask again. Only a wait longer than the schedule
    matters (and costs a write); it is capped, so a CDN's day-long max-age cannot silence a comune."""
    if not max_age or max_age <= SCHEDULE_PERIOD_SECONDS:
        return None
    return now + min(timedelta(seconds=max_age), MAX_CACHE_WAIT)


def _unchanged(
    tenant: Tenant, source: Source, state: SourceState, now: datetime, validators: dict[str, Any]
) -> PollResult:
    """Most polls end here, so they write nothing unless something must be remembered: new
    validators or a back-off, a recovery from failure, a min interval longer than the schedule
    (the poll time is then needed to space polls), or the heartbeat that keeps staleness honest."""
    changed = any(getattr(state, name) != value for name, value in validators.items() if value is not None)
    heartbeat_due = state.last_success is None or now - state.last_success >= HEARTBEAT
    if changed or heartbeat_due or state.failing or source.min_interval_seconds > SCHEDULE_PERIOD_SECONDS:
        save_source_state(state.succeeded(now, **{k: v for k, v in validators.items() if v is not None}))
    return PollResult(tenant.id, source.id, "unchanged")


def _due(state: SourceState, source: Source, now: datetime) -> bool:
    if state.not_before and now < state.not_before:
        return False
    return not (
        state.last_poll
        and now - state.last_poll < timedelta(seconds=source.min_interval_seconds) - SCHEDULE_SLACK
    )


def _failed(
    tenant: Tenant, source: Source, state: SourceState, error: FeedError, now: datetime
) -> PollResult:
    not_before = now + timedelta(seconds=error.retry_after) if error.retry_after else None
    save_source_state(state.failed(now, error.reason, str(error), not_before))
    obs.count(obs.FEED_ERRORS, reason=error.reason)
    logger.warning(
        "Feed failed",
        extra={"tenant": tenant.id, "source": source.id, "reason": error.reason, "error": str(error)},
    )
    return PollResult(tenant.id, source.id, "error", reason=error.reason)


def _process_items(
    run: PollResult, tenant: Tenant, source: Source, items: Sequence[FeedItem], now: datetime
) -> bool:
    """Decide each item's fate; returns False when some new items were left for the next poll."""
    obs.count(obs.ITEMS_SEEN, len(items))
    keyed = [(item, item_keys) for item in items if (item_keys := dedupe_keys(item))]
    if len(keyed) < len(items):
        # Nothing to recognise it by next time (no guid, a home-page link, no text): posting it
        # would post it again on every change of the feed.
        logger.warning("Items without identity skipped", extra={"tenant": tenant.id, "source": source.id})
        run.skipped["no_identity"] = len(items) - len(keyed)
        obs.count(obs.ITEMS_SKIPPED, len(items) - len(keyed), reason="no_identity")
    keyed = _unambiguous(keyed)
    known = seen_keys(tenant.id, [k for _, item_keys in keyed for k in item_keys], now)
    fresh, aliases = _fresh_items(keyed, known)
    if aliases:  # a known item under a new guid or link: remember the new keys too
        logger.info("Known items under new keys", extra={"tenant": tenant.id, "source": source.id})
        mark_seen(tenant.id, dict.fromkeys(aliases, "alias"), source.id, now)
    skip = functools.partial(_skip, run, now)
    if run.first_poll and source.first_run == "mark_seen":
        skip(fresh, "first_run")
        return True
    max_age = timedelta(hours=source.max_age_hours)
    too_old = [(i, k) for i, k in fresh if i.published and now - i.published > max_age]
    skip(too_old, "too_old")
    # Oldest first, so a channel reads in publication order; dateless items count as just published.
    postable = sorted((p for p in fresh if p not in too_old), key=lambda p: p[0].published or now)
    if run.first_poll:  # post_recent: only the newest few, the history is marked seen
        skip(postable[: -source.max_items_per_poll], "first_run")
        postable = postable[-source.max_items_per_poll :]
    batch, leftover = postable[: source.max_items_per_poll], postable[source.max_items_per_poll :]
    queued: list[Delivery] = []
    for item, item_keys in batch:
        announced = announce(tenant, source, item, item_keys, now, known_keys=known)
        if announced is None:
            continue  # another poll announced it first
        logger.info(
            "Announced",
            extra={"tenant": tenant.id, "source": source.id, "correlation_id": announced.announcement.id},
        )
        run.new += 1
        run.announcements.append(announced.announcement.id)
        queued.extend(announced.deliveries)
        if item.published:
            obs.seconds(obs.FEED_LAG, max(0.0, (now - item.published).total_seconds()))
    for delivery in enqueue(queued):
        delivery_store.mark_enqueued(delivery, now)
    obs.count(obs.ITEMS_NEW, run.new)
    if leftover:
        run.skipped["deferred"] = len(leftover)
    return not leftover


def _unambiguous(keyed: list[tuple[FeedItem, tuple[str, ...]]]) -> list[tuple[FeedItem, tuple[str, ...]]]:
    """Drop the keys that different items of one document share (a listing page given as every
    item's link, a boilerplate text): they tell those items apart from nothing. An item repeated
    whole keeps its keys (it is one item), and so does an item that would be left with none."""
    owners = Counter(key for item_keys in {item_keys for _, item_keys in keyed} for key in item_keys)
    return [(item, tuple(k for k in item_keys if owners[k] == 1) or item_keys) for item, item_keys in keyed]


def _fresh_items(
    keyed: Sequence[tuple[FeedItem, tuple[str, ...]]], known: set[str]
) -> tuple[list[tuple[FeedItem, tuple[str, ...]]], set[str]]:
    """Items not seen before (each once even if the feed repeats it), and the unseen keys of items
    that are known under other keys (remembered, so that the next change still matches)."""
    fresh = []
    aliases: set[str] = set()
    claimed = set(known)
    for item, item_keys in keyed:
        if not is_duplicate(item_keys, claimed):
            fresh.append((item, item_keys))
        else:
            aliases.update(k for k in item_keys if k not in known)
        claimed.update(item_keys)
    return fresh, aliases - {k for _, item_keys in fresh for k in item_keys}


def _skip(
    run: PollResult, now: datetime, items: Sequence[tuple[FeedItem, tuple[str, ...]]], reason: str
) -> None:
    if not items:
        return
    mark_seen(run.tenant, {k: reason for _, item_keys in items for k in item_keys}, run.source, now)
    run.skipped[reason] = len(items)
    obs.count(obs.ITEMS_SKIPPED, len(items), reason=reason)
