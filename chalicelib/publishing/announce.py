"""Turn one new feed item into an announcement and its deliveries, atomically with the dedupe.

One DynamoDB transaction writes the item's seen keys (each conditional on not existing), the
announcement and one pending delivery per routed channel. Either all of it exists or none: an item
is never marked seen without the deliveries that will post it, and two pollers racing on the same
item cannot both announce it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.announcements import Announcement, Priority
from chalicelib.clock import epoch
from chalicelib.config.models import Source, Tenant
from chalicelib.sources.cms import FeedItem
from chalicelib.storage import dynamo
from chalicelib.storage.announcements import announcement_item
from chalicelib.storage.deliveries import Delivery, delivery_from_item, delivery_item
from chalicelib.storage.seen import seen_item


def announcement_id(first_key: str, moment: datetime) -> str:
    """Sortable by time of discovery, unique by the item's first dedupe key."""
    digest = hashlib.sha256(first_key.encode()).hexdigest()[:8]
    return f"{moment:%Y%m%dT%H%M%S}{digest}"


def announcement_from_item(
    item: FeedItem, *, tenant: str, source: str, announcement_id: str, priority: Priority = "normal"
) -> Announcement:
    return Announcement(
        tenant=tenant,
        id=announcement_id,
        source=source,
        title=item.title,
        summary=item.summary,
        link=item.link,
        image=item.image,
        categories=item.categories,
        published=item.published,
        priority=priority,
    )


@dataclass(frozen=True)
class Announced:
    announcement: Announcement
    deliveries: list[Delivery]


def announce(
    tenant: Tenant,
    source: Source,
    item: FeedItem,
    item_keys: Sequence[str],
    moment: datetime,
    *,
    known_keys: Set[str] = frozenset(),
) -> Announced | None:
    """Write the announcement and its deliveries; None if another poll already claimed the item.
    `known_keys` are keys the item shares with items seen before (a listing page as link): they
    are refreshed, while the item's own new keys must not exist yet."""
    announcement = announcement_from_item(
        item,
        tenant=tenant.id,
        source=source.id,
        announcement_id=announcement_id(item_keys[0], moment),
        priority=source.priority,
    )
    seen_rows = [
        seen_item(tenant.id, key, source.id, moment, f"announced:{announcement.id}") for key in item_keys
    ]
    deliveries = [
        delivery_item(
            tenant=tenant.id,
            announcement_id=announcement.id,
            channel=channel.id,
            platform=channel.platform,
            lane=source.priority,
            created=moment,
        )
        for channel in tenant.channels_for(source.id)
    ]
    # A new key may overwrite an expired row (DynamoDB deletes expired items lazily); the
    # announcement and its deliveries are always new.
    puts = [
        {"Put": {"TableName": dynamo.table_name(), "Item": dynamo.to_dynamo(row)}}
        if row["sk"] in known_keys
        else _put(row, "attribute_not_exists(pk) OR expires_at <= :now", {":now": epoch(moment)})
        for row in seen_rows
    ]
    puts += [
        _put(row, "attribute_not_exists(pk)")
        for row in [announcement_item(announcement, moment), *deliveries]
    ]
    try:
        dynamo.client().transact_write_items(TransactItems=puts)
    except ClientError as error:
        if dynamo.is_condition_failure(error):
            return None
        raise
    return Announced(announcement, [delivery_from_item(row) for row in deliveries])


def _put(row: dict[str, Any], condition: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """A conditional put; an existing row means the item was announced already."""
    put: dict[str, Any] = {
        "TableName": dynamo.table_name(),
        "Item": dynamo.to_dynamo(row),
        "ConditionExpression": condition,
    }
    if values:
        put["ExpressionAttributeValues"] = dynamo.values(values)
    return {"Put": put}
