"""Threading by the message replied to: a citizen's reply to one of our answers, or to their own
earlier message, joins that conversation only when it is the same citizen's and of the same kind;
otherwise the conversation the message's own keys give."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from chalicelib.inbox.model import Citizen, Conversation, InboundMessage
from chalicelib.inbox.threading import citizen_key, thread_joining, thread_of

AT = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
MARIA = Citizen("mastodon", "maria@altra.istanza", "Maria")
REPLY = InboundMessage(
    tenant="comune-a",
    channel="mastodon",
    platform="mastodon",
    platform_message_id="200",
    citizen=MARIA,
    text="Grazie!",
    received_at=AT,
    kind="comment",
    in_reply_to_remote_id=None,
    parent_message_id="150",  # our answer
    reply_target={"status_id": "200", "acct": MARIA.platform_user_id},
)
UNDER_POST = Conversation(
    tenant="comune-a",
    id="0123456789abcdef0123",
    channel="mastodon",
    platform="mastodon",
    kind="comment",
    citizen_key=citizen_key("comune-a", MARIA),
    citizen=MARIA,
    status="pending",
    opened_at=AT,
    last_activity_at=AT,
    last_inbound_at=AT,
    last_inbound_message_id="m1",
    version=3,
    expires_at=0,
    figures_key="k",
    post_remote_id="100",
    announcement_id="ann-1",
)


def test_a_reply_joins_the_same_citizens_conversation_under_its_post() -> None:
    thread = thread_joining(REPLY, UNDER_POST)
    assert (thread.conversation_id, thread.post_remote_id) == (UNDER_POST.id, "100")
    assert thread.citizen_key == UNDER_POST.citizen_key


def test_without_a_known_message_replied_to_the_keys_decide() -> None:
    assert thread_joining(REPLY, None) == thread_of(REPLY)
    assert thread_of(REPLY).conversation_id != UNDER_POST.id  # what joining changes


def test_another_citizens_conversation_is_never_joined() -> None:
    stranger = replace(REPLY, citizen=Citizen("mastodon", "luca@altra.istanza", "Luca"))
    assert thread_joining(stranger, UNDER_POST) == thread_of(stranger)


def test_a_private_reply_to_a_public_conversation_keeps_its_own() -> None:
    direct = replace(REPLY, kind="direct")
    assert thread_joining(direct, UNDER_POST) == thread_of(direct)
