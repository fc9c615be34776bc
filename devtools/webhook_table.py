"""`banditore webhooks`: where each inbox channel's platform sends citizens' messages, in Italian."""

from __future__ import annotations

from datetime import datetime

from chalicelib.clock import ROME
from chalicelib.config.models import Config
from chalicelib.inbox.webhook_setup import PUBLIC_URL_ENV, WebhookStatus, inbox_channels, sync_webhooks

_OUTCOMES = {
    "ok": "✓ registrato",
    "registered": "✓ registrato ora",
    "unregistered": "✗ NON registrato",
    "error": "✗ errore",
    "off": "— nessun URL pubblico",
}


def print_webhooks(config: Config, now: datetime, *, register: bool) -> int:
    """Ask each platform (and register where needed with `register`), print one line per inbox
    channel; 1 when any channel's messages may not be arriving, else 0."""
    if not inbox_channels(config):
        print("Nessun canale con la casella dei cittadini (inbox: true) riceve webhook.")
        return 0
    statuses = sync_webhooks(config, now, register=register)
    rows = [("Ente", "Canale", "Stato", "URL registrato", "In coda", "Ultimo errore")]
    rows += [_row(status) for status in statuses]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    broken = [status for status in statuses if status.broken(now)]
    if any(status.outcome == "off" for status in statuses):
        print(f"\n{PUBLIC_URL_ENV} non è impostato: non c'è un indirizzo pubblico da registrare.")
        return 1
    if broken:
        hint = "" if register else " Usare --register per registrarli."
        who = "1 canale potrebbe" if len(broken) == 1 else f"{len(broken)} canali potrebbero"
        print(f"\n{who} non ricevere i messaggi dei cittadini.{hint}")
    return 1 if broken else 0


def _row(status: WebhookStatus) -> tuple[str, str, str, str, str, str]:
    registration = status.registration or "—"
    if status.platform == "facebook" and status.registration:
        registration = f"Pagina iscritta ({status.registration})"
    pending = "—" if status.pending is None else str(status.pending)
    return (
        status.tenant,
        f"{status.channel} ({status.platform})",
        _OUTCOMES[status.outcome],
        registration,
        pending,
        _last_error(status),
    )


def _last_error(status: WebhookStatus) -> str:
    if status.outcome == "error":
        return f"{status.reason}: {status.detail}"
    if status.last_error_at is None:
        return "—"
    when = status.last_error_at.astimezone(ROME).strftime("%d/%m/%Y %H:%M")
    return f"{when} {status.last_error}"
