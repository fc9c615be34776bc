"""Consultations: every citizen comment under one announcement, as observations the administration
can read or download. Comments under one post thread into one conversation per citizen, so the
observations are the citizens' messages of the conversations linked to the announcement."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.inbox import store
from chalicelib.inbox.model import Conversation, Message

# Conversations per answer: an API call stays well within its time limit; the cursor goes on.
MAX_CONVERSATIONS = 1000


@dataclass(frozen=True)
class Observation:
    conversation: Conversation
    message: Message


def observations(
    tenant: str, announcement_id: str, *, cursor: str | None = None
) -> tuple[list[Observation], str | None]:
    """The observations of up to MAX_CONVERSATIONS conversations, oldest first, and the cursor of
    the rest (None when there is no more)."""
    found: list[Observation] = []
    read = 0
    while True:
        page = store.conversations_about(tenant, announcement_id, limit=store.MAX_PAGE, cursor=cursor)
        for conversation in page.items:
            found += [Observation(conversation, message) for message in _citizen_messages(conversation)]
        read += len(page.items)
        cursor = page.cursor
        if cursor is None or read >= MAX_CONVERSATIONS:
            return sorted(found, key=lambda o: o.message.at), cursor


def _citizen_messages(conversation: Conversation) -> list[Message]:
    messages: list[Message] = []
    cursor: str | None = None
    while True:
        page = store.messages(conversation.tenant, conversation.id, limit=store.MAX_PAGE, cursor=cursor)
        messages += [message for message in page.items if message.direction == "in"]
        if page.cursor is None:
            return messages
        cursor = page.cursor
