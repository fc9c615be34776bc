"""Mastodon API fake: instance limits, statuses with Bearer auth, grapheme counting with URLs at a fixed
weight, Idempotency-Key replays within 1 h and X-RateLimit-* headers, as written down in platforms.md."""

from __future__ import annotations

import hashlib
import html
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import regex

from devtools.sandbox.fakes import Answer, BaseUrl
from devtools.sandbox.faults import Fault
from devtools.sandbox.state import Post, SandboxState
from devtools.sandbox.wire import Reply, Request, json_reply, malformed_reply, timeout_reply

IDEMPOTENCY_SECONDS = 3600
# "300 requests / 5 min per account": always announced in the headers, enforced only on request.
RATE_LIMIT = 300
RATE_WINDOW_SECONDS = 300
VISIBILITIES = {"public", "unlisted", "private", "direct"}
_BEARER = re.compile(r"Bearer\s+(\S+)")
_URL = re.compile(r'https?://[^\s\x00-\x1f\x7f-\x9f<>"]+', re.IGNORECASE)
_HOST_WITH_DOT = re.compile(r"https?://[^/?#.]+(\.[^/?#.]+)+([/?#]|$)", re.IGNORECASE)
_GRAPHEME = regex.compile(r"\X")


def status_length(text: str, url_weight: int) -> int:
    """Mastodon's count: URLs become `url_weight` placeholder characters, then graphemes are counted."""

    def placeholder(match: re.Match[str]) -> str:
        url = match.group().rstrip(".,;:!?'\")]}…")
        if not _HOST_WITH_DOT.match(url):
            return match.group()
        return "x" * url_weight + match.group()[len(url) :]

    return len(_GRAPHEME.findall(_URL.sub(placeholder, text)))


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    return json_reply(status, {"error": message}, headers)


@dataclass(frozen=True)
class _Remembered:
    expires: float
    status: dict[str, Any]


_STATUS_PAGE = re.compile(r"/@[^/]+/(\d+)")


