"""The channel health check (every 15 minutes): ask each platform whether the channel's credentials
work, record the answer, and publish two levels the alarms watch: how many channels are unhealthy
now, and how many days are left before the soonest known token expiry.

A healthy channel is asked again after RECHECK_HEALTHY; an unhealthy or never-checked one on every
run, so held deliveries resume within 15 minutes of a human fixing the token.

The same run looks at every inbox webhook (chalicelib/inbox/webhook_setup.py) and registers again one
that was lost, so citizens' messages stop arriving for at most 15 minutes. It is a part of this run,
not a schedule of its own, because it asks the same platforms with the same tokens and records into
the same health rows: a refused token found there turns the channel unhealthy as the check would, and
anything else (a lost registration, deliveries failing) is recorded beside the channel's state without
holding its posts, counted, and summed up in the level WebhooksBroken, which has an alarm.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from chalicelib import observability as obs
from chalicelib.channels.base import ChannelCheck
from chalicelib.channels.registry import adapter_for
from chalicelib.config.models import AnyChannel, Config
from chalicelib.inbox.webhook_setup import (
    PUBLIC_URL_ENV,
    WebhookStatus,
    inbox_channels,
    public_base,
    sync_webhooks,
)
from chalicelib.observability import logger
from chalicelib.storage.channel_health import ChannelHealth, WebhookHealth, health_of, record_health

RECHECK_HEALTHY = timedelta(hours=6)
# Checks are one HTTP call each; a few at a time keeps a run of many channels short.
PARALLEL_CHECKS = 8


@dataclass(frozen=True)
class _Due:
    tenant: str
    channel: AnyChannel


def check_channels(config: Config, now: datetime, *, force: bool = False) -> dict[str, Any]:
    """Check the channels that are due (all with `force`), record, and emit the two levels."""
    known = {tenant.id: {h.channel: h for h in health_of(tenant.id)} for tenant in config.tenants}
    due = list(_due(config, known, now, force=force))
    with ThreadPoolExecutor(max_workers=PARALLEL_CHECKS) as pool:
        findings = list(pool.map(_check, [item.channel for item in due]))
    for item, finding in zip(due, findings, strict=True):
        known[item.tenant][item.channel.id] = _record(
            item, finding, now, known[item.tenant].get(item.channel.id)
        )
    webhooks = _check_webhooks(config, now, known) if inbox_channels(config) else None
    current = [
        known[tenant.id][channel.id]
        for tenant in config.tenants
        for channel in tenant.channels
        if channel.enabled and channel.id in known[tenant.id]
    ]
    unhealthy = [h for h in current if not h.healthy]
    obs.gauge(obs.UNHEALTHY_CHANNELS, len(unhealthy))
    days_left = _soonest_expiry_days(current, now)
    if days_left is not None:
        obs.gauge(obs.TOKEN_DAYS_LEFT, days_left)
    return {
        "checked": len(due),
        "unhealthy": sorted(f"{h.tenant}/{h.channel}" for h in unhealthy),
        "token_days_left": days_left,
        **({"webhooks": webhooks} if webhooks is not None else {}),
    }


def _due(
    config: Config, known: dict[str, dict[str, ChannelHealth]], now: datetime, *, force: bool
) -> Iterator[_Due]:
    for tenant in config.tenants:
        for channel in tenant.channels:
            if not channel.enabled:
                continue
            last = known[tenant.id].get(channel.id)
            stale = last is None or not last.healthy or now - last.checked_at >= RECHECK_HEALTHY
            if force or stale:
                yield _Due(tenant.id, channel)


def _check(channel: AnyChannel) -> ChannelCheck:
    try:
        return adapter_for(channel).check()
    except Exception:  # one broken adapter must not stop the others' checks
        logger.exception("Channel check crashed", extra={"channel": channel.id})
        return ChannelCheck(healthy=False, reason="check_error", detail="the check itself failed (see logs)")


def _record(
    item: _Due,
    finding: ChannelCheck,
    now: datetime,
    last: ChannelHealth | None,
    webhook: WebhookHealth | None = None,
) -> ChannelHealth:
    health = ChannelHealth(
        tenant=item.tenant,
        channel=item.channel.id,
        platform=item.channel.platform,
        state="healthy" if finding.healthy else "unhealthy",
        reason=finding.reason,
        detail=finding.detail,
        since=last.since if last and last.healthy == finding.healthy else now,
        checked_at=now,
        token_expires_at=finding.token_expires_at,
        webhook=webhook or (last.webhook if last else None),
    )
    if record_health(health):
        extra = {"tenant": item.tenant, "channel": item.channel.id, "reason": finding.reason}
        if finding.healthy:
            logger.info("Channel healthy", extra=extra)
        else:
            obs.count(obs.CHANNELS_TURNED_UNHEALTHY, platform=item.channel.platform)
            logger.error("Channel unhealthy", extra={**extra, "detail": finding.detail})
    return health


def _soonest_expiry_days(current: list[ChannelHealth], now: datetime) -> float | None:
    expiries = [h.token_expires_at for h in current if h.token_expires_at is not None]
    if not expiries:
        return None
    return round(max(0.0, (min(expiries) - now).total_seconds() / 86_400), 1)


def _check_webhooks(
    config: Config, now: datetime, known: dict[str, dict[str, ChannelHealth]]
) -> dict[str, Any]:
    """Register every inbox webhook that needs it and record what was found (module docstring)."""
    if not public_base():
        return {"skipped": f"{PUBLIC_URL_ENV} is not set"}
    channels = {(tenant.id, channel.id): channel for tenant in config.tenants for channel in tenant.channels}
    statuses = sync_webhooks(config, now)
    for status in statuses:
        last = known[status.tenant].get(status.channel)
        webhook = WebhookHealth(status.outcome, status.reason, status.detail, status.broken(now), now)
        if status.reason == "auth" and (last is None or last.healthy):
            finding = ChannelCheck(healthy=False, reason="auth", detail=status.detail)
            item = _Due(status.tenant, channels[status.tenant, status.channel])
            known[status.tenant][status.channel] = _record(item, finding, now, last, webhook)
        elif last is not None:
            known[status.tenant][status.channel] = replace(last, webhook=webhook)
            record_health(known[status.tenant][status.channel])  # same state: no transition
        _count(status, now)
    broken = [s for s in statuses if s.broken(now)]
    obs.gauge(obs.WEBHOOKS_BROKEN, len(broken))
    return {
        "registered": sorted(f"{s.tenant}/{s.channel}" for s in statuses if s.outcome == "registered"),
        "broken": sorted(f"{s.tenant}/{s.channel}" for s in broken),
    }


def _count(status: WebhookStatus, now: datetime) -> None:
    if status.outcome == "registered":
        obs.count(obs.WEBHOOKS_REGISTERED, platform=status.platform)
    elif status.outcome == "error":
        obs.count(obs.WEBHOOK_ERRORS, platform=status.platform, reason=status.reason)
    if status.broken(now):
        extra = {"tenant": status.tenant, "channel": status.channel, "reason": status.reason}
        logger.error("Inbox webhook broken", extra={**extra, "detail": status.detail})
