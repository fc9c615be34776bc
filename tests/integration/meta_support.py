"""What the Meta contract tests share: tokens, adapters aimed at the sandbox, an image server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from chalicelib.announcements import Announcement, Image
from chalicelib.channels.base import PostImage, RenderedPost
from chalicelib.channels.facebook import FacebookAdapter
from chalicelib.channels.graph import Polling
from chalicelib.channels.instagram import InstagramAdapter
from chalicelib.channels.media import ALLOW_PRIVATE_ENV
from chalicelib.channels.threads import ThreadsAdapter
from devtools.sandbox import Sandbox
from devtools.sandbox.meta import ContainerFake, FacebookFake
from tests.feedserver import FeedServer
from tests.sample_images import jpeg, png

TOKEN = "EAAGm0PX4ZCps-sandbox_Page_Token-0123456789abcdef"
APP_TOKEN = "1000000000|sandbox-app-secret-0123456789"
PAGE_ID = "104512345678901"
IG_USER_ID = "17841400123456789"
THREADS_USER_ID = "me"
# Containers answer IN_PROGRESS once by default: a few milliseconds between reads keep tests fast.
FAST_POLLING = Polling(interval=0.01, max_wait=0.3)

IMAGES = {
    "/square.jpg": jpeg(1080, 1080),
    "/landscape.jpg": jpeg(1080, 566),  # 1.91:1, the widest Instagram takes
    "/tall.jpg": jpeg(1080, 1350),  # 4:5, the tallest Instagram takes
    "/portrait.jpg": jpeg(1080, 1920),  # 9:16, a phone photo: too tall for an Instagram post
    "/photo.png": png(40, 40),
}


@contextmanager
def image_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FeedServer]:
    """The test images on 127.0.0.1, which media.fetch_image reaches only with private addresses allowed."""
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")
    routes = {path: (200, {"Content-Type": "image/jpeg"}, body) for path, body in IMAGES.items()}
    with FeedServer(routes) as server:
        yield server


def announcement_with_image(announcement: Announcement, url: str, alt: str = "") -> Announcement:
    return Announcement(
        tenant=announcement.tenant,
        id=announcement.id,
        source=announcement.source,
        title=announcement.title,
        summary=announcement.summary,
        link=announcement.link,
        categories=announcement.categories,
        image=Image(url=url, alt=alt),
    )


def text_post(text: str, *, image: PostImage | None = None, limit: int = 500) -> RenderedPost:
    return RenderedPost(text=text, length=len(text), limit=limit, truncated=False, image=image)


def facebook_adapter(
    sandbox: Sandbox,
    session: requests.Session,
    timeout: tuple[float, float],
    *,
    token: str = TOKEN,
    app_token: str | None = None,
    api_base: str | None = None,
) -> FacebookAdapter:
    return FacebookAdapter(
        page_id=PAGE_ID,
        token=lambda: token,
        app_token=(lambda: app_token) if app_token else None,
        session=session,
        api_base=api_base or sandbox.base_for("facebook"),
        timeout=timeout,
    )


def instagram_adapter(
    sandbox: Sandbox,
    session: requests.Session,
    timeout: tuple[float, float],
    *,
    api_base: str | None = None,
    polling: Polling = FAST_POLLING,
) -> InstagramAdapter:
    return InstagramAdapter(
        user_id=IG_USER_ID,
        token=lambda: TOKEN,
        session=session,
        api_base=api_base or sandbox.base_for("instagram"),
        timeout=timeout,
        polling=polling,
    )


def threads_adapter(
    sandbox: Sandbox,
    session: requests.Session,
    timeout: tuple[float, float],
    *,
    api_base: str | None = None,
    max_thread_posts: int = 3,
    polling: Polling = FAST_POLLING,
) -> ThreadsAdapter:
    return ThreadsAdapter(
        user_id=THREADS_USER_ID,
        token=lambda: TOKEN,
        session=session,
        api_base=api_base or sandbox.base_for("threads"),
        max_thread_posts=max_thread_posts,
        timeout=timeout,
        polling=polling,
    )


def facebook_fake(sandbox: Sandbox) -> FacebookFake:
    fake = sandbox.fakes["facebook"]
    assert isinstance(fake, FacebookFake)
    return fake


def container_fake(sandbox: Sandbox, platform: str) -> ContainerFake:
    fake = sandbox.fakes[platform]
    assert isinstance(fake, ContainerFake)
    return fake
