"""Each adapter's `answer` over real HTTP against its platform's fake: threaded to the citizen's own
message (which the fake knows, made with its citizen controls), cut or threaded within the limit as
publish does, private where the platform has a private answer and refused where it has none,
Messenger's windows, the same idempotency as posts, and every error family mapped as publish maps it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from chalicelib.channels.atproto import PostRef
from chalicelib.channels.base import Answering, PermanentError, PostResult, PublishError, ReplyTarget
from devtools.sandbox import Sandbox
from devtools.sandbox.bluesky import BlueskyFake
from devtools.sandbox.meta import FacebookFake
from devtools.sandbox.telegram import TelegramFake
from devtools.sandbox.x import XFake
from tests.integration.channel_support import SECRETS, AdapterFactory
from tests.integration.meta_support import PAGE_ID
from tests.integration.test_channel_errors import FAULTS

PLATFORMS = ("telegram", "mastodon", "facebook", "bluesky", "x")
TEXT = "Buongiorno, sì: le scuole sono aperte domani. Trova gli aggiornamenti su https://comune.example.it"
GROUP = -1001234567890  # a Telegram channel's discussion group
PERSON = 1001  # a citizen's Telegram user id: their private chat with the bot has the same id
ACCT = "maria@altra.istanza"
HANDLE = "maria.bsky.social"
POST = f"{PAGE_ID}_5551"  # a Page post citizens comment on
PSID = "7000000000000001"  # a citizen's page-scoped id on Messenger
# The endpoint an answer to a public comment (or mention) takes, as the sandbox counts it.
ENDPOINTS = {
    "telegram": "sendMessage",
    "mastodon": "statuses",
    "facebook": "comments",
    "bluesky": "createRecord",
    "x": "tweets",
}
# The id, among the target's, that each platform's record of a reply names.
ANSWERED_ID = {
    "telegram": "message_id",
    "mastodon": "status_id",
    "facebook": "comment_id",
    "bluesky": "uri",
    "x": "tweet_id",
}


@pytest.fixture(params=PLATFORMS)
def platform(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def adapter(make_adapter: AdapterFactory) -> Answering:
    made = make_adapter(None)
    assert isinstance(made, Answering)
    return made


def _target(
    ids: dict[str, str], *, direct: bool = False, ago: timedelta = timedelta(minutes=5)
) -> ReplyTarget:
    written = datetime.now(UTC) - ago
    return ReplyTarget(ids=ids, direct=direct, message_at=written, last_message_at=written)


def comment(platform: str, sandbox: Sandbox) -> ReplyTarget:
    """A citizen's public comment or mention, made on the platform's fake as ingestion would find it."""
    made: dict[str, Callable[[], dict[str, str]]] = {
        "telegram": lambda: {
            "chat_id": str(GROUP),
            "message_id": str(
                sandbox.fake("telegram", TelegramFake).citizen_message(GROUP, "Aperte?", user_id=PERSON)[
                    "message_id"
                ]
            ),
        },
        "mastodon": lambda: {
            "status_id": sandbox.mastodon.citizen_status(ACCT, "@comune Le scuole sono aperte?")["id"],
            "acct": ACCT,
        },
        "facebook": lambda: {
            "comment_id": sandbox.fake("facebook", FacebookFake).citizen_comment(POST),
            "post_id": POST,
        },
        "bluesky": lambda: sandbox.fake("bluesky", BlueskyFake).citizen_post(HANDLE, "@comune aperte?"),
        "x": lambda: {"tweet_id": sandbox.fake("x", XFake).citizen_post()},
    }
    return _target(made[platform]())


def messenger(sandbox: Sandbox, *, wrote: timedelta = timedelta(minutes=5)) -> ReplyTarget:
    """A citizen's Messenger message to the Page, `wrote` ago."""
    at = datetime.now(UTC) - wrote
    mid = sandbox.fake("facebook", FacebookFake).citizen_message(PAGE_ID, PSID, at=at)
    return _target({"recipient_id": PSID, "message_id": mid}, direct=True, ago=wrote)


