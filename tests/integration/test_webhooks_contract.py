"""What the chat adapters (Slack, Discord, Matrix) must do alike, each against its sandbox fake over
real HTTP, beyond the error families every adapter maps (see test_channel_errors): no feed item able to
notify a whole channel or room, each built by the registry, nothing sent by an offline adapter, no
secret in a log line."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
import requests

from chalicelib.announcements import Announcement
from chalicelib.channels.registry import adapter_for
from chalicelib.config.models import DiscordChannel, MatrixChannel, SlackChannel
from devtools.sandbox import Sandbox
from tests.integration.channel_support import (
    MATRIX_ROOM,
    MATRIX_TOKEN,
    SECRETS,
    AdapterFactory,
    discord_url,
    slack_url,
)


@pytest.fixture(params=["slack", "discord", "matrix"])
def platform(request: pytest.FixtureRequest) -> str:
    return str(request.param)


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
            room_id=MATRIX_ROOM,
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
