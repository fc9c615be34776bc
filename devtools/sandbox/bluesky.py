"""Bluesky (AT Protocol PDS) fake: XRPC under /xrpc/, as written down in platforms.md and the atproto
lexicons. Sessions from app passwords (createSession counted, and limited to 30 per 5 minutes with
real limits on), access tokens that expire (400 ExpiredToken) and refresh tokens that rotate, blobs,
app.bsky.feed.post records validated with counters of its own (graphemes, UTF-8 facet offsets), and
errors as {"error": Name, "message": ...} with RateLimit-* headers (reset in epoch seconds).

Stricter than a real PDS where the adapter's correctness is at stake: facets must point at the text
they link (a link's span shows its URI, a tag's span is "#tag"), replies must name posts that exist
with their right root, an image's alt text must not be empty. Like the reference PDS today, it
answers a createRecord on an existing rkey with 500 InternalServerError (bluesky-social/atproto
#3718, #4725). Revoking an app password (state.revoke("bluesky", password)) refuses new sessions
and refreshes; access tokens already issued live on until they expire, as on a real PDS.
`citizen_post` makes a post in a citizen's own repo (a mention of the comune, or a reply under a
post), which our posts can then reply to; it is not one of the sandbox's posts (ours)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from devtools.sandbox.counting import graphemes
from devtools.sandbox.fakes import Answer, BaseUrl
from devtools.sandbox.faults import Fault
from devtools.sandbox.state import Post, SandboxState
from devtools.sandbox.wire import Reply, Request, json_reply, malformed_reply, timeout_reply

POST = "app.bsky.feed.post"
POST_GRAPHEMES = 300  # app.bsky.feed.post#text: maxGraphemes
POST_BYTES = 3000  # ... and maxLength, in UTF-8 bytes
MAX_LANGS = 3
MAX_NOTIFICATIONS = 100  # app.bsky.notification.listNotifications: limit maximum
IMAGE_BLOB_MAX = 1_000_000  # app.bsky.embed.images#image and external#thumb: maxSize
UPLOAD_LIMIT = 5 * 1024 * 1024  # the PDS's own cap on uploadBlob bodies
TAG_GRAPHEMES, TAG_BYTES = 64, 640
ACCESS_TTL_SECONDS = 7200.0
# createSession: 30 per 5 minutes and 300 per day per account.
SESSION_LIMITS = ((30, 300.0), (300, 86_400.0))
# Record writes: 5000 points per hour per account, a create costs 3.
WRITE_POINTS, WRITE_WINDOW, CREATE_COST = 5000, 3600.0, 3
_TID = re.compile(r"[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}")
_NSID = re.compile(r"/xrpc/([A-Za-z0-9.-]+)")
_SHOWN_PREFIX = re.compile(r"^https?://(www\.)?", re.IGNORECASE)
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def error(status: int, name: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    return json_reply(status, {"error": name, "message": message}, headers)


def rate_limited(limit: int, window: float, reset_at: float) -> Reply:
    headers = {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": str(int(reset_at)),
        "RateLimit-Policy": f"{limit};w={int(window)}",
    }
    return error(429, "RateLimitExceeded", "Rate Limit Exceeded", headers)


class _Refused(Exception):
    """An XRPC error to answer with."""

    def __init__(self, status: int, name: str, message: str) -> None:
        super().__init__(message)
        self.reply = error(status, name, message)


def _invalid(message: str) -> _Refused:
    return _Refused(400, "InvalidRequest", message)


@dataclass(frozen=True)
class _Account:
    did: str
    handle: str


@dataclass
class _Grant:
    account: _Account
    password: str
    expires_at: float = float("inf")


@dataclass(frozen=True)
class _Blob:
    mime_type: str
    size: int


@dataclass(frozen=True)
class _Record:
    uri: str
    cid: str
    value: dict[str, Any]
    root: tuple[str, str]  # (uri, cid) of its thread's first post


class _Window:
    """Events per key in a sliding window: enough to say when the next one is allowed."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit, self.seconds = limit, seconds
        self._events: defaultdict[str, deque[float]] = defaultdict(deque)

    def reset_at(self, key: str, now: float, cost: int = 1) -> float | None:
        """None (and the event counted) if it fits; else the epoch second the window frees up."""
        events = self._events[key]
        while events and events[0] <= now - self.seconds:
            events.popleft()
        if len(events) + cost > self.limit:
            return events[0] + self.seconds
        events.extend([now] * cost)
        return None


