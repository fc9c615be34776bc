"""The inbox as the rest of the code sees it: citizens, their messages, conversations, list rows.

Times are aware UTC datetimes. Everything here is personal data except ids and flags, which is why
none of it is ever logged (see store.py for retention).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Literal, TypeVar

Status = Literal["open", "pending", "resolved"]
STATUSES: tuple[Status, ...] = ("open", "pending", "resolved")
InboundKind = Literal["direct", "comment"]
OutboundKind = Literal["reply", "note"]
MessageKind = Literal["direct", "comment", "reply", "note"]
Direction = Literal["in", "out"]


@dataclass(frozen=True)
class Citizen:
    platform: str
    platform_user_id: str
    display_name: str


@dataclass(frozen=True)
class Location:
    lat: float
    lon: float


@dataclass(frozen=True)
class InboundMessage:
    """A citizen's message as every ingest path normalises it, whatever the platform."""

    tenant: str
    channel: str
    platform: str
    platform_message_id: str
    citizen: Citizen
    text: str
    # Stable across redeliveries of the same platform message (the platform's time, or the time the
    # webhook stored the raw event): the message's key depends on it.
    received_at: datetime
    kind: InboundKind = "direct"
    # The remote id of our post this answers (a comment or reply under it), if any.
    in_reply_to_remote_id: str | None = None
    # The platform id of the message this one replies to.
    parent_message_id: str | None = None
    location: Location | None = None
    # What the channel adapter needs to answer it (chat id and message id, comment id, status id...).
    reply_target: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    id: str
    conversation_id: str
    direction: Direction
    kind: MessageKind
    text: str
    at: datetime
    # The staff user of a reply or note, or what produced an automatic answer ("faq", "alert");
    # None for the citizen's own messages.
    author: str | None = None
    automatic: bool = False
    platform_message_id: str | None = None
    parent_message_id: str | None = None
    location: Location | None = None
    reply_target: dict[str, str] = field(default_factory=dict)
    # Outbound only: the inbound message answered, a private reply to a public comment, and the id
    # of the delivery that carries the reply to the platform.
    reply_to_message_id: str | None = None
    private: bool = False
    delivery_id: str | None = None


@dataclass(frozen=True)
class Conversation:
    """One citizen on one channel (and, for public comments, under one of our posts).

    `opened_at` is the first citizen message recorded; first response and resolution are measured
    from it once and never again, so reopening cannot inflate them. `version` serialises writers.
    """

    tenant: str
    id: str
    channel: str
    platform: str
    kind: InboundKind
    citizen_key: str
    citizen: Citizen
    status: Status
    opened_at: datetime
    last_activity_at: datetime
    last_inbound_at: datetime
    last_inbound_message_id: str
    version: int
    expires_at: int  # epoch seconds: last activity + the tenant's retention
    figures_key: str  # the sort key of its anonymous figures row
    post_remote_id: str | None = None
    announcement_id: str | None = None
    urgent: bool = False
    tags: tuple[str, ...] = ()
    assignee: str | None = None
    snippet: str = ""
    reply_target: dict[str, str] = field(default_factory=dict)
    message_count: int = 0
    reopen_count: int = 0
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None  # the first resolution
    sla_breached_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def awaiting_first_response(self) -> bool:
        return self.status == "open" and self.first_response_at is None


@dataclass(frozen=True)
class ConversationSummary:
    """A list row: what the inbox list shows, stored with the row so a page is one Query."""

    id: str
    channel: str
    platform: str
    kind: InboundKind
    status: Status
    urgent: bool
    tags: tuple[str, ...]
    assignee: str | None
    citizen_name: str
    snippet: str
    opened_at: datetime
    last_activity_at: datetime
    announcement_id: str | None
    first_response_at: datetime | None
    sla_breached: bool


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    cursor: str | None  # opaque; None on the last page


@dataclass(frozen=True)
class MentionCursor:
    """Where a channel's mention polling stands. `seen`: every mention up to this platform position
    is recorded (None before the first poll). Platforms that page from the newest down (Bluesky, X)
    may run out of pages before reaching `seen`: `backlog` is then the older-pages cursor where the
    read stopped and `backlog_top` the newest position it saw, which becomes `seen` only once the
    backlog is read down to `seen`, so nothing between them is ever skipped."""

    seen: str | None = None
    backlog: str | None = None
    backlog_top: str | None = None
