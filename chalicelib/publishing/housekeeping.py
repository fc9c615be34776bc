"""Housekeeping, every few minutes: re-enqueue deliveries whose message never reached SQS, and
report stale or failing sources as metrics (the alarms in infra/ watch them)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from chalicelib import observability as obs
from chalicelib.clock import utcnow
from chalicelib.config.loader import current_config
from chalicelib.observability import logger
from chalicelib.publishing.lanes import enqueue
from chalicelib.storage import deliveries as store
from chalicelib.storage.source_state import SourceState, source_states

# A pending delivery never attempted after this long has lost its message (crash between the
# DynamoDB write and the SQS send): send it again. A duplicate message is harmless (claim dedupes).
LOST_AFTER = timedelta(minutes=10)
# A source that has not succeeded for this long is stale.
STALE_AFTER = timedelta(hours=3)


def run_housekeeping(now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    requeued = 0
    stale: list[str] = []
    feeds: dict[str, SourceState] = {}  # an alert feed's row, read once for all its tenants
    for tenant in current_config().tenants:
        requeued += requeue_lost_deliveries(tenant.id, now)
        states = source_states(tenant, feeds)
        stale.extend(
            f"{tenant.id}/{source.id}" for source in tenant.sources if is_stale(states.get(source.id), now)
        )
    obs.count(obs.DELIVERIES_REQUEUED, requeued)
    obs.count(obs.FEED_STALE, len(stale))
    if stale:
        logger.warning("Stale sources", extra={"sources": stale})
    return {"requeued": requeued, "stale_sources": stale}


def requeue_lost_deliveries(tenant: str, now: datetime) -> int:
    lost = [
        d
        for d in store.deliveries_with_status(tenant, "pending", updated_before=now - LOST_AFTER)
        if d.attempts == 0 and (d.enqueued_at is None or d.enqueued_at < now - LOST_AFTER)
    ]
    sent = enqueue(lost)
    for delivery in sent:
        store.mark_enqueued(delivery, now)
    return len(sent)


def is_stale(state: SourceState | None, now: datetime) -> bool:
    """No success for STALE_AFTER (counted from the first poll for a source that never worked).
    A source backing off because the site asked (Retry-After) is stale too if that lasts."""
    if state is None or state.first_poll is None:
        return False  # not polled yet: a brand-new source is not an incident
    return now - (state.last_success or state.first_poll) > STALE_AFTER
