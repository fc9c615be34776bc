"""The channel option `alert_updates`: an alert's update replies in its thread by default, and edits the
thread's first post only where the platform can edit one; asking for an edit elsewhere is refused at
load, naming the channel and saying what to write instead."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from chalicelib.config.loader import ConfigError, parse_config

CHANNELS: dict[str, dict[str, Any]] = {
    "telegram": {"chat": "@ComuneA", "token": "env:TG"},
    "mastodon": {"instance": "https://mastodon.example", "token": "env:MASTO"},
    "facebook": {"page_id": "1045123", "token": "env:FB"},
    "instagram": {"user_id": "178414", "token": "env:IG"},
    "threads": {"user_id": "me", "token": "env:TH"},
    "bluesky": {"handle": "comune-a.bsky.social", "app_password": "env:BSKY"},
    "x": {key: "env:X" for key in ("consumer_key", "consumer_secret", "access_token", "access_token_secret")},
    "slack": {"webhook_url": "env:SLACK"},
    "discord": {"webhook_url": "env:DISCORD"},
    "matrix": {"homeserver": "https://matrix.example", "room_id": "!stanza:example.org", "token": "env:MX"},
}
EDITABLE = {"telegram", "mastodon", "facebook"}


def _parse(platform: str, **options: str) -> Any:
    channel = {"id": "canale", "platform": platform, **CHANNELS[platform], **options}
    tenant = {
        "id": "comune-a",
        "name": "Comune A",
        "sources": [{"id": "notizie", "url": "https://www.comune-a.it/feed"}],
        "channels": [channel],
        "routes": [{"source": "notizie", "channels": ["canale"]}],
    }
    return parse_config(yaml.safe_dump({"version": 1, "tenants": [tenant]}), "banditore.yaml")


@pytest.mark.parametrize("platform", sorted(CHANNELS))
def test_updates_reply_in_the_thread_unless_told_otherwise(platform: str) -> None:
    assert _parse(platform).tenants[0].channels[0].alert_updates == "reply"
    assert _parse(platform, alert_updates="reply").tenants[0].channels[0].alert_updates == "reply"


@pytest.mark.parametrize("platform", sorted(EDITABLE))
def test_an_edit_is_accepted_where_the_platform_can_edit(platform: str) -> None:
    assert _parse(platform, alert_updates="edit").tenants[0].channels[0].alert_updates == "edit"


@pytest.mark.parametrize("platform", sorted(set(CHANNELS) - EDITABLE))
def test_an_edit_is_refused_where_the_platform_cannot_edit_with_what_to_write_instead(platform: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _parse(platform, alert_updates="edit")
    [problem] = caught.value.problems
    assert problem.path == "tenants[0](comune-a).channels[0](canale)"
    assert f"alert_updates: edit is not possible on {platform}" in problem.message
    assert "use reply (editable: telegram, mastodon, facebook)" in problem.message


def test_an_unknown_choice_names_the_field() -> None:
    with pytest.raises(ConfigError) as caught:
        _parse("telegram", alert_updates="delete")
    [problem] = caught.value.problems
    assert problem.path == "tenants[0](comune-a).channels[0](canale).alert_updates"
