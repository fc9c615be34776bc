"""Telegram adapter: Bot API sendMessage in HTML mode, measured as Telegram measures (the visible text
after entity parsing, in UTF-16 code units, at most 4096). A post with an image whose text fits a
caption (1024) goes out with sendPhoto instead, by URL: Telegram downloads the image itself. Telegram
has no alt text, so the feed's description of the image becomes a "🖼" line of the caption. If
Telegram cannot use the image (unreachable, not an image, too big), the same publish falls back to
sendMessage with the same text and the page's link preview (whose card usually shows the same image,
so the "🖼" line still describes something): the refused sendPhoto posted nothing, so no duplicate.
A reply to a message that was deleted is refused (PostGone) rather than sent without its thread by
Telegram (allow_sending_without_reply): the publisher then posts it on its own and records that it
did, as for every platform. The refused call posted nothing, so that costs one call, never a duplicate.
`edit` rewrites a message's text (editMessageText), or a photo's caption (editMessageCaption).

Delivery is at-least-once. The Bot API has no idempotency, so `idempotency_key` is accepted and ignored,
and a retry after an unknown outcome posts again: a duplicate is possible when the process dies between
Telegram's 200 and the delivery record, or when the answer is lost after the request went out (a read
timeout or dropped connection, raised as RetryableError with reason "timeout" or "connection_error").
sendPhoto widens that window a little: Telegram fetches the image before answering, so a slow image
host can push the answer past our read timeout after the photo went out. Every other failure is
classified from Telegram's own answer, before or without a post.

The bot token travels in the URL path: errors are built here from safe parts, and urllib3's log lines,
which carry the path, are redacted.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import requests

from chalicelib.announcements import Announcement
from chalicelib.channels.answering import answer_post, refuse_private
from chalicelib.channels.base import (
    ChannelCheck,
    PermanentError,
    PostGone,
    PostResult,
    PublishError,
    RenderedPost,
    ReplyTarget,
)
from chalicelib.channels.text import (
    BLOCK_SEPARATOR,
    PostParts,
    RenderOptions,
    escape_html,
    fit_post,
    join_blocks,
    post_image,
    shorten,
    utf16_length,
)
from chalicelib.channels.transport import (
    Timeout,
    UrlSecretFilter,
    check_with,
    detail,
    http_error,
    json_object,
    malformed,
    masked,
    read_token,
    redact_urllib3_logs,
    refuse_offline,
    require_json_object,
    send,
)
from chalicelib.config.models import TelegramChannel
from chalicelib.http import TIMEOUT
from chalicelib.observability import logger
from chalicelib.secrets import resolve_secret

DEFAULT_API_BASE = "https://api.telegram.org"
MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
PLATFORM = "Telegram"
ENDPOINT = "sendMessage"
PHOTO_ENDPOINT = "sendPhoto"
IMAGE_MARK = "🖼 "
# Telegram's 400 descriptions when it cannot use a photo given by URL: worth a sendMessage instead.
_PHOTO_REFUSALS = (
    "wrong file identifier",
    "http url",
    "web page content",
    "image_process_failed",
    "photo_",
    "caption is too long",
)
_REFUSALS: dict[int, str] = {HTTPStatus.BAD_REQUEST: "bad_request", HTTPStatus.FORBIDDEN: "forbidden"}
TEXT_EDIT = "editMessageText"
CAPTION_EDIT = "editMessageCaption"
# Telegram's 400 descriptions (lowercased) that matter to replies and edits.
_REPLY_GONE = "message to be replied not found"
_EDIT_GONE = "message to edit not found"
_NOT_MODIFIED = "message is not modified"  # the same text again: the edit is already done
# The other method is the one for this message: a photo has no text, a message no caption.
_WRONG_KIND = ("there is no text in the message to edit", "there is no caption in the message to edit")
_NOT_EDITABLE = (
    *_WRONG_KIND,
    "message can't be edited",
    "message caption is too long",
    "message is too long",
)
# Public: every Bot API caller (the adapter, the inbox webhook registration) hides the token the same way.
TOKEN_IN_PATH = UrlSecretFilter(re.compile(r"/bot[^/\s]+"), "/bot***")


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
        redact_urllib3_logs(TOKEN_IN_PATH)

    def render(self, announcement: Announcement) -> RenderedPost:
        """A message, or a photo with a caption when there is an image and the text fits a caption:
        `image` is set only then."""
        parts = PostParts.from_announcement(announcement, self._options)
        fitted, truncated = fit_post(parts, measure=utf16_length, limit=MESSAGE_LIMIT)
        plain, text = _blocks(fitted)
        image = post_image(announcement, self._options)
        if image is not None and utf16_length(plain) <= CAPTION_LIMIT:
            plain, text = _blocks(fitted, _image_line(announcement, plain, fitted.title))
        else:
            image = None  # a message, with the page's link preview
        return RenderedPost(
            text=text,
            # The markup adds no visible text, so the plain text is what Telegram counts.
            length=utf16_length(plain),
            limit=CAPTION_LIMIT if image else MESSAGE_LIMIT,
            truncated=truncated,
            parse_mode="HTML",
            link=fitted.link,
            image=image,
        )

    def publish(self, post: RenderedPost, *, idempotency_key: str, reply_to: str | None = None) -> PostResult:
        del idempotency_key  # the Bot API has no idempotency: see the module docstring
        if self.offline:
            raise refuse_offline(PLATFORM)
        token = read_token(self._token, platform=PLATFORM)
        if post.image is not None:
            payload = {**self._common(post, reply_to), "photo": post.image.url, "caption": post.text}
            response = self._call(token, PHOTO_ENDPOINT, payload)
            problem = _photo_refusal(response)
            if problem is None:
                return _reply_result(response, token, PHOTO_ENDPOINT, reply_to)
            logger.warning(
                "Telegram could not use the image, sending the text alone",
                extra={"chat": self.chat, "problem": masked(problem, (token,))},
            )
        return _reply_result(
            self._call(token, ENDPOINT, self._payload(post, reply_to)), token, ENDPOINT, reply_to
        )

    def edit(self, remote_id: str, post: RenderedPost) -> PostResult:
        """The message's new text, or the new caption of a photo post (the photo stays; the post's
        own image is not sent). Which of the two the message is, Telegram says: the method for the
        other kind is refused, and the right one follows. The same text again is a success
        ("message is not modified"), so a retry of an edit that went through is harmless. A deleted
        message is PostGone; one Telegram will not edit, or a text over a caption's limit for a
        photo, PermanentError "not_editable"."""
        if self.offline:
            raise refuse_offline(PLATFORM)
        token = read_token(self._token, platform=PLATFORM)
        chat, _, message_id = remote_id.rpartition(":")
        payload: dict[str, Any] = {"chat_id": int(chat), "message_id": int(message_id)}
        if post.parse_mode:
            payload["parse_mode"] = post.parse_mode
        text = {**payload, "text": post.text, "link_preview_options": self._link_preview(post)}
        caption = {**payload, "caption": post.text}
        attempts = [(CAPTION_EDIT, caption), (TEXT_EDIT, text)]
        if post.image is None:
            attempts.reverse()  # a message most likely, as this post would be
        for method, body in attempts:
            response = self._call(token, method, body)
            if _description(response) not in _WRONG_KIND:
                break
        return self._edit_result(response, token, method, remote_id)

    def _edit_result(
        self, response: requests.Response, token: str, method: str, remote_id: str
    ) -> PostResult:
        if response.ok:
            return _post_result(require_json_object(response, platform=PLATFORM, endpoint=method), method)
        description = _description(response)
        if description.startswith(_NOT_MODIFIED):
            username = self.chat[1:] if self.chat.startswith("@") else None
            message_id = remote_id.rpartition(":")[2]
            return PostResult(remote_id=remote_id, url=_link(username, message_id))
        error = error_for(response.status_code, json_object(response) or {}, token)
        if description == _EDIT_GONE:
            raise PostGone(f"{PLATFORM}: the message to edit is gone ({error})")
        if description in _NOT_EDITABLE and isinstance(error, PermanentError):
            raise PermanentError(f"{PLATFORM}: {error}", reason="not_editable")
        raise error

    def answer(
        self,
        target: ReplyTarget,
        text: str,
        *,
        idempotency_key: str,
        private: bool = False,
        automatic: bool = False,
    ) -> PostResult:
        """A plain-text message (cut at a word to 4096) in the chat where the citizen wrote: the
        private chat with the bot, or the discussion group under the channel's post, as a reply to
        their message. In a private chat the answer goes out even if they deleted that message; in
        the group it must hang under it, or it would stand among everyone's comments on its own.
        A bot cannot open a private chat with someone who only commented, so `private` is refused."""
        # The Bot API has no idempotency (see the module docstring), nor rules for automatic answers.
        del idempotency_key, automatic
        if private:
            raise refuse_private(PLATFORM)
        if self.offline:
            raise refuse_offline(PLATFORM)
        chat, message_id = target.require("chat_id", "message_id", platform=PLATFORM)
        post = answer_post(text, measure=utf16_length, limit=MESSAGE_LIMIT)
        token = read_token(self._token, platform=PLATFORM)
        payload = {
            "chat_id": chat,
            "text": post.text,
            "reply_parameters": {"message_id": int(message_id), "allow_sending_without_reply": target.direct},
        }
        return _result(self._call(token, ENDPOINT, payload), token, ENDPOINT)

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
            get_me, lambda response: error_for(response.status_code, json_object(response) or {}, token)
        )

    def _call(self, token: str, method: str, payload: dict[str, Any]) -> requests.Response:
        return send(
            self._session,
            "POST",
            f"{self._api_base}/bot{token}/{method}",
            platform=PLATFORM,
            endpoint=method,
            timeout=self._timeout,
            json=payload,
        )

    def _payload(self, post: RenderedPost, reply_to: str | None) -> dict[str, Any]:
        return {
            **self._common(post, reply_to),
            "text": post.text,
            "link_preview_options": self._link_preview(post),
        }

    @staticmethod
    def _link_preview(post: RenderedPost) -> dict[str, Any]:
        # Preview the announcement's page, not whichever URL comes first in the summary.
        return {"url": post.link} if post.link else {"is_disabled": True}

    def _common(self, post: RenderedPost, reply_to: str | None) -> dict[str, Any]:
        """What sendMessage and sendPhoto share: chat, notification, parse mode, reply."""
        payload: dict[str, Any] = {"chat_id": self.chat, "disable_notification": self._disable_notification}
        if post.parse_mode:
            payload["parse_mode"] = post.parse_mode
        if reply_to:
            # Remote ids are "<chat id>:<message id>"; a reply names the message in this chat. If
            # it was deleted, Telegram refuses the reply and _reply_result says so (PostGone).
            payload["reply_parameters"] = {"message_id": int(reply_to.rpartition(":")[2])}
        return payload


def _blocks(parts: PostParts, image_line: str = "") -> tuple[str, str]:
    """The post as Telegram shows it and as sent (HTML): bold title, summary, the image's description,
    link, hashtags."""
    blocks = (parts.title, parts.summary, image_line, parts.link or "", " ".join(parts.hashtags))
    markup = [f"<b>{escape_html(parts.title)}</b>" if parts.title else ""]
    markup += [escape_html(block) for block in blocks[1:]]
    return join_blocks(*blocks), join_blocks(*markup)


def _image_line(announcement: Announcement, plain: str, title: str) -> str:
    """The line "🖼 <the feed's alt text>", shortened to what the caption has left; empty when the feed
    gives no description or it only repeats the title (a fallback alt says nothing the caption does not)."""
    alt = " ".join(announcement.image.alt.split()) if announcement.image else ""
    if not alt or alt == title:
        return ""
    room = CAPTION_LIMIT - utf16_length(plain + BLOCK_SEPARATOR + IMAGE_MARK)
    described = shorten(alt, lambda text: utf16_length(text) <= room)
    return IMAGE_MARK + described if described else ""


def _photo_refusal(response: requests.Response) -> str | None:
    """Telegram's description when it refused the photo itself (400), None for any other answer."""
    if response.status_code != HTTPStatus.BAD_REQUEST:
        return None
    description = str((json_object(response) or {}).get("description", ""))
    return description if any(marker in description.lower() for marker in _PHOTO_REFUSALS) else None


