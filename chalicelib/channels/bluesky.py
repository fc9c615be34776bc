"""Bluesky adapter (AT Protocol): app.bsky.feed.post records created with com.atproto.repo.createRecord
on the account's PDS, their links and hashtags made clickable by facets (richtext.py), the
announcement's link as a card (app.bsky.embed.external, the image as its thumbnail) or, without a
link, the image with its alt text (app.bsky.embed.images). A text longer than 300 graphemes goes out
as a thread of at most `max_thread_posts` replies.

Sessions: createSession is limited to 30 per 5 minutes and 300 per day per account, so a session is
created once per process and shared by every adapter of the account (SESSIONS), refreshed with
refreshSession when the PDS answers ExpiredToken, and created anew only when the refresh token is dead
too. A refused app password is an AuthError. JWTs and the password never reach a message or a log.

Delivery is exactly-once. Each record is created under a client-chosen rkey, a TID derived from the
delivery's idempotency key and the piece's index (`record_key`), so every retry of a delivery targets
the same records. Whatever a createRecord failure looks like (the reference PDS answers an existing
rkey with a 500 InternalServerError; a named error is proposed), the adapter then reads the record at
that rkey and, when it exists, returns it as the result: a post whose answer was lost is found, never
made twice. A retry uploads the image again; the unused blob is garbage-collected by the PDS.

An image never stops a post: if it cannot be fetched or uploaded the post goes out without it and a
warning says why. Only a refused session stops the publish, since the post would be refused too.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from http import HTTPStatus
from typing import Any

import requests

from chalicelib.announcements import Announcement
from chalicelib.channels.answering import answer_post, refuse_private
from chalicelib.channels.atproto import (
    POST_COLLECTION,
    SESSIONS,
    PostRef,
    Reply,
    Session,
    SessionCache,
    at_uri,
    record_key,
)
from chalicelib.channels.base import (
    AuthError,
    ChannelCheck,
    PermanentError,
    PostImage,
    PostResult,
    PublishError,
    RateLimited,
    RenderedPost,
    ReplyTarget,
    post_thread,
)
from chalicelib.channels.media import COMMON_TYPES, MediaUnavailable, fetch_image
from chalicelib.channels.richtext import rich_text, shown_length
from chalicelib.channels.text import (
    PostParts,
    RenderOptions,
    grapheme_count,
    post_image,
    shorten,
    thread_texts,
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
from chalicelib.config.models import BlueskyChannel
from chalicelib.http import TIMEOUT
from chalicelib.observability import logger
from chalicelib.secrets import resolve_secret

PLATFORM = "Bluesky"
DEFAULT_SERVICE = "https://bsky.social"
POST_LIMIT = 300  # app.bsky.feed.post text: maxGraphemes 300
MENTIONS_PAGE = 100  # the most listNotifications gives at once
# Per poll: far beyond a comune's mentions in minutes, while a runaway backlog stays bounded.
MENTIONS_MAX_PAGES = 10
# app.bsky.embed.images#image and app.bsky.embed.external#external thumb: maxSize 1000000 in the
# lexicons; a bigger blob makes the PDS refuse the whole record, so it is left out beforehand.
IMAGE_MAX_BYTES = 1_000_000
CARD_DESCRIPTION_MAX = 300  # graphemes: the card shows two or three lines of it
# What the PDS answers when the access token is past its life or not one it issued: both mean
# "renew the session", never "the account is refused".
SESSION_ERRORS = frozenset({"ExpiredToken", "InvalidToken"})
_ERROR_NAME = re.compile(r"[A-Z][A-Za-z]+")  # XRPC error names: "InvalidRequest", "BlobTooLarge"
_NAME_WORD = re.compile(r"(?<!^)(?=[A-Z])")


def from_config(
    channel: BlueskyChannel, *, session: requests.Session, options: RenderOptions, offline: bool
) -> BlueskyAdapter:
    return BlueskyAdapter(
        identifier=channel.handle,
        password=partial(resolve_secret, channel.app_password),
        session=session,
        service=str(channel.service),
        language=channel.language,
        max_thread_posts=channel.max_thread_posts,
        options=options,
        offline=offline,
    )


class BlueskyAdapter:
    platform = "bluesky"

    def __init__(
        self,
        *,
        identifier: str,
        password: Callable[[], str],
        session: requests.Session,
        service: str = DEFAULT_SERVICE,
        language: str = "it",
        max_thread_posts: int = 3,
        options: RenderOptions | None = None,
        offline: bool = False,
        timeout: Timeout = TIMEOUT,
        sessions: SessionCache = SESSIONS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.identifier = identifier
        self.service = service.rstrip("/")
        self.offline = offline
        self._password = password
        self._http = session
        self._language = language
        self._max_thread_posts = max_thread_posts
        self._options = options or RenderOptions()
        self._timeout = timeout
        self._sessions = sessions
        self._clock = clock

    def render(self, announcement: Announcement) -> RenderedPost:
        """Measured as sent: long URLs shown shortened (their facets carry them whole)."""
        parts = PostParts.from_announcement(announcement, self._options)
        measure = partial(shown_length, link=parts.link)
        texts, truncated = thread_texts(
            parts, measure=measure, limit=POST_LIMIT, max_posts=self._max_thread_posts
        )
        description = shorten(parts.summary, lambda text: grapheme_count(text) <= CARD_DESCRIPTION_MAX)
        return RenderedPost(
            text=texts[0],
            length=measure(texts[0]),
            limit=POST_LIMIT,
            truncated=truncated,
            link=parts.link,
            thread=texts[1:],
            image=post_image(announcement, self._options),
            title=parts.title,
            description=description or "",
        )

    def publish(self, post: RenderedPost, *, idempotency_key: str, reply_to: str | None = None) -> PostResult:
        if self.offline:
            raise refuse_offline(PLATFORM)
        password = read_token(self._password, platform=PLATFORM)
        thread = _reply_target(reply_to)
        embed = self._embed(post, password)

        def send_one(text: str, parent: str | None, index: int) -> PostResult:
            # The pieces after the first reply to our own results, always readable.
            above = thread if index == 0 else PostRef.decode(parent or "")
            return self._create_post(
                password,
                text,
                rkey=record_key(idempotency_key, index),
                reply=above.reply() if above else None,
                embed=embed if index == 0 else None,
                link=post.link,
            )

        return post_thread(post, reply_to, send_one)

    def answer(
        self,
        target: ReplyTarget,
        text: str,
        *,
        idempotency_key: str,
        private: bool = False,
        automatic: bool = False,
    ) -> PostResult:
        """A reply to the citizen's post (whose author Bluesky notifies), in the thread their post
        belongs to, threaded within 300 graphemes like a post and made exactly once as a post is
        (rkeys from the key). Bluesky has no private answer here: one is refused, never made public."""
        del automatic  # Bluesky has no rules of its own for automatic answers
        if private or target.direct:
            raise refuse_private(PLATFORM)
        if self.offline:
            raise refuse_offline(PLATFORM)
        uri, cid = target.require("uri", "cid", platform=PLATFORM)
        citizen = {"uri": uri, "cid": cid}
        # A post that is itself a reply names the first post of its thread; ours must name it too.
        root_uri, root_cid = target.ids.get("root_uri"), target.ids.get("root_cid")
        root = {"uri": root_uri, "cid": root_cid} if root_uri and root_cid else citizen
        post = answer_post(text, measure=shown_length, limit=POST_LIMIT, max_posts=self._max_thread_posts)
        password = read_token(self._password, platform=PLATFORM)

        def send_one(piece: str, previous: str | None, index: int) -> PostResult:
            parent = citizen if index == 0 else PostRef.decode(previous or "").strong_ref()
            return self._create_post(
                password,
                piece,
                rkey=record_key(idempotency_key, index),
                reply=Reply(root=root, parent=parent, own_root=None),
                embed=None,
                link=None,
            )

        return post_thread(post, None, send_one)

    def mentions(
        self, since: str | None, *, older: str | None = None, max_pages: int = MENTIONS_MAX_PAGES
    ) -> tuple[str, list[dict[str, Any]], str | None]:
        """The account's DID, its mention and reply notifications indexed after `since` (an
        indexedAt time, as the service writes them, so they compare as strings), oldest first, and
        where reading stopped. listNotifications goes from the newest to older pages by its cursor
        (from `older`, a cursor this returned, when given): pages are read until one reaches
        `since`, at most `max_pages`; the third value is the cursor of the next older page when
        they ran out first, else None. Without `since`, the newest page only."""
        password = read_token(self._password, platform=PLATFORM)
        found: list[dict[str, Any]] = []
        cursor = older
        for _ in range(max_pages):
            params = [("reasons", "mention"), ("reasons", "reply"), ("limit", str(MENTIONS_PAGE))]
            params += [("cursor", cursor)] if cursor else []
            response, session = self._authorized(
                password, partial(self._xrpc, "GET", "app.bsky.notification.listNotifications", params=params)
            )
            if not response.ok:
                raise self.error_for(response)
            body = require_json_object(response, platform=PLATFORM, endpoint="listNotifications")
            page = body.get("notifications")
            items = [item for item in page if isinstance(item, dict)] if isinstance(page, list) else []
            newer = [item for item in items if since is None or str(item.get("indexedAt", "")) > since]
            found += newer
            next_cursor = body.get("cursor")
            if (
                since is None
                or len(newer) < len(items)
                or not isinstance(next_cursor, str)
                or not next_cursor
            ):
                return session.did, found[::-1], None
            cursor = next_cursor
        return session.did, found[::-1], cursor

    def check(self) -> ChannelCheck:
        """getSession with the shared session: proves the app password without spending a
        createSession when a session is alive. App passwords do not expire."""

        def get_session() -> requests.Response:
            password = read_token(self._password, platform=PLATFORM)
            response, _ = self._authorized(
                password, lambda session: self._xrpc("GET", "com.atproto.server.getSession", session)
            )
            return response

        return check_with(get_session, self.error_for)

    # -- posting -----------------------------------------------------------------------------------
    def _create_post(
        self,
        password: str,
        text: str,
        *,
        rkey: str,
        reply: Reply | None,
        embed: dict[str, Any] | None,
        link: str | None,
    ) -> PostResult:
        rich = rich_text(text, link)
        record: dict[str, Any] = {
            "$type": POST_COLLECTION,
            "text": rich.text,
            "createdAt": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "langs": [self._language],
        }
        if rich.facets:
            record["facets"] = list(rich.facets)
        if embed:
            record["embed"] = embed
        if reply:
            record["reply"] = {"root": reply.root, "parent": reply.parent}

        def create(session: Session) -> requests.Response:
            body = {"repo": session.did, "collection": POST_COLLECTION, "rkey": rkey, "record": record}
            return self._xrpc("POST", "com.atproto.repo.createRecord", session, json=body)

        response, session = self._authorized(password, create)
        if response.ok:
            answer = require_json_object(response, platform=PLATFORM, endpoint="createRecord")
            cid = _created_cid(answer, at_uri(session.did, rkey))
        else:
            cid = self._cid_of_existing(session.did, rkey, self.error_for(response))
        root = reply.own_root if reply and reply.own_root else (rkey, cid)
        ref = PostRef(did=session.did, rkey=rkey, cid=cid, root_rkey=root[0], root_cid=root[1])
        return PostResult(remote_id=ref.encode(), url=_web_url(session, rkey))

    def _cid_of_existing(self, did: str, rkey: str, error: PublishError) -> str:
        """After a refused createRecord: the cid of the record already at `rkey` (an earlier attempt
        of this delivery made it; the answer was lost), else `error`. A refused session or a rate
        limit is the whole answer: nothing was written."""
        if isinstance(error, AuthError | RateLimited):
            raise error
        response = send(
            self._http,
            "GET",
            f"{self.service}/xrpc/com.atproto.repo.getRecord",
            platform=PLATFORM,
            endpoint="getRecord",
            timeout=self._timeout,
            params={"repo": did, "collection": POST_COLLECTION, "rkey": rkey},
        )
        body = json_object(response) if response.ok else None
        cid = body.get("cid") if body else None
        if not isinstance(cid, str) or not cid or body is None or body.get("uri") != at_uri(did, rkey):
            raise error
        logger.info("Bluesky post already made by an earlier attempt", extra={"rkey": rkey})
        return cid

    def _embed(self, post: RenderedPost, password: str) -> dict[str, Any] | None:
        """One embed: the link's card (the image as thumbnail), else the image with its alt text."""
        uploaded = self._upload(post.image, password) if post.image else None
        if post.link:
            card: dict[str, Any] = {
                "uri": post.link,
                "title": post.title or "",
                "description": post.description or "",
            }
            if uploaded:
                card["thumb"] = uploaded[0]
            return {"$type": "app.bsky.embed.external", "external": card}
        if uploaded is None or post.image is None:
            return None
        blob, aspect_ratio = uploaded
        image: dict[str, Any] = {"image": blob, "alt": post.image.alt}
        if aspect_ratio:
            image["aspectRatio"] = aspect_ratio
        return {"$type": "app.bsky.embed.images", "images": [image]}

    def _upload(self, image: PostImage, password: str) -> tuple[dict[str, Any], dict[str, int] | None] | None:
        """The uploaded blob (as the PDS describes it, to put in the record) and the aspect ratio;
        None, with a warning, when the image cannot be used."""
        try:
            fetched = fetch_image(image.url, max_bytes=IMAGE_MAX_BYTES, allowed_types=COMMON_TYPES)
        except MediaUnavailable as exc:
            logger.warning(
                "Bluesky post goes without its image", extra={"reason": exc.reason, "problem": str(exc)}
            )
            return None

        def upload(session: Session) -> requests.Response:
            headers = {"Content-Type": fetched.mime_type}
            return self._xrpc(
                "POST", "com.atproto.repo.uploadBlob", session, data=fetched.content, headers=headers
            )

        try:
            response, _ = self._authorized(password, upload)
            if not response.ok:
                raise self.error_for(response)
            blob = require_json_object(response, platform=PLATFORM, endpoint="uploadBlob").get("blob")
            if not isinstance(blob, dict) or not isinstance(blob.get("ref"), dict):
                raise malformed(PLATFORM, "uploadBlob", "the answer has no blob")
        except AuthError:
            raise
        except PublishError as exc:
            logger.warning(
                "Bluesky post goes without its image", extra={"reason": exc.reason, "problem": str(exc)}
            )
            return None
        width, height = fetched.width, fetched.height
        return blob, ({"width": width, "height": height} if width and height else None)

    # -- sessions ----------------------------------------------------------------------------------
    def _authorized(
        self, password: str, request: Callable[[Session], requests.Response]
    ) -> tuple[requests.Response, Session]:
        """`request` made with the account's session; once more with a renewed one when the PDS says
        the access token expired (or is not one it knows)."""
        key = (self.service, self.identifier)
        create = partial(self._create_session, password)
        session = self._sessions.get(key, password, create)
        response = request(session)
        if not self._session_refused(response):
            return response, session
        session = self._sessions.renew(key, password, session, self._refresh_session, create)
        response = request(session)
        if self._session_refused(response):
            self._sessions.forget(key, session)  # refused brand-new: the next publish starts afresh
        return response, session

    def _create_session(self, password: str) -> Session:
        response = send(
            self._http,
            "POST",
            f"{self.service}/xrpc/com.atproto.server.createSession",
            platform=PLATFORM,
            endpoint="createSession",
            timeout=self._timeout,
            json={"identifier": self.identifier, "password": password},
        )
        if not response.ok:
            raise self.error_for(response)
        logger.info("Bluesky session created", extra={"service": self.service, "identifier": self.identifier})
        return _session_from(require_json_object(response, platform=PLATFORM, endpoint="createSession"))

    def _refresh_session(self, stale: Session) -> Session | None:
        """The session refreshed, or None when the refresh token is dead too (expired, revoked)."""
        response = send(
            self._http,
            "POST",
            f"{self.service}/xrpc/com.atproto.server.refreshSession",
            platform=PLATFORM,
            endpoint="refreshSession",
            timeout=self._timeout,
            headers={"Authorization": f"Bearer {stale.refresh_jwt}"},
        )
        if self._session_refused(response):
            return None
        if not response.ok:
            raise self.error_for(response)
        return _session_from(require_json_object(response, platform=PLATFORM, endpoint="refreshSession"))

    def _xrpc(
        self,
        method: str,
        nsid: str,
        session: Session,
        *,
        headers: dict[str, str] | None = None,
        **options: Any,
    ) -> requests.Response:
        return send(
            self._http,
            method,
            f"{self.service}/xrpc/{nsid}",
            platform=PLATFORM,
            endpoint=nsid.rpartition(".")[2],
            timeout=self._timeout,
            headers={"Authorization": f"Bearer {session.access_jwt}", **(headers or {})},
            **options,
        )

    @staticmethod
    def _session_refused(response: requests.Response) -> bool:
        if response.status_code not in (HTTPStatus.BAD_REQUEST, HTTPStatus.UNAUTHORIZED):
            return False
        return (json_object(response) or {}).get("error") in SESSION_ERRORS

    def error_for(self, response: requests.Response) -> PublishError:
        """XRPC errors are {"error": Name, "message": ...}; the name decides, the status backs it."""
        body = json_object(response) or {}
        name = body.get("error") if isinstance(body.get("error"), str) else None
        message = body.get("message")
        problem = detail(name, message)
        status = response.status_code
        if name in SESSION_ERRORS:
            return AuthError(f"{PLATFORM} refused the session ({status}): {problem}")
        retry_after = self._seconds_until(response.headers.get("RateLimit-Reset"))
        is_rate_limited = status == HTTPStatus.TOO_MANY_REQUESTS
        return http_error(
            PLATFORM,
            status,
            problem,
            retry_after=retry_after if is_rate_limited else None,
            refusals={status: _refusal_reason(status, name, message)},
        )

    def _seconds_until(self, reset: str | None) -> float | None:
        """RateLimit-Reset is the epoch second when the window reopens."""
        try:
            moment = float(reset) if reset else None
        except ValueError:
            return None
        return None if moment is None else max(0.0, moment - self._clock())


