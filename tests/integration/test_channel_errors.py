"""The error families every adapter must map alike, each in its platform's shape from the sandbox:
the publisher branches on the class and the reason, and no error may carry the token."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
import requests

from chalicelib.announcements import Announcement, Image
from chalicelib.channels.base import (
    AuthError,
    ChannelAdapter,
    PermanentError,
    PublishError,
    RateLimited,
    RetryableError,
)
from chalicelib.channels.mastodon import InstanceLimitsCache, MastodonAdapter
from chalicelib.channels.media import ALLOW_PRIVATE_ENV
from chalicelib.channels.telegram import TelegramAdapter
from devtools.sandbox import Sandbox
from tests import sample_images
from tests.feedserver import FeedServer

TOKEN = "7012345678:AAH-sandbox_Token-0123456789abcdefghi"

AdapterFactory = Callable[[str | None], ChannelAdapter]


@pytest.fixture(params=["telegram", "mastodon"])
def platform(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_adapter(
    platform: str, sandbox: Sandbox, session: requests.Session, fast_timeout: tuple[float, float]
) -> AdapterFactory:
    """An adapter for the platform, aimed at the sandbox or at `base`."""

    def make(base: str | None) -> ChannelAdapter:
        if platform == "telegram":
            api_base = base or sandbox.telegram_api_base
            return TelegramAdapter(
                chat="@comune_prova",
                token=lambda: TOKEN,
                session=session,
                api_base=api_base,
                timeout=fast_timeout,
            )
        return MastodonAdapter(
            instance=base or sandbox.mastodon_instance,
            token=lambda: TOKEN,
            session=session,
            timeout=fast_timeout,
            limits_cache=InstanceLimitsCache(),
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
def test_each_fault_maps_to_its_family_without_the_token(
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
    sandbox.inject(platform, kind, delay=slow_answer)
    with pytest.raises(PublishError) as caught:
        adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    assert type(caught.value) is family  # e.g. a 403 is permanent but not an auth problem
    assert caught.value.reason == reason
    assert sandbox.posts() == []
    assert_secret_absent(caught.value, TOKEN)


def test_refused_connection_is_retryable_without_the_token(
    make_adapter: AdapterFactory,
    announcement: Announcement,
    closed_port_url: str,
    assert_secret_absent: Callable[[BaseException, str], None],
) -> None:
    # requests' own message for this failure carries the whole URL: Telegram's token is in it.
    adapter = make_adapter(closed_port_url)
    with pytest.raises(RetryableError) as caught:
        adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    assert caught.value.reason == "connection_error"
    assert_secret_absent(caught.value, TOKEN)


@pytest.fixture
def image_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An image on a loopback host the adapters may fetch (the local switch is on)."""
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")
    with FeedServer({"/foto.png": (200, {"Content-Type": "image/png"}, sample_images.png())}) as server:
        yield server.url("/foto.png")


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
def test_faults_at_the_image_step(
    *,
    make_adapter: AdapterFactory,
    platform: str,
    sandbox: Sandbox,
    announcement: Announcement,
    image_url: str,
    slow_answer: float,
    assert_secret_absent: Callable[[BaseException, str], None],
    kind: str,
    family: type[PublishError],
    reason: str,
) -> None:
    """Telegram's photo is the post: its faults are the post's, without a fallback that could post
    twice. Mastodon's upload comes first: only a refused token stops the post, any other failure
    leaves the image out."""
    adapter = make_adapter(None)
    rendered = adapter.render(replace(announcement, image=Image(url=image_url, alt="Il cantiere")))
    sandbox.inject(
        platform, kind, endpoint="sendPhoto" if platform == "telegram" else "media", delay=slow_answer
    )
    if platform == "mastodon" and kind != "expired_token":
        adapter.publish(rendered, idempotency_key="delivery-1")
        [post] = sandbox.posts()
        assert "media" not in post["options"]
        return
    with pytest.raises(PublishError) as caught:
        adapter.publish(rendered, idempotency_key="delivery-1")
    assert (type(caught.value), caught.value.reason) == (family, reason)
    assert sandbox.posts() == []
    assert_secret_absent(caught.value, TOKEN)
