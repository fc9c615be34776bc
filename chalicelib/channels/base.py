"""The interface every channel adapter implements, and the errors the publisher branches on.

An adapter renders an announcement in its platform's shape (pure, no I/O, used by `preview` too) and
publishes a rendered post. Errors are classified here once: the publisher only knows "retry later
(maybe after N seconds)" versus "permanent: record the reason and stop".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

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


class PostGone(PermanentError):
    """The post to reply under or to edit no longer exists on the platform (deleted, or never
    there), and nothing was posted. The publisher then posts the delivery on its own, once: an
    update must not be lost for want of its thread."""

    reason = "post_gone"


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


@dataclass(frozen=True, repr=False)  # no repr: the ids name the citizen, and reprs reach logs
class ReplyTarget:
    """A citizen's message to answer, as ingestion stored it (InboundMessage.reply_target).

    `ids` are the platform's own: Telegram chat_id + message_id; Mastodon status_id + acct; Bluesky
    uri + cid (and root_uri + root_cid when the message is itself a reply); X tweet_id; Facebook
    comment_id (+ post_id) for a comment, recipient_id (the page-scoped id) for Messenger. `direct`
    says the conversation is a private one (a private chat, Messenger, a direct message), which an
    adapter must never answer in public. The times serve platforms whose answers have a window
    (Messenger): when the message answered was written, and when the citizen last wrote at all."""

    ids: Mapping[str, str]
    direct: bool
    message_at: datetime
    last_message_at: datetime

    def require(self, *names: str, platform: str) -> tuple[str, ...]:
        """The ids an adapter needs, in order; PermanentError("bad_reply_target") when one is missing
        (the message was stored by an ingest path that does not know this platform's answers)."""
        missing = [name for name in names if not self.ids.get(name)]
        if missing:
            raise PermanentError(
                f"{platform}: the citizen's message has no {', '.join(missing)} to answer it by",
                reason="bad_reply_target",
            )
        return tuple(self.ids[name] for name in names)


@runtime_checkable
class Answering(Protocol):
    """An adapter that can answer a citizen on the channel the citizen wrote on (the inbox's staff
    replies and automatic answers; chalicelib/inbox/sending.py). Errors are classified as publish
    classifies them; reasons of its own: "bad_reply_target", "private_unsupported" (a private answer
    where the platform has none), "messenger_window_closed" (Messenger's rules)."""

    def answer(
        self,
        target: ReplyTarget,
        text: str,
        *,
        idempotency_key: str,
        private: bool = False,
        automatic: bool = False,
    ) -> PostResult:
        """Send `text` (cut at a word, or threaded where the platform has threads, as publish does)
        as an answer threaded to the citizen's message. `private`: in private, to a public comment.
        `automatic`: no person wrote it (Messenger's human-agent tag is then not allowed)."""
        ...


@runtime_checkable
class Editing(Protocol):
    """An adapter that can change the text of a post it made: an alert's update on a channel with
    `alert_updates: edit` rewrites the thread's first post instead of replying. Errors are
    classified as publish classifies them; PostGone when the post was deleted, PermanentError with
    reason "not_editable" when the platform will not edit it (or the update does not fit in one
    post), and the publisher then replies in the thread instead."""

    def edit(self, remote_id: str, post: RenderedPost) -> PostResult:
        """Replace the text of the post `remote_id` (as publish returned it) with `post.text`; the
        result names the same post. Editing twice with the same text is a success (idempotent)."""
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
