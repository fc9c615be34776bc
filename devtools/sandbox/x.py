"""X API v2 fake: POST /2/tweets and GET /2/users/me with OAuth 1.0a user context, as written down in
platforms.md and X's docs. Errors are v2 problems {"title", "detail", "type", "status"} (invalid
requests add "errors": [{"message", "parameters"}]); every POST /2/tweets answer carries the
x-rate-limit-limit/-remaining/-reset headers (reset in epoch seconds).

Signatures are checked for real: the fake recomputes each request's HMAC-SHA1 with oauthlib's signature
functions and refuses (401) a wrong one, a stale timestamp (more than 5 minutes off) and a nonce used
before. It cannot know secrets it was never told, so it knows them by convention: the consumer secret
of consumer key K is `secret_for(K)`, the token secret of access token T is `secret_for(T)`.
`sandbox_credentials(name)` gives a consistent set of four for a sandboxed channel; a request signed
with any other secret is refused, so a passing request proves the adapter signs with the secrets it
was given.

Posts are weighed by a counter of its own (`post_weight`, written apart from the adapter's), the
way twitter-text v3 weighs them: NFC, URLs 23 (with X's URL grammar, and bare names such as
"www.comune.it" when their top-level domain is one the fake knows), emoji sequences 2, other code points
1 or 2 by range. Unlike X it accepts any alphabetic top-level domain after a scheme, so the demo's
".example" links weigh 23. Over 280 is refused with 403, as are the same text twice from one account
(X's duplicate-content answer) and a reply to a post the fake never made; a reply id that is not a
post id at all is an invalid request (400). Also: revoked tokens (state.revoke("x", token)) answer
401; `read_only(token)` gives an account whose app lacks write permission and `unenroll(key)` an app
outside a Project (X's two 403s for apps); `daily_limit` caps posts per account per day with X's
x-user-limit-24hour-* headers, and the 100 posts / 15 minutes per account are enforced when the
sandbox enforces rate limits. `citizen_post` makes another account's post (a citizen mentioning the
comune), which our posts can then reply to.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import regex
from oauthlib.oauth1 import Client
from oauthlib.oauth1.rfc5849 import signature, utils

from devtools.sandbox.fakes import Answer, BaseUrl
from devtools.sandbox.faults import Fault
from devtools.sandbox.state import Post, SandboxState
from devtools.sandbox.wire import Reply, Request, json_reply, malformed_reply, timeout_reply

MAX_WEIGHT = 280
WINDOW_SECONDS = 15 * 60
POSTS_PER_WINDOW = 100
DAY_SECONDS = 86_400
MAX_MENTIONS = 100  # GET /2/users/:id/mentions: max_results maximum
_MENTIONS = re.compile(r"/2/users/(\d+)/mentions")
TIMESTAMP_TOLERANCE = 300
PROBLEMS = "https://api.twitter.com/2/problems/"
DUPLICATE_DETAIL = "You are not allowed to create a Tweet with duplicate content."
TOO_LONG_DETAIL = (
    "Your Tweet text is too long. For more information on how X determines text length see "
    "https://github.com/twitter/twitter-text."
)
REPLY_GONE_DETAIL = "You attempted to reply to a Tweet that is deleted or not visible to you."

# --- the weight of a post, as twitter-text v3 counts it ----------------------------------------------
# config/v3.json: default weight 200, these ranges 100, scale 100.
_WEIGHT_ONE = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
_LATIN_AND_CYRILLIC = "\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff\u0100-\u024f\u0400-\u04ff"
# twitter-text's validGeneralUrlPathChars / validUrlPathEndingChars / validUrlQueryChars /
# validUrlQueryEndingChars (balanced parentheses left out: a stricter fake).
_PATH = rf"[a-z0-9!*';:=+,.$/%#\[\]\-\u2013_~&|@{_LATIN_AND_CYRILLIC}]"
_PATH_END = rf"[+\-a-z0-9=_#/{_LATIN_AND_CYRILLIC}]"
_QUERY = r"[a-z0-9!?*'@();:&=+$/%#\[\]\-_.,~|]"
_QUERY_END = r"[a-z0-9\-_&=#/]"
_NAME = r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+"
_REST = rf"(?::[0-9]+)?(?:/(?:{_PATH}*{_PATH_END})?)?(?:\?{_QUERY}*{_QUERY_END})?"
_TLD_END = r"(?![a-z0-9@+-])"
# X knows every top-level domain; the fake knows the ones a comune's text names bare.
KNOWN_TLDS = ("it", "eu", "com", "org", "net", "gov", "edu", "info")
_SCHEME_URL = re.compile(rf"https?://{_NAME}[a-z]{{2,}}{_TLD_END}{_REST}", re.IGNORECASE)
_BARE_URL = re.compile(rf"{_NAME}(?:{'|'.join(KNOWN_TLDS)}){_TLD_END}{_REST}", re.IGNORECASE)
_NO_URL_AFTER = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@$#\uff20\uff03")
_NO_BARE_URL_AFTER = _NO_URL_AFTER | frozenset("-_./")

_ZWJ, _EMOJI_STYLE, _KEYCAP_MARK, _CANCEL_TAG, _BLACK_FLAG = "\u200d", "\ufe0f", "\u20e3", "\U000e007f", "🏴"
_SUBDIVISIONS = frozenset({"gbeng", "gbsct", "gbwls"})
_PROPERTIES = {
    name: regex.compile(rf"\p{{{name}}}")
    for name in ("Emoji", "Emoji_Presentation", "Emoji_Modifier_Base", "Emoji_Modifier")
}


def post_weight(text: str) -> int:
    """The weight X gives `text` (at most MAX_WEIGHT in a post)."""
    text = unicodedata.normalize("NFC", text)
    weight = position = 0
    while position < len(text):
        url_end = _url_end(text, position)
        emoji_end = None if url_end else _emoji_end(text, position)
        if url_end:
            weight, position = weight + 23, url_end
        elif emoji_end:
            weight, position = weight + 2, emoji_end
        else:
            code = ord(text[position])
            weight += 1 if any(low <= code <= high for low, high in _WEIGHT_ONE) else 2
            position += 1
    return weight


def _url_end(text: str, start: int) -> int | None:
    before = text[start - 1] if start else ""
    if before in _NO_URL_AFTER:
        return None
    match = _SCHEME_URL.match(text, start)
    if match is None and before not in _NO_BARE_URL_AFTER:
        match = _BARE_URL.match(text, start)
    return match.end() if match else None


def _is(name: str, char: str) -> bool:
    return _PROPERTIES[name].match(char) is not None


def _is_regional(char: str) -> bool:
    return "\U0001f1e6" <= char <= "\U0001f1ff"


def _emoji_end(text: str, start: int) -> int | None:
    """End of the emoji sequence starting at `start`: a flag, a keycap, a subdivision flag, or emoji
    elements joined by ZWJ."""
    following = text[start + 1 : start + 2]
    if _is_regional(text[start]) and following and _is_regional(following):
        return start + 2
    if text[start] in "0123456789#*" and text[start + 1 : start + 3] == _EMOJI_STYLE + _KEYCAP_MARK:
        return start + 3
    if text[start] == _BLACK_FLAG:
        tags = start + 1
        while tags < len(text) and "\U000e0061" <= text[tags] <= "\U000e007a":
            tags += 1
        region = "".join(chr(ord(char) - 0xE0000) for char in text[start + 1 : tags])
        if text[tags : tags + 1] == _CANCEL_TAG and region in _SUBDIVISIONS:
            return tags + 1
    end = _element_end(text, start)
    while end is not None and text[end : end + 1] == _ZWJ:
        joined = _element_end(text, end + 1)
        if joined is None:
            break
        end = joined
    return end


def _element_end(text: str, start: int) -> int | None:
    if start >= len(text):
        return None
    char, following = text[start], text[start + 1 : start + 2]
    if _is("Emoji_Modifier_Base", char) and following and _is("Emoji_Modifier", following):
        return start + 2
    if _is("Emoji_Presentation", char):
        return start + 1
    if not char.isascii() and _is("Emoji", char) and following == _EMOJI_STYLE:
        return start + 2
    return None


# --- credentials -------------------------------------------------------------------------------------
def secret_for(public: str) -> str:
    """The secret the fake expects with a consumer key or an access token."""
    return f"sandbox-secret-of-{public}"


def sandbox_credentials(name: str) -> dict[str, str]:
    """Four credentials the fake accepts, by XChannel field, for a sandboxed channel called `name`.
    The token starts with a numeric user id, as X's access tokens do."""
    user_id = int.from_bytes(hashlib.sha256(name.encode()).digest()[:6], "big")
    key, token = f"{name}-consumer-key", f"{user_id}-{name}-access-token"
    return {
        "consumer_key": key,
        "consumer_secret": secret_for(key),
        "access_token": token,
        "access_token_secret": secret_for(token),
    }


