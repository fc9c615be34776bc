"""Editing a post, and replying under one that was deleted, over real HTTP against the sandbox fakes of
the platforms that can edit (Telegram, Mastodon, Facebook): the edit rewrites the post and is recorded
in its history, is idempotent, and every refusal lands in the family the publisher branches on
(PostGone for a deleted post, "not_editable" for one the platform will not edit)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from chalicelib.channels.base import (
    AuthError,
    ChannelAdapter,
    Editing,
    PermanentError,
    PostGone,
    PostImage,
    PostResult,
    RenderedPost,
    RetryableError,
)
from chalicelib.http import TIMEOUT
from devtools.sandbox import Sandbox
from devtools.sandbox.mastodon import MastodonFake
from devtools.sandbox.meta import FacebookFake
from devtools.sandbox.telegram import TelegramFake
from tests.integration.channel_support import SECRETS, adapter_factory
from tests.integration.channel_support import text_post as _post

PLATFORMS = ("telegram", "mastodon", "facebook")
PHOTO = "https://www.comune.example.it/foto/allerta.jpg"
FIRST = "Allerta arancione per temporali: oggi dalle 14 alle 24."
UPDATE = "Aggiornamento: allerta arancione prolungata fino a domani alle 12."

pytestmark = pytest.mark.usefixtures("no_secrets_file")


@pytest.fixture(params=PLATFORMS)
def platform(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def adapter(platform: str, sandbox: Sandbox, session: requests.Session) -> ChannelAdapter:
    return adapter_factory(platform, sandbox, session, TIMEOUT)(None)


def _editing(adapter: ChannelAdapter) -> Editing:
    assert isinstance(adapter, Editing)
    return adapter


def _delete(platform: str, sandbox: Sandbox, remote_id: str) -> None:
    """Delete a post on the platform, as a person would in its app."""
    deleters: dict[str, Callable[[], None]] = {
        "telegram": lambda: sandbox.fake("telegram", TelegramFake).delete_message(
            int(remote_id.rpartition(":")[0]), int(remote_id.rpartition(":")[2])
        ),
        "mastodon": lambda: sandbox.fake("mastodon", MastodonFake).delete_status(remote_id),
        "facebook": lambda: sandbox.fake("facebook", FacebookFake).delete_post(remote_id),
    }
    deleters[platform]()


def _record(sandbox: Sandbox, platform: str, result: PostResult) -> dict[str, object]:
    [post] = [p for p in sandbox.posts(platform) if p["id"] == result.remote_id.rpartition(":")[2]]
    return post


def test_an_edit_rewrites_the_post_and_keeps_what_it_said_before(
    platform: str, adapter: ChannelAdapter, sandbox: Sandbox
) -> None:
    first = adapter.publish(_post(FIRST), idempotency_key="first")

    edited = _editing(adapter).edit(first.remote_id, _post(UPDATE))

    assert edited.remote_id == first.remote_id
    assert edited.url == first.url
    post = _record(sandbox, platform, first)
    assert (post["text"], post["edits"]) == (UPDATE, [FIRST])
    assert len(sandbox.posts(platform)) == 1  # rewritten, not posted again


def test_the_same_edit_again_is_a_success_that_changes_nothing(
    platform: str, adapter: ChannelAdapter, sandbox: Sandbox
) -> None:
    """A retry of an edit whose answer was lost must not fail, nor add an edit."""
    first = adapter.publish(_post(FIRST), idempotency_key="first")
    _editing(adapter).edit(first.remote_id, _post(UPDATE))

    again = _editing(adapter).edit(first.remote_id, _post(UPDATE))

    assert again.remote_id == first.remote_id
    assert _record(sandbox, platform, first)["edits"] == [FIRST]


def test_an_edit_of_a_deleted_post_is_post_gone(
    platform: str, adapter: ChannelAdapter, sandbox: Sandbox
) -> None:
    first = adapter.publish(_post(FIRST), idempotency_key="first")
    _delete(platform, sandbox, first.remote_id)

    with pytest.raises(PostGone) as caught:
        _editing(adapter).edit(first.remote_id, _post(UPDATE))
    assert caught.value.reason == "post_gone"
    assert _record(sandbox, platform, first)["edits"] == []


def test_a_reply_under_a_deleted_post_is_post_gone_and_posts_nothing(
    platform: str, adapter: ChannelAdapter, sandbox: Sandbox
) -> None:
    first = adapter.publish(_post(FIRST), idempotency_key="first")
    _delete(platform, sandbox, first.remote_id)

    with pytest.raises(PostGone):
        adapter.publish(_post(UPDATE), idempotency_key="update", reply_to=first.remote_id)
    assert len(sandbox.posts(platform)) == 1
    # Nothing went out, so the publisher's post of its own may use the same key.
    alone = adapter.publish(_post(UPDATE), idempotency_key="update")
    assert _record(sandbox, platform, alone)["text"] == UPDATE


def test_a_refused_token_is_an_auth_error_for_an_edit_too(
    platform: str, adapter: ChannelAdapter, sandbox: Sandbox
) -> None:
    first = adapter.publish(_post(FIRST), idempotency_key="first")
    sandbox.revoke_token(platform, SECRETS[platform])

    with pytest.raises(AuthError) as caught:
        _editing(adapter).edit(first.remote_id, _post(UPDATE))
    assert SECRETS[platform] not in str(caught.value)


# --- Telegram: a message or a photo's caption --------------------------------------------------------


@pytest.mark.parametrize("platform", ["telegram"])
def test_telegram_edits_a_photo_s_caption_after_telegram_says_it_has_no_text(
    adapter: ChannelAdapter, sandbox: Sandbox
) -> None:
    photo = adapter.publish(_post(FIRST, image=PostImage(url=PHOTO, alt="Il fiume")), idempotency_key="p")

    _editing(adapter).edit(photo.remote_id, _post(UPDATE))  # the update has no image: text first

    post = _record(sandbox, "telegram", photo)
    assert (post["text"], post["options"]["photo"]) == (UPDATE, PHOTO)  # the photo stays
    assert sandbox.stats()["requests"]["telegram"] == {
        "sendPhoto": 1,
        "editMessageText": 1,
        "editMessageCaption": 1,
    }


@pytest.mark.parametrize("platform", ["telegram"])
def test_telegram_refuses_what_it_cannot_edit(adapter: ChannelAdapter, sandbox: Sandbox) -> None:
    """A photo's caption over 1024, and a message the bot did not send, are "not_editable"."""
    photo = adapter.publish(_post(FIRST, image=PostImage(url=PHOTO, alt="Il fiume")), idempotency_key="p")
    with pytest.raises(PermanentError) as caught:
        _editing(adapter).edit(photo.remote_id, _post("lungo " * 300))
    assert caught.value.reason == "not_editable"

    chat = int(photo.remote_id.rpartition(":")[0])
    citizen = sandbox.fake("telegram", TelegramFake).citizen_message(chat, "Una domanda")
    with pytest.raises(PermanentError) as caught:
        _editing(adapter).edit(f"{chat}:{citizen['message_id']}", _post(UPDATE))
    assert caught.value.reason == "not_editable"
    assert _record(sandbox, "telegram", photo)["edits"] == []


