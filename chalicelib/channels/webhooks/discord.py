"""Discord adapter: execute a webhook with `?wait=true`, so Discord answers with the message it
created; `content` within 2000 characters, and with the announcement's image an embed (title, link,
image, and the alt text as its description, since embeds have no alt field).

Delivery is at-least-once. Webhook execution has no idempotency: a retry after an unknown outcome (a
read timeout, a dropped connection, the process dying after Discord's answer) can post twice. Webhooks
cannot reply to a message, so a reply goes out as a message of its own.

`allowed_mentions` with an empty `parse` list means no feed item can ping @everyone, @here, a role or a
user, and Markdown in the text is escaped with backslashes, so it shows as written. URLs go in <...>,
which links each exactly and without a preview card; only the announcement's link is left bare, for
Discord's preview (unless the embed already is the card).

The webhook URL is the credential: it is resolved at publish time and never shown in errors or logs.
A deleted webhook (404, Unknown Webhook) or a bad token (401) is an AuthError: the channel needs a human.
"""

from __future__ import annotations

import functools
import math
import re
from http import HTTPStatus
from typing import Any

import requests

from chalicelib.announcements import Announcement
from chalicelib.channels.base import (
    AuthError,
    ChannelCheck,
    PostResult,
    PublishError,
    RenderedPost,
    RetryableError,
)
from chalicelib.channels.text import (
    PostParts,
    RenderOptions,
    fit_post,
    plain_text,
    post_image,
    shorten,
    utf16_length,
)
from chalicelib.channels.transport import (
    check_with,
    detail,
    http_error,
    json_object,
    malformed,
    refuse_offline,
    require_json_object,
    send,
)
from chalicelib.channels.webhooks.common import (
    IncomingWebhookAdapter,
    outside_urls,
    read_webhook_url,
    retry_after_header,
    web_image,
    with_title,
)
from chalicelib.config.models import DiscordChannel
from chalicelib.secrets import resolve_secret

PLATFORM = "Discord"
ENDPOINT = "execute webhook"
CONTENT_LIMIT = 2000
EMBED_TITLE_LIMIT = 256
EMBED_DESCRIPTION_LIMIT = 4096
IMAGE_URL_LIMIT = 2048
BOLD_MARKERS = 4  # "**" around the title
UNKNOWN_WEBHOOK = 10015
INVALID_WEBHOOK_TOKEN = 50027
_CODE_REASONS = {50006: "empty_message", 50035: "invalid_form_body", 40005: "too_large"}
_REFUSALS: dict[int, str] = {
    HTTPStatus.BAD_REQUEST: "bad_request",
    HTTPStatus.FORBIDDEN: "forbidden",
    HTTPStatus.NOT_FOUND: "not_found",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "too_large",
}
# Characters Discord's Markdown acts on anywhere in a line (emphasis, code, spoilers, quotes, masked
# links, mentions, emoji and timestamps in <...>), and the markers it acts on at a line's start
# (headings, subtext, list items).
_MARKDOWN = re.compile(r"[\\*_~`|<>\[\]]")
_LINE_MARKER = re.compile(r"^([ \t]*)(#{1,3}(?=\s)|-#|[-+](?=\s)|\d+(?=\.\s))", re.MULTILINE)
_ENDS_WITH_BARE_URL = re.compile(r"https?://[^\s<>]*$")
# Discord's autolink: a bare URL is linked up to its last character that is not punctuation.
_AUTOLINK = re.compile(r"https?://[^\s<]+[^<.,:;\"')\]\s]")
_WEBHOOK_ID = re.compile(r"/webhooks/(\d+)/")
# The guild of each webhook, learnt once per process: the message Discord returns does not name it.
_GUILDS: dict[str, str] = {}


def from_config(
    channel: DiscordChannel, *, session: requests.Session, options: RenderOptions, offline: bool
) -> DiscordAdapter:
    return DiscordAdapter(
        webhook_url=functools.partial(resolve_secret, channel.webhook_url),
        session=session,
        options=options,
        offline=offline,
    )


def markdown(text: str, *, preview: str | None = None) -> str:
    """Plain text as Discord Markdown that shows exactly that text. Each URL is wrapped in <...>,
    which links exactly it and adds no preview card; only `preview` (the announcement's link) is left
    bare for Discord to preview, when Discord's autolink takes it whole."""
    bare = preview if preview and _AUTOLINK.fullmatch(preview) else None
    escaped = outside_urls(text, _escape, lambda url: url if url == bare else f"<{url}>")
    return _LINE_MARKER.sub(_escape_marker, escaped)


def _escape_marker(match: re.Match[str]) -> str:
    indent, marker = match.groups()
    # "1. " is escaped after its number, which a backslash before would not affect.
    return f"{indent}{marker}\\" if marker.isdigit() else f"{indent}\\{marker}"


def _escape(text: str) -> str:
    # ":\/\/" shows as "://" but is no link: Discord links "http://localhost/a_b", which is no URL
    # here, and would take the escaping backslashes into it.
    return _MARKDOWN.sub(r"\\\g<0>", text).replace("://", ":\\/\\/")


def _bold(text: str) -> str:
    # Discord's autolink takes "*" as part of a URL: bold markers after a bare URL would join the link.
    return text if _ENDS_WITH_BARE_URL.search(text) else f"**{text}**"


