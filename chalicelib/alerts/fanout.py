"""Announce a feed's alerts to the tenants listing it. A feed of a few comuni is announced inline, by
the poller or push job that read it; a feed listed by more than FAN_OUT_ABOVE (MeteoAlarm Italy, the
DPC bulletin: up to ~7,900 comuni) is cut into slices of MEMBERS_PER_JOB tenants, each an AnnounceJob
on the urgent lane that Lambda runs in parallel, reading the alerts from the feed's snapshot
(chalicelib/storage/alert_feeds.py) instead of fetching and parsing the feed again. A large feed
whose snapshot could not be stored is not announced inline (a pass could not finish it): the read
counts as incomplete and the next pass tries again.

A job names its slice by number, members sorted by tenant id, and re-derives the members from the
config: a message stays a small reference whatever the feed's size. It also carries the members'
digest: a job whose config gives another one (a deploy between the pass and the job would shift the
slices) announces nothing and makes the next pass announce the feed again, under one config; the
pipeline's per-alert rows keep anything from going out twice."""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from chalicelib import observability as obs
from chalicelib.alerts.areas import config_digest
from chalicelib.alerts.model import Alert
from chalicelib.alerts.pipeline import AlertOutcome, handle_alerts
from chalicelib.clock import utcnow
from chalicelib.config.loader import current_config
from chalicelib.config.models import CapSource, Tenant
from chalicelib.observability import logger
from chalicelib.publishing.lanes import AnnounceJob, enqueue, send_jobs
from chalicelib.storage import deliveries as delivery_store
from chalicelib.storage.alert_feeds import feed_key, get_snapshot
from chalicelib.storage.source_state import forget_members

# Above this many members a feed is announced by jobs: inline, each tenant costs a few sequential
# DynamoDB calls (~60 ms in AWS), so ten keep a pass well within its budget.
FAN_OUT_ABOVE = 10
# Tenants per job: ~3 s of work in AWS, far from the urgent function's timeout and its safety margin.
MEMBERS_PER_JOB = 50

Member = tuple[Tenant, CapSource]
Feed = tuple[str, str]  # (url, format)


class AnnounceIncomplete(Exception):
    """Some tenant of a job could not handle the alerts: the job fails and SQS runs it again (the
    tenants that did are skipped by their rows); one that never can ends in the DLQ, alarmed."""


@dataclass
class FeedResult:
    url: str
    status: str  # unchanged | read | error | waiting
    complete: bool = True  # every tenant could handle the alerts (or its job was queued)
    reason: str | None = None
    outcomes: list[AlertOutcome] = field(default_factory=list)
    jobs: int = 0  # announce jobs queued for this feed
    announced: str | None = None  # the snapshot every member got (or whose jobs were all queued)


def alert_feeds() -> dict[Feed, list[Member]]:
    """Every distinct alert feed with the tenants that list it, sorted by tenant id (and source id):
    the order announce jobs count their slices in."""
    feeds: dict[Feed, list[Member]] = defaultdict(list)
    for tenant in current_config().tenants:
        for source in tenant.alert_sources:
            feeds[(str(source.url), source.format)].append((tenant, source))
    return {feed: sorted(members, key=lambda m: (m[0].id, m[1].id)) for feed, members in feeds.items()}


def feed_by_key(key: str) -> tuple[Feed, list[Member]] | None:
    """A feed and its members by the feed key a job or a state row names; None if no tenant lists it."""
    for feed, members in alert_feeds().items():
        if feed_key(*feed) == key:
            return feed, members
    return None


