"""The error families Facebook, Instagram and Threads share, each answered by the sandbox in Graph's shape
over real HTTP: the class and reason the publisher branches on, the throttle's wait from the usage
headers, and never the token in an error or a log line."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

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
from chalicelib.channels.graph import DEFAULT_THROTTLE_SECONDS
from devtools.sandbox import Sandbox
from tests.feedserver import FeedServer
from tests.integration.meta_support import (
    TOKEN,
    announcement_with_image,
    facebook_adapter,
    image_server,
    instagram_adapter,
    threads_adapter,
)

AdapterFactory = Callable[[str | None], ChannelAdapter]


@pytest.fixture
def images(monkeypatch: pytest.MonkeyPatch) -> Iterator[FeedServer]:
    with image_server(monkeypatch) as server:
        yield server


@pytest.fixture(params=["facebook", "instagram", "threads"])
def platform(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_adapter(
    platform: str, sandbox: Sandbox, session: requests.Session, fast_timeout: tuple[float, float]
) -> AdapterFactory:
    """An adapter for the platform, aimed at the sandbox or at `base`."""
    builders: dict[str, Callable[..., ChannelAdapter]] = {
        "facebook": facebook_adapter,
        "instagram": instagram_adapter,
        "threads": threads_adapter,
    }

    def make(base: str | None) -> ChannelAdapter:
        return builders[platform](sandbox, session, fast_timeout, api_base=base)

    return make


@pytest.fixture
def post_announcement(platform: str, announcement: Announcement, images: FeedServer) -> Announcement:
    """With a usable image, which Instagram needs, except on Facebook: its posting endpoint in the
    sandbox is the feed (a photo goes to /photos, see test_facebook_contract)."""
    if platform == "facebook":
        return announcement
    return announcement_with_image(announcement, images.url("/square.jpg"), alt="Via Roma chiusa")


@pytest.mark.parametrize(
    ("kind", "family", "reason"),
    [
        ("rate_limit", RateLimited, "rate_limited"),
        ("expired_token", AuthError, "auth"),
        ("forbidden", PermanentError, "permission"),
        ("blocked", PermanentError, "blocked"),
        ("duplicate", PermanentError, "duplicate"),
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
    post_announcement: Announcement,
    slow_answer: float,
    assert_secret_absent: Callable[[BaseException, str], None],
    kind: str,
    family: type[PublishError],
    reason: str,
) -> None:
    adapter = make_adapter(None)
    sandbox.inject(platform, kind, delay=slow_answer)
    with pytest.raises(PublishError) as caught:
        adapter.publish(adapter.render(post_announcement), idempotency_key="delivery-1")
    assert type(caught.value) is family  # a permission refusal is permanent but not an auth problem
    assert caught.value.reason == reason
    assert sandbox.posts() == []
    assert_secret_absent(caught.value, TOKEN)


def test_throttle_waits_as_long_as_the_usage_header_says(
    make_adapter: AdapterFactory, platform: str, sandbox: Sandbox, post_announcement: Announcement
) -> None:
    sandbox.inject(platform, "rate_limit", retry_after=120)  # estimated_time_to_regain_access: 2 minutes
    adapter = make_adapter(None)
    with pytest.raises(RateLimited) as caught:
        adapter.publish(adapter.render(post_announcement), idempotency_key="delivery-1")
    assert caught.value.retry_after == 120


def test_throttle_without_a_wait_in_the_headers_uses_the_default(
    make_adapter: AdapterFactory, platform: str, sandbox: Sandbox, post_announcement: Announcement
) -> None:
    sandbox.inject(platform, "rate_limit", retry_after=0)
    adapter = make_adapter(None)
    with pytest.raises(RateLimited) as caught:
        adapter.publish(adapter.render(post_announcement), idempotency_key="delivery-1")
    assert caught.value.retry_after == DEFAULT_THROTTLE_SECONDS


def test_revoked_token_is_an_auth_error_and_an_unhealthy_check(
    make_adapter: AdapterFactory, platform: str, sandbox: Sandbox, post_announcement: Announcement
) -> None:
    sandbox.revoke_token(platform, TOKEN)
    adapter = make_adapter(None)
    with pytest.raises(AuthError) as caught:
        adapter.publish(adapter.render(post_announcement), idempotency_key="delivery-1")
    assert "190/460" in str(caught.value)
    check = adapter.check()
    assert (check.healthy, check.reason) == (False, "auth")
    assert TOKEN not in check.detail


def test_healthy_check(make_adapter: AdapterFactory) -> None:
    check = make_adapter(None).check()
    assert (check.healthy, check.reason) == (True, "ok")


def test_refused_connection_is_retryable_without_the_token(
    make_adapter: AdapterFactory,
    post_announcement: Announcement,
    closed_port_url: str,
    assert_secret_absent: Callable[[BaseException, str], None],
) -> None:
    adapter = make_adapter(closed_port_url)
    with pytest.raises(RetryableError) as caught:
        adapter.publish(adapter.render(post_announcement), idempotency_key="delivery-1")
    assert caught.value.reason == "connection_error"
    assert_secret_absent(caught.value, TOKEN)
    check = adapter.check()
    assert (check.healthy, check.reason) == (False, "connection_error")


def test_urllib3_log_lines_never_show_the_token(
    make_adapter: AdapterFactory,
    post_announcement: Announcement,
    sandbox: Sandbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Reads carry the token in the query string, which urllib3 logs at DEBUG."""
    adapter = make_adapter(None)
    with caplog.at_level(logging.DEBUG, logger="urllib3.connectionpool"):
        adapter.publish(adapter.render(post_announcement), idempotency_key="delivery-1")
        adapter.check()
    lines = [record.getMessage() for record in caplog.records if record.name == "urllib3.connectionpool"]
    assert any("access_token=***" in line for line in lines)
    assert all(TOKEN not in line for line in lines)
    assert len(sandbox.posts()) == 1
