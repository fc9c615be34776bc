"""The Slack adapter over real HTTP against the sandbox's incoming-webhook fake: text and image blocks,
dead webhooks, Retry-After, and the at-least-once delivery of a platform without ids."""

from __future__ import annotations

from dataclasses import replace

import pytest
import requests

from chalicelib.announcements import Announcement, Image
from chalicelib.channels.base import AuthError, PermanentError, RateLimited, RenderedPost, RetryableError
from chalicelib.channels.webhooks.slack import SlackAdapter
from devtools.sandbox import Sandbox
from devtools.sandbox.webhooks import SlackFake
from devtools.sandbox.webhooks.slack import shown_text
from tests.integration.channel_support import SLACK_SECRET, slack_url

PHOTO = Image(url="https://www.comune.example.it/foto/via-roma.jpg", alt="Via Roma chiusa con le transenne")


@pytest.fixture
def adapter(sandbox: Sandbox, session: requests.Session, fast_timeout: tuple[float, float]) -> SlackAdapter:
    return SlackAdapter(
        webhook_url=lambda: slack_url(sandbox.base_for("slack")), session=session, timeout=fast_timeout
    )


@pytest.fixture
def fake(sandbox: Sandbox) -> SlackFake:
    return sandbox.fake("slack", SlackFake)


def test_a_text_post_is_the_escaped_text_and_its_id_is_the_delivery_key(
    adapter: SlackAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    item = replace(announcement, title="Lavori <b>urgenti</b> & chiusure")
    rendered = adapter.render(item)
    result = adapter.publish(rendered, idempotency_key="delivery-1")

    [post] = sandbox.posts("slack")
    assert (result.remote_id, result.url) == ("delivery-1", None)  # Slack returns no id
    assert post["text"] == rendered.text
    assert "blocks" not in post["options"]
    shown = shown_text(post["text"])
    assert shown.startswith("*Lavori <b>urgenti</b> & chiusure*\n\n")
    assert f"\n\n{announcement.link}\n\n" in shown  # the link whole, its & shown as written


def test_an_image_goes_as_a_section_accessory_with_its_alt_text(
    adapter: SlackAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    adapter.publish(adapter.render(replace(announcement, image=PHOTO)), idempotency_key="delivery-1")
    [post] = sandbox.posts("slack")
    assert post["options"]["image"] == PHOTO.url
    assert post["options"]["alt_text"] == PHOTO.alt
    assert post["options"]["blocks"] == 1


def test_an_image_slack_cannot_fetch_does_not_stop_the_post(
    adapter: SlackAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    unreachable = Image(url="https://foto.comune.invalid/via-roma.jpg", alt="Via Roma")
    adapter.publish(adapter.render(replace(announcement, image=unreachable)), idempotency_key="delivery-1")
    [post] = sandbox.posts("slack")
    assert "image" not in post["options"]
    assert sandbox.stats()["requests"]["slack"] == {"post": 2}


def test_a_reply_is_a_message_of_its_own(
    adapter: SlackAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    first = adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    update = adapter.publish(
        adapter.render(replace(announcement, title="Aggiornamento: via Roma riaperta")),
        idempotency_key="delivery-2",
        reply_to=first.remote_id,
    )
    assert update.remote_id == "delivery-2"
    assert len(sandbox.posts("slack")) == 2


def test_no_idempotency_a_retry_after_a_lost_answer_posts_again(
    adapter: SlackAdapter, sandbox: Sandbox, announcement: Announcement, slow_answer: float
) -> None:
    """The at-least-once the module docstring owns up to."""
    sandbox.inject("slack", "hang_after_commit", delay=slow_answer)
    with pytest.raises(RetryableError) as caught:
        adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    assert caught.value.reason == "timeout"
    adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    assert len(sandbox.posts("slack")) == 2


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("invalid_token", "auth"),
        ("no_service", "auth"),
        ("no_team", "auth"),
        ("channel_not_found", "channel_not_found"),
        ("channel_is_archived", "channel_archived"),
    ],
)
def test_a_dead_webhook_is_an_auth_error_and_an_unhealthy_check(
    *,
    adapter: SlackAdapter,
    fake: SlackFake,
    sandbox: Sandbox,
    announcement: Announcement,
    code: str,
    reason: str,
) -> None:
    fake.break_webhook(SLACK_SECRET, code)
    with pytest.raises(AuthError) as caught:
        adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    assert caught.value.reason == reason
    assert code in str(caught.value)
    check = adapter.check()
    assert (check.healthy, check.reason) == (False, reason)
    assert sandbox.posts() == []


def test_a_prohibited_action_is_a_refusal_not_a_dead_webhook(
    adapter: SlackAdapter, fake: SlackFake, announcement: Announcement
) -> None:
    fake.break_webhook(SLACK_SECRET, "posting_to_general_channel_denied")
    with pytest.raises(PermanentError) as caught:
        adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    assert type(caught.value) is PermanentError
    assert caught.value.reason == "forbidden"


def test_per_webhook_rate_limit_answers_429_with_retry_after(
    sandbox: Sandbox,
    session: requests.Session,
    announcement: Announcement,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sandbox.state, "enforce_rate_limits", True)
    busy = SlackAdapter(webhook_url=lambda: slack_url(sandbox.base_for("slack")), session=session)
    other = SlackAdapter(
        webhook_url=lambda: slack_url(sandbox.base_for("slack"), "anotherWebhookSecret99"), session=session
    )
    rendered = busy.render(announcement)
    for number in range(10):
        busy.publish(rendered, idempotency_key=f"delivery-{number}")
    with pytest.raises(RateLimited) as caught:
        busy.publish(rendered, idempotency_key="delivery-10")
    assert caught.value.retry_after is not None
    assert 1 <= caught.value.retry_after <= 10
    other.publish(rendered, idempotency_key="delivery-11")  # the limit is per webhook
    assert len(sandbox.posts("slack")) == 11


def test_an_empty_message_is_refused_as_slack_answers_it(adapter: SlackAdapter, sandbox: Sandbox) -> None:
    with pytest.raises(PermanentError) as caught:
        adapter.publish(RenderedPost(text=" ", length=1, limit=3000, truncated=False), idempotency_key="d-1")
    assert caught.value.reason == "bad_request"
    assert "no_text" in str(caught.value)
    assert sandbox.posts() == []


def test_a_webhook_url_that_is_not_a_url_is_an_auth_error(
    session: requests.Session, announcement: Announcement, sandbox: Sandbox
) -> None:
    adapter = SlackAdapter(webhook_url=lambda: "hooks.slack.com/services/T/B/secret", session=session)
    with pytest.raises(AuthError) as caught:
        adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    assert "secret" not in str(caught.value)
    assert not adapter.check().healthy
    assert sandbox.stats()["requests"] == {}
