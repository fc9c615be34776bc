"""Meta's platforms as the sandbox fakes them, all speaking Graph as written down in platforms.md: paths
`/{version}/{node}[/{edge}]`, the token in the `access_token` form field (POST) or query parameter (GET),
errors as `{"error": {message, type, code, error_subcode, fbtrace_id}}`, usage headers on every answer.

Shared by the three (GraphFake):
- any token works unless revoked (Sandbox.revoke_token): then error 190, subcode 460;
- faults in Graph's shape: `rate_limit` answers the platform's throttle code (Facebook 32, Instagram and
  Threads 4) with X-Business-Use-Case-Usage whose `estimated_time_to_regain_access` is the fault's
  `retry_after` in minutes, rounded up; `server_error` 500 code 2 (transient); `expired_token` 190/463;
  `forbidden` 403 code 200 (permission); `blocked` 368; `duplicate` 506; `malformed`; `timeout`.

FacebookFake, a Page: POST /{page}/feed (message, link), /{page}/photos (url, message, alt_text_custom;
a `url` that is not http(s) is refused with 324), /{post}/comments (message; the post or comment must
exist), POST /{post} (a post's new message, kept in its record's `edits`); GET /me and /debug_token.
`delete_post` deletes a post as the Page's staff would: comments on it and edits of it are then refused
with 100/33, as a missing node. The same message posted twice in a row to the same Page is refused
with 506. Citizens: `citizen_comment` comments on a post, `citizen_message` writes to the Page on
Messenger (at a time of the test's choosing). POST /{page}/messages is the Send API with Messenger's
rules: `recipient` {"id": page-scoped id} of someone who wrote to the Page, within 24 hours of their
last message (messaging_type RESPONSE or UPDATE) or 7 days with MESSAGE_TAG and tag HUMAN_AGENT,
else 10/2018278 "outside of allowed window"; or {"comment_id"} for a private reply, once per comment
and within 7 days of it (a second one is refused with the same error: what Meta answers there is
not documented); text under 2000 characters.
debug_token: the input token is valid unless revoked; tokens starting with "expiring-" expire 5 days
from now, others never (`expires_at` 0); `data_access_expires_at` is 90 days ahead.

InstagramFake and ThreadsFake publish through media containers (ContainerFake): POST a container,
GET its status, POST the publish with `creation_id`. An image container answers IN_PROGRESS for
`in_progress_polls` reads (1 by default) and then `container_outcome` (FINISHED by default); a text
container (Threads) is FINISHED at once. Publishing an unfinished container is refused (9007/2207027);
more than `publishing_limit` publishes per user in 24 h are refused (9/2207042). Instagram refuses a
container without `image_url`, a caption over 2,200 characters or 30 hashtags, and takes comments on
published media; Threads checks the 500-character limit with its own counter (threads_units) and that
`reply_to_id` names a published post. All three attributes return to their defaults on reset.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import regex

from devtools.sandbox.counting import grapheme_clusters, utf16_units
from devtools.sandbox.fakes import Answer, BaseUrl
from devtools.sandbox.faults import Fault
from devtools.sandbox.inbox_webhooks import MetaSubscriptions
from devtools.sandbox.state import Post, SandboxState
from devtools.sandbox.wire import Reply, Request, json_reply, malformed_reply, timeout_reply

_PATH = re.compile(r"/(v\d{1,3}\.\d)/([^/]+)(?:/([^/]+))?/?")
FACEBOOK_MESSAGE_LIMIT = 63_206
INSTAGRAM_CAPTION_LIMIT = 2200
INSTAGRAM_MAX_HASHTAGS = 30
THREADS_TEXT_LIMIT = 500
MESSENGER_TEXT_LIMIT = 2000  # "under 2000 characters", counted in UTF-16 code units as Meta's other limits
STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
PRIVATE_REPLY_WINDOW = timedelta(days=7)
DAY_SECONDS = 86_400
EXPIRING_PREFIX = "expiring-"
EXPIRING_IN = timedelta(days=5)
DATA_ACCESS_FOR = timedelta(days=90)
HASHTAG = regex.compile(r"(?<![\p{L}\p{N}_&])#[\p{L}\p{N}_]+")
_EMOJI_CODE_POINT = regex.compile(r"\p{Extended_Pictographic}|\p{Regional_Indicator}")
_EMOJI_MARKS = {"\ufe0f", "\u20e3"}  # emoji presentation selector, combining keycap


def threads_units(text: str) -> int:
    """The fake's own count of Threads' limit ("500 characters, emojis counted as the number of UTF-8
    bytes"), read strictly: a grapheme holding an emoji code point or mark counts its UTF-8 bytes,
    any other its UTF-16 code units."""
    total = 0
    for cluster in grapheme_clusters(text):
        emoji = any(_EMOJI_CODE_POINT.match(char) or char in _EMOJI_MARKS for char in cluster)
        total += len(cluster.encode("utf-8")) if emoji else utf16_units(cluster)
    return total


def graph_error(
    status: int,
    message: str,
    *,
    code: int,
    subcode: int | None = None,
    kind: str = "OAuthException",
    transient: bool = False,
    headers: dict[str, str] | None = None,
) -> Reply:
    error: dict[str, Any] = {"message": message, "type": kind, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["is_transient"] = transient
    error["fbtrace_id"] = "A" + hashlib.sha256(f"{message}{time.time_ns()}".encode()).hexdigest()[:22]
    return json_reply(status, {"error": error}, headers)


def _invalid(message: str, subcode: int | None = None) -> Reply:
    return graph_error(400, f"(#100) {message}", code=100, subcode=subcode)


def _missing(node: str) -> Reply:
    """What Graph answers a POST naming a node that is not there (deleted, or never was)."""
    return _invalid(
        f"Unsupported post request. Object with ID '{node}' does not exist, cannot be loaded due to "
        "missing permissions, or does not support this operation",
        subcode=33,
    )


def _outside_window() -> Reply:
    return graph_error(400, "(#10) This message is sent outside of allowed window.", code=10, subcode=2018278)


def _revoked() -> Reply:
    return graph_error(
        400,
        "Error validating access token: The session has been invalidated because the user changed their "
        "password or Facebook has changed the session for security reasons.",
        code=190,
        subcode=460,
    )


def _account(token: str) -> str:
    """A stable account name per token, so each configured channel shows up as its own account."""
    return "comune_" + hashlib.sha256(token.encode()).hexdigest()[:6]


def _numeric_id(token: str) -> str:
    """A stable Graph-style id per token: the node /me names."""
    return str(10**14 + int(hashlib.sha256(token.encode()).hexdigest()[:10], 16))


@dataclass(frozen=True)
class GraphCall:
    """A request's parameters, from the query and the form alike, and its token."""

    params: dict[str, str]
    token: str

    def get(self, name: str) -> str:
        return self.params.get(name, "")


Handler = Callable[[str, GraphCall], Reply]  # (node, call) -> answer


class GraphFake:
    """What the three Meta fakes share: routing, tokens, Graph errors, usage headers, faults, ids."""

    platform = "graph"
    title = "Graph"
    target_label = "Account"
    posting_endpoint = "post"
    throttle_code = 4
    throttle_message = "(#4) Application request limit reached"

    def __init__(self, state: SandboxState, base_url: BaseUrl) -> None:
        del base_url  # Meta's links are its own sites', whatever the API's address
        self._state = state
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._last_id = 17_841_400_000_000_000

    def _new_id(self) -> str:
        with self._lock:
            self._last_id += 1
            return str(self._last_id)

    # -- routing --------------------------------------------------------------------------------
    def route(self, request: Request, path: str) -> tuple[str, Answer] | None:
        match = _PATH.fullmatch(path)
        if match is None:
            return None
        node, edge = match.group(2), match.group(3)
        routed = self._handler(request.method, node, edge)
        if routed is None:
            return None
        endpoint, handler = routed
        return endpoint, lambda: self._answer(request, node, handler)

    def _handler(self, method: str, node: str, edge: str | None) -> tuple[str, Handler] | None:
        raise NotImplementedError

    def _answer(self, request: Request, node: str, handler: Handler) -> Reply:
        form = request.payload() if request.method == "POST" else {}
        if form is None:
            return _invalid("Could not parse the request body")
        params = {name: values[-1] for name, values in request.query.items()}
        params |= {name: str(value) for name, value in form.items()}
        token = params.pop("access_token", "")
        if not token:
            return graph_error(400, "An active access token must be used to query this endpoint.", code=2500)
        if self._state.is_revoked(self.platform, token):
            return _revoked()
        reply = handler(node, GraphCall(params, token))
        # Ordinary answers carry usage figures too; only a throttle error means "wait".
        reply.headers.setdefault(
            "X-App-Usage", json.dumps({"call_count": 1, "total_cputime": 1, "total_time": 1})
        )
        return reply

    # -- faults ---------------------------------------------------------------------------------
    def fault_reply(self, fault: Fault) -> Reply:
        replies: dict[str, Callable[[], Reply]] = {
            "rate_limit": lambda: self.throttled(fault.retry_after),
            "server_error": lambda: graph_error(
                500,
                "An unexpected error has occurred. Please retry your request later.",
                code=2,
                transient=True,
            ),
            "expired_token": lambda: graph_error(
                400, "Error validating access token: Session has expired.", code=190, subcode=463
            ),
            "forbidden": lambda: graph_error(
                403, "(#200) The user hasn't authorized the application to perform this action", code=200
            ),
            "blocked": lambda: graph_error(
                400,
                "It looks like you were misusing this feature by going too fast. "
                "You've been temporarily blocked from using it.",
                code=368,
                subcode=1390008,
            ),
            "duplicate": lambda: graph_error(400, "Duplicate status message", code=506, subcode=1455006),
            "malformed": malformed_reply,
            "timeout": lambda: timeout_reply(fault.delay),
        }
        return replies[fault.kind]()

    def throttled(self, retry_after: int) -> Reply:
        """The throttle error with the business-use-case usage header saying when access comes back."""
        usage = {
            "type": self.platform,
            "call_count": 100,
            "total_cputime": 25,
            "total_time": 30,
            "estimated_time_to_regain_access": math.ceil(retry_after / 60),
        }
        headers = {"X-Business-Use-Case-Usage": json.dumps({"1000000000": [usage]})}
        return graph_error(400, self.throttle_message, code=self.throttle_code, headers=headers)

    def _record(self, target: str, post_id: str, text: str, url: str | None, **options: Any) -> None:
        self._state.add_post(
            Post(
                platform=self.platform,
                target=target,
                id=post_id,
                text=text,
                url=url,
                time=datetime.now(UTC),
                options={name: value for name, value in options.items() if value not in (None, "")},
            )
        )


class FacebookFake(GraphFake):
    platform = "facebook"
    title = "Facebook"
    target_label = "Pagina"
    posting_endpoint = "feed"
    throttle_code = 32
    throttle_message = "(#32) Page request limit reached"

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._posts: set[str] = set()
            self._last_message: dict[str, str] = {}
            self._comments: dict[str, datetime] = {}  # citizens' comments: when each was made
            self._privately_answered: set[str] = set()
            self._wrote_at: dict[tuple[str, str], datetime] = {}  # (page, person): their last message
            self.subscriptions = MetaSubscriptions()  # /{page}/subscribed_apps, /{app}/subscriptions

    # -- controls for tests and demos -----------------------------------------------------------
    def citizen_comment(
        self, post_id: str, *, comment_id: str | None = None, at: datetime | None = None
    ) -> str:
        """A citizen's comment under `post_id` ("{page}_{post}", or a comment it answers), made `at`
        (now by default); its id as Graph gives it, or `comment_id` as the test chose it."""
        made = comment_id or f"{post_id.rpartition('_')[2]}_{self._new_id()}"
        with self._lock:
            self._comments[made] = at or datetime.now(UTC)
        return made

    def citizen_message(self, page_id: str, person: str, *, at: datetime | None = None) -> str:
        """A Messenger message the page-scoped id `person` sent the Page `at` (now by default): the
        window for the Page's answers runs from it. Its message id (mid)."""
        written = at or datetime.now(UTC)
        with self._lock:
            self._wrote_at[page_id, person] = max(written, self._wrote_at.get((page_id, person), written))
        return f"m_{self._new_id()}"

    def _handler(self, method: str, node: str, edge: str | None) -> tuple[str, Handler] | None:
        if edge == "subscribed_apps" and method in {"GET", "POST", "DELETE"}:
            return edge, lambda page, call: self.subscriptions.page_apps(page, method, call.params)
        if edge == "subscriptions" and method in {"GET", "POST"}:
            return edge, lambda app, call: self.subscriptions.app_subscriptions(
                app, method, call.params, call.token
            )
        if method == "GET" and edge is None and node in {"me", "debug_token"}:
            return node, self._me if node == "me" else self._debug_token
        if method == "POST" and edge is None:
            return "edit", self._edit_post  # POST /{post-id}: the post's new message
        if method != "POST" or edge is None:
            return None
        handlers: dict[str, Handler] = {
            "feed": self._feed,
            "photos": self._photo,
            "comments": self._comment,
            "messages": self._send_message,
        }
        handler = handlers.get(edge)
        return (edge, handler) if handler else None

    def _me(self, node: str, call: GraphCall) -> Reply:
        return json_reply(200, {"id": _numeric_id(call.token), "name": "Comune di prova (sandbox)"})

    def _debug_token(self, node: str, call: GraphCall) -> Reply:
        page_token = call.get("input_token")
        if not page_token:
            return _invalid("The parameter input_token is required")
        now = datetime.now(UTC)
        expires = int((now + EXPIRING_IN).timestamp()) if page_token.startswith(EXPIRING_PREFIX) else 0
        data: dict[str, Any] = {
            "app_id": "1000000000",
            "type": "PAGE",
            "application": "Banditore",
            "data_access_expires_at": int((now + DATA_ACCESS_FOR).timestamp()),
            "expires_at": expires,
            "is_valid": True,
            "scopes": ["pages_manage_posts", "pages_read_engagement", "pages_show_list"],
        }
        if self._state.is_revoked(self.platform, page_token):
            data["is_valid"] = False
            data["error"] = {
                "code": 190,
                "message": "Error validating access token: The session has been invalidated.",
                "subcode": 460,
            }
        return json_reply(200, {"data": data})

    def _feed(self, page: str, call: GraphCall) -> Reply:
        message, link = call.get("message"), call.get("link")
        if not message and not link:
            return _invalid("Missing message or attachment")
        problem = self._message_problem(page, message)
        if problem is not None:
            return problem
        post_id = self._new_post(page, message)
        self._record(page, post_id, message, f"https://www.facebook.com/{post_id}", link=link)
        return json_reply(200, {"id": post_id})

    def _photo(self, page: str, call: GraphCall) -> Reply:
        url, message = call.get("url"), call.get("message")
        if not url.startswith(("https://", "http://")):
            return graph_error(400, "(#324) Missing or invalid image file", code=324)
        problem = self._message_problem(page, message) if message else None
        if problem is not None:
            return problem
        post_id = self._new_post(page, message)
        photo_id = self._new_id()
        self._record(
            page,
            post_id,
            message,
            f"https://www.facebook.com/{post_id}",
            image_url=url,
            alt_text_custom=call.get("alt_text_custom"),
        )
        return json_reply(200, {"id": photo_id, "post_id": post_id})

    def delete_post(self, post_id: str) -> None:
        """A post deleted on the Page (by its staff): gone for comments and edits."""
        with self._lock:
            self._posts.discard(post_id)

    def _edit_post(self, post_id: str, call: GraphCall) -> Reply:
        """A post's new message (its link card or photo stay), recorded in the post's `edits`."""
        message = call.get("message")
        with self._lock:
            exists = post_id in self._posts
        if not exists:
            return _missing(post_id)
        if not message:
            return _invalid("Missing message or attachment")
        if utf16_units(message) > FACEBOOK_MESSAGE_LIMIT:
            return _invalid(f"Message must be at most {FACEBOOK_MESSAGE_LIMIT} characters long")
        self._state.edit_post(self.platform, post_id, message)
        return json_reply(200, {"success": True})

    def _comment(self, target: str, call: GraphCall) -> Reply:
        message = call.get("message")
        with self._lock:
            exists = target in self._posts or target in self._comments
        if not exists:
            return _missing(target)
        if not message:
            return _invalid("Missing message or attachment")
        comment_id = f"{target.rpartition('_')[2]}_{self._new_id()}"
        self._record(
            target.partition("_")[0],
            comment_id,
            message,
            f"https://www.facebook.com/{target}",
            reply_to=target,
        )
        return json_reply(200, {"id": comment_id})

    def _send_message(self, page: str, call: GraphCall) -> Reply:
        """The Send API, with Messenger's rules (see the module docstring)."""
        try:
            recipient, text = json.loads(call.get("recipient")), json.loads(call.get("message")).get("text")
        except (ValueError, AttributeError):
            return _invalid("recipient and message must be JSON objects")
        if not isinstance(recipient, dict) or not isinstance(text, str) or not text.strip():
            return _invalid("The parameter recipient and a message text are required")
        if utf16_units(text) >= MESSENGER_TEXT_LIMIT:
            return _invalid(f"Message text must be shorter than {MESSENGER_TEXT_LIMIT} characters")
        problem = self._window_problem(page, recipient, call)
        if problem is not None:
            return problem
        if "comment_id" in recipient:
            with self._lock:
                self._privately_answered.add(str(recipient["comment_id"]))
        message_id = f"m_{self._new_id()}"
        self._record(
            page,
            message_id,
            text,
            None,
            recipient=recipient,
            messaging_type=call.get("messaging_type"),
            tag=call.get("tag"),
        )
        person = {"recipient_id": recipient["id"]} if "id" in recipient else {}
        return json_reply(200, {**person, "message_id": message_id})

    def _window_problem(self, page: str, recipient: dict[str, Any], call: GraphCall) -> Reply | None:
        now = datetime.now(UTC)
        kind, tag = call.get("messaging_type"), call.get("tag")
        with self._lock:
            if "comment_id" in recipient:
                comment = str(recipient["comment_id"])
                if comment not in self._comments:
                    return _invalid(f"Object with ID '{comment}' does not exist", subcode=33)
                since, window = self._comments[comment], PRIVATE_REPLY_WINDOW
                if comment in self._privately_answered:
                    return _outside_window()
            else:
                since = self._wrote_at.get((page, str(recipient.get("id"))))
                if since is None:
                    return graph_error(400, "(#100) No matching user found", code=100, subcode=2018001)
                window = (
                    HUMAN_AGENT_WINDOW if (kind, tag) == ("MESSAGE_TAG", "HUMAN_AGENT") else STANDARD_WINDOW
                )
        if kind not in {"RESPONSE", "UPDATE", "MESSAGE_TAG"}:
            return _invalid("Param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}")
        return _outside_window() if now - since > window else None

    def _message_problem(self, page: str, message: str) -> Reply | None:
        if utf16_units(message) > FACEBOOK_MESSAGE_LIMIT:
            return _invalid(f"Message must be at most {FACEBOOK_MESSAGE_LIMIT} characters long")
        with self._lock:
            repeated = bool(message) and self._last_message.get(page) == message
        if repeated:
            return graph_error(400, "Duplicate status message", code=506, subcode=1455006)
        return None

    def _new_post(self, page: str, message: str) -> str:
        post_id = f"{page}_{self._new_id()}"
        with self._lock:
            self._posts.add(post_id)
            self._last_message[page] = message
        return post_id


@dataclass
class Container:
    """A media container: what a publish would post, and where its processing stands."""

    user: str
    token: str
    fields: dict[str, str]
    polls_left: int  # status reads still answering IN_PROGRESS
    outcome: str  # the status after those: FINISHED, ERROR or EXPIRED
    media_id: str | None = None  # once published

    def status(self) -> str:
        if self.media_id is not None:
            return "PUBLISHED"
        if self.polls_left > 0:
            self.polls_left -= 1
            return "IN_PROGRESS"
        return self.outcome


@dataclass
class Media:
    owner: str  # the user (account) that published it
    permalink: str
    comments: list[str] = field(default_factory=list)


class ContainerFake(GraphFake):
    """Instagram's and Threads' two-step publishing: containers, their status, the publish."""

    status_field = "status_code"
    default_publishing_limit = 50
    media_edge = "media"
    publish_edge = "media_publish"
    limit_edge = "content_publishing_limit"
    comment_edge: str | None = "comments"

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.in_progress_polls = 1
            self.container_outcome = "FINISHED"
            self.publishing_limit = self.default_publishing_limit
            self._containers: dict[str, Container] = {}
            self._media: dict[str, Media] = {}
            self._published: defaultdict[str, deque[float]] = defaultdict(deque)

    def _handler(self, method: str, node: str, edge: str | None) -> tuple[str, Handler] | None:
        if method == "GET" and edge is None:
            return self._read_route(node)
        if method == "GET":
            return (edge, self._publishing_limit) if edge == self.limit_edge else None
        routes: dict[str | None, tuple[str, Handler]] = {
            self.media_edge: (self.media_edge, self._create_container),
            self.publish_edge: (self.publish_edge, self._publish),
        }
        if self.comment_edge:
            routes[self.comment_edge] = (self.comment_edge, self._comment)
        return routes.get(edge) if method == "POST" else None

    def _read_route(self, node: str) -> tuple[str, Handler]:
        with self._lock:
            is_container = node in self._containers
        if is_container:
            return "container_status", self._container_status
        return "read", self._read

    # -- step one: the container ------------------------------------------------------------------
    def _create_container(self, user: str, call: GraphCall) -> Reply:
        problem = self._container_problem(call)
        if problem is not None:
            return problem
        image = bool(call.get("image_url"))
        container = Container(
            user=user,
            token=call.token,
            fields=dict(call.params),
            polls_left=self.in_progress_polls if image else 0,
            outcome=self.container_outcome if image else "FINISHED",
        )
        container_id = self._new_id()
        with self._lock:
            self._containers[container_id] = container
        return json_reply(200, {"id": container_id})

    def _container_problem(self, call: GraphCall) -> Reply | None:
        raise NotImplementedError

    def _container_status(self, container_id: str, call: GraphCall) -> Reply:
        with self._lock:
            status = self._containers[container_id].status()
        body: dict[str, Any] = {"id": container_id, self.status_field: status}
        if status == "ERROR":
            body |= self._error_detail()
        return json_reply(200, body)

    def _error_detail(self) -> dict[str, str]:
        return {"status": "Error: the media could not be fetched or processed (2207003)"}

    # -- step two: the publish --------------------------------------------------------------------
    def _publish(self, user: str, call: GraphCall) -> Reply:
        container_id = call.get("creation_id")
        with self._lock:
            container = self._containers.get(container_id)
        if container is None or container.user != user:
            return _invalid(f"Invalid parameter creation_id: {container_id or 'missing'}", subcode=2207006)
        if container.media_id is not None or container.polls_left > 0 or container.outcome != "FINISHED":
            return graph_error(400, "(#9007) Media ID is not available", code=9007, subcode=2207027)
        if not self._within_publishing_limit(user):
            return graph_error(400, "(#9) Application request limit reached", code=9, subcode=2207042)
        media_id = self._new_id()
        with self._lock:
            container.media_id = media_id
            self._media[media_id] = Media(owner=user, permalink=self._permalink(container, media_id))
        self._record_published(container, media_id)
        return json_reply(200, {"id": media_id})

    def _within_publishing_limit(self, user: str) -> bool:
        now = time.monotonic()
        with self._lock:
            published = self._published[user]
            while published and published[0] <= now - DAY_SECONDS:
                published.popleft()
            if len(published) >= self.publishing_limit:
                return False
            published.append(now)
        return True

    def _publishing_limit(self, user: str, call: GraphCall) -> Reply:
        with self._lock:
            usage = len(self._published[user])
        config = {"quota_total": self.publishing_limit, "quota_duration": DAY_SECONDS}
        return json_reply(200, {"data": [{"quota_usage": usage, "config": config}]})

    def _permalink(self, container: Container, media_id: str) -> str:
        raise NotImplementedError

    def _record_published(self, container: Container, media_id: str) -> None:
        raise NotImplementedError

    # -- reads and comments -----------------------------------------------------------------------
    def _read(self, node: str, call: GraphCall) -> Reply:
        with self._lock:
            media = self._media.get(node)
        if media is not None:
            return json_reply(200, {"id": node, "permalink": media.permalink})
        return json_reply(200, {"id": _numeric_id(call.token), "username": _account(call.token)})

    def _comment(self, media_id: str, call: GraphCall) -> Reply:
        with self._lock:
            media = self._media.get(media_id)
        if media is None:
            return _invalid(f"Object with ID '{media_id}' does not exist", subcode=33)
        message = call.get("message")
        if not message:
            return _invalid("The parameter message is required")
        comment_id = self._new_id()
        with self._lock:
            media.comments.append(comment_id)
        self._record(media.owner, comment_id, message, media.permalink, reply_to=media_id)
        return json_reply(200, {"id": comment_id})


class InstagramFake(ContainerFake):
    platform = "instagram"
    title = "Instagram"
    target_label = "Account"
    posting_endpoint = "media_publish"

    def _container_problem(self, call: GraphCall) -> Reply | None:
        caption = call.get("caption")
        if not call.get("image_url"):
            return _invalid("The parameter image_url is required.")
        if utf16_units(caption) > INSTAGRAM_CAPTION_LIMIT:
            return _invalid(f"Param caption must be at most {INSTAGRAM_CAPTION_LIMIT} characters long.")
        if len(HASHTAG.findall(caption)) > INSTAGRAM_MAX_HASHTAGS:
            return _invalid(f"A caption can have at most {INSTAGRAM_MAX_HASHTAGS} hashtags.")
        return None

    def _permalink(self, container: Container, media_id: str) -> str:
        return f"https://www.instagram.com/p/{_shortcode(media_id)}/"

    def _record_published(self, container: Container, media_id: str) -> None:
        fields = container.fields
        self._record(
            container.user,
            media_id,
            fields.get("caption", ""),
            self._permalink(container, media_id),
            image_url=fields.get("image_url"),
            alt_text=fields.get("alt_text"),
        )


class ThreadsFake(ContainerFake):
    platform = "threads"
    title = "Threads"
    target_label = "Account"
    posting_endpoint = "threads_publish"
    status_field = "status"
    default_publishing_limit = 250
    media_edge = "threads"
    publish_edge = "threads_publish"
    limit_edge = "threads_publishing_limit"
    comment_edge = None  # a Threads reply is a post naming its parent in reply_to_id

    def _container_problem(self, call: GraphCall) -> Reply | None:
        media_type, text = call.get("media_type"), call.get("text")
        if media_type not in {"TEXT", "IMAGE"}:
            return _invalid("Param media_type must be one of {TEXT, IMAGE, VIDEO, CAROUSEL}")
        if media_type == "TEXT" and not text.strip():
            return _invalid("Param text is required for TEXT posts")
        if media_type == "IMAGE" and not call.get("image_url"):
            return _invalid("Param image_url is required for IMAGE posts")
        if threads_units(text) > THREADS_TEXT_LIMIT:
            return _invalid(f"Param text must be at most {THREADS_TEXT_LIMIT} characters long")
        parent = call.get("reply_to_id")
        with self._lock:
            known = not parent or parent in self._media
        return None if known else _invalid(f"Param reply_to_id {parent} is not a valid post", subcode=4279009)

    def _error_detail(self) -> dict[str, str]:
        return {"error_message": "FAILED_DOWNLOADING_IMAGE"}

    def _permalink(self, container: Container, media_id: str) -> str:
        return f"https://www.threads.net/@{_account(container.token)}/post/{_shortcode(media_id)}"

    def _record_published(self, container: Container, media_id: str) -> None:
        fields = container.fields
        self._record(
            f"@{_account(container.token)}",
            media_id,
            fields.get("text", ""),
            self._permalink(container, media_id),
            media_type=fields.get("media_type"),
            reply_to=fields.get("reply_to_id"),
            image_url=fields.get("image_url"),
            alt_text=fields.get("alt_text"),
        )


_SHORTCODE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _shortcode(media_id: str) -> str:
    """Instagram-style shortcode: the media id in base 64."""
    number, code = int(media_id), ""
    while number:
        number, digit = divmod(number, 64)
        code = _SHORTCODE_ALPHABET[digit] + code
    return code or "A"
