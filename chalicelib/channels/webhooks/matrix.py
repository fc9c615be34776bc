"""Matrix adapter: an m.room.message (m.text) sent to one room with PUT /rooms/{room}/send/{txnId},
the plain text as `body` and the same text as escaped HTML in `formatted_body`, the title in bold.

Delivery is exactly-once while the access token stays the same: the transaction id is derived from the
delivery's idempotency key, and a homeserver answers a repeated transaction id from the same session
with the event it already created instead of sending another. A new token (a new login) starts a new
session, so a retry across a token change could post twice.

`m.mentions` is sent empty: a homeserver then ignores the legacy body rules, so "@room" or a user's
name in a feed item notifies nobody. A reply names its event in `m.relates_to.m.in_reply_to`.
Matrix limits an event to 65,536 bytes of JSON; the text is fitted to half of that for `body` and
`formatted_body` together, which leaves the rest of the event (ids, hashes, signatures) ample room.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import math
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import requests

from chalicelib.announcements import Announcement
from chalicelib.channels.base import AuthError, ChannelCheck, PostResult, PublishError, RenderedPost
from chalicelib.channels.text import PostParts, RenderOptions, escape_html, fit_post, plain_text
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
from chalicelib.channels.webhooks.common import outside_urls, retry_after_header, with_title
from chalicelib.config.models import MatrixChannel
from chalicelib.http import TIMEOUT
from chalicelib.secrets import resolve_secret

PLATFORM = "Matrix"
ENDPOINT = "send"
TEXT_BYTES_LIMIT = 32_768
STRONG = ("<strong>", "</strong>")
# A token that no longer opens a session: the channel needs a human, whatever the HTTP status.
_DEAD_TOKEN = frozenset({"M_UNKNOWN_TOKEN", "M_MISSING_TOKEN", "M_USER_DEACTIVATED", "M_USER_LOCKED"})
_REFUSALS: dict[int, str] = {
    HTTPStatus.BAD_REQUEST: "bad_request",
    HTTPStatus.FORBIDDEN: "forbidden",
    HTTPStatus.NOT_FOUND: "not_found",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "too_long",
}


def from_config(
    channel: MatrixChannel, *, session: requests.Session, options: RenderOptions, offline: bool
) -> MatrixAdapter:
    return MatrixAdapter(
        homeserver=str(channel.homeserver),
        room_id=channel.room_id,
        token=functools.partial(resolve_secret, channel.token),
        session=session,
        options=options,
        offline=offline,
    )


def formatted_body(text: str, title: str | None = None) -> str:
    """The plain text as HTML that shows exactly it: escaped, links as anchors, line breaks as <br>."""
    return with_title(text, title, _html, lambda title_html: STRONG[0] + title_html + STRONG[1])


def _html(text: str) -> str:
    return outside_urls(text, escape_html, _anchor).replace("\n", "<br>")


def _anchor(url: str) -> str:
    return f'<a href="{html.escape(url)}">{escape_html(url)}</a>'


def _json_bytes(text: str) -> int:
    """Bytes of the text as a JSON string in the event, as the homeserver measures it (UTF-8)."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8"))


def _measure(text: str) -> int:
    bold = len("".join(STRONG))
    return _json_bytes(text) + _json_bytes(_html(text)) + bold


def transaction_id(idempotency_key: str) -> str:
    """A path-safe transaction id, the same for every retry of one delivery."""
    return "banditore-" + hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]


def message_content(post: RenderedPost, reply_to: str | None = None) -> dict[str, Any]:
    content: dict[str, Any] = {
        "msgtype": "m.text",
        "body": post.text,
        "format": "org.matrix.custom.html",
        "formatted_body": formatted_body(post.text, post.title),
        "m.mentions": {},
    }
    if reply_to:
        content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
    return content


class MatrixAdapter:
    platform = "matrix"

    def __init__(
        self,
        *,
        homeserver: str,
        room_id: str,
        token: Callable[[], str],
        session: requests.Session,
        options: RenderOptions | None = None,
        offline: bool = False,
        timeout: Timeout = TIMEOUT,
    ) -> None:
        self.homeserver = homeserver.rstrip("/")
        self.room_id = room_id
        self._token = token
        self._session = session
        self._options = options or RenderOptions()
        self.offline = offline
        self._timeout = timeout

    def render(self, announcement: Announcement) -> RenderedPost:
        parts = PostParts.from_announcement(announcement, self._options)
        fitted, truncated = fit_post(parts, measure=_measure, limit=TEXT_BYTES_LIMIT)
        text = plain_text(fitted)
        return RenderedPost(
            text=text,
            length=_json_bytes(text) + _json_bytes(formatted_body(text, fitted.title)),
            limit=TEXT_BYTES_LIMIT,
            truncated=truncated,
            link=fitted.link,
            title=fitted.title,
        )

    def publish(self, post: RenderedPost, *, idempotency_key: str, reply_to: str | None = None) -> PostResult:
        if self.offline:
            raise refuse_offline(PLATFORM)
        token = read_token(self._token, platform=PLATFORM)
        room = quote(self.room_id, safe="")
        response = send(
            self._session,
            "PUT",
            f"{self.homeserver}/_matrix/client/v3/rooms/{room}/send/m.room.message/"
            + transaction_id(idempotency_key),
            platform=PLATFORM,
            endpoint=ENDPOINT,
            timeout=self._timeout,
            json=message_content(post, reply_to),
            headers={"Authorization": f"Bearer {token}"},
        )
        if not response.ok:
            raise error_for(response)
        event_id = require_json_object(response, platform=PLATFORM, endpoint=ENDPOINT).get("event_id")
        if not isinstance(event_id, str) or not event_id.startswith("$"):
            raise malformed(PLATFORM, ENDPOINT, "the answer has no event id")
        return PostResult(remote_id=event_id, url=self._permalink(event_id))

    def check(self) -> ChannelCheck:
        """whoami: the cheapest call that proves the token."""

        def whoami() -> requests.Response:
            token = read_token(self._token, platform=PLATFORM)
            return send(
                self._session,
                "GET",
                f"{self.homeserver}/_matrix/client/v3/account/whoami",
                platform=PLATFORM,
                endpoint="whoami",
                timeout=self._timeout,
                headers={"Authorization": f"Bearer {token}"},
            )

        return check_with(whoami, error_for)

    def _permalink(self, event_id: str) -> str:
        """A matrix.to link, identifiers percent-encoded as the spec's examples do, routed through
        the room's server."""
        server = self.room_id.partition(":")[2]
        via = f"?via={quote(server, safe='')}" if server else ""
        return f"https://matrix.to/#/{quote(self.room_id, safe='')}/{quote(event_id, safe='')}{via}"


def error_for(response: requests.Response) -> PublishError:
    body = json_object(response) or {}
    errcode, error = body.get("errcode"), body.get("error")
    problem = detail(f"{errcode}: {error}" if errcode else error)
    if errcode in _DEAD_TOKEN:
        return AuthError(f"{PLATFORM} refused the token ({response.status_code}): {problem}")
    retry_after = None
    if response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
        retry_after = _milliseconds(body.get("retry_after_ms"))
        retry_after = retry_after if retry_after is not None else retry_after_header(response)
    return http_error(PLATFORM, response.status_code, problem, retry_after=retry_after, refusals=_REFUSALS)


def _milliseconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return max(0.0, value / 1000)
