"""Mention polling on the local stack: citizens' statuses made with the Mastodon fake's citizen
controls reach the inbox through the poll_mentions schedule, read since each channel's cursor; a
failing channel does not stop the others and keeps its cursor until its mentions are recorded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.channels import bluesky as bluesky_adapter
from chalicelib.channels import mastodon as mastodon_adapter
from chalicelib.channels import x as x_adapter
from chalicelib.channels.atproto import PostRef
from chalicelib.clock import utcnow
from chalicelib.config.models import OfficeHours
from chalicelib.inbox import gdpr, replies, store
from chalicelib.inbox.ingest.mentions import poll_all_mentions
from chalicelib.inbox.model import STATUSES, Conversation, MentionCursor
from chalicelib.storage import dynamo, keys
from chalicelib.storage.deliveries import deliveries_of
from devtools.sandbox.bluesky import BlueskyFake
from devtools.sandbox.x import XFake
from devtools.stack import LocalStack
from tests.conftest import tenant
from tests.feedserver import news_items, rss_document

TENANT = "comune-a"
ACCT = "maria@altra.istanza"
CITIZEN = "maria.bsky.social"


HANDLE = "comune-a.bsky.social"


def _channel(channel_id: str) -> dict[str, Any]:
    return {
        "id": channel_id,
        "platform": "mastodon",
        "instance": "https://mastodon.invalid",
        "token": f"env:TEST_UNSET_{channel_id.upper()}",
        "inbox": True,
    }


@pytest.fixture
def stack(make_stack: Callable[..., LocalStack]) -> LocalStack:
    bluesky = {
        "id": "bluesky",
        "platform": "bluesky",
        "handle": HANDLE,
        "app_password": "env:TEST_UNSET_BLUESKY",
        "inbox": True,
    }
    x = {"id": "x", "platform": "x", "inbox": True} | {
        name: f"env:TEST_UNSET_X_{name.upper()}"
        for name in ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
    }
    config = tenant(TENANT, channels=[_channel("mastodon"), _channel("fediverso"), bluesky, x])
    return make_stack([config], {"feed.rss": rss_document(news_items(1))})


def _published(stack: LocalStack) -> tuple[str, dict[str, str]]:
    """Publish the feed's news: its announcement, and channel -> the remote id of our post."""
    result = stack.poll()
    stack.drain()
    [announcement] = [a for source in result["sources"] for a in source.get("announcements", [])]
    return announcement, {d.channel: str(d.remote_id) for d in deliveries_of(TENANT, announcement)}


def _accounts(stack: LocalStack, platform: str) -> dict[str, str]:
    """Our post's id -> the account that made it, as the fake shows it."""
    return {post["id"]: post["target"] for post in stack.sandbox.posts(platform)}


def _conversations() -> list[Conversation]:
    found = [
        store.get_conversation(TENANT, s.id) for s in store.list_conversations(TENANT, status="open").items
    ]
    return [c for c in found if c is not None]


def test_a_reply_to_our_post_links_to_the_announcement_and_is_read_once(stack: LocalStack) -> None:
    announcement, posts = _published(stack)
    fake = stack.sandbox.mastodon
    fake.citizen_status(ACCT, "Grazie dell'avviso!", in_reply_to_id=posts["mastodon"])
    account = _accounts(stack, "mastodon")[posts["mastodon"]]
    fake.citizen_status(ACCT, f"{account} posso scrivervi in privato?", visibility="direct")

    assert stack.poll_mentions()["channels"] == {
        f"{TENANT}/mastodon": 2,
        f"{TENANT}/fediverso": 0,
        f"{TENANT}/bluesky": 0,
        f"{TENANT}/x": 0,
    }
    assert stack.poll_mentions()["channels"] == {
        f"{TENANT}/mastodon": 0,
        f"{TENANT}/fediverso": 0,
        f"{TENANT}/bluesky": 0,
        f"{TENANT}/x": 0,
    }

    by_kind = {c.kind: c for c in _conversations()}
    assert by_kind["comment"].announcement_id == announcement
    assert by_kind["comment"].post_remote_id == posts["mastodon"]
    assert by_kind["comment"].reply_target["acct"] == ACCT
    assert by_kind["direct"].announcement_id is None
    [question] = store.messages(TENANT, by_kind["comment"].id).items
    assert question.text == "Grazie dell'avviso!"
    log = (stack.state_dir / "lambda.log").read_text(encoding="utf-8")
    assert "Grazie" not in log and "maria" not in log


