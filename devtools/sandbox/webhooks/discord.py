"""Discord webhook fake: POST /api/webhooks/{id}/{token} (?wait=true answers the message, else 204),
GET the same URL for the webhook object; content within 2000 characters (code points), embed limits,
`allowed_mentions` applied to find who would be pinged, X-RateLimit-* headers on every answer and a
429 with `retry_after` (float seconds) in the body, as written down in platforms.md."""

from __future__ import annotations

import math
import re
import threading
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from devtools.sandbox.fakes import Answer, BaseUrl
from devtools.sandbox.faults import Fault
from devtools.sandbox.state import Post, SandboxState
from devtools.sandbox.webhooks.common import SlidingWindow
from devtools.sandbox.wire import Reply, Request, json_reply, malformed_reply, timeout_reply

CONTENT_LIMIT = 2000
MAX_EMBEDS = 10
EMBED_TOTAL_LIMIT = 6000
EMBED_FIELD_LIMITS = {"title": 256, "description": 4096}
# Observed per-webhook bucket: 5 requests per 2 s; enforced only on request.
WEBHOOK_REQUESTS, WEBHOOK_SECONDS = 5, 2.0
_WEBHOOK_PATH = re.compile(r"/api(?:/v\d+)?/webhooks/(\d+)/([^/]+)")
_TOKEN = re.compile(r"[A-Za-z0-9_.-]{1,200}")
_EVERYONE = re.compile(r"(?<!\\)@(everyone|here)\b")
_USER = re.compile(r"(?<!\\)<@!?(\d+)>")
_ROLE = re.compile(r"(?<!\\)<@&(\d+)>")
_DEFAULT_PARSE = ("everyone", "users", "roles")  # without allowed_mentions, Discord parses them all
# Discord's autolink (a URL, optionally in <...> to stop its preview), read before any Markdown.
_AUTOLINK = re.compile(r"<(https?://[^\s<>]+)>|(https?://[^\s<]+[^<.,:;\"')\]\s])")
_ESCAPED = re.compile(r"\\([^0-9A-Za-z\s])")


def error(status: int, code: int, message: str, **extra: Any) -> Reply:
    return json_reply(status, {"message": message, "code": code, **extra})


def content_length(content: str) -> int:
    """Discord's count: characters (code points)."""
    return len(content)


def pings(payload: dict[str, Any]) -> list[str]:
    """Who the message would notify, as Discord applies `allowed_mentions` to the content."""
    allowed = payload.get("allowed_mentions")
    allowed = allowed if isinstance(allowed, dict) else {"parse": list(_DEFAULT_PARSE)}
    parse = allowed.get("parse") or []
    content = str(payload.get("content") or "")
    found = [f"@{word}" for word in _EVERYONE.findall(content) if "everyone" in parse]
    found += [f"user {user}" for user in _USER.findall(content) if "users" in parse]
    found += [f"role {role}" for role in _ROLE.findall(content) if "roles" in parse]
    return found


def shown_text(content: str) -> str:
    """The text Discord shows for plain content: links as written, and a backslash before any
    punctuation taken as an escape (emphasis and headings are not interpreted here)."""
    pieces, start = [], 0
    for link in _AUTOLINK.finditer(content):
        pieces += [_ESCAPED.sub(r"\1", content[start : link.start()]), link.group(1) or link.group(2)]
        start = link.end()
    pieces.append(_ESCAPED.sub(r"\1", content[start:]))
    return "".join(pieces)


