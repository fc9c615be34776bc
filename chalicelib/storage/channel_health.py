"""Channel health as stored: one row per channel, written by the health check and by the publisher
when a platform refuses the credentials.

A row is the operator's answer to "which channels are broken, since when, and when do their tokens
expire": the CLI lists them, the publisher holds deliveries to an unhealthy channel instead of
failing them, and the health check turns a channel healthy again once its new token works.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from botocore.exceptions import ClientError

from chalicelib.clock import iso, parse_iso
from chalicelib.storage import dynamo, keys

State = Literal["healthy", "unhealthy"]


@dataclass(frozen=True)
class WebhookHealth:
    """An inbox channel's webhook registration as the channel check last found it
    (chalicelib/inbox/webhook_setup.py). Kept apart from `state`: a lost webhook stops citizens'
    messages, not posts, so it must not hold deliveries."""

    outcome: str  # ok, registered, unregistered, error
    reason: str  # ok, lost, delivery_error, auth, no_public_url, ...
    detail: str  # never a secret
    broken: bool  # citizens' messages may not be arriving
    checked_at: datetime


@dataclass(frozen=True)
class ChannelHealth:
    tenant: str
    channel: str
    platform: str
    state: State
    reason: str  # "ok", "auth", "unreachable", ...
    detail: str  # the platform's words, shortened; never a secret
    since: datetime  # when the state last changed
    checked_at: datetime
    token_expires_at: datetime | None = None
    webhook: WebhookHealth | None = None  # inbox channels whose platform calls us only

    @property
    def healthy(self) -> bool:
        return self.state == "healthy"


def get_health(tenant: str, channel: str) -> ChannelHealth | None:
    response = dynamo.client().get_item(
        TableName=dynamo.table_name(),
        Key=dynamo.to_dynamo({"pk": keys.tenant_pk(tenant), "sk": keys.health_sk(channel)}),
    )
    return _from_item(dynamo.from_dynamo(response["Item"])) if "Item" in response else None


def health_of(tenant: str) -> list[ChannelHealth]:
    """Every recorded channel of a tenant (one query)."""
    paginator = dynamo.client().get_paginator("query")
    found: list[ChannelHealth] = []
    for page in paginator.paginate(
        TableName=dynamo.table_name(),
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues=dynamo.values(
            {":pk": keys.tenant_pk(tenant), ":prefix": keys.HEALTH_PREFIX}
        ),
    ):
        found += [_from_item(dynamo.from_dynamo(item)) for item in page["Items"]]
    return found


def record_health(health: ChannelHealth) -> bool:
    """Store a finding. True when the state changed (or is new): the caller counts transitions,
    so a channel that stays broken raises its metric once, not on every check.

    An update, not a put: a finding without webhook fields (the publisher's, on a refused token)
    keeps what the channel check last found about the webhook."""
    fields: dict[str, Any] = {
        "platform": health.platform,
        "state": health.state,
        "reason": health.reason,
        "detail": health.detail[:300],
        "checked_at": iso(health.checked_at),
        **({"token_expires_at": iso(health.token_expires_at)} if health.token_expires_at else {}),
        **_webhook_item(health.webhook),
    }
    try:
        # Same state: keep `since`. The condition fails when the state changes, then `since` moves.
        _update(health, fields, condition="attribute_exists(pk) AND #state = :same")
    except ClientError as error:
        if not dynamo.is_condition_failure(error):
            raise
        _update(health, {**fields, "since": iso(health.checked_at)})
        return True
    return False


def _update(health: ChannelHealth, fields: dict[str, Any], condition: str | None = None) -> None:
    names = {f"#{name}": name for name in fields}
    values = {f":{name}": value for name, value in fields.items()}
    expression = "SET " + ", ".join(f"#{name} = :{name}" for name in fields)
    if not health.token_expires_at:
        # An expiry no longer known is dropped: the TokenDaysLeftMin alarm must not read a stale one.
        names["#token_expires_at"] = "token_expires_at"
        expression += " REMOVE #token_expires_at"
    extra: dict[str, Any] = {}
    if condition:
        names["#state"], values[":same"] = "state", health.state
        extra["ConditionExpression"] = condition
    dynamo.client().update_item(
        TableName=dynamo.table_name(),
        Key=dynamo.to_dynamo({"pk": keys.tenant_pk(health.tenant), "sk": keys.health_sk(health.channel)}),
        UpdateExpression=expression,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=dynamo.values(values),
        **extra,
    )


def _from_item(item: dict[str, Any]) -> ChannelHealth:
    expires = item.get("token_expires_at")
    return ChannelHealth(
        tenant=str(item["pk"]).removeprefix("T#"),
        channel=str(item["sk"]).removeprefix(keys.HEALTH_PREFIX),
        platform=str(item["platform"]),
        state="healthy" if item["state"] == "healthy" else "unhealthy",
        reason=str(item["reason"]),
        detail=str(item.get("detail", "")),
        since=parse_iso(str(item["since"])),
        checked_at=parse_iso(str(item["checked_at"])),
        token_expires_at=parse_iso(str(expires)) if expires else None,
        webhook=_webhook_from(item),
    )


def _webhook_item(webhook: WebhookHealth | None) -> dict[str, Any]:
    if webhook is None:
        return {}
    return {
        "webhook_outcome": webhook.outcome,
        "webhook_reason": webhook.reason,
        "webhook_detail": webhook.detail[:300],
        "webhook_broken": webhook.broken,
        "webhook_checked_at": iso(webhook.checked_at),
    }


def _webhook_from(item: dict[str, Any]) -> WebhookHealth | None:
    if "webhook_outcome" not in item:
        return None
    return WebhookHealth(
        outcome=str(item["webhook_outcome"]),
        reason=str(item.get("webhook_reason", "")),
        detail=str(item.get("webhook_detail", "")),
        broken=bool(item.get("webhook_broken")),
        checked_at=parse_iso(str(item["webhook_checked_at"])),
    )
