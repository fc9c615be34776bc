"""The Instagram adapter over real HTTP against the sandbox's Graph fake: the two-step publish with its
container polling, posts skipped for want of a usable image (fetched from a loopback server), comments
as replies, the publishing limit, the token's health."""

from __future__ import annotations

import pytest
import requests
from pydantic import HttpUrl

from chalicelib.announcements import Announcement
from chalicelib.channels.base import (
    PermanentError,
    PostResult,
    RateLimited,
    RetryableError,
    Skipped,
)
from chalicelib.channels.graph import PUBLISHING_LIMIT_SECONDS, Polling
from chalicelib.channels.instagram import InstagramAdapter
from chalicelib.channels.registry import adapter_for
from chalicelib.config.models import InstagramChannel
from devtools.sandbox import Sandbox
from devtools.sandbox.meta import ContainerFake
from tests.feedserver import FeedServer
from tests.integration.channel_support import text_post, with_image
from tests.integration.meta_support import IG_USER_ID, TOKEN, instagram_adapter

TOKEN_ENV = "BANDITORE_TEST_INSTAGRAM_TOKEN"


@pytest.fixture
def adapter(
    sandbox: Sandbox, session: requests.Session, fast_timeout: tuple[float, float]
) -> InstagramAdapter:
    return instagram_adapter(sandbox, session, fast_timeout)