def answered(platform: str, post: dict[str, Any]) -> str | None:
    """The citizen's message (by the id in ANSWERED_ID) a recorded post of ours answers."""
    options = post["options"]
    found: dict[str, Callable[[], Any]] = {
        "telegram": lambda: options.get("replied_to"),
        "mastodon": lambda: options.get("in_reply_to_id"),
        "facebook": lambda: options.get("reply_to"),
        "bluesky": lambda: options.get("reply", {}).get("parent", {}).get("uri"),
        "x": lambda: options.get("in_reply_to_tweet_id"),
    }
    value = found[platform]()
    return None if value is None else str(value)


def own_id(platform: str, result: PostResult) -> str:
    """The id the fake recorded the post under, from the adapter's remote id."""
    if platform == "bluesky":
        return PostRef.decode(result.remote_id).rkey
    return result.remote_id.rpartition(":")[2]


# ---- threading -------------------------------------------------------------------------------


def test_an_answer_hangs_under_the_citizens_message(
    platform: str, adapter: Answering, sandbox: Sandbox
) -> None:
    target = comment(platform, sandbox)

    result = adapter.answer(target, TEXT, idempotency_key="banditore-comune-prova-20261123T090000-reply-r1")

    [post] = sandbox.posts(platform)
    assert post["id"] == own_id(platform, result)
    assert answered(platform, post) == target.ids[ANSWERED_ID[platform]]
    # Mastodon's opens with the citizen's @acct; Bluesky shows a link without its scheme (its facet
    # holds it whole).
    shown = {"mastodon": f"@{ACCT} {TEXT}", "bluesky": TEXT.replace("https://", "")}
    assert post["text"] == shown.get(platform, TEXT)
    if platform == "mastodon":
        assert post["options"]["visibility"] == "public"  # the channel's, for a public mention
    if platform == "bluesky":
        assert post["options"]["reply"]["root"] == {
            "uri": target.ids["root_uri"],
            "cid": target.ids["root_cid"],
        }
        assert post["options"]["facets"][0]["features"][0]["uri"] == "https://comune.example.it"


@pytest.mark.parametrize("platform", ["bluesky"])
def test_an_answer_in_a_reply_thread_names_the_threads_first_post(
    adapter: Answering, sandbox: Sandbox
) -> None:
    fake = sandbox.fake("bluesky", BlueskyFake)
    first = fake.citizen_post(HANDLE, "Strada chiusa?")
    again = fake.citizen_post("luca.bsky.social", "Anche in via Verdi", reply_to=first["uri"])

    adapter.answer(_target(again), "Sì, fino a lunedì.", idempotency_key="k-thread")

    [post] = sandbox.posts("bluesky")
    assert post["options"]["reply"] == {
        "root": {"uri": first["uri"], "cid": first["cid"]},
        "parent": {"uri": again["uri"], "cid": again["cid"]},
    }


# Posts a long answer makes: a numbered thread where the platform has threads (3 pieces at most by
# default), one post cut at a word elsewhere (Facebook: a Messenger message, under 2000 characters).
LONG_POSTS = {"telegram": 1, "mastodon": 3, "facebook": 1, "bluesky": 3, "x": 3}
LONG = " ".join(f"Punto {n}: la strada resta chiusa al traffico fino a nuovo avviso." for n in range(80))


def test_a_long_answer_is_cut_at_a_word_or_threaded_within_the_limit(
    platform: str, adapter: Answering, sandbox: Sandbox
) -> None:
    target = messenger(sandbox) if platform == "facebook" else comment(platform, sandbox)

    adapter.answer(target, LONG, idempotency_key="k-long")

    posts = sandbox.posts(platform)  # the fakes count with counters of their own: each was accepted
    assert len(posts) == LONG_POSTS[platform]
    if len(posts) == 1:
        assert posts[0]["text"].endswith("…")
        assert LONG.startswith(posts[0]["text"].removesuffix("…").rstrip())
        return
    assert [post["text"].rsplit(" ", 1)[1] for post in posts] == ["(1/3)", "(2/3)", "(3/3)"]
    for previous, post in pairwise(posts):
        expected = previous["options"]["uri"] if platform == "bluesky" else previous["id"]
        assert answered(platform, post) == expected
    if platform == "mastodon":
        assert all(post["text"].startswith(f"@{ACCT} ") for post in posts)


