"""Instagram adapter (Graph API content publishing): an image post made in two steps, a media container
(image URL, caption, alt text) published once Instagram has processed it; a reply is a comment on the
first post. The caption is cut at a word within 2,200 characters (UTF-16 code units) and 30 hashtags,
the link kept as plain text: Instagram makes no link in a caption clickable, and a comune's readers
can still copy it.

Instagram takes no post without an image, so an announcement without one, or with one Instagram would
refuse (not a JPEG, over 8 MB, an aspect ratio outside 4:5..1.91:1 — checked on the bytes, fetched with
media.fetch_image), is Skipped: recorded with its reason, never retried.

Delivery is at-least-once. The API has no idempotency, so `idempotency_key` is accepted and ignored. A
container is harmless until published (it expires in 24 h), so only an unknown outcome of the final
`media_publish` (a timeout, process death after the answer) can post twice on retry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from functools import partial

import regex
import requests

from chalicelib.announcements import Announcement
from chalicelib.channels.base import ChannelCheck, PermanentError, PostResult, RenderedPost, Skipped
from chalicelib.channels.graph import GraphClient, Polling, expiry_of, required_id
from chalicelib.channels.media import JPEG, FetchedImage, MediaUnavailable, fetch_image
from chalicelib.channels.text import PostParts, RenderOptions, fit_post, plain_text, post_image, utf16_length
from chalicelib.channels.transport import Timeout, refuse_offline
from chalicelib.config.models import InstagramChannel
from chalicelib.http import TIMEOUT
from chalicelib.observability import logger
from chalicelib.secrets import resolve_secret

PLATFORM = "Instagram"
DEFAULT_API_BASE = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v24.0"
CAPTION_LIMIT = 2200
MAX_HASHTAGS = 30
MAX_IMAGE_BYTES = 8 * 1024 * 1024
IMAGE_TYPES = frozenset({JPEG})
# Width:height from 4:5 (portrait) to 1.91:1 (landscape), compared in integers: 5w >= 4h, 100w <= 191h.
# A 9:16 portrait (a phone photo) is outside: Instagram would crop or refuse it.
_MIN_RATIO = (4, 5)
_MAX_RATIO = (191, 100)
# What Instagram reads as a hashtag in a caption the comune wrote.
_HASHTAG = regex.compile(r"(?<![\p{L}\p{N}_&])#[\p{L}\p{N}_]+")


def from_config(
    channel: InstagramChannel, *, session: requests.Session, options: RenderOptions, offline: bool
) -> InstagramAdapter:
    return InstagramAdapter(
        user_id=channel.user_id,
        token=partial(resolve_secret, channel.token),
        token_expires_on=channel.token_expires_on,
        session=session,
        api_base=str(channel.api_base),
        api_version=channel.api_version,
        options=options,
        offline=offline,
    )


class InstagramAdapter:
    platform = "instagram"

    def __init__(
        self,
        *,
        user_id: str,
        token: Callable[[], str],
        session: requests.Session,
        token_expires_on: date | None = None,
        api_base: str = DEFAULT_API_BASE,
        api_version: str = DEFAULT_API_VERSION,
        options: RenderOptions | None = None,
        offline: bool = False,
        timeout: Timeout = TIMEOUT,
        polling: Polling | None = None,
    ) -> None:
        self.user_id = user_id
        self.offline = offline
        self._options = options or RenderOptions()
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
        parts = _within_hashtag_limit(PostParts.from_announcement(announcement, self._options))
        fitted, truncated = fit_post(parts, measure=utf16_length, limit=CAPTION_LIMIT)
        text = plain_text(fitted)
        return RenderedPost(
            text=text,
            length=utf16_length(text),
            limit=CAPTION_LIMIT,
            truncated=truncated,
            link=fitted.link,
            image=post_image(announcement, self._options),
        )

    def publish(self, post: RenderedPost, *, idempotency_key: str, reply_to: str | None = None) -> PostResult:
        del idempotency_key  # no idempotency on Instagram: see the module docstring
        if self.offline:
            raise refuse_offline(PLATFORM)
        if reply_to:
            return self._graph.comment(post.text, reply_to, link=self._graph.permalink)
        if post.image is None:
            raise Skipped(f"{PLATFORM}: the announcement has no image", reason="no_image")
        _check_image(post.image.url)
        container = self._container(
            {"image_url": post.image.url, "caption": post.text, "alt_text": post.image.alt}
        )
        self._graph.wait_for_container(container, status_field="status_code", polling=self._polling)
        body = self._graph.post(
            f"{self.user_id}/media_publish", endpoint="media_publish", fields={"creation_id": container}
        )
        media_id = required_id(body, "id", platform=PLATFORM, endpoint="media_publish")
        return PostResult(remote_id=media_id, url=self._graph.permalink(media_id))

    def _container(self, fields: dict[str, str]) -> str:
        """Step one; an image Instagram's servers refuse after all (their fetch, their decoder) is
        Skipped like one refused here."""
        try:
            body = self._graph.post(f"{self.user_id}/media", endpoint="media", fields=fields)
        except PermanentError as exc:
            if exc.reason != "image_unsuitable":
                raise
            problem = str(exc)
        else:
            return required_id(body, "id", platform=PLATFORM, endpoint="media")
        raise Skipped(problem, reason="image_unsuitable")

    def check(self) -> ChannelCheck:
        """content_publishing_limit: proves the token and the publishing permission in one cheap read.
        Instagram tokens do not say when they expire here; the configured date stands in."""
        found = self._graph.check(
            f"{self.user_id}/content_publishing_limit",
            endpoint="content_publishing_limit",
            fields="quota_usage,config",
        )
        return replace(found, token_expires_at=expiry_of(self._token_expires_on))


def _within_hashtag_limit(parts: PostParts) -> PostParts:
    """Only as many category hashtags as fit next to those the comune wrote in the title and summary."""
    written = len(_HASHTAG.findall(f"{parts.title}\n{parts.summary}"))
    return replace(parts, hashtags=parts.hashtags[: max(0, MAX_HASHTAGS - written)])


def _check_image(url: str) -> None:
    """Skipped unless the image is one Instagram takes: fetched (SSRF-guarded), a JPEG within the size
    limit and the aspect ratio range."""
    try:
        problem = _shape_problem(fetch_image(url, max_bytes=MAX_IMAGE_BYTES, allowed_types=IMAGE_TYPES))
    except MediaUnavailable as exc:
        problem = str(exc)
    if problem is not None:
        logger.warning("Instagram post skipped: unsuitable image", extra={"problem": problem})
        raise Skipped(f"{PLATFORM}: {problem}", reason="image_unsuitable")


def _shape_problem(image: FetchedImage) -> str | None:
    width, height = image.width, image.height
    if not width or not height:
        return "image dimensions unreadable"
    not_too_tall = width * _MIN_RATIO[1] >= height * _MIN_RATIO[0]
    not_too_wide = width * _MAX_RATIO[1] <= height * _MAX_RATIO[0]
    if not_too_tall and not_too_wide:
        return None
    return f"aspect ratio {width}x{height} outside 4:5 to 1.91:1"
