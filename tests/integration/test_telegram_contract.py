"""The Telegram adapter over real HTTP against the sandbox's Bot API fake: answers, errors, secrecy,
photos and their fallback to a message."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pytest
import requests

from chalicelib.announcements import Announcement, Image
from chalicelib.channels.base import (
    AuthError,
    ChannelAdapter,
    PermanentError,
    PostGone,
    PostImage,
    PostResult,
    PublishError,
    RateLimited,
    RenderedPost,
    RetryableError,
)
from chalicelib.channels.registry import adapter_for
from chalicelib.channels.telegram import TelegramAdapter, error_for
from chalicelib.config.models import TelegramChannel
from devtools.sandbox import Sandbox
from devtools.sandbox.telegram import TelegramFake

TOKEN = "7012345678:AAH-sandbox_Token-0123456789abcdefghi"
TOKEN_ENV = "BANDITORE_TEST_TELEGRAM_TOKEN"

pytestmark = pytest.mark.usefixtures("no_secrets_file")


def _channel(
    sandbox: Sandbox, *, chat: str = "@comune_prova", api_base: str | None = None
) -> TelegramChannel:
    return TelegramChannel(
        id="telegram",
        platform="telegram",
        chat=chat,
        token=f"env:{TOKEN_ENV}",
        api_base=api_base or sandbox.telegram_api_base,
        disable_notification=True,
    )


@pytest.fixture
def adapter(sandbox: Sandbox, session: requests.Session, monkeypatch: pytest.MonkeyPatch) -> ChannelAdapter:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return adapter_for(_channel(sandbox), session=session)


@pytest.fixture
def fast_adapter(
    sandbox: Sandbox, session: requests.Session, fast_timeout: tuple[float, float]
) -> TelegramAdapter:
    return TelegramAdapter(
        chat="@comune_prova",
        token=lambda: TOKEN,
        session=session,
        api_base=sandbox.telegram_api_base,
        timeout=fast_timeout,
    )


def _publish(adapter: ChannelAdapter, announcement: Announcement, key: str = "delivery-1") -> PostResult:
    return adapter.publish(adapter.render(announcement), idempotency_key=key)


def test_publish_sends_html_message_and_returns_chat_scoped_id_and_public_link(
    adapter: ChannelAdapter, announcement: Announcement, sandbox: Sandbox
) -> None:
    rendered = adapter.render(announcement)
    result = adapter.publish(rendered, idempotency_key="delivery-1")

    [post] = sandbox.posts("telegram")
    assert post["text"] == rendered.text
    assert post["target"] == "@comune_prova"
    assert post["options"] == {
        "parse_mode": "HTML",
        "link_preview_options": {"url": announcement.link},
        "disable_notification": True,
    }
    chat_id, message_id = result.remote_id.rsplit(":", 1)
    assert message_id == post["id"] == "1"
    assert int(chat_id) < 0  # channels have negative ids
    assert result.url == "https://t.me/comune_prova/1"


def test_message_ids_count_per_chat(adapter: ChannelAdapter, announcement: Announcement) -> None:
    first, second = _publish(adapter, announcement), _publish(adapter, announcement, "delivery-2")
    assert [first.remote_id.rsplit(":", 1)[1], second.remote_id.rsplit(":", 1)[1]] == ["1", "2"]


def test_chat_without_username_has_no_public_link(
    sandbox: Sandbox, session: requests.Session, monkeypatch: pytest.MonkeyPatch, announcement: Announcement
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    result = _publish(adapter_for(_channel(sandbox, chat="-4242"), session=session), announcement)
    assert result == PostResult(remote_id="-4242:1", url=None)


def test_announcement_without_link_disables_the_preview(
    adapter: ChannelAdapter, announcement: Announcement, sandbox: Sandbox
) -> None:
    no_link = Announcement(tenant="t", id="a", source="s", title=announcement.title, summary="Testo.")
    _publish(adapter, no_link)
    assert sandbox.posts("telegram")[0]["options"]["link_preview_options"] == {"is_disabled": True}


def test_idempotency_key_is_ignored_so_a_repeat_posts_again(
    adapter: ChannelAdapter, announcement: Announcement, sandbox: Sandbox
) -> None:
    """The documented at-least-once: Telegram cannot recognise a retry."""
    _publish(adapter, announcement, "same-key")
    _publish(adapter, announcement, "same-key")
    assert len(sandbox.posts("telegram")) == 2


def test_rate_limit_carries_telegrams_retry_after(
    adapter: ChannelAdapter, announcement: Announcement, sandbox: Sandbox
) -> None:
    sandbox.inject("telegram", "rate_limit", retry_after=7)
    with pytest.raises(RateLimited) as caught:
        _publish(adapter, announcement)
    assert caught.value.retry_after == 7.0
    assert caught.value.reason == "rate_limited"
    assert sandbox.posts() == []
    _publish(adapter, announcement)  # the fault was for one call only
    assert len(sandbox.posts()) == 1


def test_token_revoked_over_the_control_api_is_an_auth_error(
    adapter: ChannelAdapter, announcement: Announcement, sandbox: Sandbox
) -> None:
    answer = requests.post(
        f"{sandbox.url}/_sandbox/revoke", json={"platform": "telegram", "token": TOKEN}, timeout=5
    )
    assert answer.status_code == 200
    with pytest.raises(AuthError):
        _publish(adapter, announcement)


@pytest.mark.parametrize(
    ("text", "parse_mode", "description"),
    [
        ("<p>Avviso</p>", "HTML", "can't parse entities"),
        ("Tom & Jerry <3", "HTML", "can't parse entities"),
        ("a" * 4097, None, "message is too long"),
    ],
)
def test_refused_messages_are_bad_requests(
    adapter: ChannelAdapter, sandbox: Sandbox, text: str, parse_mode: str | None, description: str
) -> None:
    post = RenderedPost(text=text, length=len(text), limit=4096, truncated=False, parse_mode=parse_mode)
    with pytest.raises(PermanentError) as caught:
        adapter.publish(post, idempotency_key="delivery-1")
    assert caught.value.reason == "bad_request"
    assert description in str(caught.value)
    assert sandbox.posts() == []


def test_visible_text_at_exactly_the_limit_is_accepted(adapter: ChannelAdapter, sandbox: Sandbox) -> None:
    # 4096 visible UTF-16 units although the markup and the emoji make the string longer.
    text = "<b>" + "😀" * 2000 + "</b>" + "&amp;" * 96
    post = RenderedPost(text=text, length=4096, limit=4096, truncated=False, parse_mode="HTML")
    adapter.publish(post, idempotency_key="delivery-1")
    assert len(sandbox.posts()) == 1


def test_answer_lost_after_commit_makes_the_retry_a_duplicate(
    fast_adapter: TelegramAdapter, announcement: Announcement, sandbox: Sandbox, slow_answer: float
) -> None:
    """The window the module docstring admits: Telegram posted, the answer never arrived."""
    sandbox.inject("telegram", "hang_after_commit", delay=slow_answer)
    with pytest.raises(RetryableError):
        _publish(fast_adapter, announcement)
    assert len(sandbox.posts()) == 1
    _publish(fast_adapter, announcement)
    assert len(sandbox.posts()) == 2


def test_token_is_in_no_log_line(
    adapter: ChannelAdapter, announcement: Announcement, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _publish(adapter, announcement)
    assert "/bot***/sendMessage" in caplog.text  # urllib3 did log the request path...
    assert TOKEN not in caplog.text  # ...without the token


@pytest.mark.parametrize(
    ("status", "body", "family", "reason"),
    [
        # "Branch on HTTP status plus parameters" (platforms.md): a wait asked for is a rate limit.
        (
            400,
            {"description": "Bad Request: retry later", "parameters": {"retry_after": 3}},
            RateLimited,
            "rate_limited",
        ),
        (
            400,
            {
                "description": "Bad Request: group chat was upgraded",
                "parameters": {"migrate_to_chat_id": -1001},
            },
            PermanentError,
            "chat_migrated",
        ),
        (400, {"description": "Bad Request: chat not found"}, PermanentError, "bad_request"),
        (401, {"description": "Unauthorized"}, AuthError, "auth"),
        (404, {"description": "Not Found"}, PermanentError, "http_404"),
        (502, {}, RetryableError, "server_error"),
    ],
)
def test_telegram_answers_beyond_the_sandbox_faults_are_classified(
    status: int, body: dict[str, Any], family: type[PublishError], reason: str
) -> None:
    error = error_for(status, body, TOKEN)
    assert (type(error), error.reason) == (family, reason)


def test_a_new_chat_id_is_named_so_an_operator_can_fix_the_config() -> None:
    body = {
        "description": "Bad Request: group chat was upgraded",
        "parameters": {"migrate_to_chat_id": -1009},
    }
    assert "-1009" in str(error_for(400, body, TOKEN))


def test_missing_secret_is_retryable_and_sends_nothing(
    sandbox: Sandbox, session: requests.Session, announcement: Announcement, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    adapter = adapter_for(_channel(sandbox), session=session)  # building it reads no secret
    with pytest.raises(RetryableError) as caught:
        _publish(adapter, announcement)
    assert caught.value.reason == "secret_unavailable"
    assert TOKEN_ENV in str(caught.value)
    assert sandbox.stats()["requests"] == {}


def test_offline_adapter_renders_but_never_calls_telegram(
    sandbox: Sandbox, session: requests.Session, announcement: Announcement, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    adapter = adapter_for(_channel(sandbox), session=session, offline=True)
    with pytest.raises(PermanentError) as caught:
        _publish(adapter, announcement)
    assert caught.value.reason == "offline"
    assert sandbox.stats()["requests"] == {}


def test_a_reply_threads_under_the_message_of_its_remote_id(
    adapter: ChannelAdapter, announcement: Announcement, sandbox: Sandbox
) -> None:
    first = _publish(adapter, announcement)
    reply = adapter.publish(
        adapter.render(announcement), idempotency_key="delivery-2", reply_to=first.remote_id
    )

    posts = {p["id"]: p for p in sandbox.posts("telegram")}
    assert posts[reply.remote_id.rsplit(":", 1)[1]]["options"]["reply_parameters"] == {
        "message_id": int(first.remote_id.rsplit(":", 1)[1])
    }


def test_a_reply_to_a_deleted_message_is_post_gone_and_posts_nothing(
    adapter: ChannelAdapter, announcement: Announcement, sandbox: Sandbox
) -> None:
    # The publisher then posts it on its own (tests/integration/test_alert_edits.py).
    with pytest.raises(PostGone):
        adapter.publish(adapter.render(announcement), idempotency_key="d", reply_to="-1001:999")
    assert sandbox.posts("telegram") == []


# --- photos -----------------------------------------------------------------------------------------

PHOTO = "https://www.comune.example.it/foto/cantiere.jpg"


def _with_image(announcement: Announcement, url: str = PHOTO) -> Announcement:
    return replace(announcement, image=Image(url=url, alt="Operai al lavoro sull'asfalto"))


def _photo_post(caption: str, url: str = PHOTO) -> RenderedPost:
    return RenderedPost(
        text=caption,
        length=len(caption),
        limit=1024,
        truncated=False,
        parse_mode="HTML",
        image=PostImage(url=url, alt="Il cantiere"),
    )


def test_a_post_with_an_image_is_a_photo_with_its_caption(
    adapter: ChannelAdapter, announcement: Announcement, sandbox: Sandbox
) -> None:
    rendered = adapter.render(_with_image(announcement))
    result = adapter.publish(rendered, idempotency_key="delivery-1")

    [post] = sandbox.posts("telegram")
    assert post["text"] == rendered.text
    assert "🖼 Operai al lavoro sull'asfalto" in post["text"]
    assert post["options"] == {"parse_mode": "HTML", "disable_notification": True, "photo": PHOTO}
    assert result.remote_id.rsplit(":", 1)[1] == post["id"] == "1"
    assert result.url == "https://t.me/comune_prova/1"
    assert sandbox.stats()["requests"]["telegram"] == {"sendPhoto": 1}


def test_a_photo_telegram_cannot_fetch_falls_back_to_a_message_in_the_same_publish(
    adapter: ChannelAdapter, announcement: Announcement, sandbox: Sandbox
) -> None:
    rendered = adapter.render(_with_image(announcement, "https://www.comune.example.it/foto.unreachable"))
    result = adapter.publish(rendered, idempotency_key="delivery-1")

    [post] = sandbox.posts("telegram")  # the refused photo posted nothing: no duplicate
    assert post["text"] == rendered.text
    assert post["options"]["link_preview_options"] == {"url": announcement.link}
    assert "photo" not in post["options"]
    assert result.remote_id.endswith(":1")
    assert sandbox.stats()["requests"]["telegram"] == {"sendPhoto": 1, "sendMessage": 1}


@pytest.mark.parametrize(
    ("photo", "caption"),
    [
        ("https://cdn.comune.example.it/listed.jpg", "Avviso"),  # in the fake's list of unreachable URLs
        ("attach://foto", "Avviso"),  # "wrong file identifier/HTTP URL specified"
        (PHOTO, "x" * 1025),  # "message caption is too long": a message takes it
    ],
)
def test_every_refusal_of_the_photo_itself_falls_back(
    adapter: ChannelAdapter, sandbox: Sandbox, photo: str, caption: str
) -> None:
    sandbox.fake("telegram", TelegramFake).unreachable_photos.add("https://cdn.comune.example.it/listed.jpg")
    adapter.publish(_photo_post(caption, photo), idempotency_key="delivery-1")
    [post] = sandbox.posts("telegram")
    assert post["text"] == caption
    assert "photo" not in post["options"]


def test_a_caption_at_exactly_the_limit_is_accepted(adapter: ChannelAdapter, sandbox: Sandbox) -> None:
    # 1024 visible UTF-16 units although the markup and the emoji make the string longer.
    caption = "<b>" + "😀" * 500 + "</b>" + "&amp;" * 24
    adapter.publish(_photo_post(caption), idempotency_key="delivery-1")
    assert sandbox.posts("telegram")[0]["options"]["photo"] == PHOTO


def test_a_refusal_that_is_not_about_the_photo_does_not_fall_back(
    sandbox: Sandbox, session: requests.Session
) -> None:
    adapter = TelegramAdapter(
        chat="comune_prova", token=lambda: TOKEN, session=session, api_base=sandbox.telegram_api_base
    )
    with pytest.raises(PermanentError) as caught:
        adapter.publish(_photo_post("Avviso"), idempotency_key="delivery-1")
    assert caught.value.reason == "bad_request"
    assert "chat not found" in str(caught.value)
    assert sandbox.stats()["requests"]["telegram"] == {"sendPhoto": 1}


def test_a_rate_limited_photo_is_retried_later_not_sent_as_a_message(
    adapter: ChannelAdapter, sandbox: Sandbox
) -> None:
    sandbox.inject("telegram", "rate_limit", endpoint="sendPhoto", retry_after=9)
    with pytest.raises(RateLimited) as caught:
        adapter.publish(_photo_post("Avviso"), idempotency_key="delivery-1")
    assert caught.value.retry_after == 9.0
    assert sandbox.posts() == []
    assert sandbox.stats()["requests"]["telegram"] == {"sendPhoto": 1}


def test_a_photo_replies_under_the_message_of_its_remote_id(
    adapter: ChannelAdapter, announcement: Announcement, sandbox: Sandbox
) -> None:
    first = _publish(adapter, announcement)
    reply = adapter.publish(
        adapter.render(_with_image(announcement)), idempotency_key="delivery-2", reply_to=first.remote_id
    )
    posts = {p["id"]: p for p in sandbox.posts("telegram")}
    assert posts[reply.remote_id.rsplit(":", 1)[1]]["options"]["reply_parameters"] == {
        "message_id": int(first.remote_id.rsplit(":", 1)[1])
    }


def test_the_fake_answers_a_photo_as_telegram_does(sandbox: Sandbox) -> None:
    url = f"{sandbox.telegram_api_base}/bot{TOKEN}/sendPhoto"
    sent = requests.post(
        url,
        json={"chat_id": "@comune_prova", "photo": PHOTO, "caption": "<i>Foto</i>", "parse_mode": "HTML"},
        timeout=5,
    ).json()
    assert sent["ok"] is True
    assert sent["result"]["caption"] == "Foto"
    assert sent["result"]["photo"][0]["file_id"]
    assert "text" not in sent["result"]
    missing = requests.post(url, json={"chat_id": "@comune_prova"}, timeout=5).json()
    assert missing["description"] == "Bad Request: there is no photo in the request"
    unreachable = requests.post(
        url, json={"chat_id": "@comune_prova", "photo": "https://x.it/a.unreachable"}, timeout=5
    )
    assert unreachable.json() == {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: failed to get HTTP URL content",
    }
