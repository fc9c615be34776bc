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
from chalicelib.config.models import AnyChannel, Source, Tenant
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
    # A new key may overwrite an expired row (DynamoDB deletes expired items lazily).
    guards = [
        put(row)
        if row["sk"] in known_keys
        else put(row, "attribute_not_exists(pk) OR expires_at <= :now", {":now": epoch(moment)})
        for row in (
            seen_item(tenant.id, key, source.id, moment, f"announced:{announcement.id}") for key in item_keys
        )
    ]
    written = write_announcements(
        tenant, tenant.channels_for(source.id), [Outgoing(announcement)], moment, guards=guards
    )
    return written[0] if written else None


@dataclass(frozen=True)
class Outgoing:
    """One announcement to write, and the posts it replies under on each channel (if any)."""

    announcement: Announcement
    thread_anchor: str | None = None


def write_announcements(
    tenant: Tenant,
    channels: Sequence[AnyChannel],
    outgoing: Sequence[Outgoing],
    moment: datetime,
    *,
    guards: Sequence[dict[str, Any]],
) -> list[Announced] | None:
    """One transaction: the `guards` (the rows that say this content was handled, conditional so
    that two pollers cannot both announce it), each announcement and one pending delivery of it per
    channel. Several announcements go together when one change needs several posts (an alert raised:
    a new post and a reply in the old thread), so neither is ever written without the other.
    None if a guard's condition failed: announced already."""
    written: list[tuple[Announcement, list[dict[str, Any]]]] = [
        (
            item.announcement,
            [
                delivery_item(
                    tenant=tenant.id,
                    announcement_id=item.announcement.id,
                    channel=channel.id,
                    platform=channel.platform,
                    lane=item.announcement.priority,
                    created=moment,
                    thread_anchor=item.thread_anchor,
                )
                for channel in channels
            ],
        )
        for item in outgoing
    ]
    rows = [
        row
        for announcement, deliveries in written
        for row in (announcement_item(announcement, moment), *deliveries)
    ]
    try:
        dynamo.client().transact_write_items(
            TransactItems=[*guards, *(put(row, "attribute_not_exists(pk)") for row in rows)]
        )
    except ClientError as error:
        if dynamo.is_condition_failure(error):
            return None
        raise
    return [
        Announced(announcement, [delivery_from_item(row) for row in deliveries])
        for announcement, deliveries in written
    ]


def put(
    row: dict[str, Any], condition: str | None = None, values: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A transaction item that writes `row`, on `condition` if given."""
    request: dict[str, Any] = {"TableName": dynamo.table_name(), "Item": dynamo.to_dynamo(row)}
    if condition:
        request["ConditionExpression"] = condition
    if values:
        request["ExpressionAttributeValues"] = dynamo.values(values)
    return {"Put": request}
