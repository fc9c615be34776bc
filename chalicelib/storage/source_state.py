"""Per-source polling state: validators for conditional GET, health, back-off.

A CMS source has its row under its tenant. An alert feed has one row of its own, whoever lists it
(tenant `keys.ALERT_FEEDS`, source its feed key): a national feed listed by 7,900 comuni is polled,
and its state read, once a pass. `source_states` gives a tenant's view of both kinds."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.clock import iso, parse_iso
from chalicelib.config.models import Tenant
from chalicelib.storage import dynamo, keys
from chalicelib.storage.alert_feeds import feed_key


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
    # Alert feeds only: the fingerprint of the tenants listing the feed and of their alert configs
    # when it was last announced (a new member or a fixed zone makes the next pass announce again),
    # the snapshot of the alerts last read (an Atom read fetches only what it does not hold), and the
    # snapshot last announced in full to those members (a body read again because part of it could
    # not be, with nothing new, is not announced again).
    members_digest: str | None = None
    snapshot: str | None = None
    announced_snapshot: str | None = None
    # Alert feeds only: bumped by every write of the row, so a write based on an older read (a pass
    # that ran while an announce job forgot the members) can be refused (save_feed_state).
    row_version: int = 0

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
    fields["row_version"] = int(item.get("row_version", 0))
    return SourceState(**fields)


def save_source_state(state: SourceState) -> None:
    dynamo.client().put_item(TableName=dynamo.table_name(), Item=_to_item(state))


def _to_item(state: SourceState) -> dict[str, Any]:
    data = asdict(state)
    for name in _TIMES:
        data[name] = iso(data[name]) if data[name] else None
    data.update(pk=keys.tenant_pk(state.tenant), sk=keys.source_sk(state.source))
    return dynamo.to_dynamo(data)


def save_feed_state(state: SourceState) -> bool:
    """Write an alert feed's state row, derived from the row as read (`state.row_version`), unless the
    row was written since: then nothing is written and False is returned. The later write stands, so
    an announce job's forget_members is never undone by a pass that read the row before it."""
    read = state.row_version
    try:
        dynamo.client().put_item(
            TableName=dynamo.table_name(),
            Item=_to_item(replace(state, row_version=read + 1)),
            # A row never written by save_feed_state or forget_members has no version: version 0.
            ConditionExpression="row_version = :read"
            + ("" if read else " OR attribute_not_exists(row_version)"),
            ExpressionAttributeValues=dynamo.values({":read": read}),
        )
    except ClientError as error:
        if not dynamo.is_condition_failure(error):
            raise
        return False
    return True


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


def feed_state(feed: str) -> SourceState:
    """The state row of an alert feed (by its feed key)."""
    return get_source_state(keys.ALERT_FEEDS, feed)


def forget_members(feed: str) -> None:
    """Make the next pass over an alert feed announce its current body again, as for a new member
    (an announce job found its snapshot gone, or was queued under other members). The row gets a new
    version, so the pass that queued the job, if it has not saved the row yet (or ever: the feed's
    first pass), cannot write its digest back (save_feed_state); a row not written yet is created
    with no more than its version."""
    dynamo.client().update_item(
        TableName=dynamo.table_name(),
        Key=dynamo.to_dynamo({"pk": keys.tenant_pk(keys.ALERT_FEEDS), "sk": keys.source_sk(feed)}),
        UpdateExpression=(
            "SET #tenant = if_not_exists(#tenant, :tenant), #source = if_not_exists(#source, :source)"
            " REMOVE members_digest ADD row_version :one"
        ),
        ExpressionAttributeNames={"#tenant": "tenant", "#source": "source"},
        ExpressionAttributeValues=dynamo.values({":tenant": keys.ALERT_FEEDS, ":source": feed, ":one": 1}),
    )


def source_states(tenant: Tenant, feeds: dict[str, SourceState] | None = None) -> dict[str, SourceState]:
    """The state of each source of a tenant that has one, by source id: CMS sources from the
    tenant's rows, alert sources from their feed's row (rows an older version kept per tenant for
    alert sources are ignored). `feeds`: a cache of feed rows the caller keeps for one run over all
    tenants, so a feed listed by every comune is read once."""
    cache = {} if feeds is None else feeds
    alert_sources = {source.id: source for source in tenant.alert_sources}
    states = {s.source: s for s in list_source_states(tenant.id) if s.source not in alert_sources}
    for source in alert_sources.values():
        key = feed_key(str(source.url), source.format)
        if key not in cache:
            cache[key] = feed_state(key)
        if cache[key].first_poll is not None:
            states[source.id] = cache[key]
    return states
