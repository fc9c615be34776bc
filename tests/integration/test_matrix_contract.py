"""The Matrix adapter over real HTTP against the sandbox's homeserver fake: transaction ids that make
a retry a no-op, replies, room ids that need encoding, M_LIMIT_EXCEEDED and M_TOO_LARGE."""

from __future__ import annotations

from dataclasses import replace

import pytest
import requests

from chalicelib.announcements import Announcement
from chalicelib.channels.base import AuthError, PermanentError, RateLimited, RenderedPost, RetryableError
from chalicelib.channels.webhooks.matrix import MatrixAdapter
from devtools.sandbox import Sandbox

TOKEN = "syt_YmFuZGl0b3Jl_sandboxMatrixToken_1a2b3c"
# A room id whose localpart holds "/" and "+": unencoded, the "/" would split the request path.
ROOM = "!Ab/cd+ef:matrix.comune.example.it"


def _adapter(
    sandbox: Sandbox, session: requests.Session, timeout: tuple[float, float], token: str = TOKEN
) -> MatrixAdapter:
    return MatrixAdapter(
        homeserver=sandbox.base_for("matrix"),
        room_id=ROOM,
        token=lambda: token,
        session=session,
        timeout=timeout,
    )


@pytest.fixture
def adapter(sandbox: Sandbox, session: requests.Session, fast_timeout: tuple[float, float]) -> MatrixAdapter:
    return _adapter(sandbox, session, fast_timeout)


def test_the_message_goes_to_the_room_as_text_and_escaped_html(
    adapter: MatrixAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    item = replace(announcement, title="Lavori <b>urgenti</b> & chiusure")
    rendered = adapter.render(item)
    result = adapter.publish(rendered, idempotency_key="delivery-1")

    [post] = sandbox.posts("matrix")
    assert post["target"] == ROOM
    assert result.remote_id == post["id"]
    assert post["text"] == rendered.text
    assert post["options"]["msgtype"] == "m.text"
    html = post["options"]["formatted_body"]
    assert html.startswith("<strong>Lavori &lt;b&gt;urgenti&lt;/b&gt; &amp; chiusure</strong><br><br>")
    assert f'<a href="{announcement.link.replace("&", "&amp;")}">' in html
    assert result.url == (
        "https://matrix.to/#/%21Ab%2Fcd%2Bef%3Amatrix.comune.example.it/"
        + post["id"].replace("$", "%24")
        + "?via=matrix.comune.example.it"
    )


def test_a_reply_names_the_event_it_answers(
    adapter: MatrixAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    first = adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    update = adapter.publish(
        adapter.render(announcement), idempotency_key="delivery-2", reply_to=first.remote_id
    )
    posts = {post["id"]: post for post in sandbox.posts("matrix")}
    assert posts[update.remote_id]["options"]["in_reply_to"] == first.remote_id
    assert "in_reply_to" not in posts[first.remote_id]["options"]


def test_the_same_key_sends_one_event(
    adapter: MatrixAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    rendered = adapter.render(announcement)
    first = adapter.publish(rendered, idempotency_key="delivery-1")
    again = adapter.publish(rendered, idempotency_key="delivery-1")
    other = adapter.publish(rendered, idempotency_key="delivery-2")
    assert again == first
    assert other.remote_id != first.remote_id
    assert len(sandbox.posts("matrix")) == 2
    assert sandbox.stats()["idempotent_replays"] == {"matrix": 1}


def test_a_retry_after_a_lost_answer_is_not_a_duplicate(
    adapter: MatrixAdapter, sandbox: Sandbox, announcement: Announcement, slow_answer: float
) -> None:
    """The exactly-once the module docstring promises: the retry carries the same transaction id."""
    sandbox.inject("matrix", "hang_after_commit", delay=slow_answer)
    with pytest.raises(RetryableError) as caught:
        adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    assert caught.value.reason == "timeout"
    result = adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    [post] = sandbox.posts("matrix")
    assert result.remote_id == post["id"]


def test_transaction_ids_belong_to_one_token(
    sandbox: Sandbox, session: requests.Session, announcement: Announcement, fast_timeout: tuple[float, float]
) -> None:
    """Why the docstring limits the promise to one session: a new login starts new transactions."""
    _adapter(sandbox, session, fast_timeout).publish(
        RenderedPost(text="Prova", length=5, limit=1, truncated=False), idempotency_key="delivery-1"
    )
    _adapter(sandbox, session, fast_timeout, token="syt_another_login").publish(
        RenderedPost(text="Prova", length=5, limit=1, truncated=False), idempotency_key="delivery-1"
    )
    assert len(sandbox.posts("matrix")) == 2


def test_the_homeserver_limit_answers_429_with_retry_after_ms(
    sandbox: Sandbox,
    session: requests.Session,
    announcement: Announcement,
    fast_timeout: tuple[float, float],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sandbox.state, "enforce_rate_limits", True)
    adapter = _adapter(sandbox, session, fast_timeout)
    rendered = adapter.render(announcement)
    for number in range(10):
        adapter.publish(rendered, idempotency_key=f"delivery-{number}")
    adapter.publish(rendered, idempotency_key="delivery-0")  # a replay is not a new message: not limited
    with pytest.raises(RateLimited) as caught:
        adapter.publish(rendered, idempotency_key="delivery-10")
    assert caught.value.retry_after is not None
    assert 40 < caught.value.retry_after <= 50


def test_an_event_over_the_size_limit_is_refused_as_too_long(
    adapter: MatrixAdapter, sandbox: Sandbox
) -> None:
    huge = RenderedPost(text="è" * 40_000, length=0, limit=1, truncated=False)
    with pytest.raises(PermanentError) as caught:
        adapter.publish(huge, idempotency_key="delivery-1")
    assert caught.value.reason == "too_long"
    assert "M_TOO_LARGE" in str(caught.value)
    assert sandbox.posts() == []


def test_the_longest_rendered_text_fits_in_an_event(adapter: MatrixAdapter, sandbox: Sandbox) -> None:
    long = Announcement(tenant="t", id="a", source="s", title="Albo", summary="è & <b> " * 20_000)
    rendered = adapter.render(long)
    assert rendered.truncated
    adapter.publish(rendered, idempotency_key="delivery-1")
    assert len(sandbox.posts("matrix")) == 1


def test_a_token_refused_by_the_homeserver_is_an_auth_error(
    adapter: MatrixAdapter, sandbox: Sandbox, announcement: Announcement
) -> None:
    sandbox.revoke_token("matrix", TOKEN)
    with pytest.raises(AuthError) as caught:
        adapter.publish(adapter.render(announcement), idempotency_key="delivery-1")
    assert "M_UNKNOWN_TOKEN" in str(caught.value)
    assert TOKEN not in str(caught.value)
