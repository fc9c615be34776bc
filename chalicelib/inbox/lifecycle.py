"""How a conversation's state follows its messages and staff actions (pure functions; store.py
writes the result under the version the change was computed from).

- A citizen message opens a conversation, or adds to it: a pending conversation (staff answered,
  waiting for the citizen) becomes open again; a resolved one reopens (status open, urgency from the
  new message: a danger report in a closed conversation is on top again, an old one is not).
- A staff reply (not automatic, not a note) is the first response if there was none, and moves an
  open conversation to pending; automatic answers and notes never count and change no status.
- Resolving records the first resolution only; first response and resolution are measured once.
- Every message is activity: expires_at = last activity + retention, never moved earlier, so no
  message outlives the conversation and its citizen index row (which erasure goes through).
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import datetime, timedelta

from chalicelib.clock import epoch, iso
from chalicelib.inbox.model import Conversation, InboundMessage, Message, Status
from chalicelib.inbox.rows import snippet
from chalicelib.inbox.threading import Thread


def expiry(last_activity: datetime, retention_days: int) -> int:
    return epoch(last_activity + timedelta(days=retention_days))


def opened(
    message: InboundMessage,
    thread: Thread,
    message_id: str,
    *,
    announcement_id: str | None,
    urgent: bool,
    retention_days: int,
) -> Conversation:
    at = message.received_at
    return Conversation(
        tenant=message.tenant,
        id=thread.conversation_id,
        channel=message.channel,
        platform=message.platform,
        kind=message.kind,
        citizen_key=thread.citizen_key,
        citizen=message.citizen,
        status="open",
        opened_at=at,
        last_activity_at=at,
        last_inbound_at=at,
        last_inbound_message_id=message_id,
        version=0,
        expires_at=expiry(at, retention_days),
        # Random, not the conversation id: the figures row stays anonymous once the rest is gone.
        figures_key=f"{iso(at)}#{secrets.token_hex(8)}",
        post_remote_id=thread.post_remote_id,
        announcement_id=announcement_id,
        urgent=urgent,
        snippet=snippet(message.text),
        reply_target=dict(message.reply_target),
        message_count=1,
    )


def after_inbound(
    current: Conversation, message: InboundMessage, message_id: str, *, urgent: bool, retention_days: int
) -> tuple[Conversation, bool]:
    """The conversation with one more citizen message, and whether it was reopened."""
    at = message.received_at
    reopened = current.status == "resolved"
    # A message delivered late (older than the latest one) counts, but does not replace the
    # latest message's snippet and reply target.
    latest = at >= current.last_inbound_at
    last_activity = max(current.last_activity_at, at)
    return (
        replace(
            current,
            status="open",
            urgent=urgent if reopened else current.urgent or urgent,
            citizen=message.citizen if latest else current.citizen,
            last_activity_at=last_activity,
            last_inbound_at=max(current.last_inbound_at, at),
            last_inbound_message_id=message_id if latest else current.last_inbound_message_id,
            snippet=snippet(message.text) if latest else current.snippet,
            reply_target=dict(message.reply_target) if latest else current.reply_target,
            message_count=current.message_count + 1,
            reopen_count=current.reopen_count + reopened,
            expires_at=max(current.expires_at, expiry(last_activity, retention_days)),
        ),
        reopened,
    )


def after_outbound(current: Conversation, message: Message, *, retention_days: int) -> Conversation:
    last_activity = max(current.last_activity_at, message.at)
    counts = message.kind == "reply" and not message.automatic
    return replace(
        current,
        status="pending" if counts and current.status == "open" else current.status,
        first_response_at=current.first_response_at or (message.at if counts else None),
        last_activity_at=last_activity,
        message_count=current.message_count + 1,
        expires_at=max(current.expires_at, expiry(last_activity, retention_days)),
        updated_at=message.at,
    )


def with_status(current: Conversation, status: Status, now: datetime) -> Conversation:
    if status == current.status:
        return current
    resolving = status == "resolved"
    return replace(
        current,
        status=status,
        # Handled: a resolved conversation no longer sorts on top; a citizen's new danger report does.
        urgent=current.urgent and not resolving,
        resolved_at=current.resolved_at or (now if resolving else None),
        updated_at=now,
    )


def with_assignee(current: Conversation, assignee: str | None, now: datetime) -> Conversation:
    return current if assignee == current.assignee else replace(current, assignee=assignee, updated_at=now)


def with_tags(current: Conversation, tags: tuple[str, ...], now: datetime) -> Conversation:
    return current if tags == current.tags else replace(current, tags=tags, updated_at=now)


def with_sla_breach(current: Conversation, now: datetime) -> Conversation:
    if not current.awaiting_first_response or current.sla_breached_at is not None:
        return current
    return replace(current, sla_breached_at=now, updated_at=now)
