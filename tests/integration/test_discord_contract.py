"""The Discord adapter over real HTTP against the sandbox's webhook fake: the message Discord returns,
its link through the webhook's guild, embeds for images, rate-limit signals and dead webhooks."""

from __future__ import annotations

from dataclasses import replace

import pytest
import requests

from chalicelib.announcements import Announcement, Image
from chalicelib.channels.base import AuthError, PermanentError, RateLimited, RenderedPost
from chalicelib.channels.webhooks import discord
from chalicelib.channels.webhooks.discord import DiscordAdapter
from devtools.sandbox import Sandbox
from tests.integration.channel_support import DISCORD_TOKEN, discord_url

PHOTO = Image(url="https://www.comune.example.it/foto/via-roma.jpg", alt="Via Roma chiusa con le transenne")


@pytest.fixture(autouse=True)
def no_known_guilds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a fresh process: no webhook's guild learnt yet."""
    monkeypatch.setattr(discord, "_GUILDS", {})


@pytest.fixture
def adapter(sandbox: Sandbox, session: requests.Session, fast_timeout: tuple[float, float]) -> DiscordAdapter:
    return DiscordAdapter(
        webhook_url=lambda: discord_url(sandbox.base_for("discord")), session=session, timeout=fast_timeout
    )


def test_the_message_id_and_its_link_come_from_discord(
    adapter: DiscordAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    rendered = adapter.render(announcement)
    first = adapter.publish(rendered, idempotency_key="delivery-1")
    second = adapter.publish(rendered, idempotency_key="delivery-2")

    posts = sandbox.posts("discord")
    assert [first.remote_id, second.remote_id] == [post["id"] for post in posts]
    assert first.url == posts[0]["url"]  # https://discord.com/channels/<guild>/<channel>/<id>
    assert posts[0]["text"] == rendered.text
    assert posts[0]["options"]["embeds"] == []
    # The guild is asked once per webhook and process, not once per post.
    assert sandbox.stats()["requests"]["discord"] == {"execute": 2, "webhook": 1}


def test_without_the_guild_the_post_still_succeeds_without_a_link(
    adapter: DiscordAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    sandbox.inject("discord", "server_error", endpoint="webhook")
    result = adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    [post] = sandbox.posts("discord")
    assert (result.remote_id, result.url) == (post["id"], None)


def test_an_image_is_an_embed_card_and_the_link_previews_only_once(
    adapter: DiscordAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    adapter.publish(adapter.render(replace(announcement, image=PHOTO)), idempotency_key="delivery-1")
    [post] = sandbox.posts("discord")
    [embed] = post["options"]["embeds"]
    assert embed == {
        "title": announcement.title,
        "url": announcement.link,
        "description": PHOTO.alt,
        "image": {"url": PHOTO.url},
    }
    # <...> around the link stops Discord's own preview card, which would repeat the embed.
    assert f"<{announcement.link}>" in post["text"]


def test_a_reply_is_a_message_of_its_own(
    adapter: DiscordAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    first = adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    update = adapter.publish(
        adapter.render(announcement), idempotency_key="delivery-2", reply_to=first.remote_id
    )
    assert update.remote_id != first.remote_id
    assert len(sandbox.posts("discord")) == 2


def test_the_webhook_bucket_answers_429_with_retry_after_in_the_body(
    sandbox: Sandbox,
    session: requests.Session,
    announcement: Announcement,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sandbox.state, "enforce_rate_limits", True)
    busy = DiscordAdapter(webhook_url=lambda: discord_url(sandbox.base_for("discord")), session=session)
    rendered = busy.render(announcement)
    for number in range(5):
        busy.publish(rendered, idempotency_key=f"delivery-{number}")
    with pytest.raises(RateLimited) as caught:
        busy.publish(rendered, idempotency_key="delivery-5")
    assert caught.value.retry_after is not None
    assert 0 < caught.value.retry_after <= 2
    other = DiscordAdapter(
        webhook_url=lambda: discord_url(sandbox.base_for("discord"), webhook_id="987654321098765432"),
        session=session,
    )
    other.publish(rendered, idempotency_key="delivery-6")  # the bucket is per webhook


def test_rate_limit_headers_come_with_every_answer(sandbox: Sandbox, session: requests.Session) -> None:
    answer = session.post(
        discord_url(sandbox.base_for("discord")),
        params={"wait": "true"},
        json={"content": "Prova"},
        timeout=5,
    )
    assert answer.status_code == 200
    assert answer.headers["X-RateLimit-Limit"] == "5"
    assert float(answer.headers["X-RateLimit-Reset-After"]) > 0


def test_a_deleted_webhook_is_an_auth_error(
    adapter: DiscordAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    sandbox.revoke_token("discord", DISCORD_TOKEN)  # Discord's only revocation: the webhook is deleted
    with pytest.raises(AuthError) as caught:
        adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    assert "10015" in str(caught.value)
    assert DISCORD_TOKEN not in str(caught.value)


def test_a_content_over_2000_characters_is_an_invalid_form_body(
    adapter: DiscordAdapter, sandbox: Sandbox
) -> None:
    post = RenderedPost(text="è" * 2001, length=2001, limit=2000, truncated=False)
    with pytest.raises(PermanentError) as caught:
        adapter.publish(post, idempotency_key="delivery-1")
    assert caught.value.reason == "invalid_form_body"
    assert sandbox.posts() == []


def test_an_empty_message_is_refused(adapter: DiscordAdapter) -> None:
    with pytest.raises(PermanentError) as caught:
        adapter.publish(RenderedPost(text="", length=0, limit=2000, truncated=False), idempotency_key="d-1")
    assert caught.value.reason == "empty_message"


def test_the_health_check_reads_the_webhook_and_learns_its_guild(
    adapter: DiscordAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    assert adapter.check().healthy
    result = adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    assert result.url is not None
    assert sandbox.stats()["requests"]["discord"] == {"webhook": 1, "execute": 1}
