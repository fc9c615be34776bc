"""Facebook Page adapter (Graph API): a post on the Page's feed with the announcement's link as its card,
or a photo post (image URL, caption, alt text) when the announcement has an image; a reply is a comment
under the first post. Measured in UTF-16 code units against the message limit (63,206), cut at a word
with the link kept: Facebook has no threads.
Citizens are answered (`answer`) under their comments, or through Messenger's Send API in private,
within Messenger's windows.

Delivery is at-least-once. Graph has no idempotency, so `idempotency_key` is accepted and ignored, and a
retry after an unknown outcome (a read timeout, a dropped connection, process death after Facebook's
answer) posts again. Facebook refuses the same message posted twice in a row with error 506: that lands
as PermanentError("duplicate"), which after a timeout most likely means the first attempt went through.

The Page token travels in the `access_token` form field (graph.GraphClient); errors are classified from
Graph's own error codes (graph.classify).

A comment under a post that was deleted is refused (100/33) and nothing is posted: PostGone, and the
publisher posts the delivery on its own. `edit` rewrites a post's message (POST /{post-id}): the same
message again is harmless, so a retried edit is too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import requests

from chalicelib.announcements import Announcement
from chalicelib.channels.answering import answer_post
from chalicelib.channels.base import (
    ChannelCheck,
    PermanentError,
    PostImage,
    PostResult,
    PublishError,
    RenderedPost,
    ReplyTarget,
)
from chalicelib.channels.graph import GraphClient, expiry_of, required_id
from chalicelib.channels.text import PostParts, RenderOptions, fit_post, plain_text, post_image, utf16_length
from chalicelib.channels.transport import Timeout, detail, json_object, malformed, read_token, refuse_offline
from chalicelib.clock import utcnow
from chalicelib.config.models import FacebookChannel
from chalicelib.http import TIMEOUT
from chalicelib.observability import logger
from chalicelib.secrets import resolve_secret

PLATFORM = "Facebook"
DEFAULT_API_BASE = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v24.0"
MESSAGE_LIMIT = 63_206
# Messenger (the Send API): a text message holds under 2000 characters; a person may be written to
# within 24 hours of their last message, and a person's answer (the HUMAN_AGENT tag, which the app
# must be approved for) within 7 days; a private reply to a comment within 7 days of the comment.
MESSENGER_TEXT_LIMIT = 1999
STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
PRIVATE_REPLY_WINDOW = timedelta(days=7)


def public_url(post_id: str) -> str:
    """Facebook opens a "{page}_{post}" id as the post itself."""
    return f"https://www.facebook.com/{post_id}"


def from_config(
    channel: FacebookChannel, *, session: requests.Session, options: RenderOptions, offline: bool
) -> FacebookAdapter:
    return FacebookAdapter(
        page_id=channel.page_id,
        token=partial(resolve_secret, channel.token),
        app_token=partial(resolve_secret, channel.app_token) if channel.app_token else None,
        token_expires_on=channel.token_expires_on,
        session=session,
        api_base=str(channel.api_base),
        api_version=channel.api_version,
        options=options,
        offline=offline,
    )


class FacebookAdapter:
    platform = "facebook"

    def __init__(
        self,
        *,
        page_id: str,
        token: Callable[[], str],
        session: requests.Session,
        app_token: Callable[[], str] | None = None,
        token_expires_on: date | None = None,
        api_base: str = DEFAULT_API_BASE,
        api_version: str = DEFAULT_API_VERSION,
        options: RenderOptions | None = None,
        offline: bool = False,
        timeout: Timeout = TIMEOUT,
    ) -> None:
        self.page_id = page_id
        self.offline = offline
        self._options = options or RenderOptions()
        self._app_token = app_token
        self._token_expires_on = token_expires_on
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
        fitted, truncated = fit_post(parts, measure=utf16_length, limit=MESSAGE_LIMIT)
        text = plain_text(fitted)
        return RenderedPost(
            text=text,
            length=utf16_length(text),
            limit=MESSAGE_LIMIT,
            truncated=truncated,
            link=fitted.link,
            image=post_image(announcement, self._options),
        )

    def publish(self, post: RenderedPost, *, idempotency_key: str, reply_to: str | None = None) -> PostResult:
        del idempotency_key  # Graph has no idempotency: see the module docstring
        if self.offline:
            raise refuse_offline(PLATFORM)
        if reply_to:
            return self._graph.comment(post.text, reply_to, link=public_url, gone_is_post_gone=True)
        if post.image is not None:
            photo = self._photo(post.text, post.image)
            if photo is not None:
                return photo
        fields = {"message": post.text, **({"link": post.link} if post.link else {})}
        body = self._graph.post(f"{self.page_id}/feed", endpoint="feed", fields=fields)
        post_id = required_id(body, "id", platform=PLATFORM, endpoint="feed")
        return PostResult(remote_id=post_id, url=public_url(post_id))

    def edit(self, remote_id: str, post: RenderedPost) -> PostResult:
        """The post's (or photo post's) message becomes `post.text`; its link card or photo stays
        as it was, Graph edits the message only. A deleted post is PostGone."""
        if self.offline:
            raise refuse_offline(PLATFORM)
        body = self._graph.post(
            remote_id,
            endpoint="edit",
            fields={"message": post.text},
            gone=f"the post {remote_id} to edit is gone",
        )
        if body.get("success") is not True:
            raise malformed(PLATFORM, "edit", "the answer does not say success")
        return PostResult(remote_id=remote_id, url=public_url(remote_id))

    def answer(
        self,
        target: ReplyTarget,
        text: str,
        *,
        idempotency_key: str,
        private: bool = False,
        automatic: bool = False,
    ) -> PostResult:
        """Messenger (a direct conversation): a Send API message to the citizen's page-scoped id, as
        a response within 24 hours of their last message, then for a person's answer with the
        HUMAN_AGENT tag up to 7 days; later, or later than 24 hours for an automatic answer, it is
        refused here with reason "messenger_window_closed" (Meta would refuse it too: code 10,
        subcode 2018278, which lands as the same reason). A comment: a public reply under it, or
        with `private` a private reply (the Send API naming the comment: one per comment, within 7
        days of it), which opens a Messenger conversation if the citizen answers. Cut at a word to
        the limit; at-least-once, as posts (Graph has no idempotency)."""
        del idempotency_key  # Graph has no idempotency: see the module docstring
        if self.offline:
            raise refuse_offline(PLATFORM)
        if target.direct:
            (person,) = target.require("recipient_id", platform=PLATFORM)
            return self._message({"id": person}, text, _messaging(target.last_message_at, automatic))
        (comment,) = target.require("comment_id", platform=PLATFORM)
        if private:
            if utcnow() - target.message_at > PRIVATE_REPLY_WINDOW:
                raise _window_closed("a private reply goes within 7 days of the comment")
            return self._message({"comment_id": comment}, text, {"messaging_type": "RESPONSE"})
        post = answer_post(text, measure=utf16_length, limit=MESSAGE_LIMIT)
        commented = target.ids.get("post_id")
        return self._graph.comment(
            post.text, comment, link=lambda _: public_url(commented) if commented else None
        )

    def _message(self, recipient: dict[str, str], text: str, messaging: dict[str, str]) -> PostResult:
        post = answer_post(text, measure=utf16_length, limit=MESSENGER_TEXT_LIMIT)
        fields = {"recipient": json.dumps(recipient), "message": json.dumps({"text": post.text}), **messaging}
        body = self._graph.post(f"{self.page_id}/messages", endpoint="messages", fields=fields)
        message_id = required_id(body, "message_id", platform=PLATFORM, endpoint="messages")
        return PostResult(remote_id=message_id, url=None)

    def _photo(self, text: str, image: PostImage) -> PostResult | None:
        """A photo post, its caption the whole text (a photo has no link card, the URL in the text is
        clickable); None when Facebook cannot use the image, so the post goes out without it."""
        fields = {"url": image.url, "message": text, "alt_text_custom": image.alt}
        try:
            body = self._graph.post(f"{self.page_id}/photos", endpoint="photos", fields=fields)
        except PermanentError as exc:
            if exc.reason != "image_unsuitable":
                raise
            logger.warning(
                "Facebook refused the image, posting without it",
                extra={"page_id": self.page_id, "problem": str(exc)},
            )
            return None
        # `id` is the photo; `post_id` ("{page}_{post}") the feed story comments and links belong to.
        key = "post_id" if body.get("post_id") else "id"
        post_id = required_id(body, key, platform=PLATFORM, endpoint="photos")
        return PostResult(remote_id=post_id, url=public_url(post_id))

    def check(self) -> ChannelCheck:
        """With an app token, debug_token: whether the Page token is valid and when it expires.
        Without one (or if debug_token cannot answer), GET /me with the Page token. The configured
        `token_expires_on` stands in when Facebook gives no expiry."""
        configured = expiry_of(self._token_expires_on)
        if self._app_token is not None:
            found = self._debug_token(self._app_token, configured)
            if found is not None:
                return found
        return replace(self._graph.check("me", endpoint="me", fields="id,name"), token_expires_at=configured)

    def _debug_token(self, app_token: Callable[[], str], configured: datetime | None) -> ChannelCheck | None:
        """The Page token's debug info; None when debug_token itself fails (an unreadable or refused
        app token says nothing about the Page token, which /me then checks)."""
        secrets: tuple[str, ...] = ()
        try:
            secrets = (self._graph.token(), read_token(app_token, platform=PLATFORM))
            response = self._graph.get_response(
                "debug_token", endpoint="debug_token", token=secrets[1], input_token=secrets[0]
            )
        except PublishError as exc:
            problem = str(exc)
        else:
            data = (json_object(response) or {}).get("data")
            if response.ok and isinstance(data, dict):
                return _token_health(data, configured)
            problem = str(self._graph.error_for(response, secrets[1]))
        logger.warning("Facebook debug_token unavailable, checking /me", extra={"problem": problem})
        return None


def _messaging(last_message_at: datetime, automatic: bool) -> dict[str, str]:
    """How Messenger lets a message go this long after the citizen's last one (see answer)."""
    waited = utcnow() - last_message_at
    if waited <= STANDARD_WINDOW:
        return {"messaging_type": "RESPONSE"}
    if waited <= HUMAN_AGENT_WINDOW and not automatic:
        return {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
    if automatic:
        raise _window_closed("an automatic answer goes within 24 hours of the citizen's last message")
    raise _window_closed("a person's answer goes within 7 days of the citizen's last message")


def _window_closed(rule: str) -> PermanentError:
    return PermanentError(f"{PLATFORM}: too late for Messenger: {rule}", reason="messenger_window_closed")


def _token_health(data: dict[str, Any], configured: datetime | None) -> ChannelCheck:
    expires = _expiry(data) or configured
    if data.get("is_valid") is True:
        return ChannelCheck(healthy=True, reason="ok", token_expires_at=expires)
    error = data.get("error")
    problem = detail(error.get("message") if isinstance(error, dict) else "the Page token is not valid")
    return ChannelCheck(
        healthy=False, reason="auth", detail=f"{PLATFORM}: {problem}", token_expires_at=expires
    )


def _expiry(data: dict[str, Any]) -> datetime | None:
    """The earliest of `expires_at` (0: never) and `data_access_expires_at` (after which calls that
    need the token's permissions, posting included, fail), both epoch seconds."""
    moments = [
        value
        for value in (data.get("expires_at"), data.get("data_access_expires_at"))
        if isinstance(value, int) and not isinstance(value, bool) and value > 0
    ]
    return datetime.fromtimestamp(min(moments), UTC) if moments else None
