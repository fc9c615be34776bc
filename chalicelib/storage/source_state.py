"""Per-source polling state: validators for conditional GET, health, back-off."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from chalicelib.clock import iso, parse_iso
from chalicelib.storage import dynamo, keys


@dataclass(frozen=True)
class SourceState:
    tenant: str
    source: str
    initialized: bool = False  # the first successful poll has happened (backlog policy applied)
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None  # skip parsing when a server ignores conditional GET
    first_poll: datetime | None = None
    last_poll: datetime | None = None
    last_success: datetime | None = None
    last_error_at: datetime | None = None
    last_error_reason: str | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    not_before: datetime | None = None  # Retry-After / Cache-Control from the site

    @property
    def failing(self) -> bool:
        return self.consecutive_failures > 0

    def succeeded(self, moment: datetime, **changes: Any) -> SourceState:
        return replace(
            self,
            first_poll=self.first_poll or moment,
            last_poll=moment,
            last_success=moment,
            consecutive_failures=0,
            last_error=None,
            last_error_reason=None,
            **changes,
        )

    def failed(self, moment: datetime, reason: str, message: str, not_before: datetime | None) -> SourceState:
        return replace(
            self,
            first_poll=self.first_poll or moment,
            last_poll=moment,
            last_error_at=moment,
            last_error_reason=reason,
            last_error=message[:500],
            consecutive_failures=self.consecutive_failures + 1,
            not_before=not_before,
        )


_TIMES = ("first_poll", "last_poll", "last_success", "last_error_at", "not_before")


def get_source_state(tenant: str, source: str) -> SourceState:
    response = dynamo.client().get_item(
        TableName=dynamo.table_name(),
        Key=dynamo.to_dynamo({"pk": keys.tenant_pk(tenant), "sk": keys.source_sk(source)}),
        ConsistentRead=True,
    )
    if "Item" not in response:
        return SourceState(tenant=tenant, source=source)
    return _from_item(dynamo.from_dynamo(response["Item"]))


def _from_item(item: dict[str, Any]) -> SourceState:
    fields: dict[str, Any] = {name: item.get(name) for name in SourceState.__dataclass_fields__}
    for name in _TIMES:
        fields[name] = parse_iso(item[name]) if item.get(name) else None
    fields["initialized"] = bool(item.get("initialized", False))
    fields["consecutive_failures"] = int(item.get("consecutive_failures", 0))
    return SourceState(**fields)


def save_source_state(state: SourceState) -> None:
    data = asdict(state)
    for name in _TIMES:
        data[name] = iso(data[name]) if data[name] else None
    data.update(pk=keys.tenant_pk(state.tenant), sk=keys.source_sk(state.source))
    dynamo.client().put_item(TableName=dynamo.table_name(), Item=dynamo.to_dynamo(data))


def list_source_states(tenant: str) -> list[SourceState]:
    """Every stored source state of a tenant (one query; a tenant has a handful of sources)."""
    paginator = dynamo.client().get_paginator("query")
    states: list[SourceState] = []
    for page in paginator.paginate(
        TableName=dynamo.table_name(),
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues=dynamo.values({":pk": keys.tenant_pk(tenant), ":prefix": "SOURCE#"}),
    ):
        states.extend(_from_item(dynamo.from_dynamo(raw)) for raw in page["Items"])
    return states