def signature_matches(
    method: str, uri: str, authorization: str, *, form_body: str, consumer_secret: str, token_secret: str
) -> bool:
    """Whether the request's oauth_signature is the HMAC-SHA1 of its signature base string (RFC 5849
    3.4): method, URI without query, and the query, header and form-body parameters."""
    params = signature.collect_parameters(
        uri_query=uri.partition("?")[2], body=form_body, headers={"Authorization": authorization}
    )
    base = signature.signature_base_string(
        method.upper(), signature.base_string_uri(uri), signature.normalize_parameters(params)
    )
    secrets = Client("", client_secret=consumer_secret, resource_owner_secret=token_secret)
    expected = signature.sign_hmac_sha1_with_client(base, secrets)
    return hmac.compare_digest(expected, _oauth_params(authorization).get("oauth_signature", ""))


def _oauth_params(authorization: str) -> dict[str, str]:
    try:
        pairs = utils.parse_authorization_header(authorization)
    except ValueError:
        return {}
    return {name: utils.unescape(value) for name, value in pairs}


# --- answers -----------------------------------------------------------------------------------------
def problem(
    status: int, title: str, detail: str, kind: str = "about:blank", headers: dict[str, str] | None = None
) -> Reply:
    return json_reply(status, {"title": title, "detail": detail, "type": kind, "status": status}, headers)


