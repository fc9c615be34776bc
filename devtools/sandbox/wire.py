"""Requests and answers as the platform fakes see them, apart from the HTTP server that carries them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

_BEARER = re.compile(r"Bearer\s+(\S+)")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes = b""
    query: dict[str, list[str]] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def bearer_token(self) -> str | None:
        """The token of an `Authorization: Bearer ...` header; None without one."""
        match = _BEARER.fullmatch((self.header("Authorization") or "").strip())
        return match.group(1) if match else None

    def query_value(self, name: str) -> str | None:
        """The first value of a query parameter; None when the query does not name it."""
        values = self.query.get(name)
        return values[0] if values else None

    def payload(self) -> dict[str, Any] | None:
        """The body as a JSON object or as form fields (both APIs take both); None if it is neither."""
        if "application/x-www-form-urlencoded" in (self.header("content-type") or ""):
            fields = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
            return {name: values[-1] for name, values in fields.items()}
        if not self.body:
            return {}
        try:
            data = json.loads(self.body)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering: timeouts, hang_after_commit, latency


def json_reply(status: int, data: Any, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps(data, ensure_ascii=False).encode("utf-8")
    return Reply(status, body, headers=dict(headers or {}))


def html_reply(status: int, page: str) -> Reply:
    return Reply(status, page.encode("utf-8"), content_type="text/html; charset=utf-8")


def timeout_reply(delay: float) -> Reply:
    """What a client sees of a platform that does not answer in time; the body comes too late to matter."""
    return Reply(504, b"upstream timed out", content_type="text/plain", delay=delay)


def malformed_reply() -> Reply:
    """A 200 that is not JSON, as a captive portal or a broken proxy answers."""
    return html_reply(200, "<html><body>Service temporarily unavailable</body></html>")
