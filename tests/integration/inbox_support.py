"""Builders shared by the inbox storage tests: citizens' messages, and the raw table for checks
that must see every row (retention attributes, what erasure leaves)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.clock import ROME
from chalicelib.config.models import OfficeHours
from chalicelib.inbox import store
from chalicelib.inbox.model import Citizen, InboundKind, InboundMessage
from chalicelib.storage import dynamo

TENANT = "comune-a"
HOURS = OfficeHours()  # Mon-Thu 09-13 + 14-17, Fri 09-13
RETENTION_DAYS = 30
MONDAY_9 = datetime(2026, 11, 23, 9, 0, tzinfo=ROME)


def inbound(
    message_id: str,
    *,
    user: str = "maria-1001",
    name: str = "Maria Rossi",
    text: str = "Le scuole sono aperte domani?",
    at: datetime = MONDAY_9,
    tenant: str = TENANT,
    channel: str = "telegram",
    platform: str = "telegram",
    kind: InboundKind = "direct",
    post: str | None = None,
) -> InboundMessage:
    return InboundMessage(
        tenant=tenant,
        channel=channel,
        platform=platform,
        platform_message_id=message_id,
        citizen=Citizen(platform, user, name),
        text=text,
        received_at=at,
        kind=kind,
        in_reply_to_remote_id=post,
        reply_target={"chat_id": user, "message_id": message_id},
    )


def record(
    message: InboundMessage, *, urgent: bool = False, retention_days: int = RETENTION_DAYS
) -> store.RecordResult:
    return store.record_inbound(
        message, retention_days=retention_days, now=message.received_at, urgent=urgent
    )


def reply(conversation_id: str, at: datetime, **options: Any) -> store.OutboundResult:
    return store.record_outbound(
        TENANT,
        conversation_id,
        text=options.pop("text", "Sì, le scuole sono aperte."),
        author=options.pop("author", "operatore"),
        retention_days=RETENTION_DAYS,
        hours=HOURS,
        now=at,
        **options,
    )


def all_items() -> list[dict[str, Any]]:
    """Every row of the table (a scan: tests only)."""
    pages = dynamo.client().get_paginator("scan").paginate(TableName=dynamo.table_name())
    return [dynamo.from_dynamo(item) for page in pages for item in page["Items"]]