def invalid_request(message: str, parameters: dict[str, list[str]], headers: dict[str, str]) -> Reply:
    body = {
        "errors": [{"parameters": parameters, "message": message}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": PROBLEMS + "invalid-request",
    }
    return json_reply(400, body, headers)


def unauthorized() -> Reply:
    return problem(401, "Unauthorized", "Unauthorized")


def _client_forbidden(consumer_key: str) -> Reply:
    app_id = int(hashlib.sha256(consumer_key.encode()).hexdigest()[:7], 16)
    return json_reply(
        403,
        {
            "client_id": str(app_id),
            "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys and "
            "tokens from a Twitter developer App that is attached to a Project. You can create a project "
            "via the developer portal.",
            "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
            "title": "Client Forbidden",
            "required_enrollment": "Appropriate Level of API Access",
            "reason": "client-not-enrolled",
            "type": PROBLEMS + "client-forbidden",
        },
    )


def _rate_headers(prefix: str, limit: int, remaining: int, reset: int) -> dict[str, str]:
    return {
        f"{prefix}-limit": str(limit),
        f"{prefix}-remaining": str(remaining),
        f"{prefix}-reset": str(reset),
    }


class XFake:
    platform = "x"
    title = "X"
    target_label = "Account"
    posting_endpoint = "tweets"

    def __init__(self, state: SandboxState, base_url: BaseUrl) -> None:
        self._state = state
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._last_id = 1_860_000_000_000_000_000
            self._posted: set[str] = set()
            self._others: set[str] = set()  # posts of other accounts (citizens)
            self._authors: dict[str, str] = {}  # our posts' id -> the user id that made it
            self._citizen_posts: list[dict[str, Any]] = []  # what mentions are made of
            self._texts: set[tuple[str, str]] = set()  # (account, text): X refuses a duplicate
            self._nonces: set[tuple[str, str]] = set()
            self._nonce_times: deque[tuple[float, tuple[str, str]]] = deque()
            self._windows: dict[str, tuple[int, int]] = {}  # account -> (window number, posts in it)
            self._days: dict[str, tuple[int, int]] = {}
            self._read_only: set[str] = set()
            self._unenrolled: set[str] = set()
            self.daily_limit: int | None = None

    def citizen_post(
        self, text: str = "", *, username: str = "cittadino", reply_to: str | None = None
    ) -> str:
        """A post of another account, which ours may reply to: its id. It mentions an account of
        ours when `text` names its @username or it replies (`reply_to`) to one of its posts."""
        with self._lock:
            self._last_id += 1
            post_id = str(self._last_id)
            self._others.add(post_id)
            author_id = str(int(hashlib.sha256(username.encode()).hexdigest()[:12], 16))
            post: dict[str, Any] = {
                "id": post_id,
                "text": text,
                "author_id": author_id,
                "created_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "edit_history_tweet_ids": [post_id],
                "author": {"id": author_id, "name": username.title(), "username": username},
            }
            if reply_to is not None:
                post["referenced_tweets"] = [{"type": "replied_to", "id": reply_to}]
            self._citizen_posts.append(post)
            return post_id

    def read_only(self, access_token: str) -> None:
        """This token's app was set up without write permission: posting answers 403."""
        with self._lock:
            self._read_only.add(access_token)

    def unenroll(self, consumer_key: str) -> None:
        """This app is not attached to a Project: every v2 call answers 403 client-not-enrolled."""
        with self._lock:
            self._unenrolled.add(consumer_key)

    def fault_reply(self, fault: Fault) -> Reply:
        reset = int(time.time()) + fault.retry_after
        replies: dict[str, Callable[[], Reply]] = {
            "rate_limit": lambda: problem(
                429,
                "Too Many Requests",
                "Too Many Requests",
                headers=_rate_headers("x-rate-limit", POSTS_PER_WINDOW, 0, reset),
            ),
            "server_error": lambda: problem(503, "Service Unavailable", "Service Unavailable"),
            "expired_token": unauthorized,
            "duplicate": lambda: problem(403, "Forbidden", DUPLICATE_DETAIL),
            "malformed": malformed_reply,
            "timeout": lambda: timeout_reply(fault.delay),
        }
        # "forbidden" and the kinds X has no answer of its own for: a plain 403.
        return replies.get(fault.kind, lambda: problem(403, "Forbidden", "Forbidden"))()

    def route(self, request: Request, path: str) -> tuple[str, Answer] | None:
        if (request.method, path) == ("POST", "/2/tweets"):
            return "tweets", lambda: self.create_post(request)
        if (request.method, path) == ("GET", "/2/users/me"):
            return "users/me", lambda: self.users_me(request)
        if request.method == "GET" and (mentions := _MENTIONS.fullmatch(path)):
            return "mentions", lambda: self.mentions(request, mentions.group(1))
        return None

    def users_me(self, request: Request) -> Reply:
        signed = self._authenticate(request)
        if isinstance(signed, Reply):
            return signed
        token = signed[1]
        user_id, username = _account(token)
        return json_reply(200, {"data": {"id": user_id, "name": "Comune (sandbox)", "username": username}})

    def mentions(self, request: Request, user_id: str) -> Reply:
        """Citizens' posts naming the account's @username or replying to one of its posts, newest
        first: `since_id` bounds them, `max_results` a page, `pagination_token` (an offset here,
        opaque to clients) goes to older ones; authors under includes.users, and meta as X gives it."""
        signed = self._authenticate(request)
        if isinstance(signed, Reply):
            return signed
        if _account(signed[1])[0] != user_id:
            return problem(403, "Forbidden", "You can only read your own mentions")
        username = _account(signed[1])[1]
        since = int(request.query_value("since_id") or 0)
        limit = min(int(request.query_value("max_results") or 10), MAX_MENTIONS)
        offset = int(request.query_value("pagination_token") or 0)
        with self._lock:
            found = [
                post
                for post in reversed(self._citizen_posts)
                if int(post["id"]) > since
                and (
                    f"@{username}" in post["text"]
                    or any(
                        self._authors.get(ref["id"]) == user_id for ref in post.get("referenced_tweets", [])
                    )
                )
            ]
        page = found[offset : offset + limit]
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta |= {"newest_id": page[0]["id"], "oldest_id": page[-1]["id"]}
        if offset + limit < len(found):
            meta["next_token"] = str(offset + limit)
        body: dict[str, Any] = {"meta": meta}
        if page:
            body["data"] = [{k: v for k, v in post.items() if k != "author"} for post in page]
            body["includes"] = {"users": list({post["author_id"]: post["author"] for post in page}.values())}
        return json_reply(200, body)

    def create_post(self, request: Request) -> Reply:
        signed = self._authenticate(request)
        if isinstance(signed, Reply):
            return signed
        token = signed[1]
        headers, limited = self._count_post(token)
        # X takes JSON only: anything else reads as a body without text.
        is_json = "application/json" in (request.header("content-type") or "")
        payload = (request.payload() if is_json else None) or {}
        refusal = self._access_refusal(token, limited, headers) or self._refusal(payload, headers)
        if refusal is not None:
            return refusal
        created = self._create(token, payload)
        if created is None:
            return problem(403, "Forbidden", DUPLICATE_DETAIL, headers=headers)
        return json_reply(201, {"data": created}, headers)

    def _access_refusal(self, token: str, limited: bool, headers: dict[str, str]) -> Reply | None:
        if token in self._read_only:
            return problem(
                403,
                "Forbidden",
                "Your client app is not configured with the appropriate oauth1 app permissions for this "
                "endpoint.",
                PROBLEMS + "oauth1-permissions",
                headers,
            )
        if limited:
            return problem(429, "Too Many Requests", "Too Many Requests", headers=headers)
        return None

    def _refusal(self, payload: dict[str, Any], headers: dict[str, str]) -> Reply | None:
        unknown = sorted(set(payload) - {"text", "reply"})
        if unknown:
            return invalid_request(
                f"$.{unknown[0]}: is not a field this fake knows", {unknown[0]: []}, headers
            )
        text = payload.get("text")
        if not isinstance(text, str) or not text.strip():
            return invalid_request("$.text: must be a non-empty string", {"text": [str(text)]}, headers)
        reply = payload.get("reply")
        if reply is not None:
            target = reply.get("in_reply_to_tweet_id") if isinstance(reply, dict) else None
            if not isinstance(target, str) or not re.fullmatch(r"[0-9]{1,19}", target):
                return invalid_request(
                    "$.reply.in_reply_to_tweet_id: must be a post id",
                    {"reply.in_reply_to_tweet_id": [str(target)]},
                    headers,
                )
            if target not in self._posted and target not in self._others:
                return problem(403, "Forbidden", REPLY_GONE_DETAIL, headers=headers)
        if post_weight(text) > MAX_WEIGHT:
            return problem(403, "Forbidden", TOO_LONG_DETAIL, headers=headers)
        return None

    def _create(self, token: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The new post, or None when the account already posted this text (X refuses duplicates)."""
        text = payload["text"]
        target = (payload.get("reply") or {}).get("in_reply_to_tweet_id")
        with self._lock:
            if (token, text) in self._texts:
                return None
            self._last_id += 1
            post_id = str(self._last_id)
            self._posted.add(post_id)
            self._authors[post_id] = _account(token)[0]
            self._texts.add((token, text))
        self._state.add_post(
            Post(
                platform="x",
                target=f"@{_account(token)[1]}",
                id=post_id,
                text=text,
                url=None,  # x.com/i/web/status/<id> would lead to no post: see the sandbox page
                time=datetime.now(UTC),
                options={"in_reply_to_tweet_id": target} if target else {},
            )
        )
        return {"id": post_id, "text": text, "edit_history_tweet_ids": [post_id]}

    def _authenticate(self, request: Request) -> tuple[str, str] | Reply:
        """(consumer key, access token) of a correctly signed, fresh, never replayed request by a live
        token, or the answer X gives otherwise."""
        authorization = request.header("authorization") or ""
        oauth = _oauth_params(authorization) if authorization.startswith("OAuth ") else {}
        if not _well_formed(oauth):
            return unauthorized()
        key, token, nonce = oauth["oauth_consumer_key"], oauth["oauth_token"], oauth["oauth_nonce"]
        form = request.body.decode("utf-8", "replace")
        is_form = "application/x-www-form-urlencoded" in (request.header("content-type") or "")
        query = f"?{urlencode(request.query, doseq=True)}" if request.query else ""
        if not signature_matches(
            request.method,
            f"http://{request.header('host')}{request.path}{query}",
            authorization,
            form_body=form if is_form else "",
            consumer_secret=secret_for(key),
            token_secret=secret_for(token),
        ):
            return unauthorized()
        if not self._first_use(key, nonce) or self._state.is_revoked("x", token):
            return unauthorized()
        if key in self._unenrolled:
            return _client_forbidden(key)
        return key, token

    def _first_use(self, key: str, nonce: str) -> bool:
        now = time.time()
        with self._lock:
            while self._nonce_times and self._nonce_times[0][0] < now - 2 * TIMESTAMP_TOLERANCE:
                self._nonces.discard(self._nonce_times.popleft()[1])
            if (key, nonce) in self._nonces:
                return False
            self._nonces.add((key, nonce))
            self._nonce_times.append((now, (key, nonce)))
            return True

    def _count_post(self, token: str) -> tuple[dict[str, str], bool]:
        """The rate headers of this post, and whether it goes over a limit: the 15-minute window when
        the sandbox enforces limits, the daily cap when one is set."""
        now = time.time()
        window, day = int(now // WINDOW_SECONDS), int(now // DAY_SECONDS)
        with self._lock:
            seen, used = self._windows.get(token, (window, 0))
            used = used + 1 if seen == window else 1
            self._windows[token] = (window, used)
            seen_day, used_today = self._days.get(token, (day, 0))
            used_today = used_today + 1 if seen_day == day else 1
            self._days[token] = (day, used_today)
            daily_limit = self.daily_limit
        reset = (window + 1) * WINDOW_SECONDS
        headers = _rate_headers("x-rate-limit", POSTS_PER_WINDOW, max(0, POSTS_PER_WINDOW - used), reset)
        limited = self._state.enforce_rate_limits and used > POSTS_PER_WINDOW
        if daily_limit is not None:
            remaining = max(0, daily_limit - used_today)
            headers |= _rate_headers("x-user-limit-24hour", daily_limit, remaining, (day + 1) * DAY_SECONDS)
            limited = limited or used_today > daily_limit
        return headers, limited


def _well_formed(oauth: dict[str, str]) -> bool:
    """Every parameter X requires, HMAC-SHA1, and a timestamp within TIMESTAMP_TOLERANCE of now."""
    timestamp = oauth.get("oauth_timestamp", "")
    return (
        all(
            oauth.get(name)
            for name in ("oauth_consumer_key", "oauth_token", "oauth_nonce", "oauth_signature")
        )
        and oauth.get("oauth_signature_method") == "HMAC-SHA1"
        and oauth.get("oauth_version", "1.0") == "1.0"
        and timestamp.isdigit()
        and abs(time.time() - int(timestamp)) <= TIMESTAMP_TOLERANCE
    )


def _account(token: str) -> tuple[str, str]:
    """(user id, username) of a token: its numeric prefix when it has one, as X's tokens do."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    prefix = token.partition("-")[0]
    user_id = prefix if prefix.isdigit() else str(int(digest[:12], 16))
    return user_id, f"comune_{digest[:6]}"
