"""The scheduled SLA check: open conversations still without a first response whose office time
since the citizen's first message exceeds the tenant's target are marked breached, once each.

No scan: per tenant it reads the `sla-waiting` list (open, unanswered, not yet breached), oldest
first. Office time since opening only shrinks along that order, so the walk stops at the first
conversation still within its target: the work per run is the new breaches plus one row. A marked
conversation moves to the `sla-overdue` list, whose size is the ConversationsOverSla level.
Bounds: at most MAX_MARKS_PER_TENANT marks per tenant per run (a backlog after an outage is worked
off over the next runs, five minutes apart) and MAX_COUNT_PAGES pages of keys counted for the level
(over that, the level is a lower bound and the tenant's entry says `complete: false`).
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from chalicelib import observability as obs
from chalicelib.config.models import Config, InboxConfig
from chalicelib.inbox import store
from chalicelib.inbox.hours import office_seconds
from chalicelib.observability import logger

MAX_MARKS_PER_TENANT = 200
MAX_COUNT_PAGES = 5
_PAGE = 50


def check_sla(config: Config, now: datetime) -> dict[str, Any]:
    tenants: dict[str, dict[str, Any]] = {}
    for tenant in config.tenants:
        if tenant.inbox is not None:
            tenants[tenant.id] = _check_tenant(tenant.id, tenant.inbox, now)
    breached = sum(entry["breached"] for entry in tenants.values())
    over_sla = sum(entry["over_sla"] for entry in tenants.values())
    for tenant_id, entry in tenants.items():
        if entry["breached"]:
            obs.count(obs.SLA_BREACHES, entry["breached"], tenant=tenant_id)
    obs.gauge(obs.CONVERSATIONS_OVER_SLA, over_sla)
    logger.info("SLA checked", extra={"breached": breached, "over_sla": over_sla})
    return {"breached": breached, "over_sla": over_sla, "tenants": tenants}


def _check_tenant(tenant: str, inbox: InboxConfig, now: datetime) -> dict[str, Any]:
    breached, marks_done = _mark_breaches(tenant, inbox, now)
    over_sla, counted = store.count_over_sla(tenant, max_pages=MAX_COUNT_PAGES)
    return {"breached": breached, "over_sla": over_sla, "complete": marks_done and counted}


def _mark_breaches(tenant: str, inbox: InboxConfig, now: datetime) -> tuple[int, bool]:
    """(conversations marked, whether every due conversation was reached)."""
    target = inbox.first_response_target_minutes * 60
    breached = examined = 0
    cursor: str | None = None
    while True:
        page = store.sla_waiting(tenant, limit=_PAGE, cursor=cursor)
        for row in page.items:
            if office_seconds(row.opened_at, now, inbox.office_hours) <= target:
                return breached, True  # every later one has waited less
            if examined == MAX_MARKS_PER_TENANT:
                return breached, False
            examined += 1
            # NotFound: erased or expired under its row, which goes with its own TTL.
            with contextlib.suppress(store.NotFound):
                breached += store.mark_sla_breached(tenant, row.id, now=now)
        if page.cursor is None:
            return breached, True
        cursor = page.cursor
