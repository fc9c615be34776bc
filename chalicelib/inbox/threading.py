"""Which conversation a citizen's message belongs to, by keys derived from the message alone.

Deterministic ids make threading idempotent: a redelivered message lands in the same conversation,
and two first messages of one citizen processed at once race for one conditional create.
- direct messages: one conversation per (channel, citizen);
- public comments/replies under one of our posts: one per (channel, citizen, post), so a citizen's
  comments under a post thread together; a mention not under a post of ours: per (channel, citizen).
Before those rules: a citizen's reply to one of our answers, or to their own earlier message, joins
the conversation that message is in (`thread_joining`; the store finds it by the platform's id of
the message replied to). Only the same citizen's conversation of the same kind is joined, so a
stranger replying under someone's thread, or a private reply to a public answer, keeps its own.
Raw platform ids never appear in a key: the citizen key is a hash (the GDPR index is keyed by it).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from chalicelib.channels.atproto import PostRef
from chalicelib.channels.base import PermanentError
from chalicelib.inbox.model import Citizen, Conversation, InboundMessage

CITIZEN_KEY = re.compile(r"^[0-9a-f]{32}$")
CONVERSATION_ID = re.compile(r"^[0-9a-f]{20}$")
# A unit separator between the parts, so ("ab", "c") and ("a", "bc") never hash alike.
_SEPARATOR = "\x1f"


def _digest(*parts: str) -> str:
    return hashlib.sha256(_SEPARATOR.join(parts).encode()).hexdigest()


def citizen_key(tenant: str, citizen: Citizen) -> str:
    """The citizen's pseudonymous key within a tenant: the same on every channel of one platform."""
    return _digest(tenant, citizen.platform, citizen.platform_user_id)[:32]


def conversation_id(tenant: str, channel: str, citizen: str, post_remote_id: str | None) -> str:
    return _digest(tenant, channel, citizen, post_remote_id or "")[:20]


def inbound_message_id(message: InboundMessage) -> str:
    return _digest(message.tenant, message.platform, message.channel, message.platform_message_id)[:20]


@dataclass(frozen=True)
class Thread:
    conversation_id: str
    citizen_key: str
    post_remote_id: str | None  # our post the conversation is about, for public comments


def thread_of(message: InboundMessage) -> Thread:
    key = citizen_key(message.tenant, message.citizen)
    post = message.in_reply_to_remote_id if message.kind == "comment" else None
    return Thread(conversation_id(message.tenant, message.channel, key, post), key, post)


def thread_joining(message: InboundMessage, answered: Conversation | None) -> Thread:
    """The message's thread: `answered` (the conversation of the message it replies to) when that is
    the same citizen's conversation of the same kind, else the one its keys give."""
    own = thread_of(message)
    if answered is None or answered.citizen_key != own.citizen_key or answered.kind != message.kind:
        return own
    return Thread(answered.id, own.citizen_key, answered.post_remote_id)


def replied_id(platform: str, remote_id: str) -> str:
    """The id a citizen's reply names one of our answers by (their message's parent_message_id), from
    the answer's remote id: the same, but for Bluesky, whose remote id is our PostRef and whose
    replies name the post's at:// URI."""
    if platform != "bluesky":
        return remote_id
    try:
        return PostRef.decode(remote_id).uri
    except PermanentError:
        return remote_id
