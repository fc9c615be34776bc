"""End to end on the local stack, one comune with a channel of every type: an orange alert is posted on
each platform (Instagram, with no image to post, records a skipped delivery); its update and its
cancellation reply to that post in each platform's own way (Slack and Discord, which cannot thread,
post new messages); reading the same alerts again posts nothing; no delivery fails or repeats."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest

from chalicelib.storage.deliveries import Delivery, deliveries_of, deliveries_with_status
from devtools.stack import LocalStack
from tests.conftest import tenant
from tests.integration.test_alert_flow import (
    ALERT,
    CANCEL,
    NOW,
    REFS_1,
    SENDER,
    UPDATE,
    _alerts,
    _cap,
    _serve,
)

pytestmark = pytest.mark.slow

TENANT = "comune-a"
Post = dict[str, Any]  # as stack.sandbox.posts() gives it (devtools/sandbox/state.py)

CHANNELS: list[dict[str, Any]] = [
    {"id": "telegram", "platform": "telegram", "chat": "@ComuneA", "token": "env:E2E_UNSET_TG"},
    {
        "id": "mastodon",
        "platform": "mastodon",
        "instance": "https://mastodon.invalid",
        "token": "env:E2E_UNSET_MA",
    },
    {"id": "facebook", "platform": "facebook", "page_id": "104500000000001", "token": "env:E2E_UNSET_FB"},
    {"id": "instagram", "platform": "instagram", "user_id": "17841400000000001", "token": "env:E2E_UNSET_IG"},
    {"id": "threads", "platform": "threads", "user_id": "me", "token": "env:E2E_UNSET_TH"},
    {
        "id": "bluesky",
        "platform": "bluesky",
        "handle": "comune-a.bsky.social",
        "app_password": "env:E2E_UNSET_BS",
    },
    {
        "id": "x",
        "platform": "x",
        "consumer_key": "env:E2E_UNSET_X_CK",
        "consumer_secret": "env:E2E_UNSET_X_CS",
        "access_token": "env:E2E_UNSET_X_AT",
        "access_token_secret": "env:E2E_UNSET_X_AS",
    },
    {"id": "slack", "platform": "slack", "webhook_url": "env:E2E_UNSET_SL"},
    {"id": "discord", "platform": "discord", "webhook_url": "env:E2E_UNSET_DI"},
    {
        "id": "matrix",
        "platform": "matrix",
        "homeserver": "https://matrix.invalid",
        "room_id": "!allerte:matrix.invalid",
        "token": "env:E2E_UNSET_MX",
    },
]
PLATFORMS = {channel["platform"] for channel in CHANNELS}
UNTHREADED = {"slack", "discord"}  # incoming webhooks: no way to answer a message
POSTING = PLATFORMS - {"instagram"}  # Instagram needs an image, and an alert has none
THREADED = POSTING - UNTHREADED

# Each post's words, as chalicelib/alerts/render.py writes them (Telegram's are inside <b>).
ALERT_TITLE = "🟠 Allerta arancione per rischio idrogeologico"
UPDATE_TITLE = f"Aggiornamento: {ALERT_TITLE}"
END_TITLE = "✅ Fine allerta arancione per rischio idrogeologico"
# A second material update, sent a minute after the first, that moves only the onset, which the post
# does not show ("in corso"): its words are the first update's, but for the link.
RESTATED = (
    _cap(
        "ALLERTA-2B",
        "Update",
        expires=NOW + timedelta(days=2),
        references=f"{REFS_1} {SENDER},ALLERTA-2,{NOW.isoformat()}",
    )
    .replace(f"<sent>{NOW.isoformat()}", f"<sent>{(NOW + timedelta(minutes=1)).isoformat()}")
    .replace(f"<onset>{NOW.isoformat()}", f"<onset>{(NOW - timedelta(minutes=1)).isoformat()}")
)


def _comune() -> dict[str, Any]:
    source = {"id": "allerte", "kind": "cap", "url": "https://sample.feeds.invalid/allerte.xml"}
    return tenant(TENANT, sources=[source], channels=CHANNELS) | {"alerts": {"zones": ["Tosc-B"]}}


def _parent(post: Post) -> str | None:
    """The post this one answers, as its platform's fake recorded the request (None: not a reply)."""
    options = post["options"]
    found = {
        "telegram": options.get("reply_parameters", {}).get("message_id"),
        "mastodon": options.get("in_reply_to_id"),
        "facebook": options.get("reply_to"),  # a comment: the post it is under
        "threads": options.get("reply_to"),  # the reply container's reply_to_id
        "bluesky": options.get("reply", {}).get("parent", {}).get("uri"),
        "x": options.get("in_reply_to_tweet_id"),
        "matrix": options.get("in_reply_to"),  # content m.relates_to.m.in_reply_to.event_id
    }.get(post["platform"])
    return None if found is None else str(found)


