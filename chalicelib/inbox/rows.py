"""How the inbox is stored: items to and from dataclasses, and the rows a conversation's state
implies (its list rows, its SLA row, its citizen index row).

Derived rows are a pure function of the conversation, so a writer compares the rows of the old and
the new state and replaces exactly the difference in the same transaction as the conversation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.clock import iso, parse_iso
from chalicelib.inbox.model import (
    Citizen,
    Conversation,
    ConversationSummary,
    InboundMessage,
    Location,
    Message,
    Status,
)
from chalicelib.storage import keys

Item = dict[str, Any]
SNIPPET_CHARS = 140
NAME_CHARS = 200
SLA_WAITING = "sla-waiting"
SLA_OVERDUE = "sla-overdue"


def snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1] + "…"


def list_name(status: Status, *, channel: str | None, tag: str | None, assignee: str | None) -> str:
    """The list holding a status, optionally narrowed by one of channel, tag or assignee."""
    narrowed = [
        (name, value) for name, value in (("channel", channel), ("tag", tag), ("assignee", assignee)) if value
    ]
    if len(narrowed) > 1:
        raise ValueError("filter: use one of channel, tag, assignee at a time")
    base = f"status={status}"
    return f"{base}#{narrowed[0][0]}={narrowed[0][1]}" if narrowed else base


def derived_rows(conversation: Conversation) -> list[Item]:
    c = conversation
    summary = _summary_attributes(c)
    lists = [list_name(c.status, channel=None, tag=None, assignee=None)]
    lists.append(list_name(c.status, channel=c.channel, tag=None, assignee=None))
    if c.assignee:
        lists.append(list_name(c.status, channel=None, tag=None, assignee=c.assignee))
    lists += [list_name(c.status, channel=None, tag=tag, assignee=None) for tag in c.tags]
    sort_key = keys.inbox_row_sk(c.urgent, iso(c.last_activity_at), c.id)
    rows = [{"pk": keys.inbox_list_pk(c.tenant, name), "sk": sort_key, **summary} for name in lists]
    if c.awaiting_first_response:
        sla_list = SLA_OVERDUE if c.sla_breached_at else SLA_WAITING
        rows.append(
            {"pk": keys.inbox_list_pk(c.tenant, sla_list), "sk": f"{iso(c.opened_at)}#{c.id}", **summary}
        )
    rows.append(
        {
            "pk": keys.citizen_pk(c.tenant, c.citizen_key),
            "sk": keys.conversation_sk(c.id),
            "conversation_id": c.id,
            "expires_at": c.expires_at,
        }
    )
    return rows


def _summary_attributes(c: Conversation) -> Item:
    return {
        "conversation_id": c.id,
        "channel": c.channel,
        "platform": c.platform,
        "kind": c.kind,
        "status": c.status,
        "urgent": c.urgent,
        "tags": list(c.tags),
        "assignee": c.assignee,
        "citizen_name": c.citizen.display_name[:NAME_CHARS],
        "snippet": c.snippet,
        "opened_at": iso(c.opened_at),
        "last_activity_at": iso(c.last_activity_at),
        "announcement_id": c.announcement_id,
        "first_response_at": _iso_or_none(c.first_response_at),
        "sla_breached": c.sla_breached_at is not None,
        "expires_at": c.expires_at,
    }


def summary_from_item(item: Item) -> ConversationSummary:
    return ConversationSummary(
        id=item["conversation_id"],
        channel=item["channel"],
        platform=item["platform"],
        kind=item["kind"],
        status=item["status"],
        urgent=bool(item["urgent"]),
        tags=tuple(item.get("tags", [])),
        assignee=item.get("assignee"),
        citizen_name=item.get("citizen_name", ""),
        snippet=item.get("snippet", ""),
        opened_at=parse_iso(item["opened_at"]),
        last_activity_at=parse_iso(item["last_activity_at"]),
        announcement_id=item.get("announcement_id"),
        first_response_at=_when(item, "first_response_at"),
        sla_breached=bool(item.get("sla_breached")),
    )


def conversation_item(c: Conversation) -> Item:
    return {
        "pk": keys.tenant_pk(c.tenant),
        "sk": keys.conversation_sk(c.id),
        "id": c.id,
        "channel": c.channel,
        "platform": c.platform,
        "kind": c.kind,
        "citizen_key": c.citizen_key,
        "citizen_platform": c.citizen.platform,
        "citizen_user_id": c.citizen.platform_user_id,
        "citizen_name": c.citizen.display_name[:NAME_CHARS],
        "status": c.status,
        "opened_at": iso(c.opened_at),
        "last_activity_at": iso(c.last_activity_at),
        "last_inbound_at": iso(c.last_inbound_at),
        "last_inbound_message_id": c.last_inbound_message_id,
        "version": c.version,
        "expires_at": c.expires_at,
        "figures_key": c.figures_key,
        "post_remote_id": c.post_remote_id,
        "announcement_id": c.announcement_id,
        "urgent": c.urgent,
        "tags": list(c.tags),
        "assignee": c.assignee,
        "snippet": c.snippet,
        "reply_target": dict(c.reply_target),
        "message_count": c.message_count,
        "reopen_count": c.reopen_count,
        "first_response_at": _iso_or_none(c.first_response_at),
        "resolved_at": _iso_or_none(c.resolved_at),
        "sla_breached_at": _iso_or_none(c.sla_breached_at),
        "updated_at": _iso_or_none(c.updated_at),
        # Consultations: the conversations under one announcement, through the sparse index.
        **(
            {
                "gsi1pk": keys.post_conversations_pk(c.tenant, c.announcement_id),
                "gsi1sk": f"{iso(c.opened_at)}#{c.id}",
            }
            if c.announcement_id
            else {}
        ),
    }


def conversation_from_item(item: Item) -> Conversation:
    return Conversation(
        tenant=item["pk"].removeprefix("T#"),
        id=item["id"],
        channel=item["channel"],
        platform=item["platform"],
        kind=item["kind"],
        citizen_key=item["citizen_key"],
        citizen=Citizen(item["citizen_platform"], item["citizen_user_id"], item.get("citizen_name", "")),
        status=item["status"],
        opened_at=parse_iso(item["opened_at"]),
        last_activity_at=parse_iso(item["last_activity_at"]),
        last_inbound_at=parse_iso(item["last_inbound_at"]),
        last_inbound_message_id=item["last_inbound_message_id"],
        version=int(item["version"]),
        expires_at=int(item["expires_at"]),
        figures_key=item["figures_key"],
        post_remote_id=item.get("post_remote_id"),
        announcement_id=item.get("announcement_id"),
        urgent=bool(item.get("urgent")),
        tags=tuple(item.get("tags", [])),
        assignee=item.get("assignee"),
        snippet=item.get("snippet", ""),
        reply_target=dict(item.get("reply_target", {})),
        message_count=int(item.get("message_count", 0)),
        reopen_count=int(item.get("reopen_count", 0)),
        first_response_at=_when(item, "first_response_at"),
        resolved_at=_when(item, "resolved_at"),
        sla_breached_at=_when(item, "sla_breached_at"),
        updated_at=_when(item, "updated_at"),
    )


def inbound_message(message: InboundMessage, message_id: str, conversation_id: str) -> Message:
    return Message(
        id=message_id,
        conversation_id=conversation_id,
        direction="in",
        kind=message.kind,
        text=message.text,
        at=message.received_at,
        platform_message_id=message.platform_message_id,
        parent_message_id=message.parent_message_id,
        location=message.location,
        reply_target=dict(message.reply_target),
    )


def message_sort_key(message: Message) -> str:
    return keys.message_sk(iso(message.at), message.id)


def message_items(tenant: str, message: Message, platform: str, channel: str, expires_at: int) -> list[Item]:
    """The message and its id marker (the marker's conditional put records a message once)."""
    pk = keys.messages_pk(tenant, message.conversation_id)
    body = {
        "pk": pk,
        "sk": message_sort_key(message),
        "id": message.id,
        "conversation_id": message.conversation_id,
        "direction": message.direction,
        "kind": message.kind,
        "text": message.text,
        "at": iso(message.at),
        "author": message.author,
        "automatic": message.automatic,
        # Platform and channel with the platform's id: erasure finds the dedupe row from them.
        "platform": platform,
        "channel": channel,
        "platform_message_id": message.platform_message_id,
        "parent_message_id": message.parent_message_id,
        "lat": message.location.lat if message.location else None,
        "lon": message.location.lon if message.location else None,
        "reply_target": dict(message.reply_target),
        "reply_to_message_id": message.reply_to_message_id,
        "private": message.private,
        "delivery_id": message.delivery_id,
        "expires_at": expires_at,
    }
    marker = {
        "pk": pk,
        "sk": keys.message_id_sk(message.id),
        "message_sk": body["sk"],
        "expires_at": expires_at,
    }
    return [marker, body]


def message_from_item(item: Item) -> Message:
    located = item.get("lat") is not None and item.get("lon") is not None
    return Message(
        id=item["id"],
        conversation_id=item["conversation_id"],
        direction=item["direction"],
        kind=item["kind"],
        text=item.get("text", ""),
        at=parse_iso(item["at"]),
        author=item.get("author"),
        automatic=bool(item.get("automatic")),
        platform_message_id=item.get("platform_message_id"),
        parent_message_id=item.get("parent_message_id"),
        location=Location(float(item["lat"]), float(item["lon"])) if located else None,
        reply_target=dict(item.get("reply_target", {})),
        reply_to_message_id=item.get("reply_to_message_id"),
        private=bool(item.get("private")),
        delivery_id=item.get("delivery_id"),
    )


def _iso_or_none(moment: datetime | None) -> str | None:
    return iso(moment) if moment else None


def _when(item: Item, name: str) -> datetime | None:
    return parse_iso(item[name]) if item.get(name) else None
