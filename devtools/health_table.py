"""`banditore channels`: each configured channel's health as the table records it, in Italian."""

from __future__ import annotations

from datetime import datetime

from chalicelib.clock import ROME
from chalicelib.config.models import Config
from chalicelib.storage.channel_health import ChannelHealth, health_of

_STATES = {"healthy": "✓ funzionante", "unhealthy": "✗ NON funzionante"}
_NEVER = "? mai verificato"


def print_health(config: Config, now: datetime) -> int:
    """Print one line per enabled channel; 1 when any is unhealthy, else 0."""
    rows = [("Ente", "Canale", "Piattaforma", "Stato", "Dal", "Token scade", "Motivo")]
    broken = 0
    for tenant in config.tenants:
        recorded = {h.channel: h for h in health_of(tenant.id)}
        for channel in tenant.channels:
            if not channel.enabled:
                continue
            health = recorded.get(channel.id)
            broken += int(health is not None and not health.healthy)
            rows.append((tenant.id, channel.id, channel.platform, *_describe(health, now)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    if broken:
        print(
            f"\n{broken} {'canale non funziona' if broken == 1 else 'canali non funzionano'}: "
            "rinnovare il token e attendere il prossimo controllo (o usare --check)."
        )
    return 1 if broken else 0


def _describe(health: ChannelHealth | None, now: datetime) -> tuple[str, str, str, str]:
    if health is None:
        return _NEVER, "—", "—", ""
    since = health.since.astimezone(ROME).strftime("%d/%m/%Y %H:%M")
    reason = "" if health.healthy else f"{health.reason}: {health.detail}"
    return _STATES[health.state], since, _expiry(health.token_expires_at, now), reason


def _expiry(expires: datetime | None, now: datetime) -> str:
    if expires is None:
        return "—"
    days = (expires - now).days
    when = expires.astimezone(ROME).strftime("%d/%m/%Y")
    return f"{when} (scaduto)" if days < 0 else f"{when} (tra {days} gg)"