def members_digest(members: list[Member]) -> str:
    """A fingerprint of who listens to a feed and what each matches: when it changes, the feed's
    current alerts are announced again, so a comune added mid-crisis gets the alerts in force."""
    text = "\n".join(
        f"{tenant.id} {source.id} {config_digest(tenant.alerts) if tenant.alerts else '-'}"
        for tenant, source in sorted(members, key=lambda m: (m[0].id, m[1].id))
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def announce(
    feed: Feed, members: list[Member], alerts: tuple[Alert, ...], snapshot: str | None, now: datetime
) -> FeedResult:
    """Inline for a small feed (no extra hop); by jobs for a large one, which without a snapshot to
    hand on is left to the next pass (incomplete)."""
    url = feed[0]
    if len(members) <= FAN_OUT_ABOVE or not alerts:
        return announce_alerts(url, members, alerts, now)
    if snapshot is None:
        # Inline, thousands of comuni would outlast the pass and hold up every other feed; the store
        # failure is counted (polling._store_snapshot) and the next pass reads the feed again.
        logger.warning(
            "Large alert feed not announced: no snapshot", extra={"feed": url, "members": len(members)}
        )
        return FeedResult(url, "read", complete=False)
    key, digest = feed_key(*feed), members_digest(members)
    jobs = [
        AnnounceJob(key, snapshot, chunk, digest)
        for chunk in range(math.ceil(len(members) / MEMBERS_PER_JOB))
    ]
    queued = send_jobs(jobs)
    obs.count(obs.ANNOUNCE_JOBS, queued)
    logger.info(
        "Alert announce fanned out",
        extra={"feed": url, "members": len(members), "jobs": len(jobs), "queued": queued},
    )
    # A job SQS refused leaves the feed to be read again next pass (the queued ones post nothing twice).
    return FeedResult(url, "read", complete=queued == len(jobs), jobs=queued)


def announce_alerts(url: str, members: list[Member], alerts: tuple[Alert, ...], now: datetime) -> FeedResult:
    """Let every member decide on the alerts on its own, and queue what each announced."""
    result = FeedResult(url, "read")
    for tenant, source in members:
        try:
            outcomes, announced = handle_alerts(tenant, source, alerts, now)
            result.outcomes.extend(outcomes)
            # Queued at once, tenant by tenant: a later failure or timeout cannot hold these back.
            for delivery in enqueue([d for a in announced for d in a.deliveries]):
                delivery_store.mark_enqueued(delivery, now)
        except Exception:
            # One comune's failure (its rows, its config, its queueing) must not keep the alert from
            # the others; deliveries left pending are queued again by housekeeping.
            logger.exception("Alert handling crashed", extra={"tenant": tenant.id, "source": source.id})
            obs.count(obs.FEED_ERRORS, reason="internal")
            result.complete = False
            continue
    obs.count(obs.ALERTS_POSTED, sum(1 for o in result.outcomes if o.announcement))
    return result


def run_announce_job(job: AnnounceJob) -> None:
    """An AnnounceJob, from the urgent lane: its slice of the feed's members, the snapshot's alerts."""
    found = feed_by_key(job.feed)
    if found is None:  # the feed left the config after the pass
        logger.info("Announce job for a feed no tenant lists", extra={"feed": job.feed})
        return
    (url, _), members = found
    alerts = get_snapshot(job.feed, job.snapshot)
    if alerts is None:
        # Expired while the job waited (days): the feed's next pass announces its current body.
        forget_members(job.feed)
        obs.count(obs.ANNOUNCE_JOBS_WITHOUT_SNAPSHOT)
        logger.warning("Announce job without its snapshot", extra={"feed": url, "chunk": job.chunk})
        return
    if job.members != members_digest(members):
        # Queued under another config (a deploy in between, or a message older than the digest):
        # its slice may not be the one meant. Rather than guess, the next pass announces again.
        forget_members(job.feed)
        obs.count(obs.FEED_ERRORS, reason="members_changed")
        logger.warning("Announce job for other members", extra={"feed": url, "chunk": job.chunk})
        return
    chunk = members[job.chunk * MEMBERS_PER_JOB : (job.chunk + 1) * MEMBERS_PER_JOB]
    result = announce_alerts(url, chunk, alerts, utcnow())
    logger.info(
        "Announce job done",
        extra={
            "feed": url,
            "chunk": job.chunk,
            "tenants": len(chunk),
            "announced": sum(1 for outcome in result.outcomes if outcome.announcement),
        },
    )
    if not result.complete:
        raise AnnounceIncomplete(f"a tenant of slice {job.chunk} could not handle the alerts")
