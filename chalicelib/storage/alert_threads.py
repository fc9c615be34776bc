"""Alert threads as stored per tenant: every CAP identifier that belongs to a thread (the first
alert and each update) has a row pointing at the thread's facts and its anchor announcement, so an
update that references any earlier identifier finds the thread in one batch read."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
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


def handled_row(
    tenant: str, sender: str, identifier: str, now: datetime, until: datetime | None
) -> dict[str, Any]:
    """An alert that was read and needed no post for this tenant: it is not read again."""
    return {
        "pk": keys.alert_pk(tenant),
        "sk": alert_key(sender, identifier),
        "sender": sender,
        "identifier": identifier,
        "updated_at": iso(now),
        "expires_at": epoch(max(until or now, now) + KEEP_AFTER_EXPIRY),
    }


def thread_row(tenant: str, sender: str, identifier: str, thread: Thread, now: datetime) -> dict[str, Any]:
    facts = thread.facts
    return handled_row(tenant, sender, identifier, now, facts.expires) | {
        "anchor": thread.anchor,
        "ended": thread.ended,
        "level": int(facts.level),
        "hazard": facts.hazard,
        "zones": list(facts.zones),
        "onset": iso(facts.onset) if facts.onset else None,
        "expires": iso(facts.expires) if facts.expires else None,
    }


def find_rows(
    tenant: str, sender_identifiers: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Thread | None]:
    """Each (sender, identifier) this tenant has handled, with its thread (None: handled, no post)."""
    wanted = {alert_key(s, i): (s, i) for s, i in sender_identifiers}
    if not wanted:
        return {}
    request = {
        dynamo.table_name(): {
            "Keys": [dynamo.to_dynamo({"pk": keys.alert_pk(tenant), "sk": k}) for k in sorted(wanted)],
            "ConsistentRead": True,
        }
    }
    found: dict[tuple[str, str], Thread | None] = {}
    for response in dynamo.drain(dynamo.client().batch_get_item, request, "UnprocessedKeys"):
        for raw in response["Responses"].get(dynamo.table_name(), []):
            item = dynamo.from_dynamo(raw)
            found[wanted[item["sk"]]] = _thread(item) if item.get("anchor") else None
    return found


def _thread(item: dict[str, Any]) -> Thread:
    return Thread(
        anchor=item["anchor"],
        ended=bool(item.get("ended")),
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
