"""The X adapter over real HTTP against the sandbox's X fake, which checks every OAuth 1.0a signature:
posts, replies, threads, X's problem shape beyond the families every adapter maps alike
(test_channel_errors), the rate-limit windows, duplicates and what the adapter does after an unknown
outcome, and secrets kept out of errors and logs."""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import replace

import pytest
import requests
from oauthlib.oauth1 import Client
from requests_oauthlib import OAuth1

from chalicelib.announcements import Announcement
from chalicelib.channels.base import (
    AuthError,
    PermanentError,
    PostGone,
    PostResult,
    RateLimited,
    RenderedPost,
    RetryableError,
)
from chalicelib.channels.registry import adapter_for
from chalicelib.channels.x import PostedPieces, XAdapter
from chalicelib.config.models import XChannel
from devtools.sandbox import Sandbox
from devtools.sandbox.x import (
    DAY_SECONDS,
    WINDOW_SECONDS,
    XFake,
    post_weight,
    secret_for,
    signature_matches,
)
from tests.integration.channel_support import X_CREDENTIALS, x_credentials

ENV = {field: f"BANDITORE_TEST_X_{field.upper()}" for field in X_CREDENTIALS}

AdapterFactory = Callable[..., XAdapter]


@pytest.fixture
def fake(sandbox: Sandbox) -> XFake:
    return sandbox.fake("x", XFake)


@pytest.fixture
def make_adapter(
    sandbox: Sandbox, session: requests.Session, fast_timeout: tuple[float, float]
) -> AdapterFactory:
    """An adapter on the sandbox with the fake's credentials, or with some of them changed; each
    with a memory of posted pieces of its own unless given one (a process shares one)."""

    def make(*, posted: PostedPieces | None = None, api_base: str | None = None, **changed: str) -> XAdapter:
        return XAdapter(
            credentials=x_credentials(X_CREDENTIALS | changed),
            session=session,
            api_base=api_base or sandbox.base_for("x"),
            posted=posted or PostedPieces(),
            timeout=fast_timeout,
        )

    return make


@pytest.fixture
def adapter(make_adapter: AdapterFactory) -> XAdapter:
    return make_adapter()


def _text_post(text: str) -> RenderedPost:
    return RenderedPost(text=text, length=post_weight(text), limit=280, truncated=False)


def _long(announcement: Announcement) -> Announcement:
    summary = " ".join(
        f"Il cantiere numero {n} chiude la strada per il rifacimento dell'asfalto." for n in range(9)
    )
    return replace(announcement, summary=summary)


def _signer(**changed: str) -> OAuth1:
    values = X_CREDENTIALS | changed
    return OAuth1(
        values["consumer_key"],
        values["consumer_secret"],
        values["access_token"],
        values["access_token_secret"],
    )


# --- posting -----------------------------------------------------------------------------------------
@pytest.mark.usefixtures("no_secrets_file")
def test_publish_through_the_registry_posts_the_text(
    sandbox: Sandbox, session: requests.Session, announcement: Announcement, monkeypatch: pytest.MonkeyPatch
) -> None:
    for field, variable in ENV.items():
        monkeypatch.setenv(variable, X_CREDENTIALS[field])
    channel = XChannel(
        id="x",
        platform="x",
        api_base=sandbox.base_for("x"),
        **{field: f"env:{variable}" for field, variable in ENV.items()},
    )
    adapter = adapter_for(channel, session=session)
    rendered = adapter.render(announcement)
    # The process remembers posted pieces by delivery key: a key of its own keeps other tests out.
    result = adapter.publish(rendered, idempotency_key=f"delivery-{uuid.uuid4()}")

    [post] = sandbox.posts("x")
    assert result == PostResult(remote_id=post["id"], url=f"https://x.com/i/web/status/{post['id']}")
    assert post["text"] == rendered.text
    assert post["options"] == {}
    assert post["target"].startswith("@comune_")


