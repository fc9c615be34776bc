"""Mastodon adapter: POST /api/v1/statuses, measured as the instance measures (graphemes, each URL as
`characters_reserved_per_url`) within the limits the instance announces at /api/v2/instance.

Delivery is exactly-once within Mastodon's idempotency window: every publish sends the caller's
`idempotency_key` as the `Idempotency-Key` header, and the instance answers a repeat within 1 h with the
status it already created instead of posting again. A retry of an unknown outcome (timeout, dropped
connection, process death after the 200) more than 1 h later could post twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from http import HTTPStatus
from typing import Any, Literal

import requests

from chalicelib.announcements import Announcement
from chalicelib.channels.base import ChannelCheck, PostResult, PublishError, RenderedPost, RetryableError
from chalicelib.channels.text import PostParts, RenderOptions, fit_post, plain_text, url_weighted_length
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

LimitsSource = Literal["default", "instance"]


@dataclass(frozen=True)
class InstanceLimits:
    max_characters: int
    characters_reserved_per_url: int


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
        options: RenderOptions | None = None,
        offline: bool = False,
        timeout: Timeout = TIMEOUT,
        limits_cache: InstanceLimitsCache = _PROCESS_LIMITS,
        clock: Callable[[], datetime] = _utc_now,
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
        self._timeout = timeout
        self._limits_cache = limits_cache
        self._clock = clock

    def render(self, announcement: Announcement) -> RenderedPost:
        limits = self.limits()
        measure = partial(url_weighted_length, url_weight=limits.characters_reserved_per_url)
        parts = PostParts.from_announcement(announcement, self._options)
        fitted, truncated = fit_post(parts, measure=measure, limit=limits.max_characters)
        text = plain_text(fitted)
        return RenderedPost(
            text=text,
            length=measure(text),
            limit=limits.max_characters,
            truncated=truncated,
            link=fitted.link,
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
        response = send(
            self._session,
            "POST",
            f"{self.instance}/api/v1/statuses",
            platform=PLATFORM,
            endpoint="statuses",
            timeout=self._timeout,
            json={
                "status": post.text,
                "visibility": self._visibility,
                "language": self._language,
                **({"in_reply_to_id": reply_to} if reply_to else {}),
            },
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": idempotency_key},
        )
        if not response.ok:
            raise _error_for(response, now=self._clock())
        return _post_result(require_json_object(response, platform=PLATFORM, endpoint="statuses"))

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

        return check_with(verify, lambda response: _error_for(response, now=self._clock()))

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
    return InstanceLimits(max_characters=max_characters, characters_reserved_per_url=per_url)


def _error_for(response: requests.Response, *, now: datetime) -> PublishError:
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
