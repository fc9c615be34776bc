"""The publisher on the local stack (DynamoDB and SQS in moto, the platform fakes over HTTP): an alert's
update edits the thread's first post on channels with `alert_updates: edit` and replies on the others,
an edit the platform refuses becomes a reply, a thread's first post deleted on the platform makes the
update a post of its own, and an end of alert always replies. Each delivery records how it went out."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.announcements import AlertChange, Announcement, Image
from chalicelib.clock import parse_iso, utcnow
from chalicelib.config.loader import current_config
from chalicelib.publishing import publisher
from chalicelib.publishing.announce import Outgoing, write_announcements
from chalicelib.publishing.lanes import enqueue
from chalicelib.publishing.publisher import TURN_MARGIN_SECONDS
from chalicelib.storage import dynamo, keys
from chalicelib.storage.deliveries import (
    Delivery,
    Turn,
    deliveries_of,
    end_thread_turn,
    restore_thread_mark,
    take_thread_turn,
    thread_mark,
)
from devtools.sandbox.mastodon import MastodonFake
from devtools.sandbox.meta import FacebookFake
from devtools.sandbox.telegram import TelegramFake
from devtools.stack import LocalStack
from tests.conftest import tenant
from tests.integration.test_publishing import _emitted

TENANT = "comune-prova"
CHANNELS = [
    {"id": "telegram", "platform": "telegram", "chat": "@ComuneProva", "token": "env:TEST_UNSET_TG"},
    {"id": "mastodon", "platform": "mastodon", "instance": "https://m.invalid", "token": "env:TEST_UNSET_MA"},
    {"id": "facebook", "platform": "facebook", "page_id": "104512345678901", "token": "env:TEST_UNSET_FB"},
]
EDITING = {"telegram", "facebook"}  # mastodon keeps the default: reply
ANCHOR = "20261122T090001alert"
SENT = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)  # the first alert's CAP sent time
# How long a test waits for what the lanes do in the background (retries on a back-off, a wait for a
# thread's turn): far longer than they take, so that a loaded CI machine does not fail it.
PATIENCE_SECONDS = 20.0
# A turn taken by hand in a test (another worker's): it outlasts the test.
HELD = timedelta(seconds=60)
# Long enough for a thread of two statuses on Mastodon (500 characters each).
LONG = "La perturbazione si intensifica nel pomeriggio, con raffiche forti e grandine. " * 9


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
    published: datetime | None = None,
) -> dict[str, Delivery]:
    """An alert post of the tenant (`anchor`: the announcement whose thread it belongs to), published
    by the lane consumer; its deliveries by channel once the lanes are empty."""
    enqueue(_write(number, change, anchor=anchor, summary=summary, image=image, published=published))
    stack.drain()
    return _deliveries(number)


def _deliveries(number: int) -> dict[str, Delivery]:
    return {d.channel: d for d in deliveries_of(TENANT, _id(number))}


def _drain_until(stack: LocalStack, number: int, channel: str, done: Any) -> Delivery:
    """Pump the lanes until the delivery of announcement `number` on `channel` is `done` (messages
    on a delay, a retry's back-off or a wait for the thread, come back meanwhile); fails after
    PATIENCE_SECONDS."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    while True:
        stack.drain()
        delivery = _deliveries(number)[channel]
        if done(delivery) or time.monotonic() > deadline:
            return delivery
        time.sleep(0.1)


def _id(number: int) -> str:
    return f"20261122T0900{number:02d}alert"


def _write(
    number: int,
    change: AlertChange,
    *,
    anchor: str | None = None,
    summary: str = "Temporali forti dalle 14 alle 24: evitare i sottopassi.",
    image: Image | None = None,
    published: datetime | None = None,
) -> list[Delivery]:
    """An alert announcement written with its deliveries, not yet on the lanes (`published`: its
    CAP sent time)."""
    now = utcnow()
    announcement = Announcement(
        tenant=TENANT,
        id=_id(number),
        source="notizie",
        title=f"🟠 Allerta arancione per temporali ({change})",
        summary=summary,
        link="https://www.protezionecivile.example.it/allerte/1",
        image=image,
        priority="urgent",
        kind="alert",
        published=published,
        valid_until=now + timedelta(days=1),
        alert_change=change,
    )
    config = current_config().tenant(TENANT)
    announced = write_announcements(
        config, config.channels_for("notizie"), [Outgoing(announcement, anchor)], now, guards=[]
    )
    assert announced is not None
    return list(announced[0].deliveries)


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

    _announce(stack, 2, "update", anchor="20261122T090001alert")
    # The retry waits on its back-off.
    telegram = _drain_until(stack, 2, "telegram", lambda d: d.status == "posted")

    assert (telegram.status, telegram.posted_as, telegram.attempts) == ("posted", "edit", 2)
    assert len(_post(stack, first["telegram"])["edits"]) == 1
    assert len(stack.sandbox.posts("telegram")) == 1


# --- Order: the first post never goes back to an older update ---------------------------------------


def test_an_update_older_than_one_already_edited_in_is_skipped_not_edited_over_it(stack: LocalStack) -> None:
    first = _announce(stack, 1, "new", published=SENT)
    newer = _write(3, "update", anchor=ANCHOR, summary="Allerta prolungata a domani.", published=SENT + _h(2))
    older = _write(2, "update", anchor=ANCHOR, summary="In attenuazione dalle 20.", published=SENT + _h(1))

    enqueue(newer)  # the newer update went out first (the older one waited on a retry or a back-off)
    stack.drain()
    enqueue(older)
    stack.drain()

    late = _deliveries(2)
    for channel in EDITING:
        assert (late[channel].status, late[channel].error_reason) == ("skipped", "superseded"), channel
        edited = _post(stack, first[channel])
        assert "prolungata" in edited["text"]
        assert len(edited["edits"]) == 1, channel
    assert late["mastodon"].posted_as == "reply"  # a channel that replies keeps every update
    assert len(stack.sandbox.posts()) == 3 + 2  # Mastodon's two replies, nothing else


def test_an_update_older_than_the_end_never_edits_the_first_post_after_it(stack: LocalStack) -> None:
    first = _announce(stack, 1, "new", published=SENT)
    older = _write(2, "update", anchor=ANCHOR, summary="In attenuazione dalle 20.", published=SENT + _h(1))
    end = _announce(stack, 3, "end", anchor=ANCHOR, published=SENT + _h(2))
    assert {d.posted_as for d in end.values()} == {"reply"}

    enqueue(older)
    stack.drain()

    late = _deliveries(2)
    for channel in EDITING:
        assert (late[channel].status, late[channel].error_reason) == ("skipped", "superseded"), channel
        assert _post(stack, first[channel])["edits"] == []


def test_an_update_waits_while_another_post_of_its_thread_is_going_out_then_yields_to_it(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers on two updates of one thread: the one holding the turn is mid-edit (a turn longer
    than this test), the other waits for it instead of editing."""
    first = _announce(stack, 1, "new", published=SENT)
    telegram = first["telegram"]
    newer = thread_mark(_id(3), SENT + _h(2))
    now = utcnow()
    taken = take_thread_turn(telegram, newer, _id(3), now, until=now + HELD, supersedable=True)
    assert taken.turn is Turn.TAKEN

    enqueue(_write(2, "update", anchor=ANCHOR, published=SENT + _h(1)))
    stack.drain()

    waiting = _deliveries(2)
    assert (waiting["telegram"].status, waiting["telegram"].error_reason) == ("pending", "thread_busy")
    assert waiting["telegram"].attempts == 0  # a wait is not an attempt: no back-off grows from it
    assert _post(stack, telegram)["edits"] == []
    assert _budget_used("telegram") == 1  # the first post's: the wait gave its slot back
    assert waiting["facebook"].posted_as == "edit"  # each channel's thread has a turn of its own

    end_thread_turn(telegram, _id(3))  # the other worker's edit landed
    # The waiting one comes back after THREAD_WAIT_SECONDS.
    late = _drain_until(stack, 2, "telegram", lambda d: d.status != "pending")

    assert (late.status, late.error_reason, late.attempts) == ("skipped", "superseded", 1)
    assert _post(stack, telegram)["edits"] == []


def test_the_thread_turn_lets_one_post_out_at_a_time_and_no_older_update_after_a_newer(
    stack: LocalStack,
) -> None:
    anchor = _announce(stack, 1, "new", published=SENT)["telegram"]
    older, newer = thread_mark(_id(2), SENT + _h(1)), thread_mark(_id(3), SENT + _h(2))
    now = utcnow()

    def take(mark: str, number: int, at: datetime = now, *, supersedable: bool = True) -> Turn:
        return take_thread_turn(
            anchor, mark, _id(number), at, until=at + HELD, supersedable=supersedable
        ).turn

    # The older update passed the check first: the newer one waits until its edit has landed.
    assert take(older, 2) is Turn.TAKEN
    assert take(newer, 3) is Turn.BUSY
    assert take(older, 2) is Turn.TAKEN  # its own retry
    end_thread_turn(anchor, _id(2))
    assert take(newer, 3) is Turn.TAKEN
    end_thread_turn(anchor, _id(3))
    # A late retry of the older one finds the newer mark.
    assert take(older, 2) is Turn.SUPERSEDED
    # An end older than the newest mark still goes out, and does not lower the watermark.
    old_end = thread_mark(_id(4), SENT + _h(1))
    assert take(old_end, 4, supersedable=False) is Turn.TAKEN
    assert _anchor_row(anchor)["thread_mark"] == newer
    # A turn whose holder died lapses at the end it was taken for.
    assert take(newer, 3, now + HELD + timedelta(seconds=1)) is Turn.TAKEN


def test_a_newer_update_that_never_went_out_leaves_the_first_post_to_the_older_one(stack: LocalStack) -> None:
    """The newer update's edit and then its reply are refused for good (failed): the older update,
    read after it, still edits the first post instead of being skipped for a post nobody sees."""
    first = _announce(stack, 1, "new", published=SENT)
    stack.sandbox.inject("telegram", "forbidden", endpoint="editMessageText", count=1)
    stack.sandbox.inject("telegram", "forbidden", count=1)  # the reply it falls back to

    newer = _announce(
        stack, 3, "update", anchor=ANCHOR, summary="Allerta prolungata.", published=SENT + _h(2)
    )
    older = _announce(stack, 2, "update", anchor=ANCHOR, summary="In attenuazione.", published=SENT + _h(1))

    assert (newer["telegram"].status, newer["telegram"].error_reason) == ("failed", "forbidden")
    assert (older["telegram"].status, older["telegram"].posted_as) == ("posted", "edit")
    assert "attenuazione" in _post(stack, first["telegram"])["text"]
    # Where the newer update went out, it stands.
    assert (older["facebook"].status, older["facebook"].error_reason) == ("skipped", "superseded")
    assert "prolungata" in _post(stack, first["facebook"])["text"]


def test_an_update_held_for_refused_credentials_puts_the_thread_watermark_back(stack: LocalStack) -> None:
    first = _announce(stack, 1, "new", published=SENT)
    stack.sandbox.revoke_token("telegram", "sandbox-comune-prova-telegram")

    enqueue(_write(3, "update", anchor=ANCHOR, published=SENT + _h(2)))
    stack.drain(timeout=5)

    held = _deliveries(3)["telegram"]
    assert (held.status, held.error_reason) == ("pending", "auth")
    # Nothing of the thread went out after its first post: an older update may still edit it.
    assert "thread_mark" not in _anchor_row(first["telegram"])
    assert _anchor_row(first["facebook"])["thread_mark"] == thread_mark(_id(3), SENT + _h(2))


def test_an_update_skipped_for_a_newer_one_that_then_failed_goes_out_after_all(stack: LocalStack) -> None:
    """The newer update's first attempt timed out (it may have edited: its mark stays), the older
    one is skipped meanwhile, then the newer one is refused for good: the older one is published
    again, and edits the first post."""
    telegram = _announce(stack, 1, "new", published=SENT)["telegram"]
    newer = thread_mark(_id(3), SENT + _h(2))
    now = utcnow()
    take_thread_turn(telegram, newer, _id(3), now, until=now + HELD, supersedable=True)
    end_thread_turn(telegram, _id(3))  # the newer update's worker, after its edit timed out
    older = _announce(stack, 2, "update", anchor=ANCHOR, summary="In attenuazione.", published=SENT + _h(1))
    assert (older["telegram"].status, older["telegram"].error_reason) == ("skipped", "superseded")

    stack.sandbox.inject("telegram", "forbidden", endpoint="editMessageText", count=1)
    stack.sandbox.inject("telegram", "forbidden", count=1)
    assert _announce(stack, 3, "update", anchor=ANCHOR, published=SENT + _h(2))["telegram"].status == "failed"

    again = _deliveries(2)["telegram"]
    assert (again.status, again.posted_as) == ("posted", "edit")
    assert "attenuazione" in _post(stack, telegram)["text"]
    assert _anchor_row(telegram)["thread_mark"] == thread_mark(_id(2), SENT + _h(1))  # raised as it went out
    log = (stack.state_dir / "lambda.log").read_text(encoding="utf-8")
    assert _emitted(log, "ThreadUpdatesLost") == 0


def test_a_retry_that_finds_its_own_mark_can_still_put_back_the_one_before_it(stack: LocalStack) -> None:
    anchor = _announce(stack, 1, "new", published=SENT)["telegram"]
    older, newer = thread_mark(_id(2), SENT + _h(1)), thread_mark(_id(3), SENT + _h(2))
    now = utcnow()

    def take(mark: str, number: int) -> Any:
        taken = take_thread_turn(anchor, mark, _id(number), now, until=now + HELD, supersedable=True)
        end_thread_turn(anchor, _id(number))
        return taken

    first = take(older, 2)
    assert (first.raised, first.previous_mark) == (True, None)
    assert take(newer, 3).previous_mark == older  # then its edit timed out: its mark stays
    retry = take(newer, 3)

    assert (retry.turn, retry.raised, retry.previous_mark) == (Turn.TAKEN, True, older)
    assert restore_thread_mark(anchor, newer, retry.previous_mark) == []
    assert _anchor_row(anchor)["thread_mark"] == older


def test_a_thread_turn_lasts_until_its_holder_can_no_longer_edit_not_a_delivery_lease(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that dies mid-edit leaves its thread's turn taken: the turn lapses once that worker's
    invocation has surely ended (the rest of it, from its Lambda context, plus a margin), not after
    a delivery lease (1 s on this stack; 120 s in AWS, where the function times out after 60 s)."""
    first = _announce(stack, 1, "new", published=SENT)
    # The worker dies after its edit, before giving the turn back.
    monkeypatch.setattr(publisher.store, "end_thread_turn", lambda anchor, holder: None)
    config = json.loads((Path(__file__).parents[2] / ".chalice" / "config.json").read_text(encoding="utf-8"))
    timeout = timedelta(seconds=config["lambda_functions"]["publish_urgent"]["lambda_timeout"])
    before = utcnow()

    assert (
        _announce(stack, 2, "update", anchor=ANCHOR, published=SENT + _h(1))["telegram"].posted_as == "edit"
    )

    turn_until = parse_iso(_anchor_row(first["telegram"])["turn_until"])
    assert before + timeout / 2 < turn_until <= utcnow() + timeout + timedelta(seconds=TURN_MARGIN_SECONDS)


# --- Threads: an edit rewrites one post, never the head of a thread ----------------------------------


def test_mastodon_edits_only_a_first_post_of_one_status_with_an_update_of_one(make_stack: Any) -> None:
    [mastodon] = [c | {"alert_updates": "edit"} for c in CHANNELS if c["id"] == "mastodon"]
    stack: LocalStack = make_stack([tenant(TENANT, channels=[mastodon])], {})

    threaded = _announce(stack, 1, "new", summary=LONG)["mastodon"]
    assert threaded.pieces == 2
    update = _announce(stack, 2, "update", anchor=ANCHOR)["mastodon"]
    assert (update.posted_as, update.pieces) == ("reply", 1)
    assert _replied_to(_post(stack, update)) == threaded.remote_id
    assert _post(stack, threaded)["edits"] == []  # its second status would have kept the old text

    single = _announce(stack, 3, "new")["mastodon"]
    assert single.pieces == 1
    assert _announce(stack, 4, "update", anchor=_id(3))["mastodon"].posted_as == "edit"
    long_update = _announce(stack, 5, "update", anchor=_id(3), summary=LONG)["mastodon"]
    assert (long_update.posted_as, long_update.pieces) == ("reply", 2)
    assert stack.sandbox.stats()["requests"]["mastodon"]["edit_status"] == 1  # not even asked


def _anchor_row(delivery: Delivery) -> dict[str, Any]:
    """A thread's first delivery as stored, with its thread's turn and watermark on that channel."""
    response = dynamo.client().get_item(TableName=dynamo.table_name(), Key=delivery.key, ConsistentRead=True)
    return dynamo.from_dynamo(response["Item"])


def _budget_used(channel: str) -> int:
    """Posts taken from the channel's budget, over all its windows."""
    response = dynamo.client().query(
        TableName=dynamo.table_name(),
        KeyConditionExpression="pk = :pk AND begins_with(sk, :channel)",
        ExpressionAttributeValues=dynamo.values({":pk": keys.budget_pk(TENANT), ":channel": f"{channel}#"}),
        ConsistentRead=True,
    )
    return sum(int(dynamo.from_dynamo(item)["used"]) for item in response["Items"])


def _h(hours: int) -> timedelta:
    return timedelta(hours=hours)
