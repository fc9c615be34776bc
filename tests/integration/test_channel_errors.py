"""The error families every adapter must map alike, each in its platform's shape from the sandbox over
real HTTP: the publisher branches on the class and the reason, a rate limit's wait is the platform's
own, a health check reports what it finds, no error may carry the secret, and an offline adapter (the
preview's) renders but never calls the platform."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from chalicelib.announcements import Announcement
from chalicelib.channels.base import (
    AuthError,
    PermanentError,
    PublishError,
    RateLimited,
    RetryableError,
)
from chalicelib.channels.registry import adapter_for
from devtools.sandbox import Sandbox
from tests.feedserver import FeedServer
from tests.integration.channel_support import SECRETS, AdapterFactory, channel_config, with_image

# What each fault the sandbox injects must become: its class and reason.
Faults = dict[str, tuple[type[PublishError], str]]
COMMON_FAULTS: Faults = {
    "rate_limit": (RateLimited, "rate_limited"),
    "expired_token": (AuthError, "auth"),
    "forbidden": (PermanentError, "forbidden"),
    "server_error": (RetryableError, "server_error"),
    "malformed": (RetryableError, "malformed_response"),
    "timeout": (RetryableError, "timeout"),
}
# Graph names a refusal by its code: a 403 is a permission problem, and Meta has policy blocks and
# Facebook's duplicate message besides.
GRAPH_FAULTS: Faults = COMMON_FAULTS | {
    "forbidden": (PermanentError, "permission"),
    "blocked": (PermanentError, "blocked"),
    "duplicate": (PermanentError, "duplicate"),
}
FAULTS: dict[str, Faults] = {
    "telegram": COMMON_FAULTS,
    "mastodon": COMMON_FAULTS,
    "facebook": GRAPH_FAULTS,
    "instagram": GRAPH_FAULTS,
    "threads": GRAPH_FAULTS,
    # An expired access token is renewed, not an error (test_bluesky_contract).
    "bluesky": {kind: fault for kind, fault in COMMON_FAULTS.items() if kind != "expired_token"},
    # X refuses a text the account already posted (test_x_contract has what follows).
    "x": COMMON_FAULTS | {"duplicate": (PermanentError, "duplicate")},
    "slack": COMMON_FAULTS,
    "discord": COMMON_FAULTS,
    "matrix": COMMON_FAULTS,
}
PLATFORMS = tuple(FAULTS)
# The wait a rate limit of 120 s comes with: the seconds the platform states (Telegram's retry_after,
# Slack's Retry-After, Discord's retry_after, Matrix's retry_after_ms), the minutes in Graph's usage
# headers, or what remains until the moment its window reopens (Mastodon's ISO 8601 instant, Bluesky's
# epoch second, X's epoch second in whole seconds).
WAITS = {
    "telegram": (120, 120),
    "mastodon": (115, 120),
    "facebook": (120, 120),
    "instagram": (120, 120),
    "threads": (120, 120),
    "bluesky": (115, 120),
    "x": (115, 121),
    "slack": (120, 120),
    "discord": (120, 120),
    "matrix": (120, 120),
}
# The limit each platform's render is measured against (Telegram's for a message, as the announcement
# has no image).
LIMITS = {
    "telegram": 4096,
    "mastodon": 500,
    "facebook": 63_206,
    "instagram": 2200,
    "threads": 500,
    "bluesky": 300,
    "x": 280,
    "slack": 3000,
    "discord": 2000,
    "matrix": 32_768,
}
# Bluesky's session outlives a revoked app password and X's check reports more (their contract tests
# have both).
REVOCABLE = tuple(platform for platform in PLATFORMS if platform not in ("bluesky", "x"))


@pytest.mark.parametrize(
    ("platform", "kind", "family", "reason"),
    [(platform, kind, *fault) for platform in PLATFORMS for kind, fault in FAULTS[platform].items()],
)
def test_each_fault_maps_to_its_family_without_the_secret(
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
    assert type(caught.value) is family  # e.g. a 403 is permanent but not an auth problem
    assert caught.value.reason == reason
    assert sandbox.posts() == []
    assert_secret_absent(caught.value, SECRETS[platform])


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_rate_limit_waits_as_long_as_the_platform_says(
    make_adapter: AdapterFactory, platform: str, sandbox: Sandbox, post_announcement: Announcement
) -> None:
    sandbox.inject(platform, "rate_limit", retry_after=120)
    adapter = make_adapter(None)
    with pytest.raises(RateLimited) as caught:
        adapter.publish(adapter.render(post_announcement), idempotency_key="delivery-1")
    low, high = WAITS[platform]
    assert caught.value.retry_after is not None
    assert low <= caught.value.retry_after <= high
    assert sandbox.posts() == []


@pytest.mark.parametrize("platform", PLATFORMS)
def test_refused_connection_is_retryable_without_the_secret_and_an_unhealthy_check(
    make_adapter: AdapterFactory,
    platform: str,
    post_announcement: Announcement,
    closed_port_url: str,
    assert_secret_absent: Callable[[BaseException, str], None],
) -> None:
    # requests' own message for this failure carries the whole URL: a bot token or a webhook's secret.
    adapter = make_adapter(closed_port_url)
    with pytest.raises(RetryableError) as caught:
        adapter.publish(adapter.render(post_announcement), idempotency_key="delivery-1")
    assert caught.value.reason == "connection_error"
    assert_secret_absent(caught.value, SECRETS[platform])
    check = adapter.check()  # transient trouble is reported, not raised
    assert (check.healthy, check.reason) == (False, "connection_error")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_healthy_check_posts_nothing(make_adapter: AdapterFactory, platform: str, sandbox: Sandbox) -> None:
    check = make_adapter(None).check()
    assert (check.healthy, check.reason) == (True, "ok")
    assert sandbox.posts() == []


@pytest.mark.parametrize("platform", REVOCABLE)
def test_revoked_credentials_are_an_auth_error_and_an_unhealthy_check(
    make_adapter: AdapterFactory, platform: str, sandbox: Sandbox, post_announcement: Announcement
) -> None:
    adapter = make_adapter(None)
    assert adapter.check().healthy
    sandbox.revoke_token(platform, SECRETS[platform])
    with pytest.raises(AuthError):
        adapter.publish(adapter.render(post_announcement), idempotency_key="delivery-1")
    check = adapter.check()
    assert (check.healthy, check.reason) == (False, "auth")
    assert SECRETS[platform] not in check.detail
    assert sandbox.posts() == []


@pytest.mark.parametrize("platform", PLATFORMS)
def test_an_offline_adapter_renders_but_never_calls_the_platform(
    platform: str, sandbox: Sandbox, session: requests.Session, announcement: Announcement
) -> None:
    channel = channel_config(platform, sandbox, "env:NOT_SET_ANYWHERE")
    adapter = adapter_for(channel, session=session, offline=True)
    rendered = adapter.render(announcement)
    assert rendered.length <= rendered.limit == LIMITS[platform]
    with pytest.raises(PermanentError) as caught:
        adapter.publish(rendered, idempotency_key="delivery-1")
    assert caught.value.reason == "offline"
    assert sandbox.stats()["requests"] == {}


@pytest.mark.parametrize("platform", ["telegram", "mastodon"])
@pytest.mark.parametrize(
    ("kind", "family", "reason"), [(kind, *fault) for kind, fault in COMMON_FAULTS.items()]
)
def test_faults_at_the_image_step(
    *,
    make_adapter: AdapterFactory,
    platform: str,
    sandbox: Sandbox,
    announcement: Announcement,
    images: FeedServer,
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
    rendered = adapter.render(with_image(announcement, images.url("/foto.png"), alt="Il cantiere"))
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
    assert_secret_absent(caught.value, SECRETS[platform])
