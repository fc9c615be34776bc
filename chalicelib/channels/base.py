"""The interface every channel adapter implements, and the errors the publisher branches on.

An adapter renders an announcement in its platform's shape (pure, no I/O, used by `preview` too) and
publishes a rendered post. Errors are classified here once: the publisher only knows "retry later
(maybe after N seconds)" versus "permanent: record the reason and stop".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from chalicelib.announcements import Announcement


@dataclass(frozen=True)
class RenderedPost:
    text: str
    length: int  # counted the platform's way (graphemes, URL weight, ...)
    limit: int
    truncated: bool
    parse_mode: str | None = None  # "HTML" for Telegram
    link: str | None = None  # the announcement's link, for platforms that preview or embed it apart


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
    """The token is invalid, expired or revoked: the channel needs a human."""

    reason = "auth"


class ChannelAdapter(Protocol):
    platform: str

    def render(self, announcement: Announcement) -> RenderedPost: ...

    def publish(self, post: RenderedPost, *, idempotency_key: str, reply_to: str | None = None) -> PostResult:
        """Post; `reply_to` is the remote id (as this adapter returned it) of a post to thread under."""
        ...
