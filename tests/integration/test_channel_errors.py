"""The error families every adapter must map alike, each in its platform's shape from the sandbox:
the publisher branches on the class and the reason, and no error may carry the token."""

from __future__ import annotations

from collections.abc import Callable

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
from chalicelib.channels.mastodon import InstanceLimitsCache, MastodonAdapter
from chalicelib.channels.telegram import TelegramAdapter
from devtools.sandbox import Sandbox

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
