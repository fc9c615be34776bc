"""The Mastodon adapter over real HTTP against the sandbox's Mastodon fake: limits, idempotency, errors."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
import requests

from chalicelib.announcements import Announcement
from chalicelib.channels.base import (
    AuthError,
    PermanentError,
    PostResult,
    RateLimited,
    RenderedPost,
    RetryableError,
)
from chalicelib.channels.mastodon import InstanceLimitsCache, MastodonAdapter
from chalicelib.channels.registry import adapter_for
from chalicelib.config.models import MastodonChannel
from chalicelib.http import TIMEOUT
from devtools.sandbox import Sandbox

TOKEN = "mastodon-sandbox-token-Zx81_qq"
TOKEN_ENV = "BANDITORE_TEST_MASTODON_TOKEN"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _adapter(
    sandbox: Sandbox,
    session: requests.Session,
    *,
    instance: str | None = None,
    cache: InstanceLimitsCache | None = None,
    timeout: tuple[float, float] = TIMEOUT,
) -> MastodonAdapter:
    return MastodonAdapter(
        instance=instance or sandbox.mastodon_instance,
        token=lambda: TOKEN,
        session=session,
        timeout=timeout,
        limits_cache=cache or InstanceLimitsCache(),  # a fresh cache: no limits from other tests
    )


@pytest.fixture
def adapter(
    sandbox: Sandbox, session: requests.Session, fast_timeout: tuple[float, float]
) -> MastodonAdapter:
    return _adapter(sandbox, session, timeout=fast_timeout)


def _publish(adapter: MastodonAdapter, announcement: Announcement, key: str = "delivery-1") -> PostResult:
    return adapter.publish(adapter.render(announcement), idempotency_key=key)


def _text_post(text: str) -> RenderedPost:
    return RenderedPost(text=text, length=len(text), limit=500, truncated=False)


@pytest.mark.usefixtures("no_secrets_file")
def test_publish_through_the_registry_posts_the_status(
    sandbox: Sandbox, session: requests.Session, announcement: Announcement, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    channel = MastodonChannel(
        id="mastodon",
        platform="mastodon",
        instance=sandbox.mastodon_instance,
        token=f"env:{TOKEN_ENV}",
        visibility="unlisted",
    )
    adapter = adapter_for(channel, session=session)
    rendered = adapter.render(announcement)
    result = adapter.publish(rendered, idempotency_key="delivery-1")

    [post] = sandbox.posts("mastodon")
    assert result == PostResult(remote_id=post["id"], url=post["url"])
    assert result.url and result.url.startswith(f"{sandbox.mastodon_instance}/@")
    assert post["text"] == rendered.text
    assert post["idempotency_key"] == "delivery-1"
    assert post["options"] == {"visibility": "unlisted", "language": "it"}


def test_limits_come_from_the_instance(
    adapter: MastodonAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    sandbox.set_mastodon_limits(max_characters=1000, characters_reserved_per_url=30)
    long_summary = replace(announcement, summary="parola " * 300)
    rendered = adapter.render(long_summary)
    assert adapter.limits_source == "instance"
    assert rendered.limit == 1000
    assert 990 <= rendered.length <= 1000  # the summary was cut to the instance's limit, not 500
    adapter.publish(rendered, idempotency_key="delivery-1")
    assert len(sandbox.posts()) == 1


def test_limits_are_fetched_once_per_ttl(
    sandbox: Sandbox, session: requests.Session, announcement: Announcement
) -> None:
    clock = Clock()
    cache = InstanceLimitsCache(ttl=3600, clock=clock)
    for _ in range(3):
        _adapter(sandbox, session, cache=cache).render(announcement)
    assert sandbox.stats()["requests"]["mastodon"] == {"instance": 1}
    clock.now += 3601
    _adapter(sandbox, session, cache=cache).render(announcement)
    assert sandbox.stats()["requests"]["mastodon"] == {"instance": 2}


def test_unavailable_instance_limits_fall_back_to_defaults_and_posting_still_works(
    adapter: MastodonAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    sandbox.set_mastodon_limits(max_characters=1000)
    sandbox.inject("mastodon", "server_error", endpoint="instance")
    rendered = adapter.render(announcement)
    assert adapter.limits_source == "default"
    assert rendered.limit == 500
    adapter.publish(rendered, idempotency_key="delivery-1")
    assert len(sandbox.posts()) == 1


def test_urls_weigh_what_the_instance_says(adapter: MastodonAdapter, sandbox: Sandbox) -> None:
    """Adapter and server agree on the count: 600 characters of text, under 500 as Mastodon counts."""
    urls = " ".join(f"https://www.comune.example.it/albo/{n}/{'x' * 60}" for n in range(8))
    announcement = Announcement(tenant="t", id="a", source="s", title="Albo pretorio", summary=urls)
    rendered = adapter.render(announcement)
    assert len(rendered.text) > 600
    assert not rendered.truncated
    adapter.publish(rendered, idempotency_key="delivery-1")
    assert len(sandbox.posts()) == 1


def test_same_idempotency_key_posts_once(
    adapter: MastodonAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    first = _publish(adapter, announcement, "delivery-1")
    again = _publish(adapter, announcement, "delivery-1")
    other = _publish(adapter, announcement, "delivery-2")
    assert again == first
    assert other.remote_id != first.remote_id
    assert len(sandbox.posts()) == 2
    assert sandbox.stats()["idempotent_replays"] == {"mastodon": 1}


def test_answer_lost_after_commit_is_not_a_duplicate_on_retry(
    adapter: MastodonAdapter, sandbox: Sandbox, announcement: Announcement, slow_answer: float
) -> None:
    """The exactly-once the module docstring promises: the retry carries the same key."""
    sandbox.inject("mastodon", "hang_after_commit", delay=slow_answer)
    with pytest.raises(RetryableError) as caught:
        _publish(adapter, announcement, "delivery-1")
    assert caught.value.reason == "timeout"
    result = _publish(adapter, announcement, "delivery-1")
    [post] = sandbox.posts()
    assert result.remote_id == post["id"]


def test_rate_limit_waits_until_the_iso_8601_reset(
    adapter: MastodonAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    sandbox.inject("mastodon", "rate_limit", retry_after=120)
    with pytest.raises(RateLimited) as caught:
        _publish(adapter, announcement)
    assert caught.value.retry_after is not None
    assert 115 <= caught.value.retry_after <= 120
    assert sandbox.posts() == []


def test_reset_in_the_past_means_retry_now(
    sandbox: Sandbox, session: requests.Session, announcement: Announcement
) -> None:
    adapter = MastodonAdapter(
        instance=sandbox.mastodon_instance,
        token=lambda: TOKEN,
        session=session,
        limits_cache=InstanceLimitsCache(),
        clock=lambda: datetime(2999, 1, 1, tzinfo=UTC),
    )
    sandbox.inject("mastodon", "rate_limit", retry_after=60)
    with pytest.raises(RateLimited) as caught:
        _publish(adapter, announcement)
    assert caught.value.retry_after == 0.0


def test_ordinary_answers_carry_rate_headers_without_meaning_rate_limit(
    sandbox: Sandbox, session: requests.Session
) -> None:
    answer = session.post(
        f"{sandbox.mastodon_instance}/api/v1/statuses",
        json={"status": "Prova"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    assert answer.status_code == 200
    assert answer.headers["X-RateLimit-Limit"] == "300"
    assert datetime.fromisoformat(answer.headers["X-RateLimit-Reset"]) > datetime.now(UTC)


def test_revoked_token_is_an_auth_error(
    adapter: MastodonAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    sandbox.revoke_token("mastodon", TOKEN)
    with pytest.raises(AuthError) as caught:
        _publish(adapter, announcement)
    assert "revoked" in str(caught.value)


def test_wrong_instance_path_is_not_found(
    sandbox: Sandbox, session: requests.Session, announcement: Announcement
) -> None:
    adapter = _adapter(sandbox, session, instance=f"{sandbox.url}/mastodon/nessuna")
    with pytest.raises(PermanentError) as caught:
        _publish(adapter, announcement)
    assert caught.value.reason == "not_found"


def test_status_over_the_limit_is_a_validation_failure(adapter: MastodonAdapter, sandbox: Sandbox) -> None:
    with pytest.raises(PermanentError) as caught:
        adapter.publish(_text_post("è" * 501), idempotency_key="delivery-1")
    assert caught.value.reason == "validation_failed"
    assert "character limit of 500" in str(caught.value)
    assert sandbox.posts() == []


def test_offline_adapter_uses_default_limits_and_never_calls_the_instance(
    sandbox: Sandbox, session: requests.Session, announcement: Announcement
) -> None:
    channel = MastodonChannel(
        id="mastodon", platform="mastodon", instance=sandbox.mastodon_instance, token="env:NOT_SET_ANYWHERE"
    )
    adapter = adapter_for(channel, session=session, offline=True)
    rendered = adapter.render(announcement)
    assert isinstance(adapter, MastodonAdapter)
    assert adapter.limits_source == "default"
    assert rendered.limit == 500
    with pytest.raises(PermanentError) as caught:
        adapter.publish(rendered, idempotency_key="delivery-1")
    assert caught.value.reason == "offline"
    assert sandbox.stats()["requests"] == {}


def test_a_reply_threads_under_the_status_of_its_remote_id(
    adapter: MastodonAdapter, announcement: Announcement, sandbox: Sandbox
) -> None:
    first = _publish(adapter, announcement)
    reply = adapter.publish(
        adapter.render(announcement), idempotency_key="delivery-2", reply_to=first.remote_id
    )

    posts = {p["id"]: p for p in sandbox.posts("mastodon")}
    assert posts[reply.remote_id]["options"]["in_reply_to_id"] == first.remote_id
    assert "in_reply_to_id" not in posts[first.remote_id]["options"]
