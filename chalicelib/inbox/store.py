"""The inbox's DynamoDB repository (keys: chalicelib/storage/keys.py).

Every change of a conversation is one TransactWriteItems: the conversation under an optimistic
`version` condition, the list/SLA/citizen-index rows that changed with it, the message and its id
marker, the dedupe row, the figures row. A writer that loses a race (another message of the same
citizen, a staff action) reads again and retries, so concurrent workers never lose a message or
leave a stale list row; two first messages of one citizen race for one conditional create of the
same deterministic conversation id. A replayed platform message fails the dedupe condition and is
answered as a duplicate with what was stored.

Retention: personal rows carry expires_at (the TTL attribute) = last activity + the tenant's
retention; the dedupe row at most 30 days; figures and audit rows are anonymous and kept 5 years.
Nothing here logs message text or citizen identifiers.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from chalicelib.clock import epoch, iso, parse_iso, utcnow
from chalicelib.config.models import OfficeHours
from chalicelib.inbox import cursors, figures, lifecycle, rows, tx
from chalicelib.inbox.model import (
    STATUSES,
    Conversation,
    ConversationSummary,
    InboundMessage,
    MentionCursor,
    Message,
    OutboundKind,
    Page,
    Status,
)
from chalicelib.inbox.threading import CONVERSATION_ID, Thread, inbound_message_id, thread_joining
from chalicelib.storage import dynamo, keys

DEDUPE_TTL = timedelta(days=30)
POST_LINK_TTL = timedelta(days=400)  # replies keep coming to old posts for months
AUDIT_TTL = timedelta(days=5 * 366)
MAX_PAGE = 100
MAX_TAGS = 10
TAG = re.compile(r"^[^\s#\x00-\x1f]([^#\x00-\x1f]{0,38}[^\s#\x00-\x1f])?$")
USER = re.compile(r"^[^\s#\x00-\x1f]{1,128}$")
MESSAGE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
AuditValue = str | int | bool | list[str] | None


class NotFound(Exception):
    """No such conversation for this tenant."""


class Conflict(Exception):
    """The conversation changed under the caller (a stale expected version), or writers kept racing."""


@dataclass(frozen=True)
class RecordResult:
    conversation: Conversation
    message: Message
    created_conversation: bool
    reopened: bool
    # A replay of a message already recorded: nothing was written. Follow-ups keyed by the message
    # id (an automatic answer with message_id=f"auto-{message.id}") are safe to run again.
    duplicate: bool


@dataclass(frozen=True)
class OutboundResult:
    conversation: Conversation
    message: Message
    duplicate: bool  # a message with this id was already recorded


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    user: str
    action: str
    conversation_id: str | None
    fields: dict[str, AuditValue]


# ---- citizens' messages ---------------------------------------------------------------------


def record_inbound(
    message: InboundMessage, *, retention_days: int, now: datetime, urgent: bool = False
) -> RecordResult:
    """Thread a citizen's message into its conversation (created or reopened as needed)."""
    thread = thread_joining(message, _replied_conversation(message))
    stored = rows.inbound_message(message, inbound_message_id(message), thread.conversation_id)
    dedupe = {
        "pk": keys.inbound_pk(message.tenant),
        "sk": keys.inbound_sk(message.platform, message.channel, message.platform_message_id),
        "conversation_id": thread.conversation_id,
        "message_sk": rows.message_sort_key(stored),
        "expires_at": epoch(message.received_at + min(DEDUPE_TTL, timedelta(days=retention_days))),
    }
    for _ in tx.attempts():
        current = get_conversation(message.tenant, thread.conversation_id)
        reopened = False
        if current is None:
            new = _opened(message, thread, stored.id, urgent=urgent, retention_days=retention_days)
            # Its anonymous figures row is born with it.
            extra = [tx.upsert(figures.row_key(new.tenant, new.figures_key), figures.base_attributes(new))]
        else:
            new, reopened = lifecycle.after_inbound(
                current, message, stored.id, urgent=urgent, retention_days=retention_days
            )
            extra = []
        new = replace(new, version=(current.version if current else 0) + 1)
        guards = [
            # Expired rows may linger until DynamoDB deletes them: they no longer count.
            tx.put(dedupe, "attribute_not_exists(pk) OR expires_at < :now", {":now": epoch(now)}),
            *_message_ops(message.tenant, stored, new, retention_days),
        ]
        codes = tx.transact([*guards, *_conversation_ops(current, new), *extra])
        if codes is None:
            return RecordResult(new, stored, current is None, reopened, duplicate=False)
        if tx.CONDITION_FAILED in codes[:2]:  # the dedupe row or the message's id marker
            return _duplicate_inbound(message.tenant, thread.conversation_id, stored)
    raise Conflict("conversation kept changing while recording a message")


