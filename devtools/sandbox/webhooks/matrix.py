"""Matrix homeserver fake (client-server API v3): PUT /rooms/{roomId}/send/{eventType}/{txnId} with a
Bearer token, where a repeated transaction id from the same token returns the event it created;
GET /account/whoami; the 65,536-byte event limit (M_TOO_LARGE), M_LIMIT_EXCEEDED with retry_after_ms and
Retry-After, and the notifications an event would cause (m.mentions, or the legacy "@room" rule), as
written down in platforms.md."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from devtools.sandbox.fakes import Answer, BaseUrl
from devtools.sandbox.faults import Fault
from devtools.sandbox.state import Post, SandboxState
from devtools.sandbox.webhooks.common import SlidingWindow, segments
from devtools.sandbox.wire import Reply, Request, html_reply, json_reply, malformed_reply, timeout_reply

SERVER_NAME = "sandbox.banditore.invalid"
MAX_EVENT_BYTES = 65_536
# What a PDU adds around the content (ids, hashes, signatures, prev and auth events), generously.
EVENT_ENVELOPE_BYTES = 2048
# Synapse's default message limit (0.2/s, bursts of 10), per token; enforced only on request.
MESSAGES_PER_BURST, BURST_SECONDS = 10, 50.0
_ROOM_ID = re.compile(r"![^:]+:.+")


def error(
    status: int, errcode: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> Reply:
    return json_reply(status, {"errcode": errcode, "error": message, **extra}, headers)


def event_bytes(content: dict[str, Any]) -> int:
    """The event's size as a homeserver checks it: canonical JSON (UTF-8, no spaces, sorted keys)
    of the content, plus the envelope every event carries."""
    canonical = json.dumps(content, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return len(canonical.encode("utf-8")) + EVENT_ENVELOPE_BYTES


def pings(content: dict[str, Any]) -> list[str]:
    """Whom the event would notify. With `m.mentions`, only what it lists; without it, the legacy push
    rule notifies the whole room for "@room" anywhere in the body."""
    mentions = content.get("m.mentions")
    if isinstance(mentions, dict):
        users = mentions.get("user_ids")
        return (["@room"] if mentions.get("room") is True else []) + (
            users if isinstance(users, list) else []
        )
    return ["@room"] if "@room" in str(content.get("body", "")) else []


class MatrixFake:
    platform = "matrix"
    title = "Matrix"
    target_label = "Stanza"
    posting_endpoint = "send"

    def __init__(self, state: SandboxState, base_url: BaseUrl) -> None:
        self._state = state
        self._lock = threading.Lock()
        self._window = SlidingWindow(MESSAGES_PER_BURST, BURST_SECONDS)
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._events = 0
            self._transactions: dict[tuple[str, str], str] = {}  # (token, txnId) -> event id
        self._window.reset()

    def fault_reply(self, fault: Fault) -> Reply:
        if fault.kind == "rate_limit":
            return _rate_limited(float(fault.retry_after))
        replies: dict[str, Callable[[], Reply]] = {
            # A reverse proxy's page in front of a homeserver that is down.
            "server_error": lambda: html_reply(502, "<html><body>502 Bad Gateway</body></html>"),
            "expired_token": lambda: error(
                401, "M_UNKNOWN_TOKEN", "Invalid access token passed.", soft_logout=False
            ),
            "forbidden": lambda: error(403, "M_FORBIDDEN", "User is not in the room."),
            "malformed": malformed_reply,
            "timeout": lambda: timeout_reply(fault.delay),
        }
        # Kinds of other platforms (Meta's "blocked", "duplicate") are plain platform trouble here.
        return replies.get(fault.kind, replies["server_error"])()

    def route(self, request: Request, path: str) -> tuple[str, Answer] | None:
        match request.method, segments(path):
            case "GET", ["_matrix", "client", "v3", "account", "whoami"]:
                return "whoami", lambda: self.whoami(request)
            case "PUT", ["_matrix", "client", "v3", "rooms", room, "send", event_type, txn]:
                return "send", lambda: self.send(request, room=room, event_type=event_type, txn=txn)
        return None

    def whoami(self, request: Request) -> Reply:
        token, refused = self._token(request)
        if refused is not None:
            return refused
        return json_reply(200, {"user_id": _user(token), "device_id": "BANDITORE", "is_guest": False})

    def send(self, request: Request, *, room: str, event_type: str, txn: str) -> Reply:
        token, early = self._token(request)
        early = early or self._replay(token, txn) or self._refused_room(room) or self._rate_limited(token)
        if early is not None:
            return early
        content = request.payload()
        if content is None:
            return error(400, "M_NOT_JSON", "Content not JSON.")
        refused = _refused_content(content, event_type)
        if refused is not None:
            return refused
        return json_reply(200, {"event_id": self._create(token, txn, room, event_type, content)})

    def _replay(self, token: str, txn: str) -> Reply | None:
        """The spec's idempotency: a retried transaction gets the event it created, not another."""
        with self._lock:
            replayed = self._transactions.get((token, txn))
        if replayed is None:
            return None
        self._state.count_replay("matrix")
        return json_reply(200, {"event_id": replayed})

    @staticmethod
    def _refused_room(room: str) -> Reply | None:
        return (
            None if _ROOM_ID.fullmatch(room) else error(400, "M_INVALID_PARAM", f"'{room}' is not a room id")
        )

    def _rate_limited(self, token: str) -> Reply | None:
        wait = self._window.wait(token) if self._state.enforce_rate_limits else 0.0
        return _rate_limited(wait) if wait else None

    def _token(self, request: Request) -> tuple[str, Reply | None]:
        token = request.bearer_token()
        if token is None:
            return "", error(401, "M_MISSING_TOKEN", "Missing access token.")
        if self._state.is_revoked("matrix", token):
            return token, error(401, "M_UNKNOWN_TOKEN", "Invalid access token passed.", soft_logout=False)
        return token, None

    def _create(self, token: str, txn: str, room: str, event_type: str, content: dict[str, Any]) -> str:
        with self._lock:
            self._events += 1
            digest = hashlib.sha256(f"{room}|{txn}|{self._events}".encode()).digest()
            # Room versions 4 and later: the URL-safe base64 of the event's hash.
            event_id = "$" + base64.urlsafe_b64encode(digest).decode().rstrip("=")
            self._transactions[token, txn] = event_id
        relates = content.get("m.relates_to")
        reply = relates.get("m.in_reply_to") if isinstance(relates, dict) else None
        options = {
            "sender": _user(token),
            "event_type": event_type,
            "msgtype": content.get("msgtype"),
            "formatted_body": content.get("formatted_body"),
            "in_reply_to": reply.get("event_id") if isinstance(reply, dict) else None,
            "pings": pings(content),
        }
        self._state.add_post(
            Post(
                platform="matrix",
                target=room,
                id=event_id,
                text=str(content.get("body", "")),
                url=f"https://matrix.to/#/{quote(room, safe='')}/{quote(event_id, safe='')}",
                time=datetime.now(UTC),
                idempotency_key=txn,
                options={name: value for name, value in options.items() if value is not None},
            )
        )
        return event_id


def _refused_content(content: dict[str, Any], event_type: str) -> Reply | None:
    if event_bytes(content) > MAX_EVENT_BYTES:
        return error(413, "M_TOO_LARGE", "event too large")
    if event_type != "m.room.message":
        return None
    if not isinstance(content.get("msgtype"), str) or not isinstance(content.get("body"), str):
        return error(400, "M_BAD_JSON", "m.room.message needs a string msgtype and body")
    html = content.get("format") == "org.matrix.custom.html"
    if html and not isinstance(content.get("formatted_body"), str):
        return error(
            400, "M_BAD_JSON", "formatted_body must be a string when format is org.matrix.custom.html"
        )
    return None


def _rate_limited(seconds: float) -> Reply:
    return error(
        429,
        "M_LIMIT_EXCEEDED",
        "Too Many Requests",
        {"Retry-After": str(math.ceil(seconds))},
        retry_after_ms=math.ceil(seconds * 1000),
    )


def _user(token: str) -> str:
    """A stable bot account per token."""
    return f"@banditore_{hashlib.sha256(token.encode()).hexdigest()[:6]}:{SERVER_NAME}"
