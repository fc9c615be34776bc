"""Build the adapter for a configured channel. Construction does no I/O: the token is resolved when a
post is published, and an offline adapter (preview) never touches the network."""

from __future__ import annotations

import functools

import requests

from chalicelib.channels.base import ChannelAdapter
from chalicelib.channels.mastodon import MastodonAdapter
from chalicelib.channels.telegram import TelegramAdapter
from chalicelib.config.models import MastodonChannel, TelegramChannel
from chalicelib.http import new_session
from chalicelib.secrets import resolve_secret


@functools.cache
def _shared_session() -> requests.Session:
    # One pool per process: a warm Lambda reuses its TLS connections across invocations.
    return new_session()


def adapter_for(
    channel: TelegramChannel | MastodonChannel,
    *,
    session: requests.Session | None = None,
    offline: bool = False,
) -> ChannelAdapter:
    http = session if session is not None else _shared_session()
    token = functools.partial(resolve_secret, channel.token)
    if isinstance(channel, TelegramChannel):
        return TelegramAdapter(
            chat=channel.chat,
            token=token,
            session=http,
            api_base=str(channel.api_base),
            disable_notification=channel.disable_notification,
            offline=offline,
        )
    return MastodonAdapter(
        instance=str(channel.instance),
        token=token,
        session=http,
        visibility=channel.visibility,
        language=channel.language,
        offline=offline,
    )
