"""Build the adapter for a configured channel. Construction does no I/O: secrets are resolved when a
post is published, and an offline adapter (preview) never touches the network."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import requests

from chalicelib.channels import bluesky, facebook, instagram, mastodon, telegram, threads, webhooks, x
from chalicelib.channels.base import ChannelAdapter
from chalicelib.channels.text import RenderOptions
from chalicelib.config.models import AnyChannel
from chalicelib.http import new_session

# Each adapter module's `from_config(channel, *, session, options, offline)`, by platform.
_BUILDERS: dict[str, Callable[..., ChannelAdapter]] = {
    "telegram": telegram.from_config,
    "mastodon": mastodon.from_config,
    "facebook": facebook.from_config,
    "instagram": instagram.from_config,
    "threads": threads.from_config,
    "bluesky": bluesky.from_config,
    "x": x.from_config,
    "slack": webhooks.slack_from_config,
    "discord": webhooks.discord_from_config,
    "matrix": webhooks.matrix_from_config,
}
PLATFORMS = tuple(_BUILDERS)


@functools.cache
def _shared_session() -> requests.Session:
    # One pool per process: a warm Lambda reuses its TLS connections across invocations.
    return new_session()


def render_options(channel: AnyChannel) -> RenderOptions:
    utm: tuple[tuple[str, str], ...] = ()
    if channel.utm is not None:
        pairs = {
            "utm_source": channel.utm.source or channel.platform,
            "utm_medium": channel.utm.medium,
            "utm_campaign": channel.utm.campaign,
        }
        utm = tuple((name, value) for name, value in pairs.items() if value)
    return RenderOptions(utm=utm, hashtags=channel.hashtags, default_alt_text=channel.default_alt_text)


def adapter_for(
    channel: AnyChannel,
    *,
    session: requests.Session | None = None,
    offline: bool = False,
) -> ChannelAdapter:
    build = _BUILDERS[channel.platform]
    options: dict[str, Any] = {
        "session": session if session is not None else _shared_session(),
        "options": render_options(channel),
        "offline": offline,
    }
    return build(channel, **options)
