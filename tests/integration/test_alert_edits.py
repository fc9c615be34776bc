"""The publisher on the local stack (DynamoDB and SQS in moto, the platform fakes over HTTP): an alert's
update edits the thread's first post on channels with `alert_updates: edit` and replies on the others,
an edit the platform refuses becomes a reply, a thread's first post deleted on the platform makes the
update a post of its own, and an end of alert always replies. Each delivery records how it went out."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.announcements import AlertChange, Announcement, Image
from chalicelib.clock import utcnow
from chalicelib.config.loader import current_config
from chalicelib.publishing.announce import Outgoing, write_announcements
from chalicelib.publishing.lanes import enqueue
from chalicelib.storage.deliveries import Delivery, deliveries_of
from devtools.sandbox.mastodon import MastodonFake
from devtools.sandbox.meta import FacebookFake
from devtools.sandbox.telegram import TelegramFake
from devtools.stack import LocalStack
from tests.conftest import tenant

TENANT = "comune-prova"
CHANNELS = [
    {"id": "telegram", "platform": "telegram", "chat": "@ComuneProva", "token": "env:TEST_UNSET_TG"},
    {"id": "mastodon", "platform": "mastodon", "instance": "https://m.invalid", "token": "env:TEST_UNSET_MA"},
    {"id": "facebook", "platform": "facebook", "page_id": "104512345678901", "token": "env:TEST_UNSET_FB"},
]
EDITING = {"telegram", "facebook"}  # mastodon keeps the default: reply


@pytest.fixture
def stack(make_stack: Any) -> LocalStack:
    channels = [c | {"alert_updates": "edit"} if c["id"] in EDITING else c for c in CHANNELS]
    started: LocalStack = make_stack([tenant(TENANT, channels=channels)], {})
    return started


def _announce(
    stack: LocalStack,
    number: int,
    change: AlertChange,
    *,
    anchor: str | None = None,
    summary: str = "Temporali forti dalle 14 alle 24: evitare i sottopassi.",
    image: Image | None = None,
) -> dict[str, Delivery]:
    """An alert post of the tenant (`anchor`: the announcement whose thread it belongs to), published
    by the lane consumer; its deliveries by channel once the lanes are empty."""
    now = utcnow()
    announcement = Announcement(
        tenant=TENANT,
        id=f"20261122T0900{number:02d}alert",
        source="notizie",
        title=f"🟠 Allerta arancione per temporali ({change})",
        summary=summary,
        link="https://www.protezionecivile.example.it/allerte/1",
        image=image,
        priority="urgent",
        kind="alert",
        valid_until=now + timedelta(days=1),
        alert_change=change,
    )
    config = current_config().tenant(TENANT)
    announced = write_announcements(
        config, config.channels_for("notizie"), [Outgoing(announcement, anchor)], now, guards=[]
    )
    assert announced is not None
    enqueue(announced[0].deliveries)
    stack.drain()
    return {d.channel: d for d in deliveries_of(TENANT, announcement.id)}


def _post(stack: LocalStack, delivery: Delivery) -> dict[str, Any]:
    """The post a delivery recorded (a remote id names a comment or a message after a colon)."""
    assert delivery.remote_id is not None
    [post] = [
        p for p in stack.sandbox.posts(delivery.platform) if p["id"] == delivery.remote_id.rpartition(":")[2]
    ]
    return post


def _replied_to(post: dict[str, Any]) -> str | None:
    """The id of the post a post answers, whatever the platform calls it."""
    options = post["options"]
    if "reply_parameters" in options:
        return str(options["reply_parameters"]["message_id"])
    return options.get("in_reply_to_id") or options.get("reply_to")


def test_an_update_edits_where_the_channel_edits_replies_elsewhere_and_an_end_always_replies(
    stack: LocalStack,
) -> None:
    first = _announce(stack, 1, "new")
    assert {d.posted_as for d in first.values()} == {"post"}
    originals = {channel: _post(stack, d) for channel, d in first.items()}

    update = _announce(stack, 2, "update", anchor="20261122T090001alert")

    for channel in EDITING:
        delivery = update[channel]
        assert (delivery.status, delivery.posted_as) == ("posted", "edit")
        assert delivery.remote_id == first[channel].remote_id  # the edited post is the first one
        edited = _post(stack, delivery)
        assert "(update)" in edited["text"]
        assert edited["edits"] == [originals[channel]["text"]]
    reply = update["mastodon"]
    assert (reply.posted_as, _replied_to(_post(stack, reply))) == ("reply", first["mastodon"].remote_id)
    assert len(stack.sandbox.posts()) == 3 + 1  # one new post: Mastodon's reply

    end = _announce(stack, 3, "end", anchor="20261122T090001alert")

    for channel, delivery in end.items():
        assert delivery.posted_as == "reply", channel
        anchor_id = first[channel].remote_id or ""
        assert _replied_to(_post(stack, delivery)) == anchor_id.rpartition(":")[2]
    assert len(stack.sandbox.posts()) == 3 + 1 + 3


def test_an_edit_the_platform_refuses_becomes_a_reply_in_the_thread(stack: LocalStack) -> None:
    """Telegram cannot put an update longer than a caption (1024) under a photo: it replies instead."""
    # Telegram and Facebook take the image by URL; Mastodon's fetch finds nothing and posts without it.
    photo = Image(url=f"{stack.feeds.url}/mappa.png", alt="La mappa delle zone")
    first = _announce(stack, 1, "new", image=photo)
    assert _post(stack, first["telegram"])["options"]["photo"] == photo.url

    long_update = "La perturbazione si intensifica nel pomeriggio, con raffiche forti. " * 20
    update = _announce(stack, 2, "update", anchor="20261122T090001alert", summary=long_update)

    telegram = update["telegram"]
    assert (telegram.status, telegram.posted_as) == ("posted", "reply")
    assert _replied_to(_post(stack, telegram)) == first["telegram"].remote_id.rpartition(":")[2]
    assert _post(stack, first["telegram"])["edits"] == []
    assert update["facebook"].posted_as == "edit"  # Facebook edits a photo post's message
    requests = stack.sandbox.stats()["requests"]["telegram"]
    assert (requests["editMessageText"], requests["editMessageCaption"]) == (1, 1)


def test_a_first_post_deleted_on_the_platform_makes_the_update_a_post_of_its_own(stack: LocalStack) -> None:
    first = _announce(stack, 1, "new")
    telegram_chat, _, telegram_message = (first["telegram"].remote_id or "").rpartition(":")
    stack.sandbox.fake("telegram", TelegramFake).delete_message(int(telegram_chat), int(telegram_message))
    stack.sandbox.fake("mastodon", MastodonFake).delete_status(first["mastodon"].remote_id or "")
    stack.sandbox.fake("facebook", FacebookFake).delete_post(first["facebook"].remote_id or "")

    update = _announce(stack, 2, "update", anchor="20261122T090001alert")

    for channel, delivery in update.items():
        assert (delivery.status, delivery.posted_as) == ("posted", "post"), channel
        assert delivery.remote_id != first[channel].remote_id
        post = _post(stack, delivery)
        assert _replied_to(post) is None
        assert "(update)" in post["text"]
    assert len(stack.sandbox.posts()) == 3 + 3  # nothing lost, nothing doubled


def test_an_edit_that_failed_for_a_while_is_retried_as_an_edit_never_a_reply(stack: LocalStack) -> None:
    first = _announce(stack, 1, "new")
    stack.sandbox.inject("telegram", "server_error", endpoint="editMessageText", count=1)

    update = _announce(stack, 2, "update", anchor="20261122T090001alert")
    deadline = 50
    while update["telegram"].status != "posted" and deadline:  # the retry waits on its back-off
        deadline -= 1
        time.sleep(0.1)
        stack.drain()
        update = {d.channel: d for d in deliveries_of(TENANT, "20261122T090002alert")}

    telegram = update["telegram"]
    assert (telegram.status, telegram.posted_as, telegram.attempts) == ("posted", "edit", 2)
    assert len(_post(stack, first["telegram"])["edits"]) == 1
    assert len(stack.sandbox.posts("telegram")) == 1