# ---- private answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["mastodon"])
@pytest.mark.parametrize("direct", [True, False], ids=["direct-conversation", "private-answer"])
def test_mastodon_answers_in_private_with_a_direct_status(
    adapter: Answering, sandbox: Sandbox, direct: bool
) -> None:
    status = sandbox.mastodon.citizen_status(ACCT, "@comune scrivo in privato", visibility="direct")
    target = _target({"status_id": status["id"], "acct": ACCT}, direct=direct)

    adapter.answer(target, "Le rispondiamo in privato.", idempotency_key="k-direct", private=not direct)

    [post] = sandbox.posts("mastodon")
    assert post["options"]["visibility"] == "direct"
    assert post["text"].startswith(f"@{ACCT} ")  # a direct status reaches the accounts it mentions


@pytest.mark.parametrize("platform", ["telegram"])
def test_telegram_answers_a_private_message_in_the_private_chat(adapter: Answering, sandbox: Sandbox) -> None:
    fake = sandbox.fake("telegram", TelegramFake)
    asked = fake.citizen_message(PERSON, "Orari dell'anagrafe?")
    target = _target({"chat_id": str(PERSON), "message_id": str(asked["message_id"])}, direct=True)

    adapter.answer(target, "Dalle 9 alle 12.", idempotency_key="k-private-chat")
    deleted = _target({"chat_id": str(PERSON), "message_id": "999999"}, direct=True)
    adapter.answer(deleted, "Anche il sabato.", idempotency_key="k-deleted")

    first, second = sandbox.posts("telegram")
    assert (first["target"], first["options"]["replied_to"]) == (str(PERSON), asked["message_id"])
    # Their question was deleted: the answer still reaches them, as a message of its own.
    assert second["target"] == str(PERSON) and "replied_to" not in second["options"]


@pytest.mark.parametrize("platform", ["telegram", "bluesky", "x"])
def test_a_private_answer_is_refused_where_the_platform_has_none(
    platform: str, adapter: Answering, sandbox: Sandbox
) -> None:
    target = comment(platform, sandbox)
    with pytest.raises(PermanentError) as caught:
        adapter.answer(target, "In privato.", idempotency_key="k-private", private=True)
    assert caught.value.reason == "private_unsupported"
    assert sandbox.stats()["requests"] == {}


@pytest.mark.parametrize("platform", ["bluesky", "x"])
def test_a_direct_conversation_is_never_answered_in_public(
    platform: str, adapter: Answering, sandbox: Sandbox
) -> None:
    target = comment(platform, sandbox)
    direct = ReplyTarget(target.ids, True, target.message_at, target.last_message_at)
    with pytest.raises(PermanentError, match="private"):
        adapter.answer(direct, "Risposta.", idempotency_key="k-dm")
    assert sandbox.posts() == []


@pytest.mark.parametrize("platform", ["facebook"])
def test_facebook_replies_to_a_comment_in_private_once_within_7_days(
    adapter: Answering, sandbox: Sandbox
) -> None:
    target = comment("facebook", sandbox)

    adapter.answer(target, "Le scriviamo in privato.", idempotency_key="k-pr", private=True)
    with pytest.raises(PermanentError) as again:
        adapter.answer(target, "Ancora.", idempotency_key="k-pr-2", private=True)
    old = comment("facebook", sandbox)
    late = ReplyTarget(old.ids, False, old.message_at - timedelta(days=8), old.last_message_at)
    with pytest.raises(PermanentError) as too_late:
        adapter.answer(late, "Troppo tardi.", idempotency_key="k-pr-3", private=True)

    [post] = sandbox.posts("facebook")
    assert post["options"]["recipient"] == {"comment_id": target.ids["comment_id"]}
    assert post["options"]["messaging_type"] == "RESPONSE"
    assert again.value.reason == too_late.value.reason == "messenger_window_closed"
    assert sandbox.stats()["requests"]["facebook"] == {"messages": 2}  # the late one was not even sent


# ---- Messenger's windows ------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["facebook"])
@pytest.mark.parametrize(
    ("hours", "automatic", "sent"),
    [
        (1, False, {"messaging_type": "RESPONSE"}),
        (1, True, {"messaging_type": "RESPONSE"}),
        (30, False, {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}),
        (6 * 24, False, {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}),
        (30, True, None),  # an automatic answer: 24 hours only
        (8 * 24, False, None),
    ],
)
def test_messenger_answers_within_the_window_and_refuses_after_it(
    adapter: Answering, sandbox: Sandbox, hours: int, automatic: bool, sent: dict[str, str] | None
) -> None:
    target = messenger(sandbox, wrote=timedelta(hours=hours))

    if sent is None:
        with pytest.raises(PermanentError) as caught:
            adapter.answer(target, "Risposta.", idempotency_key="k-m", automatic=automatic)
        assert caught.value.reason == "messenger_window_closed"
        assert sandbox.stats()["requests"] == {}
        return
    result = adapter.answer(target, "Risposta.", idempotency_key="k-m", automatic=automatic)
    [post] = sandbox.posts("facebook")
    assert {k: post["options"][k] for k in sent} == sent
    assert post["options"]["recipient"] == {"id": PSID}
    assert result.remote_id == post["id"]


