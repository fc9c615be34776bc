"""The interface every channel adapter implements, and the errors the publisher branches on.

An adapter renders an announcement in its platform's shape (pure, no I/O, used by `preview` too) and
publishes a rendered post. Errors are classified here once: the publisher only knows "retry later
(maybe after N seconds)" versus "permanent: record the reason and stop".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from chalicelib.announcements import Announcement


@dataclass(frozen=True)
class PostImage:
    """The image to attach, with its alt text already decided (feed, channel default or title):
    never empty, so no adapter has to invent one."""

    url: str
    alt: str


@dataclass(frozen=True)
class RenderedPost:
    text: str
    length: int  # counted the platform's way (graphemes, URL weight, ...)
    limit: int
    truncated: bool
    parse_mode: str | None = None  # "HTML" for Telegram
    link: str | None = None  # the announcement's link, for platforms that preview or embed it apart
    # Follow-up posts of a long text, each within `limit`, posted as a chain of replies to `text`
    # on platforms with threads; empty when the text fits in one post.
    thread: tuple[str, ...] = ()
    image: PostImage | None = None
    title: str | None = None  # for link cards (Bluesky's external embed)
    description: str | None = None


@dataclass(frozen=True)
class PostResult:
    remote_id: str
    url: str | None


class PublishError(Exception):
    """Base of every classified failure. `reason` is a short stable code used in metrics and records."""

    reason = "error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason:
            self.reason = reason


class RetryableError(PublishError):
    """Transient: timeouts, 5xx, connection errors. Retry later; `retry_after` when the platform says."""

    reason = "transient"

    def __init__(self, message: str, *, reason: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, reason=reason)
        self.retry_after = retry_after


class RateLimited(RetryableError):
    reason = "rate_limited"


class PermanentError(PublishError):
    """Retrying cannot help (bad request, unknown chat, content refused). Record and stop."""

    reason = "permanent"


class AuthError(PermanentError):
    """The token is invalid, expired or revoked: the channel needs a human. The publisher marks the
    channel unhealthy and holds its deliveries until a health check finds the token working again."""

    reason = "auth"


class Skipped(PermanentError):
    """This post does not belong on this channel (Instagram without a usable image): recorded as
    skipped with the reason, not a failure, never retried."""

    reason = "skipped"


@dataclass(frozen=True)
class ChannelCheck:
    """What a channel's health check found. `token_expires_at` when the platform tells (a Facebook
    Page token's debug info) or the config states it; None when the token does not expire or
    nobody can know."""

    healthy: bool
    reason: str  # "ok", "auth", "unreachable", ...: a stable code for metrics and the CLI
    detail: str = ""  # the platform's words, shortened; never a secret
    token_expires_at: datetime | None = None


class ChannelAdapter(Protocol):
    platform: str

    def render(self, announcement: Announcement) -> RenderedPost: ...

    def publish(self, post: RenderedPost, *, idempotency_key: str, reply_to: str | None = None) -> PostResult:
        """Post; `reply_to` is the remote id (as this adapter returned it) of a post to thread under.
        A post with a `thread` goes out as the first post and a chain of replies; the result names
        the first post."""
        ...

    def check(self) -> ChannelCheck:
        """Ask the platform whether the credentials work (one cheap authenticated read); never
        raises for a platform answer, only reports it."""
        ...


def post_thread(
    post: RenderedPost,
    reply_to: str | None,
    send_one: Callable[[str, str | None, int], PostResult],
) -> PostResult:
    """Post `post.text` (as a reply to `reply_to` when given), then each follow-up as a reply to the
    one before. `send_one(text, reply_to, index)` posts one piece; adapters derive each piece's
    idempotency from the delivery's key and the index, so a retry after a failure half-way re-sends
    the pieces that went out as no-ops where the platform has idempotency."""
    first = send_one(post.text, reply_to, 0)
    previous = first
    for index, text in enumerate(post.thread, start=1):
        previous = send_one(text, previous.remote_id, index)
    return first