class _Refusal(ValueError):
    """Invalid Form Body (50035) and its kin; the message is Discord's."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class DiscordFake:
    platform = "discord"
    title = "Discord"
    target_label = "Webhook"
    posting_endpoint = "execute"

    def __init__(self, state: SandboxState, base_url: BaseUrl) -> None:
        self._state = state
        self._lock = threading.Lock()
        self._window = SlidingWindow(WEBHOOK_REQUESTS, WEBHOOK_SECONDS)
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._last_id = 1_300_000_000_000_000_000
        self._window.reset()

    def fault_reply(self, fault: Fault) -> Reply:
        if fault.kind == "rate_limit":
            return _rate_limited(float(fault.retry_after))
        replies: dict[str, Callable[[], Reply]] = {
            "server_error": lambda: error(500, 0, "500: Internal Server Error"),
            "expired_token": lambda: error(401, 50027, "Invalid Webhook Token"),
            "forbidden": lambda: error(403, 50013, "Missing Permissions"),
            "malformed": malformed_reply,
            "timeout": lambda: timeout_reply(fault.delay),
        }
        # Kinds of other platforms (Meta's "blocked", "duplicate") are plain platform trouble here.
        return replies.get(fault.kind, replies["server_error"])()

    def route(self, request: Request, path: str) -> tuple[str, Answer] | None:
        match = _WEBHOOK_PATH.fullmatch(path)
        if match is None:
            return None
        webhook_id, token = match.group(1), unquote(match.group(2))
        if request.method == "POST":
            return "execute", lambda: self.execute(request, webhook_id, token)
        if request.method == "GET":
            return "webhook", lambda: self.webhook(webhook_id, token)
        return None

    def webhook(self, webhook_id: str, token: str) -> Reply:
        refused = self._refused_token(token)
        if refused is not None:
            return refused
        guild, channel = _where(webhook_id)
        return json_reply(
            200,
            {
                "id": webhook_id,
                "type": 1,
                "guild_id": guild,
                "channel_id": channel,
                "name": "Banditore",
                "avatar": None,
                "application_id": None,
                "token": token,
            },
        )

    def execute(self, request: Request, webhook_id: str, token: str) -> Reply:
        refused = self._refused_token(token)
        if refused is not None:
            return refused
        wait = self._window.wait(webhook_id) if self._state.enforce_rate_limits else 0.0
        if wait:
            return _rate_limited(wait)
        headers = _bucket_headers(webhook_id)
        payload = request.payload()
        if payload is None:
            return error(400, 50109, "The request body contains invalid JSON.")
        try:
            embeds = _checked(payload)
        except _Refusal as refusal:
            return error(400, refusal.code, str(refusal))
        message = self._create(webhook_id, payload, embeds)
        if (request.query_value("wait") or "").lower() != "true":
            return Reply(204, headers=headers)
        reply = json_reply(200, message)
        reply.headers.update(headers)
        return reply

    def _refused_token(self, token: str) -> Reply | None:
        if self._state.is_revoked("discord", token):
            return error(404, 10015, "Unknown Webhook")  # a deleted webhook, the only way to revoke one
        if not _TOKEN.fullmatch(token):
            return error(401, 50027, "Invalid Webhook Token")
        return None

    def _create(
        self, webhook_id: str, payload: dict[str, Any], embeds: list[dict[str, Any]]
    ) -> dict[str, Any]:
        with self._lock:
            self._last_id += 1
            message_id = str(self._last_id)
        guild, channel = _where(webhook_id)
        content = str(payload.get("content") or "")
        found = pings(payload)
        self._state.add_post(
            Post(
                platform="discord",
                target=f"webhook {webhook_id}",
                id=message_id,
                text=content,
                url=f"https://discord.com/channels/{guild}/{channel}/{message_id}",
                time=datetime.now(UTC),
                options={"embeds": embeds, "pings": found},
            )
        )
        # The message as Discord returns it to a webhook: no guild_id in it.
        return {
            "id": message_id,
            "type": 0,
            "channel_id": channel,
            "content": content,
            "embeds": embeds,
            "mention_everyone": any(ping.startswith("@") for ping in found),
            "author": {"id": webhook_id, "username": "Banditore", "bot": True},
            "webhook_id": webhook_id,
            "timestamp": datetime.now(UTC).isoformat(),
        }


def _bucket_headers(webhook_id: str) -> dict[str, str]:
    """The X-RateLimit-* headers every answer carries (a fresh bucket: the fake does not track use)."""
    return {
        "X-RateLimit-Limit": str(WEBHOOK_REQUESTS),
        "X-RateLimit-Remaining": str(WEBHOOK_REQUESTS - 1),
        "X-RateLimit-Reset": f"{time.time() + WEBHOOK_SECONDS:.3f}",
        "X-RateLimit-Reset-After": f"{WEBHOOK_SECONDS:.3f}",
        "X-RateLimit-Bucket": f"webhook-{webhook_id}",
    }


def _rate_limited(seconds: float) -> Reply:
    return json_reply(
        429,
        {"message": "You are being rate limited.", "retry_after": round(seconds, 3), "global": False},
        {
            "Retry-After": str(math.ceil(seconds)),
            "X-RateLimit-Reset-After": f"{seconds:.3f}",
            "X-RateLimit-Scope": "shared",
        },
    )


def _where(webhook_id: str) -> tuple[str, str]:
    """A stable guild and channel per webhook."""
    number = zlib.crc32(webhook_id.encode())
    return str(900_000_000_000_000_000 + number), str(1_000_000_000_000_000_000 + number)


def _checked(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The embeds, or _Refusal as Discord refuses the payload."""
    content, embeds = payload.get("content"), payload.get("embeds") or []
    if content is not None and not isinstance(content, str):
        raise _Refusal(50035, "Invalid Form Body: content must be a string")
    if content and content_length(content) > CONTENT_LIMIT:
        raise _Refusal(50035, f"Invalid Form Body: content must be {CONTENT_LIMIT} or fewer in length.")
    if not isinstance(embeds, list) or len(embeds) > MAX_EMBEDS:
        raise _Refusal(50035, f"Invalid Form Body: embeds must be a list of at most {MAX_EMBEDS}")
    if not (content or "").strip() and not embeds:
        raise _Refusal(50006, "Cannot send an empty message")
    total = sum(_embed_size(embed) for embed in embeds)
    if total > EMBED_TOTAL_LIMIT:
        raise _Refusal(50035, f"Invalid Form Body: embeds exceed {EMBED_TOTAL_LIMIT} characters in total")
    return embeds


def _embed_size(embed: Any) -> int:
    if not isinstance(embed, dict):
        raise _Refusal(50035, "Invalid Form Body: an embed must be an object")
    size = 0
    for field, limit in EMBED_FIELD_LIMITS.items():
        value = embed.get(field, "")
        if not isinstance(value, str) or len(value) > limit:
            raise _Refusal(50035, f"Invalid Form Body: embed {field} must be {limit} or fewer in length.")
        size += len(value)
    image = embed.get("image")
    urls = [embed.get("url"), image.get("url") if isinstance(image, dict) else image]
    if not all(url is None or _web_url(url) for url in urls):
        raise _Refusal(50035, "Invalid Form Body: Not a well formed URL.")
    return size


def _web_url(url: object) -> bool:
    try:
        return isinstance(url, str) and urlsplit(url).scheme in ("http", "https")
    except ValueError:
        return False
