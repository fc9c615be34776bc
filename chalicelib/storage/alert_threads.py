"""Alert threads as stored per tenant: every CAP identifier that belongs to a thread (the first
alert and each update) has a row pointing at the thread's facts and its anchor announcement, so an
update that references any earlier identifier finds the thread in one batch read.

Every row carries the digest of the tenant's alert config it was decided under: a row without a
thread (read, nothing posted) counts only under the same config, so an alert skipped before a
comune's zone was fixed is decided again. Test and Exercise alerts shown in the sandbox have rows of
their own (another partition), so a drill can never touch a real alert's thread."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.alerts.model import Level
from chalicelib.alerts.threads import Facts, Thread
from chalicelib.clock import epoch, iso, parse_iso
from chalicelib.storage import dynamo, keys

# Threads are kept a while after their alert expires: late updates and cancels still find them.
KEEP_AFTER_EXPIRY = timedelta(days=30)


def alert_key(sender: str, identifier: str) -> str:
    """A fixed-size sort key: CAP identifiers and senders are free text of any length."""
    return hashlib.sha256(f"{sender}\n{identifier}".encode()).hexdigest()[:40]


@dataclass(frozen=True)
class AlertLedger:
    """Where one tenant's handled alerts are recorded, and under which alert config."""

    tenant: str
    digest: str  # chalicelib.alerts.areas.config_digest of the tenant's alert config
    drill: bool = False  # Test and Exercise alerts shown in the sandbox

    @property
    def pk(self) -> str:
        return keys.drill_alert_pk(self.tenant) if self.drill else keys.alert_pk(self.tenant)

    def claim(self) -> tuple[str, dict[str, Any]]:
        """The condition (and its values) for writing an alert's own row: new, or one that said
        "no post" under another config. A row with a thread is never overwritten, and two pollers
        deciding under the same config cannot both write it."""
        return (
            "attribute_not_exists(pk) OR (attribute_not_exists(anchor)"
            " AND (attribute_not_exists(config_digest) OR config_digest <> :digest))",
            {":digest": self.digest},
        )


def handled_row(
    ledger: AlertLedger, sender: str, identifier: str, now: datetime, until: datetime | None
) -> dict[str, Any]:
    """An alert that was read and needed no post for this tenant: not read again under this config."""
    return {
        "pk": ledger.pk,
        "sk": alert_key(sender, identifier),
        "sender": sender,
        "identifier": identifier,
        "config_digest": ledger.digest,
        "updated_at": iso(now),
        "expires_at": epoch(max(until or now, now) + KEEP_AFTER_EXPIRY),
    }


def thread_row(
    ledger: AlertLedger, sender: str, identifier: str, thread: Thread, now: datetime
) -> dict[str, Any]:
    facts = thread.facts
    return handled_row(ledger, sender, identifier, now, facts.expires) | {
        "anchor": thread.anchor,
        "ended": thread.ended,
        "level": int(facts.level),
        "hazard": facts.hazard,
        "zones": list(facts.zones),
        "onset": iso(facts.onset) if facts.onset else None,
        "expires": iso(facts.expires) if facts.expires else None,
        "sent": iso(thread.sent) if thread.sent else None,
    }


def find_rows(
    ledger: AlertLedger, sender_identifiers: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Thread | None]:
    """Each (sender, identifier) this tenant has handled, with its thread (None: handled, no post).
    A row without a thread written under another config (or before configs were recorded) is left
    out: that alert is to be decided again."""
    wanted = {alert_key(s, i): (s, i) for s, i in sender_identifiers}
    if not wanted:
        return {}
    request = {
        dynamo.table_name(): {
            "Keys": [dynamo.to_dynamo({"pk": ledger.pk, "sk": k}) for k in sorted(wanted)],
            "ConsistentRead": True,
        }
    }
    found: dict[tuple[str, str], Thread | None] = {}
    for response in dynamo.drain(dynamo.client().batch_get_item, request, "UnprocessedKeys"):
        for raw in response["Responses"].get(dynamo.table_name(), []):
            item = dynamo.from_dynamo(raw)
            if item.get("anchor"):
                found[wanted[item["sk"]]] = _thread(item)
            elif item.get("config_digest") == ledger.digest:
                found[wanted[item["sk"]]] = None
    return found


def _thread(item: dict[str, Any]) -> Thread:
    return Thread(
        anchor=item["anchor"],
        ended=bool(item.get("ended")),
        sent=parse_iso(item["sent"]) if item.get("sent") else None,
        facts=Facts(
            level=Level(int(item["level"])),
            hazard=item["hazard"],
            zones=tuple(item.get("zones", [])),
            onset=parse_iso(item["onset"]) if item.get("onset") else None,
            expires=parse_iso(item["expires"]) if item.get("expires") else None,
        ),
    )


def active_row(tenant: str, thread: Thread, now: datetime) -> dict[str, Any]:
    """An alert thread in force for the tenant (crisis mode reads these); removed when it ends."""
    until = thread.facts.expires
    return {
        "pk": keys.active_alert_pk(tenant),
        "sk": thread.anchor,
        "level": int(thread.facts.level),
        "until": iso(until) if until else None,
        "expires_at": epoch(max(until or now, now) + KEEP_AFTER_EXPIRY),
    }


def active_key(tenant: str, anchor: str) -> dict[str, Any]:
    return dynamo.to_dynamo({"pk": keys.active_alert_pk(tenant), "sk": anchor})


def highest_active_level(tenant: str, now: datetime) -> Level | None:
    """The most severe alert level in force for the tenant now, if any."""
    response = dynamo.client().query(
        TableName=dynamo.table_name(),
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues=dynamo.values({":pk": keys.active_alert_pk(tenant)}),
    )
    levels = [
        Level(int(item["level"]))
        for item in map(dynamo.from_dynamo, response["Items"])
        if not item.get("until") or parse_iso(item["until"]) > now
    ]
    return max(levels, default=None)