class Clock:
    """Time that passes only when the adapter sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _publish(adapter: InstagramAdapter, announcement: Announcement) -> PostResult:
    return adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")


@pytest.mark.usefixtures("no_secrets_file")
def test_two_step_publish_through_the_registry(
    sandbox: Sandbox,
    session: requests.Session,
    announcement: Announcement,
    images: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    channel = InstagramChannel(
        id="instagram",
        platform="instagram",
        user_id=IG_USER_ID,
        token=f"env:{TOKEN_ENV}",
        api_base=HttpUrl(sandbox.base_for("instagram")),
    )
    url = images.url("/square.jpg")
    adapter = adapter_for(channel, session=session)
    rendered = adapter.render(with_image(announcement, url, alt="Cantiere in via Roma"))
    result = adapter.publish(rendered, idempotency_key="delivery-1")

    [post] = sandbox.posts("instagram")
    assert result == PostResult(remote_id=post["id"], url=post["url"])
    assert result.url and result.url.startswith("https://www.instagram.com/p/")
    assert post["text"] == rendered.text
    assert announcement.link and announcement.link in post["text"]  # as text: not clickable, still there
    assert post["options"] == {"image_url": url, "alt_text": "Cantiere in via Roma"}
    # The container answers IN_PROGRESS once: two status reads, then the publish and the permalink.
    assert sandbox.stats()["requests"]["instagram"] == {
        "media": 1,
        "container_status": 2,
        "media_publish": 1,
        "read": 1,
    }
    assert images.hits["/square.jpg"] == 1  # checked once, by the adapter; Instagram fetches its own


@pytest.mark.parametrize("path", ["/landscape.jpg", "/tall.jpg"])
def test_the_aspect_ratio_limits_themselves_are_accepted(
    adapter: InstagramAdapter, sandbox: Sandbox, announcement: Announcement, images: FeedServer, path: str
) -> None:
    _publish(adapter, with_image(announcement, images.url(path)))
    assert len(sandbox.posts("instagram")) == 1


def test_without_an_image_the_post_is_skipped_before_any_call(
    adapter: InstagramAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    with pytest.raises(Skipped) as caught:
        _publish(adapter, announcement)
    assert caught.value.reason == "no_image"
    assert sandbox.stats()["requests"] == {}


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/portrait.jpg", "aspect ratio 1080x1920"),  # 9:16
        ("/photo.png", "unsupported_type"),  # Instagram takes JPEG only
        ("/missing.jpg", "http_404"),
    ],
)
def test_an_unusable_image_skips_the_post_without_asking_instagram(
    *,
    adapter: InstagramAdapter,
    sandbox: Sandbox,
    announcement: Announcement,
    images: FeedServer,
    path: str,
    problem: str,
) -> None:
    with pytest.raises(Skipped) as caught:
        _publish(adapter, with_image(announcement, images.url(path)))
    assert caught.value.reason == "image_unsuitable"
    assert problem in str(caught.value)
    assert sandbox.stats()["requests"] == {}


def test_an_image_on_a_private_address_is_refused_outside_tests(
    adapter: InstagramAdapter,
    sandbox: Sandbox,
    announcement: Announcement,
    images: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BANDITORE_MEDIA_ALLOW_PRIVATE")
    with pytest.raises(Skipped) as caught:
        _publish(adapter, with_image(announcement, images.url("/square.jpg")))
    assert "blocked_address" in str(caught.value)
    assert images.hits["/square.jpg"] == 0


def test_a_container_still_processing_comes_back_later(
    sandbox: Sandbox,
    session: requests.Session,
    fast_timeout: tuple[float, float],
    announcement: Announcement,
    images: FeedServer,
) -> None:
    sandbox.fake("instagram", ContainerFake).in_progress_polls = 1000
    clock = Clock()
    polling = Polling(interval=1.0, max_wait=5.0, sleep=clock.sleep, clock=clock)
    adapter = instagram_adapter(sandbox, session, fast_timeout, polling=polling)
    with pytest.raises(RetryableError) as caught:
        _publish(adapter, with_image(announcement, images.url("/square.jpg")))
    assert caught.value.reason == "media_processing"
    # Reads at 0, 1, ... 5 s: bounded by max_wait, not forever.
    assert sandbox.stats()["requests"]["instagram"]["container_status"] == 6
    assert clock.now == 5.0
    assert sandbox.posts() == []


@pytest.mark.parametrize("outcome", ["ERROR", "EXPIRED"])
def test_a_dead_container_is_a_permanent_failure(
    adapter: InstagramAdapter, sandbox: Sandbox, announcement: Announcement, images: FeedServer, outcome: str
) -> None:
    sandbox.fake("instagram", ContainerFake).container_outcome = outcome
    with pytest.raises(PermanentError) as caught:
        _publish(adapter, with_image(announcement, images.url("/square.jpg")))
    assert caught.value.reason == f"container_{outcome.lower()}"
    assert "media_publish" not in sandbox.stats()["requests"]["instagram"]


def test_the_publishing_limit_is_a_rate_limit(
    adapter: InstagramAdapter, sandbox: Sandbox, announcement: Announcement, images: FeedServer
) -> None:
    sandbox.fake("instagram", ContainerFake).publishing_limit = 1
    illustrated = with_image(announcement, images.url("/square.jpg"))
    _publish(adapter, illustrated)
    with pytest.raises(RateLimited) as caught:
        _publish(adapter, illustrated)
    assert caught.value.retry_after == PUBLISHING_LIMIT_SECONDS
    assert len(sandbox.posts("instagram")) == 1


def test_replies_are_comments_on_the_first_media(
    adapter: InstagramAdapter, sandbox: Sandbox, announcement: Announcement, images: FeedServer
) -> None:
    first = _publish(adapter, with_image(announcement, images.url("/square.jpg")))
    # A reply needs no image: it is a comment.
    reply = adapter.publish(
        text_post("Aggiornamento"), idempotency_key="delivery-2", reply_to=first.remote_id
    )
    again = adapter.publish(text_post("Riapertura"), idempotency_key="delivery-3", reply_to=reply.remote_id)

    posts = {post["id"]: post for post in sandbox.posts("instagram")}
    for result in (reply, again):
        media, _, comment = result.remote_id.partition(":")
        assert media == first.remote_id
        assert posts[comment]["options"] == {"reply_to": first.remote_id}
        assert result.url == first.url


def test_the_fake_refuses_a_container_without_an_image(sandbox: Sandbox, session: requests.Session) -> None:
    answer = session.post(
        f"{sandbox.base_for('instagram')}/v24.0/{IG_USER_ID}/media",
        data={"caption": "Solo testo", "access_token": TOKEN},
        timeout=5,
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == 100
