"""GET /health: is each source polling and is anything stuck? Reason codes only, no error texts
or URLs, because the route is public."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from chalicelib.clock import iso, utcnow
from chalicelib.config.loader import current_config
from chalicelib.publishing.housekeeping import is_stale
from chalicelib.storage import deliveries as store
from chalicelib.storage.source_state import SourceState, source_states

RECENT = timedelta(hours=24)
CACHE_SECONDS = 30
_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def service_health() -> dict[str, Any]:
    """The health report, computed at most every CACHE_SECONDS per container: the route is public,
    and each report costs a few DynamoDB queries per tenant."""
    cached = _cache.get("report")
    if cached is None or time.monotonic() - cached[0] > CACHE_SECONDS:
        cached = _cache["report"] = (time.monotonic(), _health_report())
    return cached[1]


def _health_report() -> dict[str, Any]:
    now = utcnow()
    tenants = []
    degraded = False
    feeds: dict[str, SourceState] = {}  # an alert feed's row, read once for all its tenants
    for tenant in current_config().tenants:
        states = source_states(tenant, feeds)
        sources = []
        for source in tenant.sources:
            state = states.get(source.id)
            health = (
                "new"
                if state is None
                else "stale"
                if is_stale(state, now)
                else "failing"
                if state.failing
                else "ok"
            )
            degraded |= health in {"stale", "failing"}
            sources.append(
                {
                    "id": source.id,
                    "health": health,
                    "last_success": iso(state.last_success) if state and state.last_success else None,
                    "consecutive_failures": state.consecutive_failures if state else 0,
                    "last_error_reason": state.last_error_reason if state else None,
                }
            )
        failed = len(store.deliveries_with_status(tenant.id, "failed", updated_after=now - RECENT))
        degraded |= failed > 0
        tenants.append({"id": tenant.id, "sources": sources, "failed_deliveries": failed})
    return {"status": "degraded" if degraded else "ok", "checked_at": iso(now), "tenants": tenants}