def _handle(post: Post) -> str:
    """How a reply names this post: Bluesky by its at:// URI, the others by its id."""
    return str(post["options"]["uri"]) if post["platform"] == "bluesky" else str(post["id"])


def _strong_ref(post: Post) -> dict[str, str]:
    return {"uri": post["options"]["uri"], "cid": post["options"]["cid"]}


def _by_platform(posts: list[Post]) -> dict[str, list[Post]]:
    grouped: dict[str, list[Post]] = defaultdict(list)
    for post in posts:
        grouped[post["platform"]].append(post)
    return grouped


def _publish(stack: LocalStack, *documents: str) -> tuple[dict[str, list[Post]], dict[str, Delivery]]:
    """Serve these alerts, read the feed once and publish everything: the posts this made, by
    platform, and the delivery rows of the announcements it made, by channel."""
    _serve(stack, _alerts(*documents))
    before = len(stack.sandbox.posts())
    result = stack.poll_alerts()
    stack.drain()
    made = [o["announcement"] for feed in result["feeds"] for o in feed["outcomes"] if o["announcement"]]
    deliveries = [d for announcement in made for d in deliveries_of(TENANT, announcement)]
    by_channel = {d.channel: d for d in deliveries}
    assert len(by_channel) == len(deliveries)  # one row per channel and announcement
    return _by_platform(stack.sandbox.posts()[before:]), by_channel


def test_an_alert_its_update_and_its_end_thread_on_every_platform_and_repeat_nowhere(
    make_stack: Any,
) -> None:
    stack = make_stack([_comune()], {"allerte.xml": _alerts(ALERT)})

    originals, deliveries = _publish(stack, ALERT)
    alert = _assert_deliveries(deliveries, anchor=None)
    _assert_posts(originals, deliveries, ALERT_TITLE)
    assert all(_parent(posts[0]) is None for posts in originals.values())  # each starts a thread

    updates, deliveries = _publish(stack, ALERT, UPDATE)
    _assert_deliveries(deliveries, anchor=alert)
    _assert_posts(updates, deliveries, UPDATE_TITLE)
    _assert_in_thread(originals, updates)

    closings, deliveries = _publish(stack, ALERT, UPDATE, CANCEL)
    _assert_deliveries(deliveries, anchor=alert)
    _assert_posts(closings, deliveries, END_TITLE)
    _assert_in_thread(originals, closings)

    # The same alerts again: unchanged (a 304), then in another order (read and parsed again).
    assert _publish(stack, ALERT, UPDATE, CANCEL) == ({}, {})
    assert _publish(stack, CANCEL, UPDATE, ALERT) == ({}, {})

    rounds = (originals, updates, closings)
    everything = _by_platform(stack.sandbox.posts())
    assert set(everything) == POSTING
    for platform, posts in everything.items():
        assert posts == [post for made in rounds for post in made[platform]]  # nothing else, no repeat
        assert len({post["id"] for post in posts}) == len({post["text"] for post in posts}) == len(posts)
        assert all(post["edits"] == [] for post in posts)  # updates reply here, they do not edit
    # Every delivery the tenant has is settled: posted, or (Instagram's three) skipped.
    assert all(deliveries_with_status(TENANT, s) == [] for s in ("pending", "in_flight", "failed"))
    skipped = deliveries_with_status(TENANT, "skipped")
    assert [(d.channel, d.error_reason) for d in skipped] == [("instagram", "no_image")] * 3
    assert "instagram" not in stack.sandbox.stats()["requests"]  # skipped before any platform call