class BlueskyFake:
    platform = "bluesky"
    title = "Bluesky"
    target_label = "Account"
    posting_endpoint = "createRecord"

    def __init__(self, state: SandboxState, base_url: BaseUrl) -> None:
        del base_url  # Bluesky's links are bsky.app's, whatever the PDS's address
        self._state = state
        self._lock = threading.Lock()
        self.access_ttl = ACCESS_TTL_SECONDS
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._access: dict[str, _Grant] = {}
            self._refresh: dict[str, _Grant] = {}
            self._records: dict[str, _Record] = {}
            self._handles: dict[str, str] = {}  # citizens' did -> handle, for notifications
            self._blobs: dict[str, _Blob] = {}
            self._sessions_created: defaultdict[str, int] = defaultdict(int)
            self._session_windows = [_Window(limit, seconds) for limit, seconds in SESSION_LIMITS]
            self._writes = _Window(WRITE_POINTS, WRITE_WINDOW)
            self.access_ttl = ACCESS_TTL_SECONDS

    # -- controls for tests and demos -----------------------------------------------------------
    def sessions_created(self, identifier: str | None = None) -> int:
        """How many sessions createSession handed out (for one identifier, or in all)."""
        with self._lock:
            if identifier is not None:
                return self._sessions_created[identifier]
            return sum(self._sessions_created.values())

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is past its life: the next call with one gets 400
        ExpiredToken, and a client has to refresh its session."""
        with self._lock:
            for grant in self._access.values():
                grant.expires_at = 0.0

    def citizen_post(self, handle: str, text: str, *, reply_to: str | None = None) -> dict[str, str]:
        """A post by the account `handle`, under the post at `reply_to` (a uri) if given; its strong
        ref {uri, cid}, and its thread's first post as {root_uri, root_cid}."""
        account = _account(handle)
        record: dict[str, Any] = {"$type": POST, "text": text, "createdAt": _now(), "langs": ["it"]}
        with self._lock:
            parent = self._records[reply_to] if reply_to else None
            if parent is not None:
                record["reply"] = {
                    "root": {"uri": parent.root[0], "cid": parent.root[1]},
                    "parent": {"uri": parent.uri, "cid": parent.cid},
                }
            uri = f"at://{account.did}/{POST}/{_new_tid()}"
            cid = _cid(json.dumps(record, sort_keys=True).encode())
            root = parent.root if parent else (uri, cid)
            self._records[uri] = _Record(uri, cid, record, root)
            self._handles[account.did] = account.handle
        return {"uri": uri, "cid": cid, "root_uri": root[0], "root_cid": root[1]}

    def record(self, uri: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._records.get(uri)
        return None if found is None else {"uri": found.uri, "cid": found.cid, "value": found.value}

    # -- the platform ---------------------------------------------------------------------------
    def fault_reply(self, fault: Fault) -> Reply:
        replies: dict[str, Callable[[], Reply]] = {
            "rate_limit": lambda: rate_limited(3000, 300, time.time() + fault.retry_after),
            "server_error": lambda: error(500, "InternalServerError", "Internal Server Error"),
            "expired_token": lambda: error(400, "ExpiredToken", "Token has expired"),
            "forbidden": lambda: error(403, "Forbidden", "Forbidden"),
            "malformed": malformed_reply,
            "timeout": lambda: timeout_reply(fault.delay),
            # Meta's "duplicate": the answer a PDS gives today to a record that exists (see above).
            "duplicate": lambda: error(500, "InternalServerError", "Internal Server Error"),
            # Meta's "blocked": a taken-down account, whose every call the PDS refuses.
            "blocked": lambda: error(401, "AccountTakedown", "Account has been taken down"),
        }
        return replies[fault.kind]()

    def route(self, request: Request, path: str) -> tuple[str, Answer] | None:
        match = _NSID.fullmatch(path)
        if match is None:
            return None
        nsid = match.group(1)
        methods: dict[str, tuple[str, Callable[[Request], Reply]]] = {
            "com.atproto.server.createSession": ("POST", self.create_session),
            "com.atproto.server.refreshSession": ("POST", self.refresh_session),
            "com.atproto.server.getSession": ("GET", self.get_session),
            "com.atproto.repo.createRecord": ("POST", self.create_record),
            "com.atproto.repo.getRecord": ("GET", self.get_record),
            "com.atproto.repo.uploadBlob": ("POST", self.upload_blob),
            "app.bsky.notification.listNotifications": ("GET", self.list_notifications),
        }
        if nsid not in methods:
            return "other", lambda: error(501, "MethodNotImplemented", "Method Not Implemented")
        method, handler = methods[nsid]
        endpoint = nsid.rpartition(".")[2]
        if request.method != method:
            return endpoint, lambda: error(400, "InvalidRequest", "Incorrect HTTP method")
        return endpoint, lambda: _answered(handler, request)

    def create_session(self, request: Request) -> Reply:
        payload = request.payload()
        identifier = (payload or {}).get("identifier")
        password = (payload or {}).get("password")
        if not isinstance(identifier, str) or not isinstance(password, str):
            raise _invalid('Input must have the properties "identifier" and "password"')
        now = time.time()
        with self._lock:
            # Counted before the password is checked, as the PDS's rate limiter does: failed logins
            # use up the budget too.
            if self._state.enforce_rate_limits:
                for window in self._session_windows:
                    reset_at = window.reset_at(identifier, now)
                    if reset_at is not None:
                        return rate_limited(window.limit, window.seconds, reset_at)
            if not identifier or not password or self._state.is_revoked("bluesky", password):
                raise _Refused(401, "AuthenticationRequired", "Invalid identifier or password")
            self._sessions_created[identifier] += 1
            return json_reply(200, self._new_session(_account(identifier), password))

    def refresh_session(self, request: Request) -> Reply:
        token = request.bearer_token()
        with self._lock:
            grant = self._refresh.pop(token, None) if token else None  # rotated: usable once
            if grant is None and token in self._access:
                raise _invalid("Invalid token type")
            if grant is None:
                raise _Refused(400, "InvalidToken", "Token could not be verified")
            if self._state.is_revoked("bluesky", grant.password):
                raise _Refused(400, "ExpiredToken", "Token has been revoked")
            return json_reply(200, self._new_session(grant.account, grant.password))

    def get_session(self, request: Request) -> Reply:
        account = self._authorized(request)
        return json_reply(200, {"did": account.did, "handle": account.handle, "active": True})

    def upload_blob(self, request: Request) -> Reply:
        self._authorized(request)
        if len(request.body) > UPLOAD_LIMIT:
            raise _Refused(413, "PayloadTooLarge", "request entity too large")
        mime_type = (request.header("content-type") or "application/octet-stream").split(";")[0].strip()
        cid = _cid(request.body, raw=True)
        with self._lock:
            self._blobs[cid] = _Blob(mime_type, len(request.body))
        blob = {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime_type, "size": len(request.body)}
        return json_reply(200, {"blob": blob})

    def get_record(self, request: Request) -> Reply:
        repo, collection, rkey = (request.query_value(name) for name in ("repo", "collection", "rkey"))
        if not repo or not collection or not rkey:
            raise _invalid("Params must have the properties repo, collection and rkey")
        did = repo if repo.startswith("did:") else _account(repo).did
        uri = f"at://{did}/{collection}/{rkey}"
        found = self.record(uri)
        if found is None:
            raise _Refused(400, "RecordNotFound", f"Could not locate record: {uri}")
        return json_reply(200, found)

    def list_notifications(self, request: Request) -> Reply:
        """Citizens' posts mentioning the account (@handle in the text) or replying to one of its
        posts, newest first, `limit` at a time; `cursor` (an offset here, opaque to clients) goes to
        older ones. Only the mention and reply reasons exist in the sandbox."""
        account = self._authorized(request)
        limit = min(int(request.query_value("limit") or 50), MAX_NOTIFICATIONS)
        offset = int(request.query_value("cursor") or 0)
        with self._lock:
            found = [
                _notification(record, self._handles[record.uri.split("/")[2]], reason)
                for record in self._records.values()
                if record.uri.split("/")[2] in self._handles
                and (reason := _reason(record, account)) is not None
            ]
        found.sort(key=lambda item: item["indexedAt"], reverse=True)
        page = found[offset : offset + limit]
        more = offset + limit < len(found)
        return json_reply(200, {"notifications": page} | ({"cursor": str(offset + limit)} if more else {}))

    def create_record(self, request: Request) -> Reply:
        account = self._authorized(request)
        payload = request.payload()
        if payload is None:
            raise _invalid("Request body must be a JSON object")
        if payload.get("repo") not in (account.did, account.handle):
            raise _Refused(401, "AuthenticationRequired", "Authentication Required")
        if payload.get("collection") != POST:
            raise _invalid(f"Unsupported collection in this sandbox: {payload.get('collection')}")
        rkey = payload.get("rkey")
        if rkey is not None and (not isinstance(rkey, str) or not _TID.fullmatch(rkey)):
            raise _invalid(f"Invalid record key for {POST}: must be a TID")
        record = payload.get("record")
        if not isinstance(record, dict):
            raise _invalid("Input/record must be an object")
        with self._lock:
            root = self._check_post(record)
            reset_at = self._writes.reset_at(account.did, time.time(), CREATE_COST)
            if reset_at is not None and self._state.enforce_rate_limits:
                return rate_limited(WRITE_POINTS, WRITE_WINDOW, reset_at)
            uri = f"at://{account.did}/{POST}/{rkey or _new_tid()}"
            if uri in self._records:
                # What the reference PDS does today for an existing record: no named error yet.
                self._state.count_replay("bluesky")
                raise _Refused(500, "InternalServerError", "Internal Server Error")
            cid = _cid(json.dumps(record, sort_keys=True).encode())
            self._records[uri] = _Record(uri, cid, record, root or (uri, cid))
        self._add_post(account, uri, cid, record)
        commit = {"cid": _cid(uri.encode()), "rev": uri.rpartition("/")[2]}
        return json_reply(200, {"uri": uri, "cid": cid, "commit": commit, "validationStatus": "valid"})

    # -- validation -----------------------------------------------------------------------------
    def _check_post(self, record: dict[str, Any]) -> tuple[str, str] | None:
        """Refuses a post the way the PDS would (400 InvalidRequest, "Invalid app.bsky.feed.post
        record: ..."); returns the root of its thread when it is a reply."""
        problem = post_problem(record) or self._embed_problem(record.get("embed"))
        if problem:
            raise _invalid(f"Invalid {POST} record: {problem}")
        return self._reply_root(record.get("reply"))

    def _reply_root(self, reply: Any) -> tuple[str, str] | None:
        if reply is None:
            return None
        refs = _strong_refs(reply)
        if refs is None:
            raise _invalid(f"Invalid {POST} record: Record/reply must have the properties root and parent")
        root, parent = refs
        target = self._records.get(str(parent["uri"]))
        if target is None or target.cid != parent["cid"]:
            raise _invalid(f"Reply parent not found: {parent['uri']}")
        if target.root != (root["uri"], root["cid"]):
            raise _invalid(f"Reply root does not match the parent's thread: {root['uri']}")
        return target.root

    def _embed_problem(self, embed: Any) -> str | None:
        if embed is None:
            return None
        kind = embed.get("$type") if isinstance(embed, dict) else None
        if kind == "app.bsky.embed.external":
            return self._external_problem(embed.get("external"))
        if kind == "app.bsky.embed.images":
            return self._images_problem(embed.get("images"))
        return f"Record/embed has an unsupported $type: {kind}"

    def _external_problem(self, card: Any) -> str | None:
        if not isinstance(card, dict) or not all(
            isinstance(card.get(f), str) for f in ("uri", "title", "description")
        ):
            return "Record/embed/external must have the string properties uri, title and description"
        if not _SHOWN_PREFIX.match(card["uri"]):
            return "Record/embed/external/uri must be a uri"
        return None if "thumb" not in card else self._blob_problem(card["thumb"], "external/thumb")

    def _images_problem(self, images: Any) -> str | None:
        if not isinstance(images, list) or not 1 <= len(images) <= 4:  # noqa: PLR2004 (the lexicon's 4)
            return "Record/embed/images must hold 1 to 4 images"
        for number, image in enumerate(images):
            if not isinstance(image, dict) or not isinstance(image.get("alt"), str):
                return f"Record/embed/images/{number} must have the property alt"
            if not image["alt"].strip():
                return f"Record/embed/images/{number}/alt must describe the image (sandbox rule)"
            problem = self._blob_problem(image.get("image"), f"images/{number}/image")
            if problem:
                return problem
        return None

    def _blob_problem(self, blob: Any, where: str) -> str | None:
        ref = blob.get("ref") if isinstance(blob, dict) else None
        cid = ref.get("$link") if isinstance(ref, dict) else None
        if not isinstance(blob, dict) or blob.get("$type") != "blob" or not isinstance(cid, str):
            return f"Record/embed/{where} must be a blob"
        stored = self._blobs.get(cid)
        if stored is None:
            return f"Could not find blob: {cid}"
        if not stored.mime_type.startswith("image/"):
            return f"Record/embed/{where} has the wrong type: {stored.mime_type}"
        if stored.size > IMAGE_BLOB_MAX:
            return f"Record/embed/{where} is too large: {stored.size} bytes, at most {IMAGE_BLOB_MAX}"
        return None

    # -- sessions -------------------------------------------------------------------------------
    def _new_session(self, account: _Account, password: str) -> dict[str, Any]:
        access = "sandbox-access." + secrets.token_urlsafe(18)
        refresh = "sandbox-refresh." + secrets.token_urlsafe(18)
        self._access[access] = _Grant(account, password, time.monotonic() + self.access_ttl)
        self._refresh[refresh] = _Grant(account, password)
        return {
            "accessJwt": access,
            "refreshJwt": refresh,
            "did": account.did,
            "handle": account.handle,
            "active": True,
        }

    def _authorized(self, request: Request) -> _Account:
        token = request.bearer_token()
        if token is None:
            raise _Refused(401, "AuthMissing", "Authentication Required")
        with self._lock:
            grant = self._access.get(token)
        if grant is None:
            if token in self._refresh:
                raise _invalid("Invalid token type")
            raise _Refused(400, "InvalidToken", "Token could not be verified")
        if grant.expires_at <= time.monotonic():
            raise _Refused(400, "ExpiredToken", "Token has expired")
        return grant.account

    def _add_post(self, account: _Account, uri: str, cid: str, record: dict[str, Any]) -> None:
        rkey = uri.rpartition("/")[2]
        options: dict[str, Any] = {
            name: record[name] for name in ("langs", "facets", "embed", "reply") if name in record
        }
        self._state.add_post(
            Post(
                platform="bluesky",
                target=f"@{account.handle}",
                id=rkey,
                text=record["text"],
                url=f"https://bsky.app/profile/{account.handle}/post/{rkey}",
                time=datetime.now(UTC),
                options={"uri": uri, "cid": cid, **options},
            )
        )


def _reason(record: _Record, account: _Account) -> str | None:
    parent = record.value.get("reply", {}).get("parent", {}).get("uri", "")
    if parent.startswith(f"at://{account.did}/"):
        return "reply"
    return "mention" if f"@{account.handle}" in record.value["text"] else None


def _notification(record: _Record, handle: str, reason: str) -> dict[str, Any]:
    did = record.uri.split("/")[2]
    return {
        "uri": record.uri,
        "cid": record.cid,
        "author": {"did": did, "handle": handle, "displayName": handle.split(".", maxsplit=1)[0].title()},
        "reason": reason,
        "record": record.value,
        "isRead": False,
        "indexedAt": record.value["createdAt"],
    }


def post_problem(record: dict[str, Any]) -> str | None:
    """What the PDS would find wrong in a post record without embed or reply (None: nothing), with
    its own counters: tests hold renderers to it."""
    return _text_problem(record) or _langs_problem(record.get("langs", [])) or _facets_problem(record)


def _text_problem(record: dict[str, Any]) -> str | None:
    text = record.get("text")
    if record.get("$type") != POST:
        return f"Record/$type must be {POST}"
    if not isinstance(text, str):
        return "Record must have the property text"
    if len(text.encode("utf-8")) > POST_BYTES:
        return f"Record/text must not be longer than {POST_BYTES} characters"
    if graphemes(text) > POST_GRAPHEMES:
        return f"Record/text must not be longer than {POST_GRAPHEMES} graphemes"
    if not isinstance(record.get("createdAt"), str) or not _DATETIME.fullmatch(record["createdAt"]):
        return "Record/createdAt must be an valid atproto datetime"
    return None


def _langs_problem(langs: Any) -> str | None:
    if not isinstance(langs, list) or len(langs) > MAX_LANGS or not all(isinstance(x, str) for x in langs):
        return f"Record/langs must be a list of at most {MAX_LANGS} languages"
    return None


def _facets_problem(record: dict[str, Any]) -> str | None:
    facets = record.get("facets", [])
    if not isinstance(facets, list):
        return "Record/facets must be an array"
    return next((p for n, f in enumerate(facets) if (p := _facet_problem(record["text"], n, f))), None)


def _facet_problem(text: str, number: int, facet: Any) -> str | None:
    """A facet's byte range must lie on character boundaries of the UTF-8 text, and show what it
    links: a URL (maybe without its scheme, maybe cut with an ellipsis), or "#" and the tag."""
    where = f"Record/facets/{number}"
    index = facet.get("index") if isinstance(facet, dict) else None
    features = facet.get("features") if isinstance(facet, dict) else None
    start, end = (index.get("byteStart"), index.get("byteEnd")) if isinstance(index, dict) else (None, None)
    encoded = text.encode("utf-8")
    if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start < end <= len(encoded):
        return f"{where}/index must be a byte range inside the text"
    try:
        span = encoded[start:end].decode("utf-8")
    except UnicodeDecodeError:
        return f"{where}/index cuts a character in two"
    if not isinstance(features, list) or len(features) != 1 or not isinstance(features[0], dict):
        return f"{where}/features must hold one feature"
    return _feature_problem(where, span, features[0])


def _feature_problem(where: str, span: str, feature: dict[str, Any]) -> str | None:
    kind = feature.get("$type")
    if kind == "app.bsky.richtext.facet#link":
        return _link_problem(where, span, feature.get("uri"))
    if kind == "app.bsky.richtext.facet#tag":
        return _tag_problem(where, span, feature.get("tag"))
    return f"{where}/features/0 has an unsupported $type: {kind}"


def _link_problem(where: str, span: str, uri: Any) -> str | None:
    """The span shows the URI whole, or its start without the scheme (and "www."), maybe with "…"."""
    if not isinstance(uri, str) or not _SHOWN_PREFIX.match(uri):
        return f"{where}/features/0/uri must be a uri"
    shown = _SHOWN_PREFIX.sub("", span).removesuffix("…")
    if span != uri and not (shown and _SHOWN_PREFIX.sub("", uri).startswith(shown)):
        return f"{where} shows {span!r}, which is not its link {uri!r}"
    return None


def _tag_problem(where: str, span: str, tag: Any) -> str | None:
    if not isinstance(tag, str) or not tag or tag.startswith("#"):
        return f"{where}/features/0/tag must be the tag without #"
    if graphemes(tag) > TAG_GRAPHEMES or len(tag.encode("utf-8")) > TAG_BYTES:
        return f"{where}/features/0/tag must not be longer than {TAG_GRAPHEMES} graphemes"
    return None if span == f"#{tag}" else f"{where} shows {span!r}, not #{tag}"


def _answered(handler: Callable[[Request], Reply], request: Request) -> Reply:
    try:
        return handler(request)
    except _Refused as refused:
        return refused.reply


def _account(identifier: str) -> _Account:
    """A stable account per identifier: a handle gets a did:plc made from it, a DID a handle."""
    digest = base64.b32encode(hashlib.sha256(identifier.lower().encode()).digest()).decode().lower()
    if identifier.startswith("did:"):
        return _Account(did=identifier, handle=f"comune-{digest[:6]}.bsky.social")
    return _Account(did=f"did:plc:{digest[:24]}", handle=identifier.lower())


def _cid(content: bytes, *, raw: bool = False) -> str:
    """A CID-looking content hash (CIDv1, base32): "bafkrei" for raw blobs, "bafyrei" for records."""
    digest = base64.b32encode(hashlib.sha256(content).digest()).decode().lower().rstrip("=")
    return ("bafkrei" if raw else "bafyrei") + digest[:52]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _new_tid() -> str:
    value = int(time.time() * 1_000_000) << 10 | secrets.randbelow(1024)
    alphabet = "234567abcdefghijklmnopqrstuvwxyz"
    return "".join(alphabet[(value >> shift) & 31] for shift in range(60, -1, -5))


def _strong_refs(reply: Any) -> tuple[dict[str, str], dict[str, str]] | None:
    """A reply's root and parent, each {uri, cid}; None unless both are there."""
    refs = [reply.get(name) if isinstance(reply, dict) else None for name in ("root", "parent")]
    strong = [
        {"uri": ref["uri"], "cid": ref["cid"]}
        for ref in refs
        if isinstance(ref, dict) and isinstance(ref.get("uri"), str) and isinstance(ref.get("cid"), str)
    ]
    return (strong[0], strong[1]) if len(strong) == len(refs) else None