class DiscordAdapter(IncomingWebhookAdapter):
    platform = "discord"

    def render(self, announcement: Announcement) -> RenderedPost:
        image = web_image(post_image(announcement, self._options), max_url=IMAGE_URL_LIMIT)
        parts = PostParts.from_announcement(announcement, self._options)
        # With an image our embed is the post's card: Discord's own preview of the link would repeat it.
        to_markdown = functools.partial(markdown, preview=None if image else parts.link)

        def measure(text: str) -> int:
            # UTF-16 units: never fewer than the code points Discord counts, whichever it counts.
            return utf16_length(to_markdown(text)) + BOLD_MARKERS

        fitted, truncated = fit_post(parts, measure=measure, limit=CONTENT_LIMIT)
        text = with_title(plain_text(fitted), fitted.title, to_markdown, _bold)
        return RenderedPost(
            text=text,
            length=utf16_length(text),
            limit=CONTENT_LIMIT,
            truncated=truncated,
            parse_mode="markdown",
            link=fitted.link,
            image=image,
            title=fitted.title,
        )

    def publish(self, post: RenderedPost, *, idempotency_key: str, reply_to: str | None = None) -> PostResult:
        del idempotency_key, reply_to  # no idempotency, no replies: see the module docstring
        if self.offline:
            raise refuse_offline(PLATFORM)
        url = read_webhook_url(self._webhook_url, platform=PLATFORM)
        response = send(
            self._session,
            "POST",
            url,
            platform=PLATFORM,
            endpoint=ENDPOINT,
            timeout=self._timeout,
            params={"wait": "true"},
            json=message_payload(post),
        )
        if not response.ok:
            raise error_for(response)
        message = require_json_object(response, platform=PLATFORM, endpoint=ENDPOINT)
        message_id, channel_id = message.get("id"), message.get("channel_id")
        if not isinstance(message_id, str) or not message_id or not isinstance(channel_id, str):
            raise malformed(PLATFORM, ENDPOINT, "the answer has no message or channel id")
        guild = message.get("guild_id")
        guild = guild if isinstance(guild, str) and guild else self._guild(url)
        link = f"https://discord.com/channels/{guild}/{channel_id}/{message_id}" if guild else None
        return PostResult(remote_id=message_id, url=link)

    def check(self) -> ChannelCheck:
        """Get Webhook with Token: proves the webhook exists (webhook tokens do not expire)."""

        def get_webhook() -> requests.Response:
            url = read_webhook_url(self._webhook_url, platform=PLATFORM)
            response = self._get_webhook(url)
            _remember_guild(url, json_object(response) if response.ok else None)
            return response

        return check_with(get_webhook, error_for)

    def _guild(self, url: str) -> str | None:
        """The webhook's guild, asked once per process; None (no link) if Discord cannot say now:
        the post is out, and a missing link must not turn it into a failure."""
        webhook_id = _webhook_id(url)
        if webhook_id is None:
            return None
        if webhook_id not in _GUILDS:
            try:
                response = self._get_webhook(url)
            except RetryableError:
                return None
            _remember_guild(url, json_object(response) if response.ok else None)
        return _GUILDS.get(webhook_id)

    def _get_webhook(self, url: str) -> requests.Response:
        return send(self._session, "GET", url, platform=PLATFORM, endpoint="webhook", timeout=self._timeout)


def message_payload(post: RenderedPost) -> dict[str, Any]:
    payload: dict[str, Any] = {"content": post.text, "allowed_mentions": {"parse": []}}
    if post.image is not None:
        fields = {
            "title": _fitted(post.title, EMBED_TITLE_LIMIT),
            "url": post.link,
            "description": _fitted(post.image.alt, EMBED_DESCRIPTION_LIMIT),
        }
        embed = {name: value for name, value in fields.items() if value}
        payload["embeds"] = [{**embed, "image": {"url": post.image.url}}]
    return payload


def _fitted(text: str | None, limit: int) -> str | None:
    """Escaped text within an embed field's limit, cut at a word; None when nothing fits."""
    cut = shorten(text, lambda candidate: len(markdown(candidate)) <= limit) if text else None
    return markdown(cut) if cut else None


def _webhook_id(url: str) -> str | None:
    match = _WEBHOOK_ID.search(url)
    return match.group(1) if match else None


def _remember_guild(url: str, webhook: dict[str, Any] | None) -> None:
    webhook_id, guild = _webhook_id(url), (webhook or {}).get("guild_id")
    if webhook_id is not None and isinstance(guild, str) and guild:
        _GUILDS[webhook_id] = guild


def error_for(response: requests.Response) -> PublishError:
    body = json_object(response) or {}
    code = body.get("code")
    problem = detail(body.get("message"))
    if code in (UNKNOWN_WEBHOOK, INVALID_WEBHOOK_TOKEN):
        return AuthError(f"{PLATFORM} refused the webhook ({response.status_code}, code {code}): {problem}")
    retry_after = None
    if response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
        retry_after = _seconds(body.get("retry_after"))
        retry_after = retry_after if retry_after is not None else _seconds_header(response)
    refusals = dict(_REFUSALS)
    if isinstance(code, int) and code in _CODE_REASONS:
        refusals[response.status_code] = _CODE_REASONS[code]
    return http_error(PLATFORM, response.status_code, problem, retry_after=retry_after, refusals=refusals)


def _seconds(value: object) -> float | None:
    """A number of seconds from Discord (the body's float, or a header's text), if it is one."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _seconds_header(response: requests.Response) -> float | None:
    """X-RateLimit-Reset-After has seconds to the millisecond; Retry-After only whole seconds."""
    seconds = _seconds(response.headers.get("X-RateLimit-Reset-After"))
    return seconds if seconds is not None else retry_after_header(response)