@pytest.mark.parametrize("platform", ["facebook"])
def test_a_window_meta_says_is_closed_is_the_same_refusal(adapter: Answering, sandbox: Sandbox) -> None:
    """Our clock and Meta's may disagree: Meta's refusal (10/2018278) reads as ours does."""
    messenger(sandbox, wrote=timedelta(hours=30))  # what Meta knows
    target = _target({"recipient_id": PSID, "message_id": "m_1"}, direct=True, ago=timedelta(hours=23))

    with pytest.raises(PermanentError) as caught:
        adapter.answer(target, "Risposta.", idempotency_key="k-m", automatic=True)

    assert caught.value.reason == "messenger_window_closed"
    assert sandbox.posts() == []


# ---- idempotency, missing targets, errors --------------------------------------------------------


@pytest.mark.parametrize("platform", ["mastodon", "bluesky"])
def test_a_retried_answer_is_made_once_where_the_platform_dedupes(
    platform: str, adapter: Answering, sandbox: Sandbox
) -> None:
    target = comment(platform, sandbox)
    key = "banditore-comune-prova-20261123T090000-reply-r7"

    first = adapter.answer(target, TEXT, idempotency_key=key)
    again = adapter.answer(target, TEXT, idempotency_key=key)

    assert first.remote_id == again.remote_id
    assert len(sandbox.posts(platform)) == 1


def test_a_target_without_the_platforms_ids_is_refused_before_any_call(
    platform: str, adapter: Answering, sandbox: Sandbox
) -> None:
    with pytest.raises(PermanentError) as caught:
        adapter.answer(_target({"other": "1"}), TEXT, idempotency_key="k")
    assert caught.value.reason == "bad_reply_target"
    assert sandbox.stats()["requests"] == {}


# An answer to a message the citizen deleted goes nowhere (standing alone it would make no sense),
# each platform refusing in its words.
GONE = {
    "telegram": ({"chat_id": str(GROUP), "message_id": "999999"}, "bad_request"),
    "mastodon": ({"status_id": "999", "acct": ACCT}, "not_found"),
    "facebook": ({"comment_id": f"{POST}_999"}, "invalid_parameter"),
    "bluesky": (
        {"uri": "at://did:plc:nobody/app.bsky.feed.post/3kaaaaaaaaaa2", "cid": "bafyx"},
        "invalid_request",
    ),
    "x": ({"tweet_id": "42"}, "reply_target_missing"),
}


def test_an_answer_to_a_deleted_message_is_refused_and_nothing_is_posted(
    platform: str, adapter: Answering, sandbox: Sandbox
) -> None:
    ids, reason = GONE[platform]
    with pytest.raises(PermanentError) as caught:
        adapter.answer(_target(ids), TEXT, idempotency_key="k-gone")
    assert caught.value.reason == reason
    assert sandbox.posts() == []


@pytest.mark.parametrize(("platform", "kind"), [(p, kind) for p in PLATFORMS for kind in FAULTS[p]])
def test_each_fault_maps_to_the_family_it_has_for_posts(
    *,
    platform: str,
    kind: str,
    adapter: Answering,
    sandbox: Sandbox,
    slow_answer: float,
    assert_secret_absent: Callable[[BaseException, str], None],
) -> None:
    target = comment(platform, sandbox)
    sandbox.inject(platform, kind, endpoint=ENDPOINTS[platform], delay=slow_answer)

    with pytest.raises(PublishError) as caught:
        adapter.answer(target, TEXT, idempotency_key="k-fault")

    assert (type(caught.value), caught.value.reason) == FAULTS[platform][kind]
    assert sandbox.posts() == []
    assert_secret_absent(caught.value, SECRETS[platform])
