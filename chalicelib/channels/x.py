"""X adapter: POST /2/tweets (X API v2) with OAuth 1.0a user context, weighed as X weighs a post
(weighted.py: at most 280, a URL 23, an emoji 2); a text too long for one post goes out as a thread of
at most `max_thread_posts` replies.

The app's consumer key and secret and the account's access token and secret are secret references,
resolved at publish time. requests_oauthlib signs every request (HMAC-SHA1 in the Authorization
header; a JSON body is not part of the signature, as OAuth 1.0a and X specify). That header carries
the consumer key and the token: errors are built from safe parts only, and the debug records in which
requests_oauthlib and oauthlib print the header and the signing steps are dropped. OAuth 1.0a tokens
do not expire; check() reads GET /2/users/me.

Images are not uploaded. Every post with a link shows the card of the announcement's page (its
og:image) under it; uploading would take POST /2/media/upload, whose documentation names OAuth 2.0
user tokens as its authorization rather than the OAuth 1.0a tokens this channel holds (X announced
the retirement of the v1.1 upload that takes them). A post without a link goes out as text only.

Delivery is at-least-once, as for Telegram: X has no idempotency, so `idempotency_key` only names the
pieces this process remembers (below). A retry after an unknown outcome (a timeout, a dropped
connection, an unreadable answer, the process dying after the 201) sends the text again; if the first
attempt did post, X refuses the same text on the same account with 403 "duplicate content". That
refusal is a PermanentError with reason "duplicate" (the publisher records and counts it as such) whose
message says the text is already on the account, most likely from this delivery's lost first attempt; X
does not say which post it is, so there is no remote id to record. Pieces X accepted are remembered by
the process (delivery key and piece index, bounded): a retry of a thread that stopped half-way (a 429
on its third post) goes on from where it stopped instead of meeting the duplicate refusal on its first
post, as long as the same warm process takes it; a cold one starts with an empty memory.

A reply whose target X cannot find (deleted, or an id it refuses) is PostGone, nothing posted: the
publisher then posts it on its own, as for every platform.
"""

from __future__ import annotations

import functools
import logging
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Any

import requests
from requests.auth import AuthBase
from requests_oauthlib import OAuth1

from chalicelib import observability as obs
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
    post_thread,
)
from chalicelib.channels.text import PostParts, RenderOptions, thread_texts
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
from chalicelib.channels.weighted import LIMIT, weighted_length
from chalicelib.config.models import XChannel
from chalicelib.http import TIMEOUT
from chalicelib.inbox.ingest.normalised import as_object, objects
from chalicelib.observability import logger
from chalicelib.secrets import resolve_secret

PLATFORM = "X"
DEFAULT_API_BASE = "https://api.x.com"
ENDPOINT = "tweets"
STATUS_URL = "https://x.com/i/web/status/{}"
REMEMBERED_PIECES = 1024
MENTIONS_PAGE = 100  # the most /2/users/:id/mentions gives at once
# Per poll: far beyond a comune's mentions in minutes, while a runaway backlog stays bounded.
MENTIONS_MAX_PAGES = 10
# X's answer to a text the account already posted: 403 "You are not allowed to create a Tweet with
# duplicate content."
DUPLICATE = "duplicate content"
# twitter-text's invalid characters: X refuses a post holding one, and feeds do carry stray BOMs.
_INVALID_CHARACTERS = dict.fromkeys(map(ord, "\ufffe\ufeff\uffff\u202a\u202b\u202c\u202d\u202e"))
# 403 problem types (the last part of `type`) that say the app itself is not allowed to post.
_APP_REFUSALS = {"client-forbidden": "client_not_enrolled", "oauth1-permissions": "no_write_permission"}
# Each window's headers; a 429 names the one that ran out with remaining 0.
_RATE_WINDOWS = ("x-rate-limit", "x-user-limit-24hour", "x-app-limit-24hour")
# Their debug records print the Authorization header and the signature base string.
_SIGNING_LOGGERS = ("requests_oauthlib.oauth1_auth", "oauthlib.oauth1.rfc5849")


