"""Mastodon adapter: POST /api/v1/statuses, measured as the instance measures (graphemes, each URL as
`characters_reserved_per_url`) within the limits the instance announces at /api/v2/instance. A text
too long for one status goes out as a thread of at most `max_thread_posts` replies; the image, fetched
through media.fetch_image and uploaded to /api/v2/media with its alt text as description, goes on the
first status.

Delivery is exactly-once within Mastodon's idempotency window: every status carries an
`Idempotency-Key` (the caller's key for the first one, the key plus the piece's index for the rest of a
thread), and the instance answers a repeat within 1 h with the status it already created instead of
posting again. A retry of an unknown outcome (timeout, dropped connection, process death after the 200)
more than 1 h later could post twice. A retry uploads the image again: the upload that went with the
first attempt stays unattached, which Mastodon cleans up on its own, and is never a second post.

An image never stops a post: fetched or uploaded, if it fails (too big, wrong type, the instance
refusing it or still processing it after MEDIA_WAIT seconds) the status goes out without it and a
warning says why. Only a refused token stops the publish, since the status would be refused too.

A reply under a status that was deleted is refused by the instance (404) before it creates anything:
that is PostGone, and the publisher posts the delivery on its own. `edit` rewrites a status of ours
(PUT /api/v1/statuses/:id, Mastodon 3.5+), naturally idempotent: the same text again changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from http import HTTPStatus
from typing import Any, Literal

import requests

from chalicelib.announcements import Announcement
from chalicelib.channels.answering import answer_post
from chalicelib.channels.base import (
    AuthError,
    ChannelCheck,
    PermanentError,
    PostGone,
    PostImage,
    PostResult,
    PublishError,
    RenderedPost,
    ReplyTarget,
    RetryableError,
    post_thread,
)
from chalicelib.channels.media import COMMON_TYPES, FetchedImage, MediaUnavailable, fetch_image
from chalicelib.channels.text import (
    PostParts,
    RenderOptions,
    grapheme_count,
    post_image,
    thread_texts,
    url_weighted_length,
    within_characters,
)
from chalicelib.channels.transport import (
    Timeout,
    check_with,
    detail,
    http_error,
    json_object,
    malformed,
    read_token,
    refuse_offline,
    require_json_object,
    send,
)
from chalicelib.config.models import MastodonChannel
from chalicelib.http import TIMEOUT
from chalicelib.observability import logger
from chalicelib.secrets import resolve_secret

PLATFORM = "Mastodon"
LIMITS_TTL = 3600.0
# After a failed limits fetch the defaults serve this long, so a sick instance is not asked on every render.
FALLBACK_TTL = 60.0
_REFUSALS: dict[int, str] = {
    HTTPStatus.FORBIDDEN: "forbidden",
    HTTPStatus.NOT_FOUND: "not_found",
    HTTPStatus.UNPROCESSABLE_ENTITY: "validation_failed",
}

# Mastodon's default image limit; instances announce theirs at /api/v2/instance.
DEFAULT_IMAGE_SIZE_LIMIT = 16 * 1024 * 1024
# MediaAttachment's description limit (characters, as Rails counts them: code points).
MAX_DESCRIPTION = 1500
# Since 4.0 images are processed while the upload waits (200); a 202 means the instance is busy, and a
# status naming unprocessed media is refused. Waiting longer would hold the publisher; the post goes
# out without the image instead.
MEDIA_WAIT = 6.0
MEDIA_POLL_INTERVAL = 1.0
MENTIONS_PAGE = 80  # the most /api/v1/notifications gives at once

LimitsSource = Literal["default", "instance"]


@dataclass(frozen=True)
class InstanceLimits:
    max_characters: int
    characters_reserved_per_url: int
    image_size_limit: int = DEFAULT_IMAGE_SIZE_LIMIT
    # The instance's image types that media.fetch_image can recognise.
    image_types: frozenset[str] = COMMON_TYPES


@dataclass(frozen=True)
class _Status:
    """One status as sent: its text, Idempotency-Key, visibility and attached media."""

    text: str
    key: str
    visibility: str
    media_ids: tuple[str, ...] = ()


# Mastodon's own defaults: an instance can raise them (some forks do), never lower them.
DEFAULT_LIMITS = InstanceLimits(max_characters=500, characters_reserved_per_url=23)


class InstanceLimitsCache:
    """Limits per instance for the life of the process (a warm Lambda keeps them), with a TTL so a
    changed instance setting is picked up within the hour."""

    def __init__(self, *, ttl: float = LIMITS_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[float, InstanceLimits, LimitsSource]] = {}

    def get(
        self, instance: str, fetch: Callable[[], InstanceLimits | None]
    ) -> tuple[InstanceLimits, LimitsSource]:
        now = self._clock()
        cached = self._entries.get(instance)
        if cached is None or cached[0] <= now:
            cached = self._fetched(now, fetch())
            self._entries[instance] = cached
        return cached[1], cached[2]

    def _fetched(
        self, now: float, limits: InstanceLimits | None
    ) -> tuple[float, InstanceLimits, LimitsSource]:
        if limits is None:
            return now + FALLBACK_TTL, DEFAULT_LIMITS, "default"
        return now + self._ttl, limits, "instance"


_PROCESS_LIMITS = InstanceLimitsCache()


def _utc_now() -> datetime:
    return datetime.now(UTC)


def from_config(
    channel: MastodonChannel, *, session: requests.Session, options: RenderOptions, offline: bool
) -> MastodonAdapter:
    return MastodonAdapter(
        instance=str(channel.instance),
        token=partial(resolve_secret, channel.token),
        session=session,
        visibility=channel.visibility,
        language=channel.language,
        max_thread_posts=channel.max_thread_posts,
        options=options,
        offline=offline,
    )


class MastodonAdapter:
    platform = "mastodon"

    def __init__(
        self,
        *,
        instance: str,
        token: Callable[[], str],
        session: requests.Session,
        visibility: str = "public",
        language: str = "it",
        max_thread_posts: int = 3,
        options: RenderOptions | None = None,
        offline: bool = False,
        timeout: Timeout = TIMEOUT,
        limits_cache: InstanceLimitsCache = _PROCESS_LIMITS,
        clock: Callable[[], datetime] = _utc_now,
        media_wait: float = MEDIA_WAIT,
        media_poll_interval: float = MEDIA_POLL_INTERVAL,
    ) -> None:
        self.instance = instance.rstrip("/")
        self._options = options or RenderOptions()
        self.offline = offline
        # Where the limits of the last render came from: "default" offline or when the instance
        # could not say, "instance" when it did.
        self.limits_source: LimitsSource = "default"
        self._token = token
        self._session = session
        self._visibility = visibility
        self._language = language
        self._max_thread_posts = max_thread_posts
        self._timeout = timeout
        self._limits_cache = limits_cache
        self._clock = clock
        self._media_wait = media_wait
        self._media_poll_interval = media_poll_interval

    def render(self, announcement: Announcement) -> RenderedPost:
        limits = self.limits()
        measure = partial(url_weighted_length, url_weight=limits.characters_reserved_per_url)
        parts = PostParts.from_announcement(announcement, self._options)
        texts, truncated = thread_texts(
            parts, measure=measure, limit=limits.max_characters, max_posts=self._max_thread_posts
        )
        return RenderedPost(
            text=texts[0],
            length=measure(texts[0]),
            limit=limits.max_characters,
            truncated=truncated,
            link=parts.link,
            thread=texts[1:],
            image=post_image(announcement, self._options),
        )

    def limits(self) -> InstanceLimits:
        """The instance's limits (cached), or Mastodon's defaults offline."""
        if self.offline:
            self.limits_source = "default"
            return DEFAULT_LIMITS
        limits, self.limits_source = self._limits_cache.get(self.instance, self._fetch_limits)
        return limits

    def publish(self, post: RenderedPost, *, idempotency_key: str, reply_to: str | None = None) -> PostResult:
        if self.offline:
            raise refuse_offline(PLATFORM)
        token = read_token(self._token, platform=PLATFORM)
        media_ids = self._media_ids(post.image, token) if post.image else ()
        return self._thread(
            post,
            token,
            idempotency_key,
            reply_to,
            self._visibility,
            media_ids=media_ids,
            gone_is_post_gone=True,
        )

    def edit(self, remote_id: str, post: RenderedPost) -> PostResult:
        """The status then shows `post` as publish would have posted it: its text, its language and
        its image. The media is sent every time (an edit names all of a status's media, and
        naming none removes them), so an image fetched or uploaded in vain means a status without
        one, as for a post. A text that needs a thread does not fit one status: "not_editable". A
        status deleted meanwhile (404) is PostGone."""
        if self.offline:
            raise refuse_offline(PLATFORM)
        if post.thread:
            raise PermanentError(
                f"{PLATFORM}: the update needs {len(post.thread) + 1} statuses, an edit rewrites one",
                reason="not_editable",
            )
        token = read_token(self._token, platform=PLATFORM)
        media_ids = self._media_ids(post.image, token) if post.image else ()
        response = send(
            self._session,
            "PUT",
            f"{self.instance}/api/v1/statuses/{remote_id}",
            platform=PLATFORM,
            endpoint="edit_status",
            timeout=self._timeout,
            json={"status": post.text, "language": self._language, "media_ids": list(media_ids)},
            headers={"Authorization": f"Bearer {token}"},
        )
        if response.status_code == HTTPStatus.NOT_FOUND:
            raise PostGone(f"{PLATFORM}: the status {remote_id} to edit is gone")
        if not response.ok:
            raise error_for(response, now=self._clock())
        return _post_result(require_json_object(response, platform=PLATFORM, endpoint="edit_status"))

    def answer(
        self,
        target: ReplyTarget,
        text: str,
        *,
        idempotency_key: str,
        private: bool = False,
        automatic: bool = False,
    ) -> PostResult:
        """A reply to the citizen's status, each piece opening with their @acct: a direct status
        reaches only the accounts it mentions, and a public one notifies them. Direct when the
        conversation is private or the answer is (Mastodon's private answer to a public mention);
        the channel's visibility otherwise. Threaded within the instance's limit like a post, with
        the same idempotency. A status the citizen deleted is not answered (404, "not_found"): an
        answer standing alone would make no sense to anyone."""
        del automatic  # Mastodon has no rules of its own for automatic answers
        if self.offline:
            raise refuse_offline(PLATFORM)
        status_id, acct = target.require("status_id", "acct", platform=PLATFORM)
        mention = f"@{acct.removeprefix('@')} "
        limits = self.limits()
        post = answer_post(
            text,
            measure=partial(url_weighted_length, url_weight=limits.characters_reserved_per_url),
            limit=limits.max_characters - grapheme_count(mention),
            max_posts=self._max_thread_posts,
        )
        post = replace(post, text=mention + post.text, thread=tuple(mention + piece for piece in post.thread))
        visibility = "direct" if private or target.direct else self._visibility
        token = read_token(self._token, platform=PLATFORM)
        return self._thread(post, token, idempotency_key, status_id, visibility, gone_is_post_gone=False)

    def mentions(self, since: str | None) -> list[dict[str, Any]]:
        """One page of the account's mention notifications newer than the notification id `since`
        (the newest page without it), oldest first: GET /api/v1/notifications with min_id, which
        answers the page right after `since`, so a caller reads on from the last id it returns."""
        token = read_token(self._token, platform=PLATFORM)
        params: dict[str, Any] = {"types[]": "mention", "limit": MENTIONS_PAGE}
        if since is not None:
            params["min_id"] = since
        response = send(
            self._session,
            "GET",
            f"{self.instance}/api/v1/notifications",
            platform=PLATFORM,
            endpoint="notifications",
            timeout=self._timeout,
            headers={"Authorization": f"Bearer {token}"},
            params=params,
        )
        if response.status_code != HTTPStatus.OK:
            raise error_for(response, now=self._clock())
        try:
            body = response.json()
        except ValueError:  # requests' JSONDecodeError included
            body = None
        if not isinstance(body, list):
            raise malformed(PLATFORM, "notifications", "the answer is not a JSON list")
        notifications = [
            item for item in body if isinstance(item, dict) and str(item.get("id", "")).isdigit()
        ]
        # Newest first on the wire; ids are numbers growing with time.
        return sorted(notifications, key=lambda item: int(item["id"]))

    def check(self) -> ChannelCheck:
        """verify_credentials: proves the token; Mastodon tokens do not expire unless revoked."""

        def verify() -> requests.Response:
            token = read_token(self._token, platform=PLATFORM)
            return send(
                self._session,
                "GET",
                f"{self.instance}/api/v1/accounts/verify_credentials",
                platform=PLATFORM,
                endpoint="verify_credentials",
                timeout=self._timeout,
                headers={"Authorization": f"Bearer {token}"},
            )

        return check_with(verify, lambda response: error_for(response, now=self._clock()))

    def _thread(
        self,
        post: RenderedPost,
        token: str,
        idempotency_key: str,
        reply_to: str | None,
        visibility: str,
        *,
        media_ids: tuple[str, ...] = (),
        gone_is_post_gone: bool,
    ) -> PostResult:
        """The post's statuses, the first under `reply_to`; `gone_is_post_gone`: a deleted
        `reply_to` raises PostGone (a post may go on its own), else the instance's 404 ("not_found")."""

        def send_one(text: str, parent: str | None, index: int) -> PostResult:
            # The first piece keeps the delivery's own key: a retry of a post made before threads
            # existed, or of a single post, is still recognised.
            key = idempotency_key if index == 0 else f"{idempotency_key}/{index}"
            status = _Status(text, key, visibility, media_ids if index == 0 else ())
            return self._status(status, token, parent, gone_is_post_gone=gone_is_post_gone)

        return post_thread(post, reply_to, send_one)

    def _status(
        self, status: _Status, token: str, reply_to: str | None, *, gone_is_post_gone: bool
    ) -> PostResult:
        response = self._post_status(status, token, reply_to)
        if response.status_code == HTTPStatus.NOT_FOUND and reply_to and gone_is_post_gone:
            # Nothing was created (Mastodon looks the parent up first), so the key is unused and a
            # post of its own may carry it.
            raise PostGone(f"{PLATFORM}: the status {reply_to} to reply to is gone; nothing was posted")
        if not response.ok:
            raise error_for(response, now=self._clock())
        return _post_result(require_json_object(response, platform=PLATFORM, endpoint="statuses"))

    def _post_status(self, status: _Status, token: str, reply_to: str | None) -> requests.Response:
        return send(
            self._session,
            "POST",
            f"{self.instance}/api/v1/statuses",
            platform=PLATFORM,
            endpoint="statuses",
            timeout=self._timeout,
            json={
                "status": status.text,
                "visibility": status.visibility,
                "language": self._language,
                **({"in_reply_to_id": reply_to} if reply_to else {}),
                **({"media_ids": list(status.media_ids)} if status.media_ids else {}),
            },
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": status.key},
        )

    def _media_ids(self, image: PostImage, token: str) -> tuple[str, ...]:
        """The uploaded image's id, or () when the post has to go without it (logged)."""
        limits = self.limits()
        try:
            fetched = fetch_image(
                image.url, max_bytes=limits.image_size_limit, allowed_types=limits.image_types
            )
            return (self._upload(fetched, image.alt, token),)
        except MediaUnavailable as exc:
            logger.warning(
                "Mastodon status goes out without its image",
                extra={"instance": self.instance, "reason": exc.reason, "problem": str(exc)},
            )
            return ()

    def _upload(self, image: FetchedImage, alt: str, token: str) -> str:
        """POST /api/v2/media, then wait (bounded) for a 202's processing to end; the media id."""
        description = within_characters(alt, MAX_DESCRIPTION)
        extension = image.mime_type.partition("/")[2]
        body, ready = self._media_call(
            "POST",
            "/api/v2/media",
            token,
            files={"file": (f"immagine.{extension}", image.content, image.mime_type)},
            data={"description": description},
        )
        media_id = body.get("id")
        if not isinstance(media_id, str) or not media_id:
            raise MediaUnavailable("malformed_response", "Mastodon media: the answer has no media id")
        deadline = time.monotonic() + self._media_wait
        while not ready:
            if time.monotonic() + self._media_poll_interval > deadline:
                raise MediaUnavailable("still_processing", f"Mastodon media {media_id}: not ready in time")
            time.sleep(self._media_poll_interval)
            _, ready = self._media_call("GET", f"/api/v1/media/{media_id}", token)
        return media_id

    def _media_call(self, method: str, path: str, token: str, **options: Any) -> tuple[dict[str, Any], bool]:
        """One media request: the attachment and whether it is processed (a 202 or 206 says it is
        not yet). Every failure is MediaUnavailable, but a refused token, which fails the status too."""
        try:
            response = send(
                self._session,
                method,
                f"{self.instance}{path}",
                platform=PLATFORM,
                endpoint="media",
                timeout=self._timeout,
                headers={"Authorization": f"Bearer {token}"},
                **options,
            )
        except RetryableError as exc:
            raise MediaUnavailable(exc.reason, str(exc)) from None
        if response.status_code == HTTPStatus.PARTIAL_CONTENT:
            return {}, False
        if not response.ok:
            error = error_for(response, now=self._clock())
            if isinstance(error, AuthError):
                raise error
            raise MediaUnavailable(error.reason, str(error))
        body = json_object(response)
        if body is None:
            raise MediaUnavailable("malformed_response", "Mastodon media: the answer is not a JSON object")
        return body, response.status_code == HTTPStatus.OK and bool(body.get("url"))

    def _fetch_limits(self) -> InstanceLimits | None:
        try:
            response = send(
                self._session,
                "GET",
                f"{self.instance}/api/v2/instance",
                platform=PLATFORM,
                endpoint="instance",
                timeout=self._timeout,
            )
        except RetryableError as exc:
            problem = exc.reason
        else:
            limits = _parse_limits(json_object(response)) if response.ok else None
            if limits is not None:
                return limits
            problem = f"HTTP {response.status_code} without usable limits"
        logger.warning(
            "Mastodon instance limits unavailable, using defaults",
            extra={"instance": self.instance, "problem": problem},
        )
        return None


def _parse_limits(body: dict[str, Any] | None) -> InstanceLimits | None:
    configuration = (body or {}).get("configuration")
    statuses = configuration.get("statuses") if isinstance(configuration, dict) else None
    if not isinstance(statuses, dict):
        return None
    max_characters = statuses.get("max_characters")
    per_url = statuses.get("characters_reserved_per_url")
    if not isinstance(max_characters, int) or max_characters < 1:
        return None
    if not isinstance(per_url, int) or per_url < 0:
        return None
    media = configuration.get("media_attachments") if isinstance(configuration, dict) else None
    size, types = _parse_media_limits(media if isinstance(media, dict) else {})
    return InstanceLimits(
        max_characters=max_characters,
        characters_reserved_per_url=per_url,
        image_size_limit=size,
        image_types=types,
    )


def _parse_media_limits(media: dict[str, Any]) -> tuple[int, frozenset[str]]:
    """The image size limit and types an instance announces; Mastodon's defaults for what it omits.
    An instance that lists types without any we can recognise gets no images from us."""
    size = media.get("image_size_limit")
    types = media.get("supported_mime_types")
    return (
        size if isinstance(size, int) and size > 0 else DEFAULT_IMAGE_SIZE_LIMIT,
        COMMON_TYPES.intersection(types) if isinstance(types, list) else COMMON_TYPES,
    )


def error_for(response: requests.Response, *, now: datetime) -> PublishError:
    problem = detail((json_object(response) or {}).get("error"))
    # X-RateLimit-Reset comes with every answer; it means "wait" only on a 429.
    is_rate_limited = response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    retry_after = _seconds_until(response.headers.get("X-RateLimit-Reset"), now) if is_rate_limited else None
    return http_error(PLATFORM, response.status_code, problem, retry_after=retry_after, refusals=_REFUSALS)


def _seconds_until(reset: str | None, now: datetime) -> float | None:
    """Seconds from `now` to an ISO-8601 instant (Mastodon's reset format); None if unreadable."""
    try:
        moment = datetime.fromisoformat(reset) if reset else None
    except ValueError:
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def _post_result(body: dict[str, Any]) -> PostResult:
    status_id, url = body.get("id"), body.get("url")
    if not isinstance(status_id, str) or not status_id:
        raise malformed(PLATFORM, "statuses", "the answer has no status id")
    return PostResult(remote_id=status_id, url=url if isinstance(url, str) and url else None)
