"""The Bluesky adapter over real HTTP against the sandbox's Bluesky fake (a PDS): sessions created once
and renewed, facets on the right bytes, link cards and images, threads and replies, exactly-once
through client-chosen record keys, and what XRPC's errors mean here beyond the families every adapter
maps alike (test_channel_errors)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
import requests

from chalicelib.announcements import Announcement, Image
from chalicelib.channels.atproto import PostRef, SessionCache, record_key
from chalicelib.channels.base import (
    AuthError,
    PermanentError,
    PostResult,
    RateLimited,
    RenderedPost,
    RetryableError,
)
from chalicelib.channels.bluesky import BlueskyAdapter
from chalicelib.channels.registry import adapter_for
from chalicelib.config.models import BlueskyChannel
from chalicelib.observability import SERVICE
from devtools.sandbox import Sandbox
from devtools.sandbox.bluesky import BlueskyFake
from tests.feedserver import FeedServer
from tests.integration.channel_support import BLUESKY_HANDLE, BLUESKY_PASSWORD, IMAGES
from tests.sample_images import png

PASSWORD_ENV = "BANDITORE_TEST_BLUESKY_APP_PASSWORD"
KEY = "banditore-comune-prova-20261122T081500abcd1234-bluesky"
LINK_FACET = "app.bsky.richtext.facet#link"
TAG_FACET = "app.bsky.richtext.facet#tag"


@pytest.fixture
def fake(sandbox: Sandbox) -> BlueskyFake:
    return sandbox.fake("bluesky", BlueskyFake)


@pytest.fixture
def sessions() -> SessionCache:
    """A fresh process cache: no session from other tests."""
    return SessionCache()


AdapterFactory = Callable[..., BlueskyAdapter]


@pytest.fixture
def make_adapter(
    sandbox: Sandbox, session: requests.Session, sessions: SessionCache, fast_timeout: tuple[float, float]
) -> AdapterFactory:
    def make(**overrides: Any) -> BlueskyAdapter:
        options: dict[str, Any] = {
            "identifier": BLUESKY_HANDLE,
            "password": lambda: BLUESKY_PASSWORD,
            "session": session,
            "service": sandbox.base_for("bluesky"),
            "timeout": fast_timeout,
            "sessions": sessions,
        }
        return BlueskyAdapter(**(options | overrides))

    return make


@pytest.fixture
def adapter(make_adapter: AdapterFactory) -> BlueskyAdapter:
    return make_adapter()


def _publish(
    adapter: BlueskyAdapter, announcement: Announcement, key: str = KEY, reply_to: str | None = None
) -> PostResult:
    return adapter.publish(adapter.render(announcement), idempotency_key=key, reply_to=reply_to)


def _record(fake: BlueskyFake, result: PostResult) -> dict[str, Any]:
    found = fake.record(PostRef.decode(result.remote_id).uri)
    assert found is not None
    return found["value"]


def _covered(text: str, facet: dict[str, Any]) -> str:
    return text.encode()[facet["index"]["byteStart"] : facet["index"]["byteEnd"]].decode()


# -- success --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_secrets_file")
def test_publish_through_the_registry_posts_the_record_with_exact_facets(
    sandbox: Sandbox,
    session: requests.Session,
    announcement: Announcement,
    fake: BlueskyFake,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, BLUESKY_PASSWORD)
    channel = BlueskyChannel(
        id="bluesky",
        platform="bluesky",
        handle=BLUESKY_HANDLE,
        app_password=f"env:{PASSWORD_ENV}",
        service=sandbox.base_for("bluesky"),
    )
    adapter = adapter_for(channel, session=session)
    rendered = adapter.render(announcement)
    result = adapter.publish(rendered, idempotency_key=KEY)

    [post] = sandbox.posts("bluesky")
    rkey = record_key(KEY, 0)
    assert post["id"] == rkey
    assert result.url == f"https://bsky.app/profile/{BLUESKY_HANDLE}/post/{rkey}"
    assert PostRef.decode(result.remote_id).cid == post["options"]["cid"]
    record = _record(fake, result)
    text = (
        "Lavori in via Roma: strada chiusa\n\n"
        "Da lunedì 24 novembre via Roma è chiusa al traffico per il rifacimento dell'asfalto.\n\n"
        "comune.example.it/notizie/lavor…\n\n"
        "#LavoriPubblici #Viabilità"
    )
    assert record["text"] == text
    assert record["langs"] == ["it"]
    # Byte offsets, written out: "ì", "è" (2 bytes each) put bytes ahead of characters.
    link_start = len(
        "Lavori in via Roma: strada chiusa\n\nDa lunedì 24 novembre via Roma è chiusa al traffico "
    )
    link_start += len("per il rifacimento dell'asfalto.\n\n") + 2
    tags_start = link_start + len("comune.example.it/notizie/lavor…".encode()) + 2
    assert record["facets"] == [
        {
            "index": {"byteStart": link_start, "byteEnd": tags_start - 2},
            "features": [{"$type": LINK_FACET, "uri": announcement.link}],
        },
        {
            "index": {"byteStart": tags_start, "byteEnd": tags_start + 15},
            "features": [{"$type": TAG_FACET, "tag": "LavoriPubblici"}],
        },
        {
            "index": {"byteStart": tags_start + 16, "byteEnd": tags_start + 16 + 11},
            "features": [{"$type": TAG_FACET, "tag": "Viabilità"}],
        },
    ]
    assert [_covered(text, facet) for facet in record["facets"]] == [
        "comune.example.it/notizie/lavor…",
        "#LavoriPubblici",
        "#Viabilità",
    ]
    assert record["embed"] == {
        "$type": "app.bsky.embed.external",
        "external": {
            "uri": announcement.link,
            "title": announcement.title,
            "description": announcement.summary,
        },
    }


def test_link_card_takes_the_image_as_thumbnail(
    adapter: BlueskyAdapter,
    announcement: Announcement,
    fake: BlueskyFake,
    sandbox: Sandbox,
    images: FeedServer,
) -> None:
    with_image = replace(announcement, image=Image(url=images.url("/foto.png"), alt="Cantiere in via Roma"))
    record = _record(fake, _publish(adapter, with_image))
    thumb = record["embed"]["external"]["thumb"]
    assert thumb["$type"] == "blob"
    assert thumb["mimeType"] == "image/png"
    assert thumb["size"] == len(IMAGES["/foto.png"])
    assert sandbox.stats()["requests"]["bluesky"]["uploadBlob"] == 1


def test_without_a_link_the_image_goes_with_its_alt_text(
    adapter: BlueskyAdapter, announcement: Announcement, fake: BlueskyFake, images: FeedServer
) -> None:
    image_only = replace(announcement, link=None, image=Image(url=images.url("/foto.png"), alt="Cantiere"))
    record = _record(fake, _publish(adapter, image_only))
    [image] = record["embed"]["images"]
    assert record["embed"]["$type"] == "app.bsky.embed.images"
    assert image["alt"] == "Cantiere"
    assert image["aspectRatio"] == {"width": 40, "height": 30}
    assert image["image"]["mimeType"] == "image/png"


@pytest.mark.parametrize("problem", ["missing", "too_large"])
def test_an_unusable_image_never_stops_the_post(
    adapter: BlueskyAdapter, announcement: Announcement, fake: BlueskyFake, images: FeedServer, problem: str
) -> None:
    images.routes["/grande.png"] = (200, {"Content-Type": "image/png"}, png(1200, 1000) + b"\x00" * 1_000_000)
    path = "/manca.png" if problem == "missing" else "/grande.png"
    record = _record(fake, _publish(adapter, replace(announcement, image=Image(url=images.url(path)))))
    assert "thumb" not in record["embed"]["external"]


def test_image_refused_by_the_pds_never_stops_the_post(
    adapter: BlueskyAdapter,
    announcement: Announcement,
    fake: BlueskyFake,
    sandbox: Sandbox,
    images: FeedServer,
) -> None:
    sandbox.inject("bluesky", "server_error", endpoint="uploadBlob")
    image_only = replace(announcement, link=None, image=Image(url=images.url("/foto.png"), alt="Cantiere"))
    record = _record(fake, _publish(adapter, image_only))
    assert "embed" not in record


def test_long_text_goes_out_as_a_chain_of_replies(
    adapter: BlueskyAdapter, announcement: Announcement, fake: BlueskyFake, sandbox: Sandbox
) -> None:
    long = replace(announcement, summary="Il cantiere durerà tre settimane, con deviazioni. " * 14)
    result = _publish(adapter, long)
    posts = sandbox.posts("bluesky")
    assert len(posts) == 3
    first, second, third = (post["options"] for post in posts)
    assert result.remote_id == PostRef.decode(result.remote_id).encode()
    assert first["uri"] == PostRef.decode(result.remote_id).uri
    assert "reply" not in first
    root = {"uri": first["uri"], "cid": first["cid"]}
    assert second["reply"] == {"root": root, "parent": root}
    assert third["reply"] == {"root": root, "parent": {"uri": second["uri"], "cid": second["cid"]}}
    assert "embed" in first and "embed" not in second and "embed" not in third
    assert [post["id"] for post in posts] == [record_key(KEY, index) for index in range(3)]


def test_a_reply_names_the_post_and_its_thread_root(
    adapter: BlueskyAdapter, announcement: Announcement, fake: BlueskyFake
) -> None:
    first = _publish(adapter, announcement, "delivery-1")
    second = _publish(adapter, announcement, "delivery-2", reply_to=first.remote_id)
    third = _publish(adapter, announcement, "delivery-3", reply_to=second.remote_id)
    root = PostRef.decode(first.remote_id).strong_ref()
    assert _record(fake, second)["reply"] == {"root": root, "parent": root}
    assert _record(fake, third)["reply"] == {
        "root": root,
        "parent": PostRef.decode(second.remote_id).strong_ref(),
    }


# -- sessions ---------------------------------------------------------------------------------------


def test_one_session_serves_many_publishes_and_adapters(
    make_adapter: AdapterFactory, announcement: Announcement, fake: BlueskyFake, sandbox: Sandbox
) -> None:
    adapters = [make_adapter() for _ in range(4)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(lambda n: _publish(adapters[n % 4], announcement, f"delivery-{n}"), range(16))
        )
    assert len({result.remote_id for result in results}) == 16
    assert fake.sessions_created(BLUESKY_HANDLE) == 1
    assert sandbox.stats()["requests"]["bluesky"]["createSession"] == 1


def test_expired_access_token_is_refreshed_then_the_post_made(
    adapter: BlueskyAdapter, announcement: Announcement, fake: BlueskyFake, sandbox: Sandbox
) -> None:
    _publish(adapter, announcement, "delivery-1")
    fake.expire_access_tokens()
    _publish(adapter, announcement, "delivery-2")
    requests_made = sandbox.stats()["requests"]["bluesky"]
    assert (requests_made["createSession"], requests_made["refreshSession"]) == (1, 1)
    assert requests_made["createRecord"] == 3  # one refused with ExpiredToken, made again after refresh
    assert len(sandbox.posts("bluesky")) == 2


def test_dead_refresh_token_means_one_new_session(
    adapter: BlueskyAdapter, announcement: Announcement, fake: BlueskyFake, sandbox: Sandbox
) -> None:
    _publish(adapter, announcement, "delivery-1")
    fake.expire_access_tokens()
    sandbox.inject("bluesky", "expired_token", endpoint="refreshSession")
    _publish(adapter, announcement, "delivery-2")
    assert fake.sessions_created(BLUESKY_HANDLE) == 2
    assert len(sandbox.posts("bluesky")) == 2


def test_wrong_or_revoked_app_password_is_an_auth_error(
    adapter: BlueskyAdapter,
    announcement: Announcement,
    sandbox: Sandbox,
    assert_secret_absent: Callable[[BaseException, str], None],
) -> None:
    sandbox.revoke_token("bluesky", BLUESKY_PASSWORD)
    with pytest.raises(AuthError) as caught:
        _publish(adapter, announcement)
    assert "Invalid identifier or password" in str(caught.value)
    assert_secret_absent(caught.value, BLUESKY_PASSWORD)
    assert sandbox.posts() == []


def test_revoked_password_is_found_when_the_session_must_be_renewed(
    adapter: BlueskyAdapter, announcement: Announcement, fake: BlueskyFake, sandbox: Sandbox
) -> None:
    _publish(adapter, announcement, "delivery-1")
    sandbox.revoke_token("bluesky", BLUESKY_PASSWORD)
    _publish(adapter, announcement, "delivery-2")  # the access token lives on, as on a real PDS
    fake.expire_access_tokens()
    with pytest.raises(AuthError):
        _publish(adapter, announcement, "delivery-3")
    with pytest.raises(AuthError):  # no dead session kept: the next try logs in again, and fails
        _publish(adapter, announcement, "delivery-3")
    assert sandbox.stats()["requests"]["bluesky"]["createSession"] == 3
    assert len(sandbox.posts("bluesky")) == 2


class Recorder(logging.Handler):
    """Every record as a handler sees it: the message and all its extra fields."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(f"{record.getMessage()} {record.__dict__}")


