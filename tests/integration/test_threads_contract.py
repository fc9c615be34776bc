"""The Threads adapter over real HTTP against the sandbox's Threads fake: text and image containers, long
texts as a chain of replies, the 500-character limit as the fake counts it, the token's health."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

import pytest
import requests
from pydantic import HttpUrl

from chalicelib.announcements import Announcement
from chalicelib.channels.base import PermanentError, PostImage, PostResult
from chalicelib.channels.registry import adapter_for
from chalicelib.channels.threads import ThreadsAdapter, threads_length
from chalicelib.config.models import ThreadsChannel
from devtools.sandbox import Sandbox
from devtools.sandbox.meta import ContainerFake, threads_units
from tests.feedserver import FeedServer
from tests.integration.channel_support import text_post, with_image
from tests.integration.meta_support import TOKEN, threads_adapter

TOKEN_ENV = "BANDITORE_TEST_THREADS_TOKEN"


@pytest.fixture
def adapter(sandbox: Sandbox, session: requests.Session, fast_timeout: tuple[float, float]) -> ThreadsAdapter:
    return threads_adapter(sandbox, session, fast_timeout)


@pytest.mark.usefixtures("no_secrets_file")
def test_text_post_through_the_registry(
    sandbox: Sandbox, session: requests.Session, announcement: Announcement, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    channel = ThreadsChannel(
        id="threads",
        platform="threads",
        user_id="me",
        token=f"env:{TOKEN_ENV}",
        api_base=HttpUrl(sandbox.base_for("threads")),
    )
    adapter = adapter_for(channel, session=session)
    rendered = adapter.render(announcement)
    result = adapter.publish(rendered, idempotency_key="delivery-1")

    [post] = sandbox.posts("threads")
    assert result == PostResult(remote_id=post["id"], url=post["url"])
    assert result.url and result.url.startswith("https://www.threads.net/@")
    assert post["text"] == rendered.text
    assert post["options"] == {"media_type": "TEXT"}
    # A text container is ready at once: one status read, then the publish and the permalink.
    assert sandbox.stats()["requests"]["threads"] == {
        "threads": 1,
        "container_status": 1,
        "threads_publish": 1,
        "read": 1,
    }


def test_an_image_post_carries_its_alt_text(
    adapter: ThreadsAdapter, sandbox: Sandbox, announcement: Announcement, images: FeedServer
) -> None:
    url = images.url("/portrait.jpg")  # Threads takes tall images; it fetches them itself
    rendered = adapter.render(with_image(announcement, url, alt="Cantiere in via Roma"))
    adapter.publish(rendered, idempotency_key="delivery-1")

    [post] = sandbox.posts("threads")
    assert post["options"] == {"media_type": "IMAGE", "image_url": url, "alt_text": "Cantiere in via Roma"}
    assert sandbox.stats()["requests"]["threads"]["container_status"] == 2  # IN_PROGRESS, then FINISHED
    assert images.hits["/portrait.jpg"] == 0  # no need to fetch what Threads fetches


def test_an_image_threads_cannot_process_does_not_lose_the_text(
    adapter: ThreadsAdapter, sandbox: Sandbox
) -> None:
    sandbox.fake("threads", ContainerFake).container_outcome = "ERROR"
    post = text_post("Avviso", image=PostImage(url="https://comune.example.it/foto.jpg", alt="Foto"))
    adapter.publish(post, idempotency_key="delivery-1")

    [recorded] = sandbox.posts("threads")
    assert (recorded["text"], recorded["options"]) == ("Avviso", {"media_type": "TEXT"})
    assert sandbox.stats()["requests"]["threads"]["threads"] == 2


def test_a_long_text_is_a_chain_of_replies(
    adapter: ThreadsAdapter, sandbox: Sandbox, announcement: Announcement, images: FeedServer
) -> None:
    long_one = replace(
        with_image(announcement, images.url("/square.jpg")),
        summary="Il cantiere prosegue. " * 60,
    )
    rendered = adapter.render(long_one)
    result = adapter.publish(rendered, idempotency_key="delivery-1")

    posts = sandbox.posts("threads")
    assert [post["text"] for post in posts] == [rendered.text, *rendered.thread]
    assert len(posts) == 3
    assert result.remote_id == posts[0]["id"]
    assert result.url == posts[0]["url"]
    assert posts[0]["options"]["media_type"] == "IMAGE"  # the image goes with the first piece only
    assert "reply_to" not in posts[0]["options"]
    for parent, child in pairwise(posts):
        assert child["options"] == {"media_type": "TEXT", "reply_to": parent["id"]}


def test_a_reply_names_its_parent(
    adapter: ThreadsAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    first = adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    reply = adapter.publish(
        text_post("Aggiornamento"), idempotency_key="delivery-2", reply_to=first.remote_id
    )
    posts = {post["id"]: post for post in sandbox.posts("threads")}
    assert posts[reply.remote_id]["options"]["reply_to"] == first.remote_id
    assert reply.url is not None


def test_a_reply_to_an_unknown_post_is_refused(adapter: ThreadsAdapter) -> None:
    with pytest.raises(PermanentError) as caught:
        adapter.publish(text_post("Aggiornamento"), idempotency_key="d", reply_to="1234")
    assert caught.value.reason == "invalid_parameter"


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("a" * 500, True),
        ("a" * 501, False),
        ("😀" * 125, True),  # 4 UTF-8 bytes each
        ("😀" * 126, False),
        ("🇮🇹" * 62 + "ab" * 2, True),  # a flag is 8 bytes
        ("è" * 500, True),  # an accented letter is one character, not its 2 bytes
    ],
)
def test_the_fake_counts_emoji_in_utf8_bytes_as_threads_documents(
    adapter: ThreadsAdapter, sandbox: Sandbox, text: str, accepted: bool
) -> None:
    assert threads_length(text) == threads_units(text)
    if accepted:
        adapter.publish(text_post(text), idempotency_key="delivery-1")
        assert len(sandbox.posts("threads")) == 1
        return
    with pytest.raises(PermanentError) as caught:
        adapter.publish(text_post(text), idempotency_key="delivery-1")
    assert caught.value.reason == "invalid_parameter"
    assert "500 characters" in str(caught.value)
