"""Which conversation a citizen's message belongs to, by keys derived from the message alone.

Deterministic ids make threading idempotent: a redelivered message lands in the same conversation,
and two first messages of one citizen processed at once race for one conditional create.
- direct messages: one conversation per (channel, citizen);
- public comments/replies under one of our posts: one per (channel, citizen, post), so a citizen's
  comments under a post thread together; a mention not under a post of ours: per (channel, citizen).
Raw platform ids never appear in a key: the citizen key is a hash (the GDPR index is keyed by it).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from chalicelib.inbox.model import Citizen, InboundMessage

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
