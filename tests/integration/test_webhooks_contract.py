"""What the chat adapters (Slack, Discord, Matrix) must do alike, each against its sandbox fake over
real HTTP: every fault family mapped in the platform's own shape, no secret in any error, no feed
item able to notify a whole channel or room, nothing sent by an offline adapter."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

import pytest
import requests

from chalicelib.announcements import Announcement
from chalicelib.channels.base import (
    AuthError,
    ChannelAdapter,
    PermanentError,
    PublishError,
    RateLimited,
    RetryableError,
)
from chalicelib.channels.registry import adapter_for
from chalicelib.channels.webhooks.discord import DiscordAdapter
from chalicelib.channels.webhooks.matrix import MatrixAdapter
from chalicelib.channels.webhooks.slack import SlackAdapter
from chalicelib.config.models import DiscordChannel, MatrixChannel, SlackChannel
from devtools.sandbox import Sandbox

SLACK_SECRET = "sandboxSecret0123456789ab"
DISCORD_TOKEN = "sandbox-Token_0123456789abcdefABCDEF"
MATRIX_TOKEN = "syt_c2FuZGJveA_sandboxTokenValue_0123"
ROOM = "!comune/prova+1:example.org"
SECRETS = {"slack": SLACK_SECRET, "discord": DISCORD_TOKEN, "matrix": MATRIX_TOKEN}

AdapterFactory = Callable[[str | None], ChannelAdapter]


def slack_url(base: str) -> str:
    return f"{base}/services/T0COMUNE/B0NOTIZIE/{SLACK_SECRET}"


def discord_url(base: str) -> str:
    return f"{base}/api/webhooks/1234567890123456789/{DISCORD_TOKEN}"


@pytest.fixture(params=["slack", "discord", "matrix"])
def platform(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_adapter(
    platform: str, sandbox: Sandbox, session: requests.Session, fast_timeout: tuple[float, float]
) -> AdapterFactory:
    """An adapter for the platform, aimed at its sandbox fake or at `base`."""

    def make(base: str | None) -> ChannelAdapter:
        root = base or sandbox.base_for(platform)
        if platform == "slack":
            return SlackAdapter(webhook_url=lambda: slack_url(root), session=session, timeout=fast_timeout)
        if platform == "discord":
            return DiscordAdapter(
                webhook_url=lambda: discord_url(root), session=session, timeout=fast_timeout
            )
        return MatrixAdapter(
            homeserver=root, room_id=ROOM, token=lambda: MATRIX_TOKEN, session=session, timeout=fast_timeout
        )

    return make


@pytest.mark.parametrize(
    ("kind", "family", "reason"),
    [
        ("rate_limit", RateLimited, "rate_limited"),
        ("expired_token", AuthError, "auth"),
        ("forbidden", PermanentError, "forbidden"),
        ("server_error", RetryableError, "server_error"),
        ("malformed", RetryableError, "malformed_response"),
        ("timeout", RetryableError, "timeout"),
    ],
)
def test_each_fault_maps_to_its_family_without_the_secret(
    *,
    make_adapter: AdapterFactory,
    platform: str,
    sandbox: Sandbox,
    announcement: Announcement,
    slow_answer: float,
    assert_secret_absent: Callable[[BaseException, str], None],
    kind: str,
    family: type[PublishError],
    reason: str,
) -> None:
    adapter = make_adapter(None)
    sandbox.inject(platform, kind, delay=slow_answer, retry_after=7)
    with pytest.raises(PublishError) as caught:
        adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    assert type(caught.value) is family  # e.g. a 403 is permanent but not an auth problem
    assert caught.value.reason == reason
    if kind == "rate_limit":
        assert isinstance(caught.value, RateLimited)
        assert caught.value.retry_after == pytest.approx(7.0)  # each platform's own signal, read
    assert sandbox.posts() == []
    assert_secret_absent(caught.value, SECRETS[platform])


def test_refused_connection_is_retryable_without_the_secret(
    make_adapter: AdapterFactory,
    announcement: Announcement,
    closed_port_url: str,
    assert_secret_absent: Callable[[BaseException, str], None],
    platform: str,
) -> None:
    # requests' own message for this failure carries the whole URL, and with it a webhook's secret.
    adapter = make_adapter(closed_port_url)
    with pytest.raises(RetryableError) as caught:
        adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    assert caught.value.reason == "connection_error"
    assert_secret_absent(caught.value, SECRETS[platform])


def test_revoked_credentials_are_an_auth_error_and_an_unhealthy_check(
    make_adapter: AdapterFactory, platform: str, sandbox: Sandbox, announcement: Announcement
) -> None:
    adapter = make_adapter(None)
    assert adapter.check().healthy
    sandbox.revoke_token(platform, SECRETS[platform])
    with pytest.raises(AuthError):
        adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    check = adapter.check()
    assert (check.healthy, check.reason) == (False, "auth")
    assert SECRETS[platform] not in check.detail
    assert sandbox.posts() == []


def test_a_health_check_posts_nothing(make_adapter: AdapterFactory, sandbox: Sandbox) -> None:
    assert make_adapter(None).check().healthy
    assert sandbox.posts() == []


def test_transient_check_trouble_is_reported_not_raised(
    make_adapter: AdapterFactory, closed_port_url: str
) -> None:
    check = make_adapter(closed_port_url).check()
    assert (check.healthy, check.reason) == (False, "connection_error")


def test_no_feed_item_can_notify_everyone(
    make_adapter: AdapterFactory, platform: str, sandbox: Sandbox, announcement: Announcement
) -> None:
    """Slack's <!channel> and @here, Discord's @everyone and <@id>, Matrix's @room: each fake records
    whom a post would notify, as its platform decides it."""
    adapter = make_adapter(None)
    loud = replace(
        announcement,
        title="<!channel> @channel @everyone <@U024BE7LH> <@&123456789012345678>",
        summary="@here @room <!here|here> <!subteam^SAZ94GDB8> @Everyone <@!123456789012345678> fine.",
    )
    adapter.publish(adapter.render(loud), idempotency_key="delivery-1")
    [post] = sandbox.posts(platform)
    notified = post["options"].get("mentions", []) + post["options"].get("pings", [])
    assert notified == []


@pytest.mark.usefixtures("no_secrets_file")
def test_every_adapter_is_built_from_its_config_by_the_registry(
    sandbox: Sandbox,
    session: requests.Session,
    announcement: Announcement,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_SLACK_WEBHOOK", slack_url(sandbox.base_for("slack")))
    monkeypatch.setenv("TEST_DISCORD_WEBHOOK", discord_url(sandbox.base_for("discord")))
    monkeypatch.setenv("TEST_MATRIX_TOKEN", MATRIX_TOKEN)
    channels = [
        SlackChannel(id="slack", platform="slack", webhook_url="env:TEST_SLACK_WEBHOOK"),
        DiscordChannel(id="discord", platform="discord", webhook_url="env:TEST_DISCORD_WEBHOOK"),
        MatrixChannel(
            id="matrix",
            platform="matrix",
            homeserver=sandbox.base_for("matrix"),
            room_id=ROOM,
            token="env:TEST_MATRIX_TOKEN",
        ),
    ]
    for channel in channels:
        adapter = adapter_for(channel, session=session)
        assert adapter.platform == channel.platform
        rendered = adapter.render(announcement)
        adapter.publish(rendered, idempotency_key="delivery-1")
        [post] = sandbox.posts(channel.platform)
        assert post["text"] == rendered.text
        assert adapter.check().healthy


def test_an_offline_adapter_never_calls_the_platform(
    platform: str, sandbox: Sandbox, session: requests.Session, announcement: Announcement
) -> None:
    unreadable = "env:NOT_SET_ANYWHERE"
    channel = {
        "slack": SlackChannel(id="c", platform="slack", webhook_url=unreadable),
        "discord": DiscordChannel(id="c", platform="discord", webhook_url=unreadable),
        "matrix": MatrixChannel(
            id="c", platform="matrix", homeserver=sandbox.base_for("matrix"), room_id=ROOM, token=unreadable
        ),
    }[platform]
    adapter = adapter_for(channel, session=session, offline=True)
    rendered = adapter.render(announcement)
    assert rendered.length <= rendered.limit
    with pytest.raises(PermanentError) as caught:
        adapter.publish(rendered, idempotency_key="delivery-1")
    assert caught.value.reason == "offline"
    assert sandbox.stats()["requests"] == {}


def test_request_logs_do_not_carry_the_secret(
    make_adapter: AdapterFactory,
    platform: str,
    announcement: Announcement,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """urllib3 logs each request's path at DEBUG: a webhook's path is its secret."""
    adapter = make_adapter(None)
    with caplog.at_level(logging.DEBUG, logger="urllib3"):
        adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    assert any("HTTP/1.1" in record.getMessage() for record in caplog.records)  # the path was logged
    assert SECRETS[platform] not in caplog.text