def test_a_failing_channel_keeps_its_cursor_and_does_not_stop_the_others(stack: LocalStack) -> None:
    _, posts = _published(stack)
    fake = stack.sandbox.mastodon
    for channel in ("mastodon", "fediverso"):
        fake.citizen_status(ACCT, f"Risposta a {channel}", in_reply_to_id=posts[channel])
    # The first channel's read fails; the second is read all the same.
    stack.sandbox.inject("mastodon", "server_error", count=1, endpoint="notifications")

    first = stack.poll_mentions()["channels"]

    assert first == {
        f"{TENANT}/mastodon": "failed",
        f"{TENANT}/fediverso": 1,
        f"{TENANT}/bluesky": 0,
        f"{TENANT}/x": 0,
    }
    assert store.mention_cursor(TENANT, "mastodon") == MentionCursor()
    assert stack.poll_mentions()["channels"] == {
        f"{TENANT}/mastodon": 1,
        f"{TENANT}/fediverso": 0,
        f"{TENANT}/bluesky": 0,
        f"{TENANT}/x": 0,
    }
    assert sorted(c.channel for c in _conversations()) == ["fediverso", "mastodon"]
    log = (stack.state_dir / "lambda.log").read_text(encoding="utf-8")
    assert "MentionPollFailures" in log


def test_bluesky_replies_and_mentions_are_read_since_the_cursor(stack: LocalStack) -> None:
    announcement, posts = _published(stack)
    fake = stack.sandbox.fake("bluesky", BlueskyFake)
    ours = PostRef.decode(posts["bluesky"]).uri
    fake.citizen_post(CITIZEN, "Grazie dell'avviso!", reply_to=ours)
    fake.citizen_post(CITIZEN, f"@{HANDLE} a che ora apre l'anagrafe?")

    assert stack.poll_mentions()["channels"][f"{TENANT}/bluesky"] == 2
    assert stack.poll_mentions()["channels"][f"{TENANT}/bluesky"] == 0
    fake.citizen_post(CITIZEN, f"@{HANDLE} e domani?")
    assert stack.poll_mentions()["channels"][f"{TENANT}/bluesky"] == 1

    by_post = {c.announcement_id: c for c in _conversations()}
    assert by_post[announcement].post_remote_id == posts["bluesky"]
    assert by_post[announcement].reply_target["root_uri"] == ours
    mentions = by_post[None]
    assert sorted(m.text for m in store.messages(TENANT, mentions.id).items) == [
        f"@{HANDLE} a che ora apre l'anagrafe?",
        f"@{HANDLE} e domani?",
    ]


def test_x_replies_and_mentions_are_read_since_the_last_post_id(stack: LocalStack) -> None:
    announcement, posts = _published(stack)
    fake = stack.sandbox.fake("x", XFake)
    account = _accounts(stack, "x")[posts["x"]]
    fake.citizen_post("Grazie &amp; a presto!", reply_to=posts["x"])
    fake.citizen_post(f"{account} a che ora apre l'anagrafe?")

    assert stack.poll_mentions()["channels"][f"{TENANT}/x"] == 2
    assert stack.poll_mentions()["channels"][f"{TENANT}/x"] == 0

    by_post = {c.announcement_id: c for c in _conversations()}
    assert by_post[announcement].post_remote_id == posts["x"]
    [thanks] = store.messages(TENANT, by_post[announcement].id).items
    assert (thanks.text, thanks.reply_target) == (
        "Grazie & a presto!",
        {"tweet_id": thanks.platform_message_id},
    )
    assert by_post[None].kind == "comment"


# ---- replies to our answers --------------------------------------------------------------------


def _answer(stack: LocalStack, conversation: Conversation) -> str:
    """What the staff API does for a reply (record it, queue it), then the urgent lane sends it:
    the answer's remote id on the platform."""
    recorded = store.record_outbound(
        TENANT,
        conversation.id,
        text="Sì, domani le scuole sono aperte.",
        author="operatore",
        retention_days=30,
        hours=OfficeHours(),
        now=utcnow(),
        reply_to_message_id=conversation.last_inbound_message_id,
        delivery_id="risposta",
    )
    replies.queue_reply(recorded.conversation, recorded.message, now=utcnow())
    stack.drain()
    response = dynamo.client().get_item(
        TableName=dynamo.table_name(),
        Key=dynamo.to_dynamo(
            {"pk": keys.messages_pk(TENANT, conversation.id), "sk": keys.reply_sk(recorded.message.id)}
        ),
        ConsistentRead=True,
    )
    sent = dynamo.from_dynamo(response["Item"])
    assert sent["state"] == "sent", sent
    return str(sent["remote_id"])