def from_config(
    channel: XChannel, *, session: requests.Session, options: RenderOptions, offline: bool
) -> XAdapter:
    return XAdapter(
        credentials=Credentials(
            consumer_key=functools.partial(resolve_secret, channel.consumer_key),
            consumer_secret=functools.partial(resolve_secret, channel.consumer_secret),
            access_token=functools.partial(resolve_secret, channel.access_token),
            access_token_secret=functools.partial(resolve_secret, channel.access_token_secret),
        ),
        session=session,
        api_base=str(channel.api_base),
        max_thread_posts=channel.max_thread_posts,
        options=options,
        offline=offline,
    )


@dataclass(frozen=True)
class Credentials:
    """The four OAuth 1.0a secrets, each read when a request is signed."""

    consumer_key: Callable[[], str]
    consumer_secret: Callable[[], str]
    access_token: Callable[[], str]
    access_token_secret: Callable[[], str]

    def signer(self) -> AuthBase:
        def read(provider: Callable[[], str]) -> str:
            return read_token(provider, platform=PLATFORM)

        signer: AuthBase = OAuth1(
            client_key=read(self.consumer_key),
            client_secret=read(self.consumer_secret),
            resource_owner_key=read(self.access_token),
            resource_owner_secret=read(self.access_token_secret),
        )
        return signer


class PostedPieces:
    """The pieces X accepted, by delivery key and index, for the life of the process (a warm Lambda
    keeps them): the most recent `size`, enough for every delivery a process sees between retries."""

    def __init__(self, size: int = REMEMBERED_PIECES) -> None:
        self._size = size
        self._pieces: OrderedDict[str, PostResult] = OrderedDict()

    def get(self, key: str) -> PostResult | None:
        return self._pieces.get(key)

    def put(self, key: str, result: PostResult) -> None:
        self._pieces[key] = result
        self._pieces.move_to_end(key)
        while len(self._pieces) > self._size:
            self._pieces.popitem(last=False)


_PROCESS_PIECES = PostedPieces()