def _replied_conversation(message: InboundMessage) -> Conversation | None:
    """The conversation holding the message this one replies to: a citizen's message (its dedupe
    row) or one of our answers (link_answer), both found by the platform's id."""
    if not message.parent_message_id:
        return None
    found = _get(
        keys.inbound_pk(message.tenant),
        keys.inbound_sk(message.platform, message.channel, message.parent_message_id),
    )
    return get_conversation(message.tenant, str(found["conversation_id"])) if found else None


def link_answer(
    tenant: str,
    platform: str,
    channel: str,
    platform_message_id: str,
    conversation_id: str,
    *,
    expires_at: int,
) -> None:
    """Remember which conversation an answer we sent is in, by the platform's id of the answer: a
    citizen replying to it joins that conversation. Beside the citizens' dedupe rows, as the same
    lookup serves both; the row says "out" and lives as long as its conversation."""
    dynamo.client().put_item(
        TableName=dynamo.table_name(),
        Item=dynamo.to_dynamo(
            {
                "pk": keys.inbound_pk(tenant),
                "sk": keys.inbound_sk(platform, channel, platform_message_id),
                "conversation_id": conversation_id,
                "direction": "out",
                "expires_at": expires_at,
            }
        ),
    )


def _opened(
    message: InboundMessage, thread: Thread, message_id: str, *, urgent: bool, retention_days: int
) -> Conversation:
    post = thread.post_remote_id
    return lifecycle.opened(
        message,
        thread,
        message_id,
        announcement_id=announcement_for(message.tenant, message.channel, post) if post else None,
        urgent=urgent,
        retention_days=retention_days,
    )


def _duplicate_inbound(tenant: str, conversation_id: str, stored: Message) -> RecordResult:
    conversation = get_conversation(tenant, conversation_id)
    if conversation is None:
        raise Conflict("a replayed message's conversation is gone")
    return RecordResult(
        conversation,
        get_message(tenant, conversation_id, stored.id) or stored,
        created_conversation=False,
        reopened=False,
        duplicate=True,
    )


# ---- staff and automatic answers ------------------------------------------------------------


