"""WebSub subscriptions as stored: one row per subscription, with its per-subscription secret.

The secret is the key that authenticates every push, so it stays out of the dataclass's repr (and so
out of any log line or traceback that shows a subscription). Rows carry a TTL past their lease: a
subscription nobody renews any more disappears by itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, Literal

from botocore.exceptions import ClientError

from chalicelib.clock import epoch, iso, parse_iso
from chalicelib.storage import dynamo, keys

# pending: asked at the hub, not yet verified; active: the hub verified it (lease known);
# denied: the hub refused it; unsubscribing: we asked the hub to end it.
Status = Literal["pending", "active", "denied", "unsubscribing"]

# A row outlives its lease (or its last request) by this much before the TTL removes it.
KEEP_AFTER_LEASE = timedelta(days=30)

_TIMES = ("requested_at", "lease_expires", "verified_at")


@dataclass(frozen=True)
class Subscription:
    id: str
    feed_url: str  # the alert source URL as configured: which tenants a push concerns
    hub: str
    topic: str  # the feed's own URL as it names itself (its rel="self" link)
    secret: str = field(repr=False)
    status: Status
    requested_at: datetime  # the last subscribe or unsubscribe request sent to the hub
    lease_expires: datetime | None = None
    verified_at: datetime | None = None
    last_error: str | None = None  # a reason word, never a hub's answer


_UPDATABLE = frozenset(f.name for f in fields(Subscription)) - {"id"}


def get_subscription(subscription_id: str) -> Subscription | None:
    response = dynamo.client().get_item(
        TableName=dynamo.table_name(), Key=_key(subscription_id), ConsistentRead=True
    )
    return _from_item(dynamo.from_dynamo(response["Item"])) if "Item" in response else None


def list_subscriptions() -> list[Subscription]:
    paginator = dynamo.client().get_paginator("query")
    found: list[Subscription] = []
    for page in paginator.paginate(
        TableName=dynamo.table_name(),
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues=dynamo.values({":pk": keys.WEBSUB_PK, ":prefix": keys.SUBSCRIPTION_PREFIX}),
        ConsistentRead=True,
    ):
        found.extend(_from_item(dynamo.from_dynamo(raw)) for raw in page["Items"])
    return found


def create_subscription(subscription: Subscription) -> None:
    """Store a new subscription; its random id never collides, so the condition only guards bugs."""
    item = {name: _stored(name, value) for name, value in asdict(subscription).items()}
    until = subscription.lease_expires or subscription.requested_at
    item.update(_key_fields(subscription.id), expires_at=epoch(until + KEEP_AFTER_LEASE))
    dynamo.client().put_item(
        TableName=dynamo.table_name(),
        Item=dynamo.to_dynamo(item),
        ConditionExpression="attribute_not_exists(pk)",
    )


def update_subscription(subscription_id: str, **changes: Any) -> bool:
    """Set the given fields (None removes one) of a stored subscription. False when it is gone."""
    unknown = set(changes) - _UPDATABLE
    if unknown or not changes:
        raise ValueError(f"not updatable subscription fields: {sorted(unknown) or 'none given'}")
    values = {name: _stored(name, value) for name, value in changes.items()}
    if changes.get("lease_expires"):  # the row lives as long as its lease, and a while after
        values["expires_at"] = epoch(changes["lease_expires"] + KEEP_AFTER_LEASE)
    kept = {name: value for name, value in values.items() if value is not None}
    removed = [name for name, value in values.items() if value is None]
    clauses = [f"SET {', '.join(f'#{n} = :{n}' for n in kept)}"] if kept else []
    clauses += [f"REMOVE {', '.join(f'#{n}' for n in removed)}"] if removed else []
    request: dict[str, Any] = {
        "TableName": dynamo.table_name(),
        "Key": _key(subscription_id),
        "UpdateExpression": " ".join(clauses),
        "ConditionExpression": "attribute_exists(pk)",
        "ExpressionAttributeNames": {f"#{name}": name for name in values},
    }
    if kept:
        request["ExpressionAttributeValues"] = dynamo.values({f":{n}": v for n, v in kept.items()})
    try:
        dynamo.client().update_item(**request)
    except ClientError as error:
        if dynamo.is_condition_failure(error):
            return False
        raise
    return True


def delete_subscription(subscription_id: str) -> None:
    dynamo.client().delete_item(TableName=dynamo.table_name(), Key=_key(subscription_id))


def _key_fields(subscription_id: str) -> dict[str, str]:
    return {"pk": keys.WEBSUB_PK, "sk": keys.subscription_sk(subscription_id)}


def _key(subscription_id: str) -> dict[str, Any]:
    return dynamo.to_dynamo(_key_fields(subscription_id))


def _stored(name: str, value: Any) -> Any:
    return iso(value) if name in _TIMES and value is not None else value


def _from_item(item: dict[str, Any]) -> Subscription:
    values: dict[str, Any] = {f.name: item.get(f.name) for f in fields(Subscription)}
    for name in _TIMES:
        values[name] = parse_iso(item[name]) if item.get(name) else None
    return Subscription(**values)