def _description(response: requests.Response) -> str:
    """Telegram's description of a 400 without its "Bad Request: " prefix, lowercased; "" otherwise."""
    if response.status_code != HTTPStatus.BAD_REQUEST:
        return ""
    description = str((json_object(response) or {}).get("description", ""))
    return description.removeprefix("Bad Request: ").strip().lower()


def _reply_result(response: requests.Response, token: str, endpoint: str, reply_to: str | None) -> PostResult:
    if reply_to and _description(response) == _REPLY_GONE:
        raise PostGone(f"{PLATFORM}: the message {reply_to} to reply to is gone; nothing was posted")
    return _result(response, token, endpoint)


def _result(response: requests.Response, token: str, endpoint: str) -> PostResult:
    if not response.ok:
        raise error_for(response.status_code, json_object(response) or {}, token)
    return _post_result(require_json_object(response, platform=PLATFORM, endpoint=endpoint), endpoint)


def error_for(status: int, body: dict[str, Any], token: str, *secrets: str) -> PublishError:
    """A Bot API refusal as our error, with the token (and any other secret sent) masked."""
    problem = masked(detail(body.get("description")), (token, *secrets))
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


def _post_result(body: dict[str, Any], endpoint: str) -> PostResult:
    result = body.get("result")
    if body.get("ok") is not True or not isinstance(result, dict):
        raise malformed(PLATFORM, endpoint, "the answer has no result")
    message_id, chat = result.get("message_id"), result.get("chat")
    if not isinstance(message_id, int) or not isinstance(chat, dict) or not isinstance(chat.get("id"), int):
        raise malformed(PLATFORM, endpoint, "the answer has no message or chat id")
    # message_id is unique per chat only, hence the chat id in the remote id.
    username = chat.get("username")
    return PostResult(
        remote_id=f"{chat['id']}:{message_id}",
        url=_link(username if isinstance(username, str) else None, str(message_id)),
    )


def _link(username: str | None, message_id: str) -> str | None:
    """A channel message's public link; None in a chat without a username."""
    return f"https://t.me/{username}/{message_id}" if username else None