def test_a_reply_names_the_post_it_answers(
    adapter: XAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    first = adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    update = replace(announcement, title="Aggiornamento: strada riaperta")
    reply = adapter.publish(adapter.render(update), idempotency_key="delivery-2", reply_to=first.remote_id)

    posts = {post["id"]: post for post in sandbox.posts("x")}
    assert posts[reply.remote_id]["options"] == {"in_reply_to_tweet_id": first.remote_id}
    assert posts[first.remote_id]["options"] == {}


def test_a_long_text_goes_out_as_a_chain_of_replies(
    adapter: XAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    rendered = adapter.render(_long(announcement))
    assert len(rendered.thread) == 2  # three posts: the channel's default max_thread_posts

    result = adapter.publish(rendered, idempotency_key="delivery-1", reply_to=None)

    posts = sandbox.posts("x")
    assert [post["text"] for post in posts] == [rendered.text, *rendered.thread]
    assert result.remote_id == posts[0]["id"]
    assert posts[0]["options"] == {}
    for parent, child in itertools.pairwise(posts):
        assert child["options"] == {"in_reply_to_tweet_id": parent["id"]}
    assert all(post_weight(post["text"]) <= 280 for post in posts)


def test_a_thread_under_an_earlier_post_starts_as_its_reply(
    adapter: XAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    anchor = adapter.publish(_text_post("Allerta meteo arancione"), idempotency_key="delivery-1")
    adapter.publish(
        adapter.render(_long(announcement)), idempotency_key="delivery-2", reply_to=anchor.remote_id
    )
    assert sandbox.posts("x")[1]["options"] == {"in_reply_to_tweet_id": anchor.remote_id}


def test_emoji_and_links_at_the_limit_pass_the_fakes_own_count(
    adapter: XAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    """The adapter's count and the fake's agree where X's rules bite: 23 per URL, 2 per emoji."""
    summary = "🇮🇹 👨\u200d👩\u200d👧 1️⃣ 👍🏽 è 日 " * 30 + " ".join(
        f"https://comune.example.it/{'x' * 40}/{n}" for n in range(5)
    )
    rendered = adapter.render(replace(announcement, summary=summary))
    adapter.publish(rendered, idempotency_key="delivery-1")
    posts = sandbox.posts("x")
    assert len(posts) == 1 + len(rendered.thread)
    assert max(post_weight(post["text"]) for post in posts) >= 270  # cut close to the limit, not far


def test_a_reply_to_a_post_x_cannot_find_is_post_gone_and_posts_nothing(
    adapter: XAdapter, sandbox: Sandbox
) -> None:
    """Deleted (403) or not an id at all (400): PostGone, and the publisher posts the update on its
    own rather than lose it."""
    for key, target in (("delivery-1", "1234567890"), ("delivery-2", "not-an-id")):
        with pytest.raises(PostGone):
            adapter.publish(_text_post(f"Aggiornamento {key}"), idempotency_key=key, reply_to=target)
    assert sandbox.posts("x") == []
    # Nothing was posted, so the same delivery goes out on its own under its key.
    result = adapter.publish(_text_post("Aggiornamento delivery-1"), idempotency_key="delivery-1")
    assert [post["id"] for post in sandbox.posts("x")] == [result.remote_id]


# --- duplicates and unknown outcomes -----------------------------------------------------------------
def test_the_same_text_twice_is_refused_as_a_duplicate(
    adapter: XAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    with pytest.raises(PermanentError) as caught:
        adapter.publish(adapter.render(announcement), idempotency_key="delivery-2")
    assert caught.value.reason == "duplicate"
    assert "already on the account" in str(caught.value)
    assert len(sandbox.posts("x")) == 1


def test_a_retry_after_a_lost_answer_meets_the_duplicate_refusal_and_posts_nothing_more(
    adapter: XAdapter, sandbox: Sandbox, announcement: Announcement, slow_answer: float
) -> None:
    """At-least-once, as the module docstring says: X posted the first attempt, the retry is refused
    as a duplicate and recorded so, and the account still holds one post."""
    sandbox.inject("x", "hang_after_commit", delay=slow_answer)
    with pytest.raises(RetryableError) as lost:
        adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    assert lost.value.reason == "timeout"
    with pytest.raises(PermanentError) as retried:
        adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    assert retried.value.reason == "duplicate"
    assert len(sandbox.posts("x")) == 1


def test_a_thread_stopped_by_the_daily_cap_goes_on_where_it_stopped(
    make_adapter: AdapterFactory, fake: XFake, sandbox: Sandbox, announcement: Announcement
) -> None:
    memory = PostedPieces()
    rendered = make_adapter(posted=memory).render(_long(announcement))
    fake.daily_limit = 1
    with pytest.raises(RateLimited):
        make_adapter(posted=memory).publish(rendered, idempotency_key="delivery-1")
    assert len(sandbox.posts("x")) == 1

    fake.daily_limit = None  # a new day
    result = make_adapter(posted=memory).publish(rendered, idempotency_key="delivery-1")

    posts = sandbox.posts("x")
    assert [post["text"] for post in posts] == [rendered.text, *rendered.thread]
    assert result.remote_id == posts[0]["id"]
    assert posts[1]["options"] == {"in_reply_to_tweet_id": posts[0]["id"]}


def test_a_cold_process_retrying_a_half_posted_thread_meets_the_duplicate_refusal(
    make_adapter: AdapterFactory, fake: XFake, sandbox: Sandbox, announcement: Announcement
) -> None:
    """The limit of the process memory, as documented: nothing posts twice, the rest is not posted."""
    rendered = make_adapter().render(_long(announcement))
    fake.daily_limit = 1
    with pytest.raises(RateLimited):
        make_adapter().publish(rendered, idempotency_key="delivery-1")
    fake.daily_limit = None
    with pytest.raises(PermanentError) as caught:
        make_adapter().publish(rendered, idempotency_key="delivery-1")
    assert caught.value.reason == "duplicate"
    assert len(sandbox.posts("x")) == 1


# --- rate limits -------------------------------------------------------------------------------------
def test_a_daily_cap_waits_for_the_day_not_the_15_minute_window(
    adapter: XAdapter, fake: XFake, announcement: Announcement
) -> None:
    fake.daily_limit = 1
    adapter.publish(_text_post("Primo avviso"), idempotency_key="delivery-1")
    with pytest.raises(RateLimited) as caught:
        adapter.publish(_text_post("Secondo avviso"), idempotency_key="delivery-2")
    now = time.time()
    until_tomorrow = (now // DAY_SECONDS + 1) * DAY_SECONDS - now
    assert caught.value.retry_after == pytest.approx(until_tomorrow, abs=5)


def test_the_15_minute_window_is_enforced_when_the_sandbox_enforces_limits(
    adapter: XAdapter, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox.state, "enforce_rate_limits", True)
    monkeypatch.setattr("devtools.sandbox.x.POSTS_PER_WINDOW", 2)
    for n in range(2):
        adapter.publish(_text_post(f"Avviso {n}"), idempotency_key=f"delivery-{n}")
    with pytest.raises(RateLimited) as caught:
        adapter.publish(_text_post("Avviso di troppo"), idempotency_key="delivery-3")
    assert caught.value.retry_after is not None
    assert 0 <= caught.value.retry_after <= WINDOW_SECONDS


def test_every_post_answer_carries_the_rate_headers(sandbox: Sandbox, session: requests.Session) -> None:
    answer = session.post(
        f"{sandbox.base_for('x')}/2/tweets", json={"text": "Prova"}, auth=_signer(), timeout=5
    )
    assert answer.status_code == 201
    assert answer.headers["x-rate-limit-limit"] == "100"
    assert answer.headers["x-rate-limit-remaining"] == "99"
    assert int(answer.headers["x-rate-limit-reset"]) > time.time()
    assert answer.json()["data"]["text"] == "Prova"


# --- refusals ----------------------------------------------------------------------------------------
def test_revoked_token_is_an_auth_error_and_an_unhealthy_check(
    adapter: XAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    assert adapter.check().healthy
    sandbox.revoke_token("x", X_CREDENTIALS["access_token"])
    with pytest.raises(AuthError):
        adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    check = adapter.check()
    assert (check.healthy, check.reason, check.token_expires_at) == (False, "auth", None)


@pytest.mark.parametrize(
    "changed",
    [
        {"consumer_secret": "sbagliato"},
        {"access_token_secret": "sbagliato"},
        {"consumer_secret": secret_for(X_CREDENTIALS["access_token"])},  # the two secrets swapped
        {"access_token_secret": secret_for(X_CREDENTIALS["consumer_key"])},
    ],
)
def test_a_request_signed_with_a_wrong_secret_is_refused(
    make_adapter: AdapterFactory, sandbox: Sandbox, announcement: Announcement, changed: dict[str, str]
) -> None:
    adapter = make_adapter(**changed)
    with pytest.raises(AuthError):
        adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    assert not adapter.check().healthy
    assert sandbox.posts("x") == []


def test_the_fake_refuses_replayed_nonces_and_stale_timestamps(
    sandbox: Sandbox, session: requests.Session
) -> None:
    url = f"{sandbox.base_for('x')}/2/users/me"

    def get(**signing: str) -> int:
        client = Client(
            X_CREDENTIALS["consumer_key"],
            client_secret=X_CREDENTIALS["consumer_secret"],
            resource_owner_key=X_CREDENTIALS["access_token"],
            resource_owner_secret=X_CREDENTIALS["access_token_secret"],
            **signing,
        )
        _, headers, _ = client.sign(url, "GET")
        return session.get(url, headers=headers, timeout=5).status_code

    now = str(int(time.time()))
    assert get(nonce="n1", timestamp=now) == 200
    assert get(nonce="n1", timestamp=now) == 401  # the same signed request again
    assert get(nonce="n2", timestamp=str(int(time.time()) - 3600)) == 401


def test_the_fakes_signature_check_agrees_with_xs_documented_example() -> None:
    """X's "Creating a signature" walk-through: its request and secrets give its signature."""
    header = (
        'OAuth oauth_consumer_key="xvz1evFS4wEEPTGEFPHBog", '
        'oauth_nonce="kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg", '
        'oauth_signature="hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D", oauth_signature_method="HMAC-SHA1", '
        'oauth_timestamp="1318622958", oauth_token="370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb", '
        'oauth_version="1.0"'
    )
    request = {
        "method": "POST",
        "uri": "https://api.twitter.com/1.1/statuses/update.json?include_entities=true",
        "authorization": header,
        "form_body": "status=Hello%20Ladies%20%2B%20Gentlemen%2C%20a%20signed%20OAuth%20request%21",
    }
    secrets = {
        "consumer_secret": "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
        "token_secret": "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
    }
    assert signature_matches(**request, **secrets)
    assert not signature_matches(**request, **(secrets | {"token_secret": "altro"}))
    assert not signature_matches(**(request | {"method": "GET"}), **secrets)


def test_an_app_without_write_permission_is_a_clear_refusal(
    adapter: XAdapter, fake: XFake, announcement: Announcement
) -> None:
    fake.read_only(X_CREDENTIALS["access_token"])
    with pytest.raises(PermanentError) as caught:
        adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    assert (type(caught.value), caught.value.reason) == (PermanentError, "no_write_permission")
    assert "oauth1 app permissions" in str(caught.value)


def test_an_app_outside_a_project_is_a_clear_refusal_and_an_unhealthy_check(
    adapter: XAdapter, fake: XFake, announcement: Announcement
) -> None:
    fake.unenroll(X_CREDENTIALS["consumer_key"])
    with pytest.raises(PermanentError) as caught:
        adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    assert caught.value.reason == "client_not_enrolled"
    check = adapter.check()
    assert (check.healthy, check.reason) == (False, "client_not_enrolled")


@pytest.mark.parametrize(
    ("text", "reason"),
    [("a" * 281, "too_long"), ("", "invalid_request")],
)
def test_texts_x_refuses(adapter: XAdapter, sandbox: Sandbox, text: str, reason: str) -> None:
    with pytest.raises(PermanentError) as caught:
        adapter.publish(_text_post(text), idempotency_key="delivery-1")
    assert caught.value.reason == reason
    assert sandbox.posts("x") == []


# --- transport, secrets, health ------------------------------------------------------------------
def test_check_reports_a_working_account_and_an_unreachable_one(
    make_adapter: AdapterFactory, closed_port_url: str
) -> None:
    check = make_adapter().check()
    assert (check.healthy, check.reason, check.token_expires_at) == (True, "ok", None)
    unreachable = make_adapter(api_base=closed_port_url).check()
    assert (unreachable.healthy, unreachable.reason) == (False, "connection_error")


def test_no_credential_reaches_an_error_or_a_log(
    make_adapter: AdapterFactory,
    sandbox: Sandbox,
    announcement: Announcement,
    caplog: pytest.LogCaptureFixture,
    assert_secret_absent: Callable[[BaseException, str], None],
) -> None:
    """The Authorization header names the consumer key and the token; oauthlib and requests_oauthlib
    print it (and the signing steps) at debug level."""
    caplog.set_level(logging.DEBUG)
    adapter = make_adapter()
    adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    sandbox.revoke_token("x", X_CREDENTIALS["access_token"])
    with pytest.raises(AuthError) as caught:
        adapter.publish(_text_post("Altro avviso"), idempotency_key="delivery-2")

    logged = "\n".join(record.getMessage() for record in caplog.records)
    for value in X_CREDENTIALS.values():
        assert value not in logged
        assert_secret_absent(caught.value, value)


@pytest.mark.usefixtures("no_secrets_file")
def test_an_unreadable_secret_is_retryable_and_names_only_its_reference(
    sandbox: Sandbox, session: requests.Session, announcement: Announcement, monkeypatch: pytest.MonkeyPatch
) -> None:
    for field, variable in ENV.items():
        monkeypatch.setenv(variable, X_CREDENTIALS[field])
    monkeypatch.delenv(ENV["access_token_secret"])
    channel = XChannel(
        id="x",
        platform="x",
        api_base=sandbox.base_for("x"),
        **{field: f"env:{variable}" for field, variable in ENV.items()},
    )
    adapter = adapter_for(channel, session=session)
    with pytest.raises(RetryableError) as caught:
        adapter.publish(adapter.render(announcement), idempotency_key=f"delivery-{uuid.uuid4()}")
    assert caught.value.reason == "secret_unavailable"
    assert ENV["access_token_secret"] in str(caught.value)
    assert sandbox.stats()["requests"] == {}