def record_outbound(
    tenant: str,
    conversation_id: str,
    *,
    text: str,
    author: str,
    kind: OutboundKind = "reply",
    automatic: bool = False,
    retention_days: int,
    hours: OfficeHours,
    now: datetime,
    message_id: str | None = None,
    reply_to_message_id: str | None = None,
    private: bool = False,
    delivery_id: str | None = None,
) -> OutboundResult:
    """Record a staff reply, an internal note or an automatic answer. Give `message_id` to make it
    idempotent (an API retry, an automatic answer per inbound message): a second call with the
    same id records nothing and says duplicate. Only a staff reply can be the first response."""
    if automatic and kind == "note":
        raise ValueError("kind: a note is never automatic")
    if message_id is not None and not MESSAGE_ID.match(message_id):
        raise ValueError("message_id: 1-64 letters, digits, '-' or '_'")
    message = Message(
        id=message_id or uuid.uuid4().hex[:20],
        conversation_id=conversation_id,
        direction="out",
        kind=kind,
        text=text,
        at=now,
        author=author,
        automatic=automatic,
        reply_to_message_id=reply_to_message_id,
        private=private,
        delivery_id=delivery_id,
    )
    for _ in tx.attempts():
        current = _existing(tenant, conversation_id)
        new = lifecycle.after_outbound(current, message, retention_days=retention_days)
        new = replace(new, version=current.version + 1)
        ops = [
            *_message_ops(tenant, message, new, retention_days),
            *_conversation_ops(current, new),
            *_figures_ops(current, new, hours),
        ]
        codes = tx.transact(ops)
        if codes is None:
            return OutboundResult(new, message, duplicate=False)
        if codes[0] == tx.CONDITION_FAILED:  # the id marker: recorded before
            return OutboundResult(current, get_message(tenant, conversation_id, message.id) or message, True)
    raise Conflict("conversation kept changing while recording an answer")


def _message_ops(
    tenant: str, message: Message, conversation: Conversation, retention_days: int
) -> list[tx.Op]:
    expires = min(lifecycle.expiry(message.at, retention_days), conversation.expires_at)
    marker, body = rows.message_items(tenant, message, conversation.platform, conversation.channel, expires)
    return [tx.put(marker, "attribute_not_exists(pk)"), tx.put(body)]


# ---- staff actions --------------------------------------------------------------------------


def set_status(
    tenant: str,
    conversation_id: str,
    status: Status,
    *,
    hours: OfficeHours,
    now: datetime,
    expected_version: int | None = None,
) -> Conversation:
    if status not in STATUSES:
        raise ValueError(f"status: one of {', '.join(STATUSES)}")
    return _change(
        tenant, conversation_id, lambda c: lifecycle.with_status(c, status, now), hours, expected_version
    )[0]


def assign(
    tenant: str,
    conversation_id: str,
    assignee: str | None,
    *,
    now: datetime,
    expected_version: int | None = None,
) -> Conversation:
    if assignee is not None and not USER.match(assignee):
        raise ValueError("assignee: a user id (no spaces or '#')")
    return _change(
        tenant, conversation_id, lambda c: lifecycle.with_assignee(c, assignee, now), None, expected_version
    )[0]


def set_tags(
    tenant: str,
    conversation_id: str,
    tags: Iterable[str],
    *,
    now: datetime,
    expected_version: int | None = None,
) -> Conversation:
    clean = tuple(dict.fromkeys(tag.strip().lower() for tag in tags))
    if len(clean) > MAX_TAGS:
        raise ValueError(f"tags: at most {MAX_TAGS}")
    if not all(TAG.match(tag) for tag in clean):
        raise ValueError("tags: 1-40 characters each, no '#' or control characters")
    return _change(
        tenant, conversation_id, lambda c: lifecycle.with_tags(c, clean, now), None, expected_version
    )[0]


def apply_changes(
    tenant: str,
    conversation_id: str,
    change: Callable[[Conversation], Conversation],
    *,
    hours: OfficeHours,
    expected_version: int | None = None,
) -> Conversation:
    """Several staff changes as one write under one version (lifecycle.with_status, with_assignee,
    with_tags composed by the caller, which checked their values as the functions above do): a
    request changing status and tags together never half-applies."""
    return _change(tenant, conversation_id, change, hours, expected_version)[0]


def mark_sla_breached(tenant: str, conversation_id: str, *, now: datetime) -> bool:
    """Mark a conversation still waiting for its first response as over its SLA. True only for the
    caller that marked it: the breach is counted once, whoever else checks at the same time."""
    return _change(tenant, conversation_id, lambda c: lifecycle.with_sla_breach(c, now), None, None)[1]


