"""Seen item keys: the durable dedupe. An item is a duplicate if any of its keys was seen."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from chalicelib.clock import epoch, iso
from chalicelib.storage import dynamo, keys

# Long enough that a feed re-publishing old items never re-posts them; items older than a
# source's max age are refused anyway, so expiry cannot bring old news back.
SEEN_TTL = timedelta(days=400)
# A content key ("c:", same title and text) catches a CMS re-publishing an item under a new guid
# and link, which happens in bursts; kept longer, it would also swallow a notice that a comune
# legitimately repeats with the same words every week ("Mercato sospeso").
CONTENT_SEEN_TTL = timedelta(days=3)
_BATCH_GET = 100
_BATCH_WRITE = 25


def seen_keys(tenant: str, candidates: Iterable[str], now: datetime) -> set[str]:
    """Which of these keys were seen before and have not expired (batched, strongly consistent,
    unprocessed keys retried). Expiry is checked here: DynamoDB deletes expired items lazily."""
    wanted = sorted(set(candidates))
    found: set[str] = set()
    for start in range(0, len(wanted), _BATCH_GET):
        request: dict[str, Any] = {
            dynamo.table_name(): {
                "Keys": [
                    dynamo.to_dynamo({"pk": keys.seen_pk(tenant), "sk": k})
                    for k in wanted[start : start + _BATCH_GET]
                ],
                "ProjectionExpression": "sk, expires_at",
                "ConsistentRead": True,
            }
        }
        for response in dynamo.drain(dynamo.client().batch_get_item, request, "UnprocessedKeys"):
            for raw in response["Responses"].get(dynamo.table_name(), []):
                item = dynamo.from_dynamo(raw)
                if item.get("expires_at", epoch(now) + 1) > epoch(now):
                    found.add(item["sk"])
    return found


def seen_item(tenant: str, key: str, source: str, moment: datetime, outcome: str) -> dict[str, Any]:
    """The item that marks a key seen; `outcome` says what was decided (posted, first_run, too_old)."""
    return {
        "pk": keys.seen_pk(tenant),
        "sk": key,
        "source": source,
        "outcome": outcome,
        "seen_at": iso(moment),
        "expires_at": epoch(moment + (CONTENT_SEEN_TTL if key.startswith("c:") else SEEN_TTL)),
    }


def mark_seen(tenant: str, key_outcomes: dict[str, str], source: str, moment: datetime) -> None:
    """Mark keys seen without announcing anything (first run, too old). Unconditional: idempotent."""
    items = [seen_item(tenant, k, source, moment, outcome) for k, outcome in sorted(key_outcomes.items())]
    for start in range(0, len(items), _BATCH_WRITE):
        request: dict[str, Any] = {
            dynamo.table_name(): [
                {"PutRequest": {"Item": dynamo.to_dynamo(i)}} for i in items[start : start + _BATCH_WRITE]
            ]
        }
        dynamo.drain(dynamo.client().batch_write_item, request, "UnprocessedItems")
