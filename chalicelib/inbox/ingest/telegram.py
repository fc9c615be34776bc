"""Telegram: each inbox channel's bot webhook, and what its updates mean for the inbox.

The webhook URL names the tenant and channel (setWebhook with the channel's `webhook_secret` as
secret_token); Telegram sends that secret in X-Telegram-Bot-Api-Secret-Token on every call.

What an update is:
- a message in a private chat with the bot: a direct message;
- a message in the channel's discussion group (`discussion_chat`): a comment. Telegram copies each
  channel post into the group (`is_automatic_forward`, `forward_origin` naming the channel post) and
  a post's comments form the group's thread under that copy (`message_thread_id`, or the reply to the
  copy itself). Comments thread by the copy, so a reply to another comment, or to our answer, stays in
  the citizen's conversation about that post; the copy is linked to the announcement of the channel
  post it copies whenever the copy or a direct reply to it is seen (process.py), which is how the
  conversation links to the announcement. A group message outside any thread is a comment on no post;
- everything else is ignored and counted: our posts and their copies, bots, messages sent as our
  channel or as an anonymous admin, other chats, edits, other update types, the bare /start a client
  sends when a citizen opens the bot.
Ids: message_id is unique per chat only, so a message is "{chat id}:{message id}", like the remote
ids of our posts. A redelivered update (same update_id) carries the same message, which the store's
dedupe on the message id records once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalice.app import Request, Response

from chalicelib.clock import utcnow
from chalicelib.config.loader import current_config
from chalicelib.config.models import Config, TelegramChannel
from chalicelib.inbox.ingest import webhook
from chalicelib.inbox.ingest.normalised import (
    CONTENT_LABELS,
    Normalised,
    PostCopy,
    as_object,
    inbox_channel,
    location,
    platform_time,
    with_labels,
)
from chalicelib.inbox.ingest.queue import InboundEvent, enqueue
from chalicelib.inbox.model import Citizen, InboundMessage, Location
from chalicelib.secrets import resolve_secret

PLATFORM = "telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
START_COMMAND = "/start"
_IGNORED_UPDATES = {"edited_message": "edited", "channel_post": "own_post", "edited_channel_post": "own_post"}


# ---- the webhook ----------------------------------------------------------------------------


def receive_update(
    tenant_id: str, channel_id: str, request: Request, now: datetime | None = None
) -> Response:
    """POST /webhooks/telegram/{tenant}/{channel}: checked, put on the inbox lane, answered 200."""
    try:
        body = _checked_body(tenant_id, channel_id, request)
    except webhook.Refused as refused:
        return webhook.refusal(PLATFORM, refused)
    enqueue(InboundEvent("telegram", now or utcnow(), body, tenant=tenant_id, channel=channel_id))
    return webhook.accepted()


def _checked_body(tenant_id: str, channel_id: str, request: Request) -> bytes:
    body = webhook.read_body(request)
    secret_ref = _webhook_secret(tenant_id, channel_id)
    if not webhook.same_secret(request.headers.get(SECRET_HEADER), resolve_secret(secret_ref)):
        raise webhook.Refused(401, "bad_secret")
    if not isinstance(webhook.json_object(body).get("update_id"), int):
        raise webhook.Refused(400, "no_update_id")
    return body


def _webhook_secret(tenant_id: str, channel_id: str) -> str:
    """The secret reference of a Telegram inbox channel; 404 for anything else."""
    found = _channel(current_config(), tenant_id, channel_id)
    if found is None or found.webhook_secret is None:
        raise webhook.Refused(404, "unknown_channel")
    return found.webhook_secret


def _channel(config: Config, tenant_id: str, channel_id: str) -> TelegramChannel | None:
    try:
        channel = inbox_channel(config.tenant(tenant_id), channel_id)
    except KeyError:
        return None
    return channel if isinstance(channel, TelegramChannel) else None


# ---- the update -----------------------------------------------------------------------------


def normalise(event: InboundEvent, config: Config) -> Normalised:
    channel = _channel(config, event.tenant or "", event.channel or "")
    if channel is None or event.tenant is None:  # the channel left the config since the webhook
        return Normalised(ignored=("unknown_channel",))
    return normalise_update(event.payload(), event.tenant, channel, event.received_at)


def normalise_update(
    update: dict[str, Any], tenant: str, channel: TelegramChannel, received_at: datetime
) -> Normalised:
    message = update.get("message")
    if not isinstance(message, dict):
        return Normalised(ignored=(_other_update(update),))
    chat, message_id = as_object(message.get("chat")), message.get("message_id")
    chat_id = chat.get("id")
    if not isinstance(chat_id, int) or not isinstance(message_id, int):
        return Normalised(ignored=("malformed",))
    in_group = str(chat_id) == channel.discussion_chat
    copies = (_copy(m, chat_id, tenant, channel.id) for m in (message, message.get("reply_to_message")))
    found = tuple(copy for copy in copies if copy is not None) if in_group else ()
    citizen, text = _citizen(message, channel), _text(message)
    reason = _ignored(message, citizen, text, private=chat.get("type") == "private", in_group=in_group)
    if reason is not None or citizen is None:
        return Normalised(ignored=(reason or "not_a_citizen",), copies=found)
    reply = as_object(message.get("reply_to_message"))
    thread = _thread_root(message) if in_group else None
    inbound = InboundMessage(
        tenant=tenant,
        channel=channel.id,
        platform=PLATFORM,
        platform_message_id=f"{chat_id}:{message_id}",
        citizen=citizen,
        text=text,
        received_at=platform_time(message.get("date"), received_at),
        kind="comment" if in_group else "direct",
        in_reply_to_remote_id=f"{chat_id}:{thread}" if thread is not None else None,
        parent_message_id=f"{chat_id}:{reply['message_id']}"
        if isinstance(reply.get("message_id"), int)
        else None,
        location=_location(message),
        reply_target={"chat_id": str(chat_id), "message_id": str(message_id)},
    )
    return Normalised(messages=(inbound,), copies=found)


def _ignored(
    message: dict[str, Any], citizen: Citizen | None, text: str, *, private: bool, in_group: bool
) -> str | None:
    """Why a message is not a citizen's message to the inbox, if it is not."""
    if message.get("is_automatic_forward"):
        return "own_post"
    if citizen is None:
        return "not_a_citizen"
    if not (private or in_group):
        return "other_chat"
    if not text:
        return "no_content"
    if text == START_COMMAND and private:
        return "bot_start"
    return None