def _change(
    tenant: str,
    conversation_id: str,
    change: Callable[[Conversation], Conversation],
    hours: OfficeHours | None,
    expected_version: int | None,
) -> tuple[Conversation, bool]:
    """Apply a change under the version it was computed from; (conversation, whether it changed)."""
    for _ in tx.attempts():
        current = _existing(tenant, conversation_id)
        if expected_version is not None and current.version != expected_version:
            raise Conflict(f"conversation is at version {current.version}, not {expected_version}")
        new = change(current)
        if new == current:
            return current, False
        new = replace(new, version=current.version + 1)
        figures_ops = _figures_ops(current, new, hours) if hours else []
        if tx.transact([*_conversation_ops(current, new), *figures_ops]) is None:
            return new, True
        if expected_version is not None:
            raise Conflict("conversation changed meanwhile")
    raise Conflict("conversation kept changing")


def _conversation_ops(old: Conversation | None, new: Conversation) -> list[tx.Op]:
    """The conversation under its version condition, and the derived rows that differ."""
    if old is None:
        ops = [tx.put(rows.conversation_item(new), "attribute_not_exists(pk)")]
    else:
        ops = [tx.put(rows.conversation_item(new), "version = :v", {":v": old.version})]
    before = {(r["pk"], r["sk"]): r for r in (rows.derived_rows(old) if old else [])}
    after = {(r["pk"], r["sk"]): r for r in rows.derived_rows(new)}
    ops += [tx.delete({"pk": pk, "sk": sk}) for pk, sk in sorted(before.keys() - after.keys())]
    ops += [tx.put(row) for key, row in sorted(after.items()) if before.get(key) != row]
    return ops


def _figures_ops(old: Conversation, new: Conversation, hours: OfficeHours) -> list[tx.Op]:
    found = figures.measured(old, new, hours)
    if not found:
        return []
    return [
        tx.upsert(figures.row_key(new.tenant, new.figures_key), {**figures.base_attributes(new), **found})
    ]


# ---- reading --------------------------------------------------------------------------------


def get_conversation(tenant: str, conversation_id: str) -> Conversation | None:
    if not CONVERSATION_ID.match(conversation_id):
        return None
    response = dynamo.client().get_item(
        TableName=dynamo.table_name(),
        Key=dynamo.to_dynamo({"pk": keys.tenant_pk(tenant), "sk": keys.conversation_sk(conversation_id)}),
        ConsistentRead=True,
    )
    return rows.conversation_from_item(dynamo.from_dynamo(response["Item"])) if "Item" in response else None


def _existing(tenant: str, conversation_id: str) -> Conversation:
    conversation = get_conversation(tenant, conversation_id)
    if conversation is None:
        raise NotFound(f"no conversation {conversation_id}")
    return conversation


def get_message(tenant: str, conversation_id: str, message_id: str) -> Message | None:
    pk = keys.messages_pk(tenant, conversation_id)
    marker = _get(pk, keys.message_id_sk(message_id))
    found = _get(pk, marker["message_sk"]) if marker else None
    return rows.message_from_item(found) if found else None


def _get(pk: str, sk: str) -> dict[str, Any] | None:
    response = dynamo.client().get_item(
        TableName=dynamo.table_name(), Key=dynamo.to_dynamo({"pk": pk, "sk": sk}), ConsistentRead=True
    )
    return dynamo.from_dynamo(response["Item"]) if "Item" in response else None


def messages(
    tenant: str, conversation_id: str, *, limit: int = 50, cursor: str | None = None
) -> Page[Message]:
    """A conversation's messages, oldest first."""
    pk = keys.messages_pk(tenant, conversation_id)
    items, next_cursor = _page(pk, limit=limit, cursor=cursor, prefix=keys.MESSAGE_PREFIX)
    return Page(tuple(rows.message_from_item(item) for item in items), next_cursor)


