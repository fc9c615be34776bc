"""What an alert feed's readers hand to its announcers, as DynamoDB items: the parsed alerts of a
body read (the snapshot an announce job works from, so 7,900 comuni do not each fetch and parse the
feed) and a body a WebSub hub pushed (stored so the route can answer at once and a job reads it).

Both are gzip'd and expire by TTL: a snapshot is named by a hash of its content, so it never changes
once written and a worker may keep it in memory; an item over MAX_ITEM_BYTES is refused (DynamoDB
takes 400 KB an item), and the caller takes the path that needs no item.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from chalicelib.alerts.alert_json import alerts_from_json, alerts_to_json
from chalicelib.alerts.model import Alert
from chalicelib.clock import epoch
from chalicelib.storage import dynamo, keys

MAX_ITEM_BYTES = 350_000  # compressed; leaves room for the keys under DynamoDB's 400 KB
SNAPSHOT_TTL = timedelta(days=2)  # longer than any announce job waits on its queue
PUSH_TTL = timedelta(days=1)
_CACHED_SNAPSHOTS = 8
_snapshots: dict[tuple[str, str], tuple[Alert, ...]] = {}


def feed_key(url: str, feed_format: str) -> str:
    """A distinct alert feed's short name: in state rows, snapshot keys and lane messages."""
    return hashlib.sha256(f"{feed_format} {url}".encode()).hexdigest()[:24]


def put_snapshot(feed: str, alerts: Sequence[Alert], now: datetime) -> str | None:
    """Store a feed's parsed alerts; their key, or None when they are too large for an item."""
    return _put(feed, keys.snapshot_sk, alerts_to_json(alerts).encode(), now + SNAPSHOT_TTL)


def get_snapshot(feed: str, key: str) -> tuple[Alert, ...] | None:
    """A snapshot's alerts (None when it expired). Kept per process, as a key never changes content
    and the next jobs of a national alert ask for the same one; a miss is not remembered."""
    cached = _snapshots.get((feed, key))
    if cached is not None:
        return cached
    data = _get(feed, keys.snapshot_sk(key))
    if data is None:
        return None
    if len(_snapshots) >= _CACHED_SNAPSHOTS:
        _snapshots.clear()
    alerts = _snapshots[(feed, key)] = alerts_from_json(gzip.decompress(data))
    return alerts


def put_pushed_body(feed: str, body: bytes, now: datetime) -> str | None:
    """Store a pushed feed body; its key, or None when it is too large for an item."""
    return _put(feed, keys.pushed_body_sk, body, now + PUSH_TTL)


def get_pushed_body(feed: str, key: str) -> bytes | None:
    data = _get(feed, keys.pushed_body_sk(key))
    return gzip.decompress(data) if data is not None else None


def _put(feed: str, sort_key: Callable[[str], str], content: bytes, until: datetime) -> str | None:
    """Store `content` gzip'd under a hash of itself; its key, or None when it is too large."""
    key = hashlib.sha256(content).hexdigest()[:32]
    data = gzip.compress(content, mtime=0)
    if len(data) > MAX_ITEM_BYTES:
        return None
    item = {"pk": keys.feed_pk(feed), "sk": sort_key(key), "data": data, "expires_at": epoch(until)}
    dynamo.client().put_item(TableName=dynamo.table_name(), Item=dynamo.to_dynamo(item))
    return key


def _get(feed: str, sk: str) -> bytes | None:
    response = dynamo.client().get_item(
        TableName=dynamo.table_name(),
        Key=dynamo.to_dynamo({"pk": keys.feed_pk(feed), "sk": sk}),
        ConsistentRead=True,  # read by a job queued right after the write
    )
    if "Item" not in response:
        return None
    return bytes(response["Item"]["data"]["B"])