def _reply_target(reply_to: str | None) -> PostRef | None:
    """The post to reply under. One this channel cannot name (posted before a change of account)
    is left out: an update must not be lost for want of its thread."""
    if reply_to is None:
        return None
    try:
        return PostRef.decode(reply_to)
    except PermanentError as exc:
        logger.warning("Bluesky post goes out of its thread", extra={"problem": str(exc)})
        return None


def _refusal_reason(status: int, name: str | None, message: object) -> str:
    if "graphemes" in str(message) or "too long" in str(message).lower():
        return "too_long"
    if status == HTTPStatus.FORBIDDEN:
        return "forbidden"
    if name and _ERROR_NAME.fullmatch(name):  # "InvalidRequest" -> "invalid_request"
        return _NAME_WORD.sub("_", name).lower()
    return f"http_{status}"


def _session_from(body: dict[str, Any]) -> Session:
    values = {name: body.get(name) for name in ("did", "handle", "accessJwt", "refreshJwt")}
    if not all(isinstance(value, str) and value for value in values.values()):
        raise malformed(PLATFORM, "session", "the answer lacks the session's tokens, did or handle")
    return Session(
        did=str(values["did"]),
        handle=str(values["handle"]),
        access_jwt=str(values["accessJwt"]),
        refresh_jwt=str(values["refreshJwt"]),
    )


def _created_cid(body: dict[str, Any], expected_uri: str) -> str:
    uri, cid = body.get("uri"), body.get("cid")
    if not isinstance(cid, str) or not cid or not isinstance(uri, str):
        raise malformed(PLATFORM, "createRecord", "the answer has no uri or cid")
    if uri != expected_uri:
        raise malformed(PLATFORM, "createRecord", "the record was created under another key")
    return cid


def _web_url(session: Session, rkey: str) -> str:
    # A handle that no longer verifies comes back as "handle.invalid": the DID works in its place.
    profile = session.did if session.handle == "handle.invalid" else session.handle
    return f"https://bsky.app/profile/{profile}/post/{rkey}"