def _assert_deliveries(deliveries: dict[str, Delivery], *, anchor: str | None) -> str:
    """One row per channel, all in the thread of `anchor` (None: the alert itself): posted, but
    Instagram's, skipped for want of an image. The announcement's id."""
    outcomes = {channel: (d.status, d.error_reason) for channel, d in deliveries.items()}
    expected = {channel["id"]: ("posted", None) for channel in CHANNELS}
    assert outcomes == expected | {"instagram": ("skipped", "no_image")}
    assert "no image" in (deliveries["instagram"].error or "")
    assert all(d.remote_id for d in deliveries.values() if d.status == "posted")
    assert {d.thread_anchor for d in deliveries.values()} == {anchor}
    threaded = [d for d in deliveries.values() if d.platform in THREADED]
    assert {d.posted_as for d in threaded} == {"post" if anchor is None else "reply"}
    [announcement] = {d.announcement_id for d in deliveries.values()}
    return announcement


def _assert_posts(
    posts: dict[str, list[Post]], deliveries: dict[str, Delivery], title: str, platforms: set[str] = POSTING
) -> None:
    """One post on each posting platform saying `title`, or a thread of as many pieces as its
    delivery recorded (a long text on X or Bluesky), each piece answering the one before."""
    assert set(posts) == platforms
    for platform, made in posts.items():
        [delivery] = [d for d in deliveries.values() if d.platform == platform]
        assert len(made) == delivery.pieces
        assert title in made[0]["text"]
        assert all(_parent(piece) == _handle(before) for before, piece in pairwise(made))


def _assert_in_thread(originals: dict[str, list[Post]], replies: dict[str, list[Post]]) -> None:
    """Each platform's reply answers the alert's own post there; Slack and Discord, which cannot
    answer, got a new message in the same place."""
    for platform, made in replies.items():
        original, first = originals[platform][0], made[0]
        assert first["target"] == original["target"] and first["id"] != original["id"]
        if platform in UNTHREADED:
            continue
        assert _parent(first) == _handle(original), platform
        if platform == "bluesky":  # strong refs: the thread's root stays the alert's post
            assert first["options"]["reply"]["parent"] == _strong_ref(original)
            assert all(piece["options"]["reply"]["root"] == _strong_ref(original) for piece in made)


def test_a_second_update_in_the_same_words_still_reaches_every_platform(make_stack: Any) -> None:
    stack = make_stack([_comune()], {"allerte.xml": _alerts(ALERT)})
    _, deliveries = _publish(stack, ALERT)
    alert = _assert_deliveries(deliveries, anchor=None)
    _publish(stack, ALERT, UPDATE)

    restated, deliveries = _publish(stack, ALERT, UPDATE, RESTATED)
    if len(deliveries) != len(CHANNELS):
        pytest.fail("the restated update no longer posts: this test's premise is gone")

    _assert_deliveries(deliveries, anchor=alert)
    # X refuses a text the account already has: the restated follow-up, word for word the first
    # update's, is left out there and the delivery is posted; every other platform takes it again.
    [x_post] = restated.pop("x")
    [x_delivery] = [d for d in deliveries.values() if d.platform == "x"]
    assert x_delivery.pieces == 2 and UPDATE_TITLE in x_post["text"] and x_post["text"].endswith("(1/2)")
    assert "ThreadPiecesLeftOut" in (stack.state_dir / "lambda.log").read_text(encoding="utf-8")  # counted
    _assert_posts(
        restated, {c: d for c, d in deliveries.items() if d.platform != "x"}, UPDATE_TITLE, POSTING - {"x"}
    )