class MastodonFake:
    platform = "mastodon"
    title = "Mastodon"
    target_label = "Account"
    posting_endpoint = "statuses"

    def __init__(self, state: SandboxState, base_url: BaseUrl) -> None:
        self._state = state
        self._base_url = base_url
        self._lock = threading.Lock()
        self.max_characters = 500
        self.characters_reserved_per_url = 23
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._last_id = 110_000_000_000_000_000
            self._idempotent: dict[tuple[str, str], _Remembered] = {}
            self._windows: dict[str, tuple[int, int]] = {}  # token -> (window number, requests in it)

    def fault_reply(self, fault: Fault) -> Reply:
        reset_at = datetime.now(UTC) + timedelta(seconds=fault.retry_after)
        replies: dict[str, Callable[[], Reply]] = {
            "rate_limit": lambda: error(429, "Too many requests", _rate_headers(0, reset_at)),
            "server_error": lambda: Reply(
                503, b"<html><body>503 Service Unavailable</body></html>", "text/html"
            ),
            "expired_token": lambda: error(401, "The access token is invalid"),
            "forbidden": lambda: error(403, "This action is not allowed"),
            "malformed": malformed_reply,
            "timeout": lambda: timeout_reply(fault.delay),
        }
        return replies[fault.kind]()

    def route(self, request: Request, path: str) -> tuple[str, Answer] | None:
        if (request.method, path) == ("GET", "/api/v2/instance"):
            return "instance", self.instance
        if (request.method, path) == ("GET", "/api/v1/accounts/verify_credentials"):
            return "verify_credentials", lambda: self.verify_credentials(request)
        if (request.method, path) == ("POST", "/api/v1/statuses"):
            return "statuses", lambda: self.post_status(request)
        status_page = _STATUS_PAGE.fullmatch(path)
        if request.method == "GET" and status_page:
            # A status URL opens the sandbox page at that status.
            location = f"/#mastodon-{status_page.group(1)}"
            return "status_page", lambda: Reply(
                302, content_type="text/plain", headers={"Location": location}
            )
        return None

    def instance(self) -> Reply:
        return json_reply(
            200,
            {
                "domain": self._base_url().split("://", 1)[-1],
                "title": "Mastodon di prova (sandbox di Banditore)",
                "version": "4.3.0",
                "languages": ["it"],
                "configuration": {
                    "statuses": {
                        "max_characters": self.max_characters,
                        "max_media_attachments": 4,
                        "characters_reserved_per_url": self.characters_reserved_per_url,
                    }
                },
            },
        )

    def verify_credentials(self, request: Request) -> Reply:
        token = _bearer(request)
        if token is None or self._state.is_revoked("mastodon", token):
            return error(401, "The access token is invalid")
        account = _account(token)
        return json_reply(200, {"id": "1", "username": account, "acct": account})

    def post_status(self, request: Request) -> Reply:
        token = _bearer(request)
        if token is None or self._state.is_revoked("mastodon", token):
            return error(
                401, "The access token is invalid" if token is None else "The access token was revoked"
            )
        headers, limited = self._count_for_rate_limit(token)
        if limited:
            return error(429, "Too many requests", headers)
        key = request.header("Idempotency-Key")
        replay = self._replay(token, key)
        if replay is not None:
            self._state.count_replay("mastodon")
            return json_reply(200, replay, headers)
        payload = request.payload()
        if payload is None:
            return error(400, "Error while parsing request body", headers)
        problem = self._validation_problem(payload)
        if problem:
            return error(422, f"Validation failed: {problem}", headers)
        return json_reply(200, self._create(token, key, payload), headers)

    def _validation_problem(self, payload: dict[str, Any]) -> str | None:
        text = payload.get("status")
        if not isinstance(text, str) or not text.strip():
            return "Text can't be blank"
        if status_length(text, self.characters_reserved_per_url) > self.max_characters:
            return f"Text character limit of {self.max_characters} exceeded"
        if payload.get("visibility", "public") not in VISIBILITIES:
            return "Visibility is not included in the list"
        return None

    def _create(self, token: str, key: str | None, payload: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._last_id += 1
            status_id = str(self._last_id)
            status = self._status_json(status_id, _account(token), payload)
            if key:
                self._idempotent[token, key] = _Remembered(time.monotonic() + IDEMPOTENCY_SECONDS, status)
        options = {name: payload.get(name) for name in ("visibility", "language", "in_reply_to_id")}
        self._state.add_post(
            Post(
                platform="mastodon",
                target=f"@{_account(token)}",
                id=status_id,
                text=payload["status"],
                url=status["url"],
                time=datetime.fromisoformat(status["created_at"]),
                idempotency_key=key,
                options={name: value for name, value in options.items() if value is not None},
            )
        )
        return status

    def _status_json(self, status_id: str, account: str, payload: dict[str, Any]) -> dict[str, Any]:
        base = f"{self._base_url()}/mastodon"
        text = str(payload["status"])
        return {
            "id": status_id,
            "created_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "in_reply_to_id": payload.get("in_reply_to_id"),
            "visibility": payload.get("visibility", "public"),
            "language": payload.get("language"),
            "uri": f"{base}/users/{account}/statuses/{status_id}",
            "url": f"{base}/@{account}/{status_id}",
            "content": "<p>" + html.escape(text).replace("\n", "<br />") + "</p>",
            "replies_count": 0,
            "reblogs_count": 0,
            "favourites_count": 0,
            "account": {"id": "1", "username": account, "acct": account, "url": f"{base}/@{account}"},
        }

    def _replay(self, token: str, key: str | None) -> dict[str, Any] | None:
        """The status an earlier request with this key created, if within the hour."""
        if not key:
            return None
        with self._lock:
            remembered = self._idempotent.get((token, key))
        if remembered is None or remembered.expires <= time.monotonic():
            return None
        return remembered.status

    def _count_for_rate_limit(self, token: str) -> tuple[dict[str, str], bool]:
        now = time.time()
        window = int(now // RATE_WINDOW_SECONDS)
        with self._lock:
            seen_window, used = self._windows.get(token, (window, 0))
            used = used + 1 if seen_window == window else 1
            self._windows[token] = (window, used)
        reset_at = datetime.fromtimestamp((window + 1) * RATE_WINDOW_SECONDS, UTC)
        headers = _rate_headers(max(0, RATE_LIMIT - used), reset_at)
        return headers, self._state.enforce_rate_limits and used > RATE_LIMIT


def _rate_headers(remaining: int, reset_at: datetime) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(RATE_LIMIT),
        "X-RateLimit-Remaining": str(remaining),
        # Mastodon's format: ISO-8601 with microseconds.
        "X-RateLimit-Reset": reset_at.isoformat(timespec="microseconds").replace("+00:00", "Z"),
    }


def _bearer(request: Request) -> str | None:
    match = _BEARER.fullmatch((request.header("Authorization") or "").strip())
    return match.group(1) if match else None


def _account(token: str) -> str:
    """A stable account per token, so each configured channel shows up as its own account."""
    return "comune_" + hashlib.sha256(token.encode()).hexdigest()[:6]
