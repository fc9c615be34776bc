"""Mention polling on the local stack: citizens' statuses made with the Mastodon fake's citizen
controls reach the inbox through the poll_mentions schedule, read since each channel's cursor; a
failing channel does not stop the others and keeps its cursor until its mentions are recorded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.channels.atproto import PostRef
from chalicelib.inbox import store
from chalicelib.inbox.model import Conversation
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
    assert store.mention_cursor(TENANT, "mastodon") is None
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