def _other_update(update: dict[str, Any]) -> str:
    return next((reason for name, reason in _IGNORED_UPDATES.items() if name in update), "other_update")


def _copy(message: object, group_id: int, tenant: str, channel: str) -> PostCopy | None:
    """A channel post's copy in the discussion group, with the channel post it copies."""
    copy = as_object(message)
    if not copy.get("is_automatic_forward") or not isinstance(copy.get("message_id"), int):
        return None
    origin = as_object(copy.get("forward_origin"))
    origin_chat = as_object(origin.get("chat")).get("id")
    origin_message = origin.get("message_id")
    if origin_chat is None:  # clients older than Bot API 7.0 fill the legacy fields only
        origin_chat = as_object(copy.get("forward_from_chat")).get("id")
        origin_message = copy.get("forward_from_message_id")
    if not isinstance(origin_chat, int) or not isinstance(origin_message, int):
        return None
    return PostCopy(tenant, channel, f"{group_id}:{copy['message_id']}", f"{origin_chat}:{origin_message}")


def _thread_root(message: dict[str, Any]) -> int | None:
    """The group message a comment's thread hangs from: the copy of one of our posts."""
    reply = as_object(message.get("reply_to_message"))
    if reply.get("is_automatic_forward") and isinstance(reply.get("message_id"), int):
        return int(reply["message_id"])
    thread = message.get("message_thread_id")
    return thread if isinstance(thread, int) else None


def _citizen(message: dict[str, Any], channel: TelegramChannel) -> Citizen | None:
    """Who wrote: a person, or a citizen's own channel they comment as; None for bots, for our
    channel and for the group's anonymous admins (staff)."""
    as_chat = message.get("sender_chat")
    if isinstance(as_chat, dict):
        if _is_our_channel(as_chat, channel) or str(as_chat.get("id")) == channel.discussion_chat:
            return None
        if not isinstance(as_chat.get("id"), int):
            return None
        return Citizen(PLATFORM, str(as_chat["id"]), str(as_chat.get("title") or "")[:200])
    sender = as_object(message.get("from"))
    if not isinstance(sender.get("id"), int) or sender.get("is_bot"):
        return None
    names = [str(sender[part]) for part in ("first_name", "last_name") if sender.get(part)]
    return Citizen(PLATFORM, str(sender["id"]), (" ".join(names) or str(sender.get("username") or ""))[:200])


def _is_our_channel(chat: dict[str, Any], channel: TelegramChannel) -> bool:
    if channel.chat.startswith("@"):
        return f"@{chat.get('username') or ''}".casefold() == channel.chat.casefold()
    return str(chat.get("id")) == channel.chat


def _text(message: dict[str, Any]) -> str:
    words = message.get("text") or message.get("caption") or ""
    labels = [label for name, label in CONTENT_LABELS.items() if name in message]
    return with_labels(words if isinstance(words, str) else "", labels)


def _location(message: dict[str, Any]) -> Location | None:
    place = as_object(message.get("location"))
    return location(place.get("latitude"), place.get("longitude")) if place else None
