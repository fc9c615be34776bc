"""What the platforms' events mean for the inbox: Telegram private messages are direct, replies in the
discussion group are comments threaded under the copy of our post (and name the post it copies);
Meta's Page comments and Messenger messages likewise; our own posts, bots, echoes, edits and receipts
are ignored with a reason; one comune's Meta app cannot speak for another comune's Page."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.config.models import Config, FacebookChannel, TelegramChannel
from chalicelib.inbox.ingest import meta, telegram
from chalicelib.inbox.ingest.normalised import Normalised, PostCopy
from chalicelib.inbox.ingest.queue import InboundEvent
from chalicelib.inbox.model import Citizen, Location

RECEIVED = datetime(2026, 11, 23, 5, 30, 7, tzinfo=UTC)
SENT = 1795412400  # the platform's own time of the message
CHANNEL_ID = -1001234567890
GROUP = -1009876543210
TG = TelegramChannel(
    id="telegram",
    platform="telegram",
    chat="@ComuneA",
    token="env:TG_TOKEN",
    webhook_secret="env:TG_SECRET",
    discussion_chat=str(GROUP),
    inbox=True,
)
PERSON = {"id": 4242, "is_bot": False, "first_name": "Maria", "last_name": "Rossi"}
OUR_CHANNEL = {"id": CHANNEL_ID, "type": "channel", "title": "Comune A", "username": "ComuneA"}
COPY = {
    "message_id": 77,
    "chat": {"id": GROUP, "type": "supergroup"},
    "sender_chat": OUR_CHANNEL,
    "is_automatic_forward": True,
    "forward_origin": {"type": "channel", "chat": OUR_CHANNEL, "message_id": 15},
}


def _update(**message: Any) -> dict[str, Any]:
    return {"update_id": 900, "message": {"message_id": 31, "date": SENT, "from": PERSON, **message}}


def _private(**message: Any) -> dict[str, Any]:
    return _update(chat={"id": 4242, "type": "private"}, **message)


def _in_group(**message: Any) -> dict[str, Any]:
    return _update(chat={"id": GROUP, "type": "supergroup"}, **message)


def _telegram(update: dict[str, Any]) -> Normalised:
    return telegram.normalise_update(update, "comune-a", TG, RECEIVED)


def test_a_private_message_is_direct() -> None:
    result = _telegram(_private(text="Le scuole sono aperte domani?"))
    [message] = result.messages
    assert (message.kind, message.platform, message.channel) == ("direct", "telegram", "telegram")
    assert message.platform_message_id == "4242:31"
    assert message.citizen == Citizen("telegram", "4242", "Maria Rossi")
    assert message.received_at == datetime.fromtimestamp(SENT, UTC)
    assert message.reply_target == {"chat_id": "4242", "message_id": "31"}
    assert (message.in_reply_to_remote_id, message.location, result.ignored) == (None, None, ())


def test_a_reply_to_our_posts_copy_is_a_comment_naming_the_post() -> None:
    result = _telegram(_in_group(text="Grazie!", reply_to_message=COPY, message_thread_id=77))
    [message] = result.messages
    assert (message.kind, message.in_reply_to_remote_id) == ("comment", f"{GROUP}:77")
    assert message.parent_message_id == f"{GROUP}:77"
    assert result.copies == (PostCopy("comune-a", "telegram", f"{GROUP}:77", f"{CHANNEL_ID}:15"),)
    legacy = COPY | {"forward_origin": None, "forward_from_chat": OUR_CHANNEL, "forward_from_message_id": 15}
    assert _telegram(_in_group(text="Grazie!", reply_to_message=legacy)).copies == result.copies


def test_a_reply_to_another_comment_stays_under_the_same_post() -> None:
    answer = {"message_id": 80, "chat": {"id": GROUP}, "from": PERSON}
    [message] = _telegram(_in_group(text="Anche qui", reply_to_message=answer, message_thread_id=77)).messages
    assert (message.kind, message.in_reply_to_remote_id, message.parent_message_id) == (
        "comment",
        f"{GROUP}:77",
        f"{GROUP}:80",
    )
    [loose] = _telegram(_in_group(text="Ciao a tutti")).messages
    assert (loose.kind, loose.in_reply_to_remote_id) == ("comment", None)


def test_the_copy_itself_is_our_post() -> None:
    result = _telegram({"update_id": 1, "message": COPY | {"date": SENT, "text": "Avviso"}})
    assert (result.messages, result.ignored) == ((), ("own_post",))
    assert [c.post_remote_id for c in result.copies] == [f"{CHANNEL_ID}:15"]


@pytest.mark.parametrize(
    ("update", "reason"),
    [
        ({"update_id": 1, "edited_message": {}}, "edited"),
        ({"update_id": 1, "channel_post": {}}, "own_post"),
        ({"update_id": 1, "callback_query": {}}, "other_update"),
        (_private(text="ciao", **{"from": PERSON | {"is_bot": True}}), "not_a_citizen"),
        (_in_group(text="Risposta dello staff", sender_chat=OUR_CHANNEL), "not_a_citizen"),
        (
            _in_group(text="Un amministratore anonimo", sender_chat={"id": GROUP, "type": "supergroup"}),
            "not_a_citizen",
        ),
        (_update(chat={"id": -100555, "type": "supergroup"}, text="altrove"), "other_chat"),
        (_private(text="/start"), "bot_start"),
        (_private(), "no_content"),
        (_update(chat={"type": "private"}, text="senza id"), "malformed"),
    ],
)
def test_what_is_not_a_citizens_message_is_ignored_with_a_reason(update: dict[str, Any], reason: str) -> None:
    result = _telegram(update)
    assert (result.messages, result.ignored) == ((), (reason,))


def test_content_without_words_is_labelled_and_a_location_kept() -> None:
    [photo] = _telegram(_private(photo=[{"file_id": "x"}], caption="Via Roma")).messages
    assert photo.text == "[foto] Via Roma"
    [place] = _telegram(_private(location={"latitude": 43.77, "longitude": 11.25})).messages
    assert (place.text, place.location) == ("[posizione]", Location(43.77, 11.25))
    [nowhere] = _telegram(_private(location={"latitude": 200, "longitude": 11.25})).messages
    assert nowhere.location is None
    as_channel = {"id": -100777, "type": "channel", "title": "Pro Loco"}
    [pro_loco] = _telegram(_in_group(text="Ci siamo", sender_chat=as_channel)).messages
    assert pro_loco.citizen == Citizen("telegram", "-100777", "Pro Loco")


# ---- Meta ------------------------------------------------------------------------------------

PAGE_A, PAGE_B = "5550001", "5550002"
SECRETS = {"APP_A": "segreto-app-comune-a", "APP_B": "segreto-app-comune-b"}


def _facebook(tenant: str, page: str, app: str) -> dict[str, Any]:
    channel = {"id": "facebook", "platform": "facebook", "page_id": page, "token": "env:FB_TOKEN"}
    return {
        "id": tenant,
        "name": tenant,
        "channels": [channel | {"inbox": True, "app_secret": f"env:{app}", "verify_token": "env:VERIFY"}],
    }


CONFIG = Config.model_validate(
    {"tenants": [_facebook("comune-a", PAGE_A, "APP_A"), _facebook("comune-b", PAGE_B, "APP_B")]}
)
FB = next(c for c in CONFIG.tenant("comune-a").channels if isinstance(c, FacebookChannel))


def _comment(**value: Any) -> dict[str, Any]:
    base = {
        "item": "comment",
        "verb": "add",
        "comment_id": "15_901",
        "post_id": f"{PAGE_A}_15",
        "parent_id": f"{PAGE_A}_15",
        "from": {"id": "6543", "name": "Luca Bianchi"},
        "message": "Quando riapre?",
        "created_time": SENT,
    }
    return {"field": "feed", "value": base | value}


def _message(**message: Any) -> dict[str, Any]:
    return {
        "sender": {"id": "8765"},
        "recipient": {"id": PAGE_A},
        "timestamp": SENT * 1000,
        "message": {"mid": "m_1", "text": "Orari?"} | message,
    }


def _entry_items(**entry: Any) -> list[Any]:
    return list(meta.entry_items({"id": PAGE_A, **entry}, "comune-a", FB, RECEIVED))


def test_a_page_comment_is_a_comment_under_its_post() -> None:
    [comment] = _entry_items(changes=[_comment()])
    assert (comment.kind, comment.platform_message_id, comment.in_reply_to_remote_id) == (
        "comment",
        "15_901",
        f"{PAGE_A}_15",
    )
    assert comment.parent_message_id is None  # it answers the post itself
    assert comment.citizen == Citizen("facebook", "6543", "Luca Bianchi")
    assert comment.reply_target == {"comment_id": "15_901", "post_id": f"{PAGE_A}_15"}
    [reply] = _entry_items(changes=[_comment(parent_id="15_900", photo="https://x/y.jpg")])
    assert (reply.parent_message_id, reply.text) == ("15_900", "[foto] Quando riapre?")


def test_a_messenger_message_is_direct_and_keeps_a_shared_location() -> None:
    place = {"type": "location", "payload": {"coordinates": {"lat": 43.7, "long": 11.2}}}
    [message] = _entry_items(messaging=[_message(attachments=[place])])
    assert (message.kind, message.platform_message_id, message.text) == (
        "direct",
        "m_1",
        "[posizione] Orari?",
    )
    assert message.location == Location(43.7, 11.2)
    assert message.received_at == datetime.fromtimestamp(SENT, UTC)
    assert message.reply_target == {"recipient_id": "8765", "message_id": "m_1"}


def test_what_is_not_a_citizens_message_on_meta_is_ignored_with_a_reason() -> None:
    items = _entry_items(
        changes=[
            _comment(**{"from": {"id": PAGE_A, "name": "Comune A"}}),
            _comment(verb="edited"),
            _comment(item="reaction"),
            {"field": "mention", "value": {}},
            _comment(comment_id=None),
        ],
        messaging=[_message(is_echo=True), {"sender": {"id": "8765"}, "read": {"watermark": 1}}],
    )
    assert items == [
        "own_post",
        "edited",
        "not_a_comment",
        "other_field",
        "malformed",
        "own_post",
        "not_a_message",
    ]


def _signed_event(body: dict[str, Any], secret: str) -> InboundEvent:
    raw = json.dumps(body).encode()
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return InboundEvent("meta", RECEIVED, raw, signature=signature)


def test_an_entry_is_taken_only_for_the_page_whose_app_signed_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    body = {
        "object": "page",
        "entry": [
            {"id": PAGE_A, "changes": [_comment()]},
            {"id": PAGE_B, "changes": [_comment(comment_id="2")]},
        ],
    }
    by_a = meta.normalise(_signed_event(body, SECRETS["APP_A"]), CONFIG)
    assert [(m.tenant, m.platform_message_id) for m in by_a.messages] == [("comune-a", "15_901")]
    assert by_a.ignored == ("unknown_page",)  # comune-a's app speaking for comune-b's Page
    assert meta.normalise(
        _signed_event(body | {"object": "instagram"}, SECRETS["APP_A"]), CONFIG
    ).ignored == ("other_object",)