def list_conversations(
    tenant: str,
    *,
    status: Status,
    channel: str | None = None,
    tag: str | None = None,
    assignee: str | None = None,
    limit: int = 25,
    cursor: str | None = None,
) -> Page[ConversationSummary]:
    """One page of a list: urgent first, then the most recent activity first. One Query per page,
    whatever the inbox size. Filters: one of channel, tag, assignee (each is its own list)."""
    if status not in STATUSES:
        raise ValueError(f"status: one of {', '.join(STATUSES)}")
    pk = keys.inbox_list_pk(tenant, rows.list_name(status, channel=channel, tag=tag, assignee=assignee))
    items, next_cursor = _page(pk, limit=limit, cursor=cursor, newest_first=True)
    return Page(tuple(rows.summary_from_item(item) for item in items), next_cursor)


def conversations_about(
    tenant: str, announcement_id: str, *, limit: int = 100, cursor: str | None = None
) -> Page[Conversation]:
    """Conversations under one of our posts, oldest first (consultations); eventually consistent."""
    gsi_pk = keys.post_conversations_pk(tenant, announcement_id)
    items, next_cursor = _page(gsi_pk, limit=limit, cursor=cursor, index="gsi1")
    return Page(tuple(rows.conversation_from_item(item) for item in items), next_cursor)


def sla_waiting(tenant: str, *, limit: int, cursor: str | None = None) -> Page[ConversationSummary]:
    """Open conversations with no first response and no breach yet, the longest waiting first."""
    pk = keys.inbox_list_pk(tenant, rows.SLA_WAITING)
    items, next_cursor = _page(pk, limit=limit, cursor=cursor)
    return Page(tuple(rows.summary_from_item(item) for item in items), next_cursor)


def count_over_sla(tenant: str, *, max_pages: int) -> tuple[int, bool]:
    """How many open conversations are past their SLA without a first response, reading at most
    `max_pages` pages of keys; (count, complete)."""
    pages = partition_pages(keys.inbox_list_pk(tenant, rows.SLA_OVERDUE), Select="COUNT")
    total = 0
    for number, page in enumerate(pages, start=1):
        total += int(page["Count"])
        if number >= max_pages and "LastEvaluatedKey" in page:
            return total, False
    return total, True


def citizen_conversations(tenant: str, citizen_key: str) -> list[str]:
    """Ids of every conversation of a citizen (the GDPR index)."""
    pages = partition_pages(keys.citizen_pk(tenant, citizen_key), ConsistentRead=True)
    return [str(dynamo.from_dynamo(item)["conversation_id"]) for page in pages for item in page["Items"]]


def partition_pages(pk: str, **options: Any) -> Iterable[dict[str, Any]]:
    """The pages of a whole partition's Query, fetched as they are read (a caller may stop early)."""
    pages: Iterable[dict[str, Any]] = (
        dynamo.client()
        .get_paginator("query")
        .paginate(
            TableName=dynamo.table_name(),
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=dynamo.values({":pk": pk}),
            **options,
        )
    )
    return pages


def _page(
    scope: str,
    *,
    limit: int,
    cursor: str | None,
    newest_first: bool = False,
    prefix: str | None = None,
    index: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One Query of a partition (of the table, or of gsi1 when `index` is given), `limit` + 1 items:
    the extra one only says whether another page exists, so the last page never points to an empty
    one. The cursor is bound to the partition, which names the tenant."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit: 1 to {MAX_PAGE}")
    partition = "gsi1pk" if index else "pk"
    query: dict[str, Any] = {
        "TableName": dynamo.table_name(),
        "KeyConditionExpression": f"{partition} = :pk" + (" AND begins_with(sk, :prefix)" if prefix else ""),
        "ExpressionAttributeValues": dynamo.values({":pk": scope, **({":prefix": prefix} if prefix else {})}),
        "ScanIndexForward": not newest_first,
        "Limit": limit + 1,
        **({"IndexName": index} if index else {}),
    }
    if cursor:
        query["ExclusiveStartKey"] = dynamo.to_dynamo(cursors.decode(cursor, scope))
    items = [dynamo.from_dynamo(raw) for raw in dynamo.client().query(**query)["Items"]]
    if len(items) <= limit:
        return items, None
    last = items[limit - 1]
    key_names = ("pk", "sk", "gsi1pk", "gsi1sk") if index else ("pk", "sk")
    return items[:limit], cursors.encode(scope, {name: str(last[name]) for name in key_names})


