"""The Facebook Page adapter over real HTTP against the sandbox's Graph fake: feed posts with their link,
photo posts with alt text, comments as replies, Facebook's duplicate refusal, the token's health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from pydantic import HttpUrl

from chalicelib.announcements import Announcement
from chalicelib.channels.base import PermanentError, PostGone, PostImage, PostResult, RetryableError
from chalicelib.channels.facebook import FacebookAdapter
from chalicelib.channels.registry import adapter_for
from chalicelib.config.models import FacebookChannel
from devtools.sandbox import Sandbox
from tests.feedserver import FeedServer
from tests.integration.channel_support import text_post, with_image
from tests.integration.meta_support import APP_TOKEN, PAGE_ID, TOKEN, facebook_adapter

TOKEN_ENV = "BANDITORE_TEST_FACEBOOK_TOKEN"


@pytest.fixture
def adapter(
    sandbox: Sandbox, session: requests.Session, fast_timeout: tuple[float, float]
) -> FacebookAdapter:
    return facebook_adapter(sandbox, session, fast_timeout)


@pytest.mark.usefixtures("no_secrets_file")
def test_text_post_through_the_registry_goes_to_the_feed_with_its_link(
    sandbox: Sandbox, session: requests.Session, announcement: Announcement, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    channel = FacebookChannel(
        id="facebook",
        platform="facebook",
        page_id=PAGE_ID,
        token=f"env:{TOKEN_ENV}",
        api_base=HttpUrl(sandbox.base_for("facebook")),
    )
    adapter = adapter_for(channel, session=session)
    rendered = adapter.render(announcement)
    result = adapter.publish(rendered, idempotency_key="delivery-1")

    [post] = sandbox.posts("facebook")
    assert result == PostResult(remote_id=post["id"], url=f"https://www.facebook.com/{post['id']}")
    assert result.remote_id.startswith(f"{PAGE_ID}_")
    assert post["text"] == rendered.text
    assert post["options"] == {"link": announcement.link}
    assert sandbox.stats()["requests"]["facebook"] == {"feed": 1}


def test_post_with_an_image_is_a_photo_post_with_alt_text(
    adapter: FacebookAdapter, sandbox: Sandbox, announcement: Announcement, images: FeedServer
) -> None:
    url = images.url("/square.jpg")
    rendered = adapter.render(with_image(announcement, url, alt="Cantiere in via Roma"))
    result = adapter.publish(rendered, idempotency_key="delivery-1")

    [post] = sandbox.posts("facebook")
    assert result.remote_id == post["id"]  # the feed story's "{page}_{post}", not the photo's id
    assert post["text"] == rendered.text  # the caption carries the link, a photo has no link card
    assert post["options"] == {"image_url": url, "alt_text_custom": "Cantiere in via Roma"}
    assert sandbox.stats()["requests"]["facebook"] == {"photos": 1}


def test_an_image_facebook_refuses_does_not_lose_the_post(adapter: FacebookAdapter, sandbox: Sandbox) -> None:
    post = text_post("Avviso", image=PostImage(url="ftp://comune.example.it/foto.jpg", alt="Foto"))
    result = adapter.publish(post, idempotency_key="delivery-1")

    [recorded] = sandbox.posts("facebook")
    assert result.remote_id == recorded["id"]
    assert recorded["options"] == {}
    assert sandbox.stats()["requests"]["facebook"] == {"photos": 1, "feed": 1}


def test_photo_faults_are_classified_like_feed_ones(
    adapter: FacebookAdapter, sandbox: Sandbox, announcement: Announcement, images: FeedServer
) -> None:
    sandbox.inject("facebook", "server_error", endpoint="photos")
    rendered = adapter.render(with_image(announcement, images.url("/square.jpg")))
    with pytest.raises(RetryableError) as caught:
        adapter.publish(rendered, idempotency_key="delivery-1")
    assert caught.value.reason == "server_error"
    assert sandbox.posts() == []


def test_replies_are_comments_under_the_first_post(
    adapter: FacebookAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    first = adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    reply = adapter.publish(
        text_post("Aggiornamento"), idempotency_key="delivery-2", reply_to=first.remote_id
    )
    # A reply to the reply still goes under the first post: comments do not nest further.
    again = adapter.publish(text_post("Riapertura"), idempotency_key="delivery-3", reply_to=reply.remote_id)

    posts = {post["id"]: post for post in sandbox.posts("facebook")}
    for result in (reply, again):
        root, _, comment = result.remote_id.partition(":")
        assert root == first.remote_id
        assert posts[comment]["options"] == {"reply_to": first.remote_id}
        assert result.url == first.url
    assert sandbox.stats()["requests"]["facebook"] == {"feed": 1, "comments": 2}


def test_a_reply_to_a_post_that_is_gone_is_post_gone(adapter: FacebookAdapter) -> None:
    # Nothing posted: the publisher then posts it on its own (tests/integration/test_alert_edits.py).
    with pytest.raises(PostGone) as caught:
        adapter.publish(text_post("Aggiornamento"), idempotency_key="d", reply_to=f"{PAGE_ID}_404")
    assert "100/33" in str(caught.value)


def test_the_same_message_twice_in_a_row_is_a_duplicate(
    adapter: FacebookAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    """What a retry after a lost answer meets: the first attempt went through."""
    rendered = adapter.render(announcement)
    adapter.publish(rendered, idempotency_key="delivery-1")
    with pytest.raises(PermanentError) as caught:
        adapter.publish(rendered, idempotency_key="delivery-1")
    assert caught.value.reason == "duplicate"
    assert "506" in str(caught.value)
    assert len(sandbox.posts("facebook")) == 1


def test_check_with_an_app_token_reads_the_page_token_expiry_from_debug_token(
    sandbox: Sandbox, session: requests.Session, fast_timeout: tuple[float, float]
) -> None:
    adapter = facebook_adapter(
        sandbox, session, fast_timeout, token="expiring-page-token-0123", app_token=APP_TOKEN
    )
    check = adapter.check()
    assert (check.healthy, check.reason) == (True, "ok")
    assert check.token_expires_at is not None
    in_five_days = datetime.now(UTC) + timedelta(days=5)
    assert abs(check.token_expires_at - in_five_days) < timedelta(minutes=1)
    assert sandbox.stats()["requests"]["facebook"] == {"debug_token": 1}


def test_a_never_expiring_page_token_reports_its_data_access_expiry(
    sandbox: Sandbox, session: requests.Session, fast_timeout: tuple[float, float]
) -> None:
    check = facebook_adapter(sandbox, session, fast_timeout, app_token=APP_TOKEN).check()
    assert check.healthy
    assert check.token_expires_at is not None
    assert check.token_expires_at > datetime.now(UTC) + timedelta(days=89)


def test_debug_token_reports_a_revoked_page_token(
    sandbox: Sandbox, session: requests.Session, fast_timeout: tuple[float, float]
) -> None:
    sandbox.revoke_token("facebook", TOKEN)
    check = facebook_adapter(sandbox, session, fast_timeout, app_token=APP_TOKEN).check()
    assert (check.healthy, check.reason) == (False, "auth")
    assert "invalidated" in check.detail
    assert TOKEN not in check.detail
    assert APP_TOKEN not in check.detail


def test_a_refused_app_token_falls_back_to_the_page_token_check(
    sandbox: Sandbox, session: requests.Session, fast_timeout: tuple[float, float]
) -> None:
    """A broken app token says nothing about the Page token: /me decides the channel's health."""
    sandbox.revoke_token("facebook", APP_TOKEN)
    check = facebook_adapter(sandbox, session, fast_timeout, app_token=APP_TOKEN).check()
    assert (check.healthy, check.reason) == (True, "ok")
    assert sandbox.stats()["requests"]["facebook"] == {"debug_token": 1, "me": 1}


def test_an_expired_page_token_makes_me_unhealthy(adapter: FacebookAdapter, sandbox: Sandbox) -> None:
    sandbox.inject("facebook", "expired_token", endpoint="me")
    check = adapter.check()
    assert (check.healthy, check.reason) == (False, "auth")
    assert "190/463" in check.detail
