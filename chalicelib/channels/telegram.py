"""Telegram adapter: Bot API sendMessage in HTML mode, measured as Telegram measures (the visible text
after entity parsing, in UTF-16 code units, at most 4096).

Delivery is at-least-once. The Bot API has no idempotency, so `idempotency_key` is accepted and ignored,
and a retry after an unknown outcome posts again: a duplicate is possible when the process dies between
Telegram's 200 and the delivery record, or when the answer is lost after the request went out (a read
timeout or dropped connection, raised as RetryableError with reason "timeout" or "connection_error").
Every other failure is classified from Telegram's own answer, before or without a post.

The bot token travels in the URL path: errors are built here from safe parts, and urllib3's log lines,
which carry the path, are redacted.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import requests

from chalicelib.announcements import Announcement
from chalicelib.channels.base import ChannelCheck, PostResult, PublishError, RenderedPost
from chalicelib.channels.text import (
    PostParts,
    RenderOptions,
    escape_html,
    fit_post,
    join_blocks,
    plain_text,
    utf16_length,
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
from chalicelib.config.models import TelegramChannel
from chalicelib.http import TIMEOUT
from chalicelib.secrets import resolve_secret

DEFAULT_API_BASE = "https://api.telegram.org"
MESSAGE_LIMIT = 4096
PLATFORM = "Telegram"
ENDPOINT = "sendMessage"
_REFUSALS: dict[int, str] = {HTTPStatus.BAD_REQUEST: "bad_request", HTTPStatus.FORBIDDEN: "forbidden"}
_TOKEN_IN_PATH = re.compile(r"/bot[^/\s]+")


def from_config(
    channel: TelegramChannel, *, session: requests.Session, options: RenderOptions, offline: bool
) -> TelegramAdapter:
    return TelegramAdapter(
        chat=channel.chat,
        token=functools.partial(resolve_secret, channel.token),
        session=session,
        api_base=str(channel.api_base),
        disable_notification=channel.disable_notification,
        options=options,
        offline=offline,
    )


class TelegramAdapter:
    platform = "telegram"

    def __init__(
        self,
        *,
        chat: str,
        token: Callable[[], str],
        session: requests.Session,
        api_base: str = DEFAULT_API_BASE,
        disable_notification: bool = False,
        options: RenderOptions | None = None,
        offline: bool = False,
        timeout: Timeout = TIMEOUT,
    ) -> None:
        self.chat = chat
        self._options = options or RenderOptions()
        self.offline = offline
        self._token = token
        self._session = session
        self._api_base = api_base.rstrip("/")
        self._disable_notification = disable_notification
        self._timeout = timeout
        _redact_tokens_in_urllib3_logs()

    def render(self, announcement: Announcement) -> RenderedPost:
        parts = PostParts.from_announcement(announcement, self._options)
        fitted, truncated = fit_post(parts, measure=utf16_length, limit=MESSAGE_LIMIT)
        text = join_blocks(
            f"<b>{escape_html(fitted.title)}</b>" if fitted.title else "",
            escape_html(fitted.summary),
            escape_html(fitted.link or ""),
            escape_html(" ".join(fitted.hashtags)),
        )
        return RenderedPost(
            text=text,
            # The markup above adds no visible text, so the plain text is what Telegram counts.
            length=utf16_length(plain_text(fitted)),
            limit=MESSAGE_LIMIT,
            truncated=truncated,
            parse_mode="HTML",
            link=fitted.link,
        )

    def publish(self, post: RenderedPost, *, idempotency_key: str, reply_to: str | None = None) -> PostResult:
        del idempotency_key  # the Bot API has no idempotency: see the module docstring
        if self.offline:
            raise refuse_offline(PLATFORM)
        token = read_token(self._token, platform=PLATFORM)
        response = send(
            self._session,
            "POST",
            f"{self._api_base}/bot{token}/{ENDPOINT}",
            platform=PLATFORM,
            endpoint=ENDPOINT,
            timeout=self._timeout,
            json=self._payload(post, reply_to),
        )
        if not response.ok:
            raise _error_for(response.status_code, json_object(response) or {}, token)
        return _post_result(require_json_object(response, platform=PLATFORM, endpoint=ENDPOINT))

    def check(self) -> ChannelCheck:
        """getMe: the cheapest call that proves the token (Telegram bot tokens never expire)."""
        token = ""

        def get_me() -> requests.Response:
            nonlocal token
            token = read_token(self._token, platform=PLATFORM)
            return send(
                self._session,
                "GET",
                f"{self._api_base}/bot{token}/getMe",
                platform=PLATFORM,
                endpoint="getMe",
                timeout=self._timeout,
            )

        return check_with(
            get_me, lambda response: _error_for(response.status_code, json_object(response) or {}, token)
        )

    def _payload(self, post: RenderedPost, reply_to: str | None) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "chat_id": self.chat,
            "text": post.text,
            # Preview the announcement's page, not whichever URL comes first in the summary.
            "link_preview_options": {"url": post.link} if post.link else {"is_disabled": True},
            "disable_notification": self._disable_notification,
        }
        if post.parse_mode:
            payload["parse_mode"] = post.parse_mode
        if reply_to:
            # Remote ids are "<chat id>:<message id>"; a reply names the message in this chat. If
            # it was deleted, post anyway: an update must not be lost for want of its thread.
            payload["reply_parameters"] = {
                "message_id": int(reply_to.rpartition(":")[2]),
                "allow_sending_without_reply": True,
            }
        return payload


def _error_for(status: int, body: dict[str, Any], token: str) -> PublishError:
    # Telegram's descriptions never echo the token; replacing it anyway costs nothing.
    problem = detail(body.get("description")).replace(token, "***")
    parameters = body.get("parameters")
    parameters = parameters if isinstance(parameters, dict) else {}
    new_chat = parameters.get("migrate_to_chat_id")
    if new_chat is not None:
        # A group upgraded to a supergroup: the configured chat id is dead, a human must update it.
        return http_error(
            PLATFORM, status, f"{problem}; the chat is now {new_chat}", refusals={status: "chat_migrated"}
        )
    retry_after = parameters.get("retry_after")
    seconds = float(retry_after) if isinstance(retry_after, int | float) else None
    return http_error(PLATFORM, status, problem, retry_after=seconds, refusals=_REFUSALS)


def _post_result(body: dict[str, Any]) -> PostResult:
    result = body.get("result")
    if body.get("ok") is not True or not isinstance(result, dict):
        raise malformed(PLATFORM, ENDPOINT, "the answer has no result")
    message_id, chat = result.get("message_id"), result.get("chat")
    if not isinstance(message_id, int) or not isinstance(chat, dict) or not isinstance(chat.get("id"), int):
        raise malformed(PLATFORM, ENDPOINT, "the answer has no message or chat id")
    # message_id is unique per chat only, hence the chat id in the remote id.
    username = chat.get("username")
    url = f"https://t.me/{username}/{message_id}" if isinstance(username, str) and username else None
    return PostResult(remote_id=f"{chat['id']}:{message_id}", url=url)


class _TokenPathFilter(logging.Filter):
    """urllib3 logs request paths (DEBUG) and retried URLs (WARNING); the bot token is in the path."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "/bot" in message:
            record.msg, record.args = _TOKEN_IN_PATH.sub("/bot***", message), None
        return True


_URLLIB3_FILTER = _TokenPathFilter()


def _redact_tokens_in_urllib3_logs() -> None:
    pool_logger = logging.getLogger("urllib3.connectionpool")
    if _URLLIB3_FILTER not in pool_logger.filters:
        pool_logger.addFilter(_URLLIB3_FILTER)