def _every_conversation(channel: str) -> list[Conversation]:
    found = [
        store.get_conversation(TENANT, summary.id)
        for status in STATUSES
        for summary in store.list_conversations(TENANT, status=status, channel=channel).items
    ]
    return [c for c in found if c is not None]


@pytest.mark.parametrize("channel", ["mastodon", "bluesky", "x"])
def test_a_citizens_reply_to_our_answer_stays_in_the_conversation(stack: LocalStack, channel: str) -> None:
    """The citizen comments under our post, staff answer, the citizen replies to the answer: one
    conversation, under the post, with both of the citizen's messages and the answer between them.
    Without the answer's link the reply (to a post of ours that is no announcement) would open a
    second conversation, on no post."""
    announcement, posts = _published(stack)
    mastodon, bluesky, x = (
        stack.sandbox.mastodon,
        stack.sandbox.fake("bluesky", BlueskyFake),
        stack.sandbox.fake("x", XFake),
    )
    comment: dict[str, Callable[[], object]] = {
        "mastodon": lambda: mastodon.citizen_status(
            ACCT, "Domani si va a scuola?", in_reply_to_id=posts[channel]
        ),
        "bluesky": lambda: bluesky.citizen_post(
            CITIZEN, "Domani si va a scuola?", reply_to=PostRef.decode(posts[channel]).uri
        ),
        "x": lambda: x.citizen_post("Domani si va a scuola?", reply_to=posts[channel]),
    }
    comment[channel]()
    assert stack.poll_mentions()["channels"][f"{TENANT}/{channel}"] == 1
    [asked] = _every_conversation(channel)

    answer = _answer(stack, asked)
    thanks: dict[str, Callable[[], object]] = {
        "mastodon": lambda: mastodon.citizen_status(ACCT, "Grazie!", in_reply_to_id=answer),
        "bluesky": lambda: bluesky.citizen_post(CITIZEN, "Grazie!", reply_to=PostRef.decode(answer).uri),
        "x": lambda: x.citizen_post("Grazie!", reply_to=answer),
    }
    thanks[channel]()
    assert stack.poll_mentions()["channels"][f"{TENANT}/{channel}"] == 1

    [conversation] = _every_conversation(channel)
    assert (conversation.id, conversation.announcement_id, conversation.status) == (
        asked.id,
        announcement,
        "open",
    )
    texts = [(m.direction, m.text) for m in store.messages(TENANT, conversation.id).items]
    assert texts == [
        ("in", "Domani si va a scuola?"),
        ("out", "Sì, domani le scuole sono aperte."),
        ("in", "Grazie!"),
    ]
    # Staff answer the latest message: the reply to the answer.
    assert conversation.last_inbound_message_id == store.messages(TENANT, conversation.id).items[-1].id


def test_a_stranger_replying_to_our_answer_gets_a_conversation_of_their_own(stack: LocalStack) -> None:
    _, posts = _published(stack)
    fake = stack.sandbox.mastodon
    fake.citizen_status(ACCT, "Domani si va a scuola?", in_reply_to_id=posts["mastodon"])
    stack.poll_mentions()
    [asked] = _every_conversation("mastodon")
    answer = _answer(stack, asked)

    fake.citizen_status("luca@altra.istanza", "E al liceo?", in_reply_to_id=answer)
    fake.citizen_status(ACCT, "Grazie!", in_reply_to_id=answer)
    assert stack.poll_mentions()["channels"][f"{TENANT}/mastodon"] == 2

    by_citizen = {c.citizen.platform_user_id: c for c in _every_conversation("mastodon")}
    assert by_citizen[ACCT].id == asked.id
    assert [m.text for m in store.messages(TENANT, asked.id).items if m.direction == "in"] == [
        "Domani si va a scuola?",
        "Grazie!",
    ]
    assert by_citizen["luca@altra.istanza"].id != asked.id
    assert by_citizen["luca@altra.istanza"].post_remote_id is None


def test_a_citizen_replying_to_their_own_comment_stays_under_the_post(stack: LocalStack) -> None:
    announcement, posts = _published(stack)
    fake = stack.sandbox.mastodon
    first = fake.citizen_status(ACCT, "Domani si va a scuola?", in_reply_to_id=posts["mastodon"])
    # Mastodon notifies us of a reply in a thread only when it names us, as clients do by themselves.
    account = _accounts(stack, "mastodon")[posts["mastodon"]]
    fake.citizen_status(ACCT, f"{account} Intendo il liceo.", in_reply_to_id=first["id"])
    assert stack.poll_mentions()["channels"][f"{TENANT}/mastodon"] == 2
    [conversation] = _every_conversation("mastodon")
    assert conversation.announcement_id == announcement
    assert len(store.messages(TENANT, conversation.id).items) == 2


