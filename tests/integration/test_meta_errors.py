"""What Facebook, Instagram and Threads do alike beyond the families every adapter maps (see
test_channel_errors), each against the sandbox's Graph fake over real HTTP: a throttle without a wait
in its usage headers, Graph's own codes in an auth error, a health check of one read that reports the
configured token expiry, and never the token in a log line."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import pytest
import requests

from chalicelib.announcements import Announcement
from chalicelib.channels.base import AuthError, RateLimited
from chalicelib.channels.graph import DEFAULT_THROTTLE_SECONDS
from devtools.sandbox import Sandbox
from tests.integration.channel_support import AdapterFactory
from tests.integration.meta_support import ADAPTERS, CHECK_READS, TOKEN


@pytest.fixture(params=["facebook", "instagram", "threads"])
def platform(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_throttle_without_a_wait_in_the_headers_uses_the_default(
    make_adapter: AdapterFactory, platform: str, sandbox: Sandbox, post_announcement: Announcement
) -> None:
    sandbox.inject(platform, "rate_limit", retry_after=0)
    adapter = make_adapter(None)
    with pytest.raises(RateLimited) as caught:
        adapter.publish(adapter.render(post_announcement), idempotency_key="delivery-1")
    assert caught.value.retry_after == DEFAULT_THROTTLE_SECONDS


def test_a_revoked_token_is_named_by_graphs_code_and_subcode(
    make_adapter: AdapterFactory, platform: str, sandbox: Sandbox, post_announcement: Announcement
) -> None:
    sandbox.revoke_token(platform, TOKEN)
    adapter = make_adapter(None)
    with pytest.raises(AuthError) as caught:
        adapter.publish(adapter.render(post_announcement), idempotency_key="delivery-1")
    assert "190/460" in str(caught.value)


def test_a_health_check_makes_one_read_and_reports_the_configured_expiry(
    platform: str, sandbox: Sandbox, session: requests.Session, fast_timeout: tuple[float, float]
) -> None:
    """Facebook's with no app token (with one, debug_token says more: see test_facebook_contract)."""
    adapter = ADAPTERS[platform](sandbox, session, fast_timeout, token_expires_on=date(2027, 3, 1))
    check = adapter.check()
    assert (check.healthy, check.reason) == (True, "ok")
    assert check.token_expires_at == datetime(2027, 3, 1, tzinfo=UTC)
    assert sandbox.stats()["requests"][platform] == {CHECK_READS[platform]: 1}


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
