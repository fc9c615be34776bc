"""The Mastodon adapter over real HTTP against the sandbox's Mastodon fake: limits, idempotency, errors,
threads and images."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from chalicelib.announcements import Announcement
from chalicelib.channels.base import (
    AuthError,
    PermanentError,
    PostGone,
    PostResult,
    RateLimited,
    RetryableError,
)
from chalicelib.channels.mastodon import InstanceLimitsCache, MastodonAdapter
from chalicelib.channels.media import ALLOW_PRIVATE_ENV
from chalicelib.channels.registry import adapter_for
from chalicelib.config.models import MastodonChannel
from chalicelib.http import TIMEOUT
from devtools.sandbox import Sandbox
from devtools.sandbox.faults import Fault
from tests.feedserver import FeedServer
from tests.integration.channel_support import IMAGES, MASTODON_TOKEN, text_post, with_image

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
        token=lambda: MASTODON_TOKEN,
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


@pytest.mark.usefixtures("no_secrets_file")
def test_publish_through_the_registry_posts_the_status(
    sandbox: Sandbox, session: requests.Session, announcement: Announcement, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, MASTODON_TOKEN)
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
    assert 990 <= rendered.length <= 1000  # the first post was filled to the instance's limit, not 500
    adapter.publish(rendered, idempotency_key="delivery-1")
    assert len(sandbox.posts()) == 1 + len(rendered.thread) == 3  # the fake took each as within 1000


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


def test_reset_in_the_past_means_retry_now(
    sandbox: Sandbox, session: requests.Session, announcement: Announcement
) -> None:
    adapter = MastodonAdapter(
        instance=sandbox.mastodon_instance,
        token=lambda: MASTODON_TOKEN,
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
        headers={"Authorization": f"Bearer {MASTODON_TOKEN}"},
        timeout=5,
    )
    assert answer.status_code == 200
    assert answer.headers["X-RateLimit-Limit"] == "300"
    assert datetime.fromisoformat(answer.headers["X-RateLimit-Reset"]) > datetime.now(UTC)


def test_revoked_token_is_an_auth_error(
    adapter: MastodonAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    sandbox.revoke_token("mastodon", MASTODON_TOKEN)
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
        adapter.publish(text_post("è" * 501), idempotency_key="delivery-1")
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


# --- threads ----------------------------------------------------------------------------------------


def _long(announcement: Announcement, words: int = 150) -> Announcement:
    """A summary of `words` words: 150 need three statuses of 500 characters."""
    return replace(announcement, summary=" ".join(f"parola{n}" for n in range(words)))


def _seed_striking_only_the_second_call() -> int:
    """A fault seed whose draws spare the first call and strike the second (asked of Fault itself)."""
    for seed in range(1000):
        probe = Fault(platform="mastodon", kind="hang_after_commit", rate=0.5, seed=seed, endpoint="statuses")
        if [probe.strikes("mastodon", "statuses") for _ in range(2)] == [False, True]:
            return seed
    raise AssertionError("no such seed")


def test_a_long_text_goes_out_as_a_chain_of_replies(
    adapter: MastodonAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    parent = _publish(adapter, announcement, "earlier")
    rendered = adapter.render(_long(announcement))
    result = adapter.publish(rendered, idempotency_key="delivery-1", reply_to=parent.remote_id)

    _, *posts = sandbox.posts("mastodon")
    assert [post["text"] for post in posts] == [rendered.text, *rendered.thread]
    assert [post["text"][-6:] for post in posts] == [" (1/3)", " (2/3)", " (3/3)"]
    assert [post["idempotency_key"] for post in posts] == ["delivery-1", "delivery-1/1", "delivery-1/2"]
    parents = [post["options"]["in_reply_to_id"] for post in posts]
    assert parents == [parent.remote_id, posts[0]["id"], posts[1]["id"]]
    assert result == PostResult(remote_id=posts[0]["id"], url=posts[0]["url"])
    assert announcement.link in posts[0]["text"].split()


def test_a_repeated_thread_posts_nothing_new(
    adapter: MastodonAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    rendered = adapter.render(_long(announcement))
    first = adapter.publish(rendered, idempotency_key="delivery-1")
    again = adapter.publish(rendered, idempotency_key="delivery-1")
    assert again == first
    assert len(sandbox.posts()) == 3
    assert sandbox.stats()["idempotent_replays"] == {"mastodon": 3}


def test_a_thread_cut_short_by_a_lost_answer_is_completed_by_the_retry_without_duplicates(
    adapter: MastodonAdapter, sandbox: Sandbox, announcement: Announcement, slow_answer: float
) -> None:
    rendered = adapter.render(_long(announcement))
    sandbox.inject(
        "mastodon",
        "hang_after_commit",
        rate=0.5,
        seed=_seed_striking_only_the_second_call(),
        delay=slow_answer,
    )
    with pytest.raises(RetryableError):
        adapter.publish(rendered, idempotency_key="delivery-1")
    assert len(sandbox.posts()) == 2  # the second reply was made, its answer lost
    sandbox.clear_faults()

    result = adapter.publish(rendered, idempotency_key="delivery-1")
    posts = sandbox.posts()
    assert [post["text"] for post in posts] == [rendered.text, *rendered.thread]
    assert [post["options"].get("in_reply_to_id") for post in posts] == [None, posts[0]["id"], posts[1]["id"]]
    assert result.remote_id == posts[0]["id"]
    assert sandbox.stats()["idempotent_replays"] == {"mastodon": 2}


@pytest.mark.usefixtures("no_secrets_file")
def test_max_thread_posts_comes_from_the_channel(
    sandbox: Sandbox, session: requests.Session, announcement: Announcement, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, MASTODON_TOKEN)
    channel = MastodonChannel(
        id="mastodon",
        platform="mastodon",
        instance=sandbox.mastodon_instance,
        token=f"env:{TOKEN_ENV}",
        max_thread_posts=1,
    )
    adapter = adapter_for(channel, session=session)
    rendered = adapter.render(_long(announcement))
    assert (rendered.thread, rendered.truncated) == ((), True)
    adapter.publish(rendered, idempotency_key="delivery-1")
    assert len(sandbox.posts()) == 1


def test_a_reply_to_a_deleted_status_is_post_gone_and_posts_nothing(
    adapter: MastodonAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    # The publisher then posts it on its own (tests/integration/test_alert_edits.py).
    with pytest.raises(PostGone):
        adapter.publish(adapter.render(announcement), idempotency_key="delivery-1", reply_to="1")
    assert sandbox.posts() == []
    assert sandbox.stats()["requests"]["mastodon"]["statuses"] == 1


# --- images -----------------------------------------------------------------------------------------

IMAGE = IMAGES["/foto.png"]
ALT = "Il cantiere in via Roma"


def _media_adapter(sandbox: Sandbox, session: requests.Session, **options: Any) -> MastodonAdapter:
    return MastodonAdapter(
        instance=sandbox.mastodon_instance,
        token=lambda: MASTODON_TOKEN,
        session=session,
        limits_cache=InstanceLimitsCache(),
        **options,
    )


def test_the_image_is_uploaded_with_its_alt_text_and_attached_to_the_first_post_only(
    adapter: MastodonAdapter, sandbox: Sandbox, announcement: Announcement, images: FeedServer
) -> None:
    rendered = adapter.render(with_image(_long(announcement), images.url("/foto.png"), ALT))
    adapter.publish(rendered, idempotency_key="delivery-1")

    first, *replies = sandbox.posts("mastodon")
    [attached] = first["options"]["media"]
    assert attached["type"] == "image/png"
    assert attached["description"] == "Il cantiere in via Roma"
    assert all("media" not in reply["options"] for reply in replies)
    assert len(replies) == 2
    assert requests.get(attached["url"], timeout=5).content == IMAGE  # the bytes the feed's host served


def test_an_image_still_processing_is_polled_until_ready(
    sandbox: Sandbox, session: requests.Session, announcement: Announcement, images: FeedServer
) -> None:
    sandbox.mastodon.media_async, sandbox.mastodon.media_pending_polls = True, 2
    adapter = _media_adapter(sandbox, session, media_poll_interval=0.01)
    adapter.publish(
        adapter.render(with_image(announcement, images.url("/foto.png"), ALT)), idempotency_key="d"
    )
    [post] = sandbox.posts()
    assert len(post["options"]["media"]) == 1
    assert sandbox.stats()["requests"]["mastodon"]["media_status"] == 3  # 206, 206, then 200


def test_an_image_not_ready_in_time_is_left_out(
    sandbox: Sandbox, session: requests.Session, announcement: Announcement, images: FeedServer
) -> None:
    sandbox.mastodon.media_async, sandbox.mastodon.media_pending_polls = True, 1000
    adapter = _media_adapter(sandbox, session, media_wait=0.2, media_poll_interval=0.05)
    adapter.publish(
        adapter.render(with_image(announcement, images.url("/foto.png"), ALT)), idempotency_key="d"
    )
    [post] = sandbox.posts()
    assert "media" not in post["options"]
    assert 1 <= sandbox.stats()["requests"]["mastodon"]["media_status"] <= 4  # bounded, then given up


@pytest.mark.parametrize("path", ["/manca.png", "/pagina.html"])
def test_an_unusable_image_is_left_out_without_an_upload(
    adapter: MastodonAdapter, sandbox: Sandbox, announcement: Announcement, images: FeedServer, path: str
) -> None:
    images.routes["/pagina.html"] = (200, {"Content-Type": "image/jpeg"}, b"<html>Pagina</html>")
    adapter.publish(adapter.render(with_image(announcement, images.url(path), ALT)), idempotency_key="d")
    [post] = sandbox.posts()
    assert "media" not in post["options"]
    assert "media" not in sandbox.stats()["requests"]["mastodon"]


def test_an_image_from_a_private_address_is_left_out_outside_the_local_stack(
    adapter: MastodonAdapter,
    sandbox: Sandbox,
    announcement: Announcement,
    images: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ALLOW_PRIVATE_ENV)
    adapter.publish(
        adapter.render(with_image(announcement, images.url("/foto.png"), ALT)), idempotency_key="d"
    )
    assert "media" not in sandbox.posts()[0]["options"]
    assert images.hits["/foto.png"] == 0


def test_the_instance_image_size_limit_is_respected(
    adapter: MastodonAdapter, sandbox: Sandbox, announcement: Announcement, images: FeedServer
) -> None:
    sandbox.mastodon.image_size_limit = len(IMAGE) - 1
    adapter.publish(
        adapter.render(with_image(announcement, images.url("/foto.png"), ALT)), idempotency_key="d"
    )
    assert "media" not in sandbox.posts()[0]["options"]
    assert "media" not in sandbox.stats()["requests"]["mastodon"]


def test_a_failed_upload_leaves_the_image_out_but_posts(
    adapter: MastodonAdapter, sandbox: Sandbox, announcement: Announcement, images: FeedServer
) -> None:
    sandbox.inject("mastodon", "server_error", endpoint="media")
    adapter.publish(
        adapter.render(with_image(announcement, images.url("/foto.png"), ALT)), idempotency_key="d"
    )
    [post] = sandbox.posts()
    assert "media" not in post["options"]


def test_a_revoked_token_fails_at_the_upload_and_posts_nothing(
    adapter: MastodonAdapter, sandbox: Sandbox, announcement: Announcement, images: FeedServer
) -> None:
    sandbox.revoke_token("mastodon", MASTODON_TOKEN)
    with pytest.raises(AuthError):
        adapter.publish(
            adapter.render(with_image(announcement, images.url("/foto.png"), ALT)), idempotency_key="d"
        )
    assert sandbox.posts() == []
    assert "statuses" not in sandbox.stats()["requests"]["mastodon"]


def test_a_long_alt_text_is_cut_to_mastodons_description_limit(
    adapter: MastodonAdapter, sandbox: Sandbox, announcement: Announcement, images: FeedServer
) -> None:
    alt = "Una descrizione molto lunga " * 100
    adapter.publish(
        adapter.render(with_image(announcement, images.url("/foto.png"), alt)), idempotency_key="d"
    )
    [attached] = sandbox.posts()[0]["options"]["media"]
    assert 1400 < len(attached["description"]) <= 1500
    assert attached["description"].endswith("…")


# --- the fake's own checks, as Mastodon answers them ---------------------------------------------------


def _api(sandbox: Sandbox, method: str, path: str, **options: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {MASTODON_TOKEN}"}
    return requests.request(
        method, f"{sandbox.mastodon_instance}{path}", headers=headers, timeout=5, **options
    )


def _upload(sandbox: Sandbox, content: bytes = IMAGE, **data: str) -> requests.Response:
    return _api(sandbox, "POST", "/api/v2/media", files={"file": ("f.png", content, "image/png")}, data=data)


def test_the_instance_announces_its_media_limits(sandbox: Sandbox) -> None:
    media = _api(sandbox, "GET", "/api/v2/instance").json()["configuration"]["media_attachments"]
    assert media["image_size_limit"] == 16 * 1024 * 1024
    assert {"image/jpeg", "image/png", "image/gif", "image/webp"} <= set(media["supported_mime_types"])


@pytest.mark.parametrize(
    ("content", "data", "message"),
    [
        (b"<html></html>", {}, "Validation failed: File content type is invalid, File is invalid"),
        (IMAGE, {"description": "x" * 1501}, "Description is too long (maximum is 1500 characters)"),
    ],
    ids=["not_an_image", "description_too_long"],
)
def test_the_fake_refuses_uploads_mastodon_refuses(
    sandbox: Sandbox, content: bytes, data: dict[str, str], message: str
) -> None:
    answer = _upload(sandbox, content, **data)
    assert answer.status_code == 422
    assert message in answer.json()["error"]


def test_the_fake_refuses_statuses_with_media_it_cannot_attach(sandbox: Sandbox) -> None:
    sandbox.mastodon.media_async = True
    pending = _upload(sandbox)
    assert (pending.status_code, pending.json()["url"]) == (202, None)
    media_id = pending.json()["id"]
    not_ready = _api(sandbox, "POST", "/api/v1/statuses", json={"status": "x", "media_ids": [media_id]})
    assert not_ready.status_code == 422
    assert "have not finished processing" in not_ready.json()["error"]

    assert _api(sandbox, "GET", f"/api/v1/media/{media_id}").status_code == 200  # ready now
    posted = _api(sandbox, "POST", "/api/v1/statuses", json={"status": "x", "media_ids": [media_id]})
    assert posted.status_code == 200
    assert posted.json()["media_attachments"][0]["id"] == media_id
    again = _api(sandbox, "POST", "/api/v1/statuses", json={"status": "y", "media_ids": [media_id, "42"]})
    assert again.status_code == 422
    assert again.json()["error"] == f"Media {media_id}, 42 not found or already attached to another post"


def test_the_fake_refuses_a_reply_to_an_unknown_status(sandbox: Sandbox) -> None:
    answer = _api(sandbox, "POST", "/api/v1/statuses", json={"status": "x", "in_reply_to_id": "12345"})
    assert answer.status_code == 404
    assert answer.json() == {"error": "The post you are trying to reply to does not appear to exist."}