# --- Mastodon: one status, its media sent again ------------------------------------------------------


@pytest.mark.parametrize("platform", ["mastodon"])
def test_mastodon_does_not_edit_a_status_into_a_thread(adapter: ChannelAdapter, sandbox: Sandbox) -> None:
    first = adapter.publish(_post(FIRST), idempotency_key="first")
    threaded = RenderedPost(**{**_post(UPDATE).__dict__, "thread": ("2/2 segue",)})

    with pytest.raises(PermanentError) as caught:
        _editing(adapter).edit(first.remote_id, threaded)
    assert caught.value.reason == "not_editable"
    assert "edit_status" not in sandbox.stats()["requests"]["mastodon"]


@pytest.mark.parametrize("platform", ["mastodon"])
def test_mastodon_refuses_an_edit_over_the_limit_and_someone_else_s_status(
    adapter: ChannelAdapter, sandbox: Sandbox
) -> None:
    first = adapter.publish(_post(FIRST), idempotency_key="first")
    with pytest.raises(PermanentError) as caught:
        _editing(adapter).edit(first.remote_id, _post("x" * 501))
    assert caught.value.reason == "validation_failed"

    citizen = sandbox.fake("mastodon", MastodonFake).citizen_status("maria", "Che tempo fa?")
    with pytest.raises(PostGone):  # Mastodon answers 404 "Record not found", as for a deleted one
        _editing(adapter).edit(citizen["id"], _post(UPDATE))
    assert _record(sandbox, "mastodon", first)["edits"] == []


ENDPOINTS = {"telegram": "editMessageText", "mastodon": "edit_status", "facebook": "edit"}


def test_an_edit_whose_answer_was_lost_is_retried_as_the_same_edit(
    platform: str, sandbox: Sandbox, session: requests.Session, fast_timeout: tuple[float, float]
) -> None:
    """The platform edited, the answer came too late: the retry (the publisher's, after this
    RetryableError) edits again, which is a success that changes nothing, and never a new post."""
    adapter = adapter_factory(platform, sandbox, session, fast_timeout)(None)
    first = adapter.publish(_post(FIRST), idempotency_key="first")
    sandbox.inject(platform, "hang_after_commit", endpoint=ENDPOINTS[platform], delay=fast_timeout[1] * 5)

    with pytest.raises(RetryableError) as caught:
        _editing(adapter).edit(first.remote_id, _post(UPDATE))
    assert caught.value.reason == "timeout"
    retried = _editing(adapter).edit(first.remote_id, _post(UPDATE))

    assert retried.remote_id == first.remote_id
    assert len(sandbox.posts(platform)) == 1
    assert _record(sandbox, platform, first)["edits"] == [FIRST]