class XAdapter:
    platform = "x"

    def __init__(
        self,
        *,
        credentials: Credentials,
        session: requests.Session,
        api_base: str = DEFAULT_API_BASE,
        max_thread_posts: int = 3,
        options: RenderOptions | None = None,
        offline: bool = False,
        timeout: Timeout = TIMEOUT,
        posted: PostedPieces = _PROCESS_PIECES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._credentials = credentials
        self._session = session
        self._api_base = api_base.rstrip("/")
        self._max_thread_posts = max_thread_posts
        self._options = options or RenderOptions()
        self.offline = offline
        self._timeout = timeout
        self._posted = posted
        self._clock = clock
        _drop_signing_debug_records()

    def render(self, announcement: Announcement) -> RenderedPost:
        parts = PostParts.from_announcement(_postable(announcement), self._options)
        texts, truncated = thread_texts(
            parts, measure=weighted_length, limit=LIMIT, max_posts=self._max_thread_posts
        )
        return RenderedPost(
            text=texts[0],
            length=weighted_length(texts[0]),
            limit=LIMIT,
            truncated=truncated,
            link=parts.link,
            thread=texts[1:],
        )

    def publish(self, post: RenderedPost, *, idempotency_key: str, reply_to: str | None = None) -> PostResult:
        if self.offline:
            raise refuse_offline(PLATFORM)
        return self._thread(post, reply_to, idempotency_key, gone_is_post_gone=True)

    def answer(
        self,
        target: ReplyTarget,
        text: str,
        *,
        idempotency_key: str,
        private: bool = False,
        automatic: bool = False,
    ) -> PostResult:
        """A reply to the citizen's post (X addresses it to them), threaded within 280 like a post,
        with a post's at-least-once delivery. Not when their post is gone: an answer standing alone
        would make no sense to anyone ("reply_target_missing"). Direct messages take another API and
        another permission: a private answer is refused, never made public."""
        del automatic  # X has no rules of its own for automatic answers
        if private or target.direct:
            raise refuse_private(PLATFORM)
        if self.offline:
            raise refuse_offline(PLATFORM)
        (post_id,) = target.require("tweet_id", platform=PLATFORM)
        post = answer_post(
            _tidy(text), measure=weighted_length, limit=LIMIT, max_posts=self._max_thread_posts
        )
        return self._thread(post, post_id, idempotency_key, gone_is_post_gone=False)

    def mentions(
        self, since: str | None, *, older: str | None = None, max_pages: int = MENTIONS_MAX_PAGES
    ) -> tuple[str, list[dict[str, Any]], str | None]:
        """The account's user id, the posts mentioning it newer than the post id `since`, oldest
        first, each with its author's user object as "author", and where reading stopped. GET
        /2/users/:id/mentions goes from the newest to older pages by next_token (from `older`, a
        token this returned, when given), down to `since`, at most `max_pages`; the third value is
        the next older page's token when they ran out first, else None. Without `since`, the newest
        page only."""
        signer = self._credentials.signer()
        user_id = str(as_object(self._read(signer, "/2/users/me", "users/me", {}).get("data")).get("id", ""))
        if not user_id.isdigit():
            raise malformed(PLATFORM, "users/me", "the answer has no user id")
        found: list[dict[str, Any]] = []
        params: dict[str, str] = (
            {
                "max_results": str(MENTIONS_PAGE),
                "tweet.fields": "author_id,created_at,referenced_tweets",
                "expansions": "author_id",
                "user.fields": "name,username",
            }
            | ({"since_id": since} if since else {})
            | ({"pagination_token": older} if older else {})
        )
        for _ in range(max_pages):
            body = self._read(signer, f"/2/users/{user_id}/mentions", "mentions", params)
            users = {user.get("id"): user for user in objects(as_object(body.get("includes")).get("users"))}
            found += [
                post | {"author": users.get(post.get("author_id"), {})} for post in objects(body.get("data"))
            ]
            next_token = as_object(body.get("meta")).get("next_token")
            if since is None or not isinstance(next_token, str) or not next_token:
                return user_id, found[::-1], None
            params = params | {"pagination_token": next_token}
        return user_id, found[::-1], params.get("pagination_token")

    def _read(self, signer: AuthBase, path: str, endpoint: str, params: dict[str, str]) -> dict[str, Any]:
        response = send(
            self._session,
            "GET",
            f"{self._api_base}{path}",
            platform=PLATFORM,
            endpoint=endpoint,
            timeout=self._timeout,
            auth=signer,
            params=params,
        )
        if not response.ok:
            raise error_for(response, now=self._clock())
        return require_json_object(response, platform=PLATFORM, endpoint=endpoint)

    def check(self) -> ChannelCheck:
        """GET /2/users/me: the cheapest read that proves all four credentials."""

        def users_me() -> requests.Response:
            return send(
                self._session,
                "GET",
                f"{self._api_base}/2/users/me",
                platform=PLATFORM,
                endpoint="users/me",
                timeout=self._timeout,
                auth=self._credentials.signer(),
            )

        return check_with(users_me, lambda response: error_for(response, now=self._clock()))

    def _thread(
        self, post: RenderedPost, reply_to: str | None, idempotency_key: str, *, gone_is_post_gone: bool
    ) -> PostResult:
        """The post and its follow-ups, the first under `reply_to`; `gone_is_post_gone`: PostGone
        when X cannot find that post (a post may go on its own), else "reply_target_missing"."""
        signer = self._credentials.signer()

        def send_one(text: str, parent: str | None, index: int) -> PostResult:
            piece = f"{self._api_base} {idempotency_key} {index}"
            try:
                return self._send_once(signer, text, parent, piece, gone_is_post_gone=gone_is_post_gone)
            except PermanentError as error:
                if index == 0 or error.reason != "duplicate" or parent is None:
                    raise
                # A follow-up is a bare tail of the text ("… (2/2)"): an update restating the last
                # one's instructions repeats it word for word, and X refuses the same text twice. The
                # words are already on the account, in this thread: leave the piece out, go on under the
                # one before, rather than fail the delivery with its first post already out.
                # Counted: the same refusal also hides a piece another alert's thread already said.
                logger.warning("Thread piece already on the account: left out", extra={"piece": index})
                obs.count(obs.THREAD_PIECES_LEFT_OUT, platform=self.platform)
                return PostResult(remote_id=parent, url=None)

        return post_thread(post, reply_to, send_one)

    def _send_once(
        self, signer: AuthBase, text: str, reply_to: str | None, piece: str, *, gone_is_post_gone: bool
    ) -> PostResult:
        remembered = self._posted.get(piece)
        if remembered is not None:
            return remembered
        try:
            result = self._create(signer, text, reply_to)
        except PermanentError as error:
            if reply_to is None or error.reason != "reply_target_missing" or not gone_is_post_gone:
                raise
            raise PostGone(f"{PLATFORM}: the post {reply_to} to reply to is gone ({error})") from None
        self._posted.put(piece, result)
        return result

    def _create(self, signer: AuthBase, text: str, reply_to: str | None) -> PostResult:
        payload: dict[str, Any] = {"text": text}
        if reply_to:
            payload["reply"] = {"in_reply_to_tweet_id": reply_to}
        response = send(
            self._session,
            "POST",
            f"{self._api_base}/2/tweets",
            platform=PLATFORM,
            endpoint=ENDPOINT,
            timeout=self._timeout,
            json=payload,
            auth=signer,
        )
        if not response.ok:
            raise error_for(response, now=self._clock())
        return _post_result(require_json_object(response, platform=PLATFORM, endpoint=ENDPOINT))


def _postable(announcement: Announcement) -> Announcement:
    """The announcement as X takes it (`_tidy`)."""
    return replace(announcement, title=_tidy(announcement.title), summary=_tidy(announcement.summary))


def _tidy(text: str) -> str:
    """The text without the characters X refuses, in NFC (the form X counts)."""
    return unicodedata.normalize("NFC", text.translate(_INVALID_CHARACTERS))


def error_for(response: requests.Response, *, now: float) -> PublishError:
    """Classify X's answer: v2 problems are {"title", "detail", "type", "status"}, invalid requests
    add "errors": [{"message", "parameters"}]."""
    body = json_object(response) or {}
    status = response.status_code
    problem = _problem(body)
    if status == HTTPStatus.FORBIDDEN and DUPLICATE in problem:
        return PermanentError(
            f"{PLATFORM} refused the post (403): {problem} The text is already on the account, most "
            "likely posted by an earlier attempt of this delivery whose answer was lost.",
            reason="duplicate",
        )
    retry_after = _retry_after(response.headers, now) if status == HTTPStatus.TOO_MANY_REQUESTS else None
    return http_error(
        PLATFORM, status, problem, retry_after=retry_after, refusals={status: _refusal(status, body, problem)}
    )


def _problem(body: dict[str, Any]) -> str:
    summary = body.get("detail") or body.get("title")
    errors = body.get("errors")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    message = first.get("message")
    return detail(summary, message)


def _refusal(status: int, body: dict[str, Any], problem: str) -> str:
    if status == HTTPStatus.BAD_REQUEST:
        # The refused parameter is named in an error's "parameters" or "message".
        return (
            "reply_target_missing" if "in_reply_to_tweet_id" in str(body.get("errors")) else "invalid_request"
        )
    if status != HTTPStatus.FORBIDDEN:
        return f"http_{status}"
    if "too long" in problem:
        return "too_long"
    if "reply to a" in problem and "deleted" in problem:
        return "reply_target_missing"
    return _APP_REFUSALS.get(str(body.get("type", "")).rpartition("/")[2], "forbidden")


def _retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds until the window that ran out resets (epoch seconds in `<window>-reset`): the 24-hour
    caps outlast the 15-minute window, whose reset a 429 for a daily cap would wrongly suggest."""
    resets: dict[str, tuple[str | None, float]] = {}
    for window in _RATE_WINDOWS:
        try:
            resets[window] = (headers.get(f"{window}-remaining"), float(headers[f"{window}-reset"]))
        except (KeyError, ValueError):
            continue
    exhausted = [reset for remaining, reset in resets.values() if remaining == "0"]
    if exhausted:
        return max(0.0, max(exhausted) - now)
    if "x-rate-limit" in resets:
        return max(0.0, resets["x-rate-limit"][1] - now)
    return None


def _post_result(body: dict[str, Any]) -> PostResult:
    data = body.get("data")
    post_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(post_id, str) or not (post_id.isascii() and post_id.isdigit()):
        raise malformed(PLATFORM, ENDPOINT, "the answer has no post id")
    return PostResult(remote_id=post_id, url=STATUS_URL.format(post_id))


class _BelowWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


_SIGNING_FILTER = _BelowWarning()


def _drop_signing_debug_records() -> None:
    for name in _SIGNING_LOGGERS:
        signing_logger = logging.getLogger(name)
        if _SIGNING_FILTER not in signing_logger.filters:
            signing_logger.addFilter(_SIGNING_FILTER)
