"""Threads adapter (Threads API, Graph-shaped): each post is a media container (TEXT, or IMAGE with its
alt text) published once ready; a long text goes out as a thread of at most `max_thread_posts`, each
piece replying to the one before (base.post_thread), and a reply names its parent with `reply_to_id`.

Length, as Threads' docs state it (Threads Posts, "Limitations", checked): "Text posts are limited to 500
characters. Emojis are counted as the number of UTF-8 bytes." `threads_length` reads that strictly: an
emoji cluster (pictograph, flag, keycap, emoji presentation) counts its UTF-8 bytes (😀 4, 🇮🇹 8,
👨‍👩‍👧 18), any other character its UTF-16 code units (1 for letters, accented ones included), the
larger of the plausible readings of "character", so a text measured here is never longer for Threads.
URLs count in full.

Delivery is at-least-once: Threads has no idempotency, so `idempotency_key` is accepted and ignored. An
unpublished container is harmless (it expires in 24 h); an unknown outcome of `threads_publish`, or a
failure half-way through a thread, makes the retry post the pieces that went out again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from functools import partial

import regex
import requests

from chalicelib.announcements import Announcement
from chalicelib.channels.base import (
    ChannelCheck,
    PermanentError,
    PostImage,
    PostResult,
    RenderedPost,
    post_thread,
)
from chalicelib.channels.graph import GraphClient, Polling, expiry_of, required_id
from chalicelib.channels.text import PostParts, RenderOptions, post_image, thread_texts, utf16_length
from chalicelib.channels.transport import Timeout, refuse_offline
from chalicelib.config.models import ThreadsChannel
from chalicelib.http import TIMEOUT
from chalicelib.observability import logger
from chalicelib.secrets import resolve_secret

PLATFORM = "Threads"
DEFAULT_API_BASE = "https://graph.threads.net"
DEFAULT_API_VERSION = "v1.0"
TEXT_LIMIT = 500
DEFAULT_MAX_THREAD_POSTS = 3
_GRAPHEME = regex.compile(r"\X")
# A grapheme shown as an emoji: a pictograph, a regional indicator (flags), a keycap, or a character
# asked to render as emoji (VS16).
_EMOJI = regex.compile(r"[\p{Extended_Pictographic}\p{Regional_Indicator}\u20e3\ufe0f]")


def threads_length(text: str) -> int:
    """Threads' count as the module docstring explains: emoji in UTF-8 bytes, the rest in UTF-16 units.
    Renderers measure many candidate cuts, so text without emoji (most of it) skips the per-cluster walk."""
    length = utf16_length(text)
    if _EMOJI.search(text) is None:
        return length
    emoji = [cluster for cluster in _GRAPHEME.findall(text) if _EMOJI.search(cluster)]
    return length + sum(len(cluster.encode("utf-8")) - utf16_length(cluster) for cluster in emoji)


def from_config(
    channel: ThreadsChannel, *, session: requests.Session, options: RenderOptions, offline: bool
) -> ThreadsAdapter:
    return ThreadsAdapter(
        user_id=channel.user_id,
        token=partial(resolve_secret, channel.token),
        token_expires_on=channel.token_expires_on,
        session=session,
        api_base=str(channel.api_base),
        api_version=channel.api_version,
        max_thread_posts=channel.max_thread_posts,
        options=options,
        offline=offline,
    )


class ThreadsAdapter:
    platform = "threads"

    def __init__(
        self,
        *,
        user_id: str,
        token: Callable[[], str],
        session: requests.Session,
        token_expires_on: date | None = None,
        api_base: str = DEFAULT_API_BASE,
        api_version: str = DEFAULT_API_VERSION,
        max_thread_posts: int = DEFAULT_MAX_THREAD_POSTS,
        options: RenderOptions | None = None,
        offline: bool = False,
        timeout: Timeout = TIMEOUT,
        polling: Polling | None = None,
    ) -> None:
        self.user_id = user_id
        self.offline = offline
        self._options = options or RenderOptions()
        self._max_thread_posts = max_thread_posts
        self._token_expires_on = token_expires_on
        self._polling = polling or Polling()
        self._graph = GraphClient(
            platform=PLATFORM,
            api_base=api_base,
            api_version=api_version,
            token=token,
            session=session,
            timeout=timeout,
        )

    def render(self, announcement: Announcement) -> RenderedPost:
        parts = PostParts.from_announcement(announcement, self._options)
        texts, truncated = thread_texts(
            parts, measure=threads_length, limit=TEXT_LIMIT, max_posts=self._max_thread_posts
        )
        return RenderedPost(
            text=texts[0],
            length=threads_length(texts[0]),
            limit=TEXT_LIMIT,
            truncated=truncated,
            link=parts.link,  # thread_texts never drops the link
            thread=texts[1:],
            image=post_image(announcement, self._options),
        )

    def publish(self, post: RenderedPost, *, idempotency_key: str, reply_to: str | None = None) -> PostResult:
        del idempotency_key  # no idempotency on Threads: see the module docstring
        if self.offline:
            raise refuse_offline(PLATFORM)

        def send_one(text: str, parent: str | None, index: int) -> PostResult:
            # The image goes with the first piece, the one carrying the title and the link.
            media_id = self._publish_one(text, parent, post.image if index == 0 else None)
            return PostResult(remote_id=media_id, url=self._graph.permalink(media_id) if index == 0 else None)

        return post_thread(post, reply_to, send_one)

    def _publish_one(self, text: str, reply_to: str | None, image: PostImage | None) -> str:
        fields = {"media_type": "TEXT", "text": text, **({"reply_to_id": reply_to} if reply_to else {})}
        if image is not None:
            fields |= {"media_type": "IMAGE", "image_url": image.url, "alt_text": image.alt}
        body = self._graph.post(f"{self.user_id}/threads", endpoint="threads", fields=fields)
        container = required_id(body, "id", platform=PLATFORM, endpoint="threads")
        if not self._ready(container, has_image=image is not None):
            return self._publish_one(text, reply_to, None)
        body = self._graph.post(
            f"{self.user_id}/threads_publish", endpoint="threads_publish", fields={"creation_id": container}
        )
        return required_id(body, "id", platform=PLATFORM, endpoint="threads_publish")

    def _ready(self, container: str, *, has_image: bool) -> bool:
        """Wait for the container (text containers are ready at once: asking costs one read and spares
        a publish failing half-way through a thread). False when Threads could not fetch or process
        the image: the text must not be lost with it, it goes out alone."""
        try:
            self._graph.wait_for_container(container, status_field="status", polling=self._polling)
        except PermanentError as exc:
            if not has_image or exc.reason != "container_error":
                raise
            problem = str(exc)
        else:
            return True
        logger.warning("Threads refused the image, posting without it", extra={"problem": problem})
        return False

    def check(self) -> ChannelCheck:
        """GET /me: proves the token. The configured `token_expires_on` is the only expiry known here
        (Threads' long-lived tokens last 60 days unless refreshed)."""
        found = self._graph.check("me", endpoint="me", fields="id,username")
        return replace(found, token_expires_at=expiry_of(self._token_expires_on))
