"""What the channel contract tests share: each platform's sandbox credentials, a channel's config and
an adapter of any platform aimed at its sandbox fake (or at another address), images on a loopback
host, and posts built by hand."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
import requests
from pydantic import TypeAdapter

from chalicelib.announcements import Announcement, Image
from chalicelib.channels.atproto import SessionCache
from chalicelib.channels.base import ChannelAdapter, PostImage, RenderedPost
from chalicelib.channels.bluesky import BlueskyAdapter
from chalicelib.channels.mastodon import InstanceLimitsCache, MastodonAdapter
from chalicelib.channels.media import ALLOW_PRIVATE_ENV
from chalicelib.channels.telegram import TelegramAdapter
from chalicelib.channels.webhooks.discord import DiscordAdapter
from chalicelib.channels.webhooks.matrix import MatrixAdapter
from chalicelib.channels.webhooks.slack import SlackAdapter
from chalicelib.channels.x import Credentials, PostedPieces, XAdapter
from chalicelib.config.models import AnyChannel, Channel
from devtools.sandbox import Sandbox
from devtools.sandbox.x import sandbox_credentials
from tests.feedserver import FeedServer
from tests.integration import meta_support
from tests.sample_images import jpeg, png

TELEGRAM_TOKEN = "7012345678:AAH-sandbox_Token-0123456789abcdefghi"
TELEGRAM_CHAT = "@comune_prova"
MASTODON_TOKEN = "mastodon-sandbox-token-Zx81_qq"
BLUESKY_HANDLE = "comune-prova.bsky.social"
BLUESKY_PASSWORD = "abcd-efgh-ijkl-mnop"
X_CREDENTIALS = sandbox_credentials("comune-prova-x")
SLACK_SECRET = "sandboxSecret0123456789ab"
DISCORD_TOKEN = "sandbox-Token_0123456789abcdefABCDEF"
MATRIX_TOKEN = "syt_c2FuZGJveA_sandboxTokenValue_0123"
MATRIX_ROOM = "!comune/prova+1:example.org"
# The secret each channel holds, which no error or log line may show, and which Sandbox.revoke_token
# takes. X holds four: its access token secret, only ever signed with, stands for them here (its own
# contract test checks each, and revokes the access token).
SECRETS = {
    "telegram": TELEGRAM_TOKEN,
    "mastodon": MASTODON_TOKEN,
    "facebook": meta_support.TOKEN,
    "instagram": meta_support.TOKEN,
    "threads": meta_support.TOKEN,
    "bluesky": BLUESKY_PASSWORD,
    "x": X_CREDENTIALS["access_token_secret"],
    "slack": SLACK_SECRET,
    "discord": DISCORD_TOKEN,
    "matrix": MATRIX_TOKEN,
}

# An adapter aimed at its sandbox fake (None) or at another base address.
AdapterFactory = Callable[[str | None], ChannelAdapter]

IMAGES = {
    "/foto.png": png(40, 30),
    "/square.jpg": jpeg(1080, 1080),
    "/landscape.jpg": jpeg(1080, 566),  # 1.91:1, the widest Instagram takes
    "/tall.jpg": jpeg(1080, 1350),  # 4:5, the tallest Instagram takes
    "/portrait.jpg": jpeg(1080, 1920),  # 9:16, a phone photo: too tall for an Instagram post
    "/photo.png": png(40, 40),
}


def slack_url(base: str, secret: str = SLACK_SECRET) -> str:
    return f"{base}/services/T0COMUNE/B0NOTIZIE/{secret}"


def discord_url(base: str, webhook_id: str = "1234567890123456789", token: str = DISCORD_TOKEN) -> str:
    return f"{base}/api/webhooks/{webhook_id}/{token}"


def channel_config(platform: str, sandbox: Sandbox, secret: str) -> AnyChannel:
    """A channel of `platform` as the configuration gives it, aimed at its sandbox fake, each of its
    secrets the reference `secret`."""
    base = sandbox.base_for(platform)
    fields: dict[str, dict[str, object]] = {
        "telegram": {"chat": TELEGRAM_CHAT, "token": secret, "api_base": base},
        "mastodon": {"instance": base, "token": secret},
        "facebook": {"page_id": meta_support.PAGE_ID, "token": secret, "api_base": base},
        "instagram": {"user_id": meta_support.IG_USER_ID, "token": secret, "api_base": base},
        "threads": {"user_id": meta_support.THREADS_USER_ID, "token": secret, "api_base": base},
        "bluesky": {"handle": BLUESKY_HANDLE, "app_password": secret, "service": base},
        "x": {"api_base": base, **dict.fromkeys(X_CREDENTIALS, secret)},
        "slack": {"webhook_url": secret},
        "discord": {"webhook_url": secret},
        "matrix": {"homeserver": base, "room_id": MATRIX_ROOM, "token": secret},
    }
    return TypeAdapter(Channel).validate_python({"id": platform, "platform": platform, **fields[platform]})


def x_credentials(values: dict[str, str]) -> Credentials:
    def constant(value: str) -> Callable[[], str]:
        return lambda: value

    return Credentials(**{field: constant(value) for field, value in values.items()})


def adapter_factory(
    platform: str, sandbox: Sandbox, session: requests.Session, timeout: tuple[float, float]
) -> AdapterFactory:
    """Adapters of `platform` with its sandbox credentials, each with a fresh process cache (limits,
    sessions, posted pieces) so nothing carries over from other tests."""

    def make(base: str | None) -> ChannelAdapter:
        root = base or sandbox.base_for(platform)
        builders: dict[str, Callable[[], ChannelAdapter]] = {
            "telegram": lambda: TelegramAdapter(
                chat=TELEGRAM_CHAT,
                token=lambda: TELEGRAM_TOKEN,
                session=session,
                api_base=root,
                timeout=timeout,
            ),
            "mastodon": lambda: MastodonAdapter(
                instance=root,
                token=lambda: MASTODON_TOKEN,
                session=session,
                timeout=timeout,
                limits_cache=InstanceLimitsCache(),
            ),
            "facebook": lambda: meta_support.facebook_adapter(sandbox, session, timeout, api_base=root),
            "instagram": lambda: meta_support.instagram_adapter(sandbox, session, timeout, api_base=root),
            "threads": lambda: meta_support.threads_adapter(sandbox, session, timeout, api_base=root),
            "bluesky": lambda: BlueskyAdapter(
                identifier=BLUESKY_HANDLE,
                password=lambda: BLUESKY_PASSWORD,
                session=session,
                service=root,
                timeout=timeout,
                sessions=SessionCache(),
            ),
            "x": lambda: XAdapter(
                credentials=x_credentials(X_CREDENTIALS),
                session=session,
                api_base=root,
                posted=PostedPieces(),
                timeout=timeout,
            ),
            "slack": lambda: SlackAdapter(
                webhook_url=lambda: slack_url(root), session=session, timeout=timeout
            ),
            "discord": lambda: DiscordAdapter(
                webhook_url=lambda: discord_url(root), session=session, timeout=timeout
            ),
            "matrix": lambda: MatrixAdapter(
                homeserver=root,
                room_id=MATRIX_ROOM,
                token=lambda: MATRIX_TOKEN,
                session=session,
                timeout=timeout,
            ),
        }
        return builders[platform]()

    return make


@contextmanager
def image_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FeedServer]:
    """IMAGES on 127.0.0.1, which media.fetch_image reaches only with private addresses allowed (the
    local stack's switch, turned on here)."""
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")
    routes = {path: (200, {"Content-Type": _content_type(path)}, body) for path, body in IMAGES.items()}
    with FeedServer(routes) as server:
        yield server


def _content_type(path: str) -> str:
    return "image/png" if path.endswith(".png") else "image/jpeg"


def with_image(announcement: Announcement, url: str, alt: str = "") -> Announcement:
    return replace(announcement, image=Image(url=url, alt=alt))


def text_post(text: str, *, image: PostImage | None = None, limit: int = 500) -> RenderedPost:
    return RenderedPost(text=text, length=len(text), limit=limit, truncated=False, image=image)