# ---- backlogs ----------------------------------------------------------------------------------

PAGE = 5  # mentions a platform gives per page here (100 and 80 in production), to keep this fast
PAGES_PER_READ = 1  # Bluesky and X (10 in production); Mastodon reads a page at a time anyway


def _texts(conversation_id: str) -> list[str]:
    texts: list[str] = []
    cursor: str | None = None
    while True:
        page = store.messages(TENANT, conversation_id, limit=store.MAX_PAGE, cursor=cursor)
        texts += [message.text for message in page.items]
        if page.cursor is None:
            return texts
        cursor = page.cursor


@pytest.mark.parametrize("channel", ["bluesky", "x", "mastodon"])
def test_a_backlog_beyond_one_poll_is_read_over_the_next_polls_each_mention_once(
    stack: LocalStack, channel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """40 mentions arrive between two polls, more than one poll reads (5 reads of a page of 5), and
    3 more while the backlog is being read: every one is recorded exactly once, none skipped, and
    on Bluesky and X the cursor moves past the backlog only at its end. (The same as 1,200 mentions
    against pages of 100, ten to a read, at a fraction of the time.)"""
    for module in (bluesky_adapter, x_adapter, mastodon_adapter):
        monkeypatch.setattr(module, "MENTIONS_PAGE", PAGE)
    _, posts = _published(stack)
    bluesky, x = stack.sandbox.fake("bluesky", BlueskyFake), stack.sandbox.fake("x", XFake)
    named = {platform: _accounts(stack, platform)[posts[platform]] for platform in ("mastodon", "x")}
    mention: Callable[[str], object] = {
        "mastodon": lambda text: stack.sandbox.mastodon.citizen_status(ACCT, f"{named['mastodon']} {text}"),
        "bluesky": lambda text: bluesky.citizen_post(CITIZEN, f"@{HANDLE} {text}"),
        "x": lambda text: x.citizen_post(f"{named['x']} {text}"),
    }[channel]

    def poll() -> int | str:
        result: int | str = poll_all_mentions(pages_per_read=PAGES_PER_READ)["channels"][
            f"{TENANT}/{channel}"
        ]
        return result

    mention("prima")
    assert poll() == 1
    seen = store.mention_cursor(TENANT, channel).seen
    sent = [f"arretrato {n:03}" for n in range(40)]
    for text in sent:
        mention(text)

    first = poll()
    assert isinstance(first, int) and 0 < first < len(sent)
    if channel != "mastodon":  # newest first: the cursor waits for the backlog's end
        waiting = store.mention_cursor(TENANT, channel)
        assert waiting.seen == seen and waiting.backlog is not None and waiting.backlog_top is not None
    later = [f"nuova {n}" for n in range(3)]
    for text in later:
        mention(text)
    polls = 1
    while poll() != 0:
        polls += 1
        assert polls <= 4, "the backlog is not shrinking"

    assert 2 <= polls <= 4
    assert store.mention_cursor(TENANT, channel).backlog is None
    [conversation] = _every_conversation(channel)
    texts = [text.split(" ", 1)[1] for text in _texts(conversation.id)]
    assert sorted(texts) == sorted(["prima", *sent, *later])  # each once: none skipped, none twice
    log = (stack.state_dir / "lambda.log").read_text(encoding="utf-8")
    assert ("Mention backlog" in log) == (channel != "mastodon")


def test_erasing_the_citizen_erases_the_link_of_our_answer_to_them(stack: LocalStack) -> None:
    _, posts = _published(stack)
    stack.sandbox.mastodon.citizen_status(ACCT, "Domani si va a scuola?", in_reply_to_id=posts["mastodon"])
    stack.poll_mentions()
    [asked] = _every_conversation("mastodon")
    answer = _answer(stack, asked)
    link = {"pk": keys.inbound_pk(TENANT), "sk": keys.inbound_sk("mastodon", "mastodon", answer)}

    def linked() -> bool:
        found = dynamo.client().get_item(TableName=dynamo.table_name(), Key=dynamo.to_dynamo(link))
        return "Item" in found

    assert linked()
    gdpr.erase_citizen(TENANT, asked.citizen_key, user="dpo", now=utcnow())
    assert not linked()