# ---- our posts ------------------------------------------------------------------------------


def link_post(tenant: str, channel: str, remote_id: str, announcement_id: str, *, now: datetime) -> None:
    """Remember which announcement a post of ours is, so replies to it link to the announcement."""
    dynamo.client().put_item(
        TableName=dynamo.table_name(),
        Item=dynamo.to_dynamo(
            {
                "pk": keys.post_pk(tenant),
                "sk": keys.post_sk(channel, remote_id),
                "announcement_id": announcement_id,
                "posted_at": iso(now),
                "expires_at": epoch(now + POST_LINK_TTL),
            }
        ),
    )


def announcement_for(tenant: str, channel: str, remote_id: str) -> str | None:
    found = _get(keys.post_pk(tenant), keys.post_sk(channel, remote_id))
    return str(found["announcement_id"]) if found else None


def mention_cursor(tenant: str, channel: str) -> MentionCursor:
    """Where the channel's mention polling stands (MentionCursor() before its first poll)."""
    found = _get(keys.tenant_pk(tenant), keys.mention_cursor_sk(channel))
    if found is None:
        return MentionCursor()
    return MentionCursor(found.get("cursor"), found.get("backlog"), found.get("backlog_top"))


def set_mention_cursor(tenant: str, channel: str, cursor: MentionCursor, *, now: datetime) -> None:
    dynamo.client().put_item(
        TableName=dynamo.table_name(),
        Item=dynamo.to_dynamo(
            {
                "pk": keys.tenant_pk(tenant),
                "sk": keys.mention_cursor_sk(channel),
                "cursor": cursor.seen,
                "backlog": cursor.backlog,
                "backlog_top": cursor.backlog_top,
                "updated_at": iso(now),
            }
        ),
    )


# ---- audit ----------------------------------------------------------------------------------


def audit(
    tenant: str,
    user: str,
    action: str,
    conversation_id: str | None,
    fields: Mapping[str, AuditValue],
    *,
    now: datetime | None = None,
) -> AuditEntry:
    """Record a staff action: who, what, when, which fields. Never pass message text or citizen
    identifiers in `fields` (statuses, tags, user ids, counts): the trail outlives them."""
    entry = AuditEntry(now or utcnow(), user, action, conversation_id, dict(fields))
    dynamo.client().put_item(
        TableName=dynamo.table_name(),
        Item=dynamo.to_dynamo(
            {
                "pk": keys.audit_pk(tenant, iso(entry.at)[:7]),
                "sk": f"{iso(entry.at)}#{uuid.uuid4().hex}",
                "user": user,
                "action": action,
                "conversation_id": conversation_id,
                "fields": entry.fields,
                "expires_at": epoch(entry.at + AUDIT_TTL),
            }
        ),
    )
    return entry


def audit_entries(tenant: str, month: str) -> list[AuditEntry]:
    """A month's trail ("YYYY-MM", UTC), oldest first."""
    if not MONTH.match(month):
        raise ValueError("month: YYYY-MM")
    pages = partition_pages(keys.audit_pk(tenant, month))
    return [
        AuditEntry(
            at=parse_iso(str(item["sk"]).rsplit("#", 1)[0]),
            user=item["user"],
            action=item["action"],
            conversation_id=item.get("conversation_id"),
            fields=dict(item.get("fields", {})),
        )
        for page in pages
        for item in (dynamo.from_dynamo(raw) for raw in page["Items"])
    ]
