"""Slack adapter: an incoming webhook, sent `{text}` in mrkdwn, or with the announcement's image a
section block whose image accessory carries the alt text.

Delivery is at-least-once. Incoming webhooks have no idempotency and return no message id (only
"ok"): a retry after an unknown outcome (a read timeout, a dropped connection, the process dying after
Slack's answer) can post twice. The remote id is the delivery's idempotency key, the only stable name
there is; there are no threads either, so a reply goes out as a message of its own.

The characters that open Slack's control sequences (& < >) are escaped, so a feed item cannot write
<!channel> or a fake link, and the broadcast words (@channel, @here, @everyone) are defused with an
invisible word joiner, so no item can notify a whole channel whatever Slack parses. mrkdwn has no
escape for its emphasis markers (* _ ~ `): a feed's own show as emphasis. The webhook URL is the
credential: it is resolved at publish time and never shown in errors or logs. A webhook Slack calls
dead (revoked, removed, or its channel archived or deleted) is an AuthError: the channel needs a human.
"""

from __future__ import annotations

import functools
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
)
from chalicelib.channels.text import (
    PostParts,
    RenderOptions,
    fit_post,
    plain_text,
    post_image,
    utf16_length,
    within_characters,
)
from chalicelib.channels.transport import (
    detail,
    http_error,
    malformed,
    refuse_offline,
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
from chalicelib.config.models import SlackChannel
from chalicelib.observability import logger
from chalicelib.secrets import resolve_secret

PLATFORM = "Slack"
ENDPOINT = "webhook"
# A section block's text holds 3000 characters; the message text alone could hold 40,000 before Slack
# truncates it, but one limit for both shapes keeps the image optional at publish time.
MESSAGE_LIMIT = 3000
ALT_TEXT_LIMIT = 2000
IMAGE_URL_LIMIT = 3000
BOLD_MARKERS = 2  # "*" around the title
# What a webhook answers for a payload without text: it is alive, and nothing was posted.
_ALIVE = frozenset({"no_text", "invalid_payload"})
# Answers meaning the webhook can never post again until a human acts, with the reason recorded.
_DEAD = {
    "invalid_token": "auth",
    "no_service": "auth",
    "no_team": "auth",
    "team_disabled": "auth",
    "channel_not_found": "channel_not_found",
    "channel_is_archived": "channel_archived",
}
_REFUSALS: dict[int, str] = {HTTPStatus.BAD_REQUEST: "bad_request", HTTPStatus.FORBIDDEN: "forbidden"}
_BROADCAST = re.compile(r"(?<![\w@])@(?=(?:channel|here|everyone)\b)", re.IGNORECASE)
_FORMATTING = re.compile(r"[*_~`]")
WORD_JOINER = "\u2060"


def from_config(
    channel: SlackChannel, *, session: requests.Session, options: RenderOptions, offline: bool
) -> SlackAdapter:
    return SlackAdapter(
        webhook_url=functools.partial(resolve_secret, channel.webhook_url),
        session=session,
        options=options,
        offline=offline,
    )


def mrkdwn(text: str) -> str:
    """Plain text as Slack mrkdwn that shows exactly that text: & < > escaped, URLs as <url> links
    (their & escaped too, a | encoded so it cannot start a label), broadcast words defused."""
    return outside_urls(text, _escape, _link)


def _escape(text: str) -> str:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST.sub("@" + WORD_JOINER, escaped)


def _link(url: str) -> str:
    return "<" + url.replace("&", "&amp;").replace("|", "%7C") + ">"


def _bold(text: str) -> str:
    # mrkdwn has no escape for its formatting characters: a title holding any stays plain.
    return text if _FORMATTING.search(text) else f"*{text}*"


def _measure(text: str) -> int:
    return utf16_length(mrkdwn(text)) + BOLD_MARKERS


class SlackAdapter(IncomingWebhookAdapter):
    platform = "slack"

    def render(self, announcement: Announcement) -> RenderedPost:
        parts = PostParts.from_announcement(announcement, self._options)
        fitted, truncated = fit_post(parts, measure=_measure, limit=MESSAGE_LIMIT)
        text = with_title(plain_text(fitted), fitted.title, mrkdwn, _bold)
        return RenderedPost(
            text=text,
            length=utf16_length(text),
            limit=MESSAGE_LIMIT,
            truncated=truncated,
            parse_mode="mrkdwn",
            link=fitted.link,
            image=web_image(post_image(announcement, self._options), max_url=IMAGE_URL_LIMIT),
            title=fitted.title,
        )

    def publish(self, post: RenderedPost, *, idempotency_key: str, reply_to: str | None = None) -> PostResult:
        del reply_to  # incoming webhooks cannot thread: see the module docstring
        if self.offline:
            raise refuse_offline(PLATFORM)
        url = read_webhook_url(self._webhook_url, platform=PLATFORM)
        response = self._send(url, message_payload(post))
        if post.image is not None and _code(response) == "invalid_blocks":
            # Slack could not fetch the image (or refused it): the news matters more than its picture.
            logger.warning("Slack refused the image block; posting without the image")
            response = self._send(url, {"text": post.text})
        if not response.ok:
            raise error_for(response)
        if _code(response) != "ok":
            raise malformed(PLATFORM, ENDPOINT, "the answer is not Slack's 'ok'")
        return PostResult(remote_id=idempotency_key, url=None)

    def check(self) -> ChannelCheck:
        """Incoming webhooks have no read endpoint: an empty payload is answered "no_text" by a live
        webhook, which posts nothing, and with the dead-webhook answers otherwise."""
        try:
            response = self._send(read_webhook_url(self._webhook_url, platform=PLATFORM), {})
        except PublishError as exc:
            return ChannelCheck(healthy=False, reason=exc.reason, detail=str(exc))
        if response.status_code == HTTPStatus.BAD_REQUEST and _code(response) in _ALIVE:
            return ChannelCheck(healthy=True, reason="ok")
        error = error_for(response)
        return ChannelCheck(healthy=False, reason=error.reason, detail=str(error))

    def _send(self, url: str, payload: dict[str, Any]) -> requests.Response:
        return send(
            self._session,
            "POST",
            url,
            platform=PLATFORM,
            endpoint=ENDPOINT,
            timeout=self._timeout,
            json=payload,
        )


def message_payload(post: RenderedPost) -> dict[str, Any]:
    if post.image is None:
        return {"text": post.text}
    section = {
        # verbatim: Slack must not turn plain words into links or mentions; our links are explicit.
        "type": "section",
        "text": {"type": "mrkdwn", "text": post.text, "verbatim": True},
        "accessory": {
            "type": "image",
            "image_url": post.image.url,
            "alt_text": within_characters(post.image.alt, ALT_TEXT_LIMIT),
        },
    }
    # The text stays as the notification's fallback.
    return {"text": post.text, "blocks": [section]}


def _code(response: requests.Response) -> str:
    """Slack's webhooks answer with a short code as plain text ("ok", "invalid_token", ...)."""
    return response.text.strip()


def error_for(response: requests.Response) -> PublishError:
    code = _code(response)
    problem = detail(code)
    if code in _DEAD:
        return AuthError(
            f"{PLATFORM} says the webhook is dead ({response.status_code}): {problem}", reason=_DEAD[code]
        )
    is_rate_limited = response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    retry_after = retry_after_header(response) if is_rate_limited else None
    return http_error(PLATFORM, response.status_code, problem, retry_after=retry_after, refusals=_REFUSALS)