def test_tokens_and_password_never_reach_the_logs(
    adapter: BlueskyAdapter, announcement: Announcement, fake: BlueskyFake
) -> None:
    recorder = Recorder()
    loggers = [logging.getLogger(SERVICE), logging.getLogger("urllib3")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.addHandler(recorder)
        log.setLevel(logging.DEBUG)
    try:
        _publish(adapter, announcement, "delivery-1")
        fake.expire_access_tokens()
        _publish(adapter, announcement, "delivery-2")
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.removeHandler(recorder)
            log.setLevel(level)
    assert any("Bluesky session created" in line for line in recorder.seen)
    for secret in (BLUESKY_PASSWORD, "sandbox-access.", "sandbox-refresh."):
        assert not [line for line in recorder.seen if secret in line]


def test_creating_sessions_beyond_the_limit_is_rate_limited(
    make_adapter: AdapterFactory, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox.state, "enforce_rate_limits", True)
    checks = [make_adapter(sessions=SessionCache()).check() for _ in range(31)]
    assert all(check.healthy for check in checks[:30])
    assert checks[30].reason == "rate_limited"
    with pytest.raises(RateLimited) as caught:
        make_adapter(sessions=SessionCache()).publish(
            RenderedPost(text="Prova", length=5, limit=300, truncated=False), idempotency_key=KEY
        )
    assert caught.value.retry_after is not None
    assert 290 <= caught.value.retry_after <= 300


# -- exactly once ---------------------------------------------------------------------------------


def test_answer_lost_after_commit_is_not_a_duplicate_on_retry(
    adapter: BlueskyAdapter, announcement: Announcement, sandbox: Sandbox, slow_answer: float
) -> None:
    sandbox.inject("bluesky", "hang_after_commit", delay=slow_answer)
    with pytest.raises(RetryableError) as caught:
        _publish(adapter, announcement)
    assert caught.value.reason == "timeout"
    result = _publish(adapter, announcement)
    [post] = sandbox.posts("bluesky")
    assert PostRef.decode(result.remote_id).rkey == post["id"]
    assert PostRef.decode(result.remote_id).cid == post["options"]["cid"]
    assert sandbox.stats()["idempotent_replays"] == {"bluesky": 1}


def test_a_whole_thread_published_again_is_not_duplicated(
    adapter: BlueskyAdapter, announcement: Announcement, sandbox: Sandbox
) -> None:
    long = replace(announcement, summary="Il cantiere durerà tre settimane, con deviazioni. " * 14)
    first = _publish(adapter, long)
    again = _publish(adapter, long)
    assert again == first
    assert len(sandbox.posts("bluesky")) == 3


# -- errors (the families every adapter maps are in test_channel_errors) ---------------------------


def test_reset_in_the_past_means_retry_now(
    make_adapter: AdapterFactory, announcement: Announcement, sandbox: Sandbox
) -> None:
    adapter = make_adapter(clock=lambda: 32_503_680_000.0)  # year 3000
    sandbox.inject("bluesky", "rate_limit", retry_after=60)
    with pytest.raises(RateLimited) as caught:
        _publish(adapter, announcement)
    assert caught.value.retry_after == 0.0


def test_a_one_off_expired_token_answer_is_recovered(
    adapter: BlueskyAdapter, announcement: Announcement, sandbox: Sandbox
) -> None:
    sandbox.inject("bluesky", "expired_token")
    _publish(adapter, announcement)
    assert len(sandbox.posts("bluesky")) == 1
    assert sandbox.stats()["requests"]["bluesky"]["refreshSession"] == 1


def test_text_over_300_graphemes_is_refused_as_too_long(adapter: BlueskyAdapter, sandbox: Sandbox) -> None:
    text = "è" * 301
    with pytest.raises(PermanentError) as caught:
        adapter.publish(RenderedPost(text=text, length=301, limit=300, truncated=False), idempotency_key=KEY)
    assert caught.value.reason == "too_long"
    assert "300 graphemes" in str(caught.value)
    assert sandbox.posts() == []


def test_wrong_service_path_is_permanent(
    make_adapter: AdapterFactory, announcement: Announcement, sandbox: Sandbox
) -> None:
    adapter = make_adapter(service=f"{sandbox.url}/bluesky/nessuno")
    with pytest.raises(PermanentError) as caught:
        _publish(adapter, announcement)
    assert caught.value.reason == "http_404"


# -- health and preview -------------------------------------------------------------------------------


def test_check_reads_the_session_without_a_new_login(
    adapter: BlueskyAdapter, announcement: Announcement, fake: BlueskyFake
) -> None:
    _publish(adapter, announcement)
    check = adapter.check()
    assert (check.healthy, check.reason, check.token_expires_at) == (True, "ok", None)
    assert fake.sessions_created(BLUESKY_HANDLE) == 1


def test_check_reports_a_revoked_app_password(adapter: BlueskyAdapter, sandbox: Sandbox) -> None:
    sandbox.revoke_token("bluesky", BLUESKY_PASSWORD)
    check = adapter.check()
    assert (check.healthy, check.reason) == (False, "auth")
    assert BLUESKY_PASSWORD not in check.detail


def test_a_reply_target_of_another_platform_posts_outside_the_thread(
    adapter: BlueskyAdapter, announcement: Announcement, fake: BlueskyFake
) -> None:
    result = _publish(adapter, announcement, reply_to="-1001234567890:42")
    assert "reply" not in _record(fake, result)
