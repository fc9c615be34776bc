"""What the chat fakes share: a per-key sliding window for rate limits, and answers in plain text."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from urllib.parse import unquote

from devtools.sandbox.wire import Reply


class SlidingWindow:
    """At most `limit` calls per key in any `seconds`: the shape of each platform's per-webhook or
    per-account limit, close enough for a fake. Consulted only when the sandbox enforces limits."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self._lock = threading.Lock()
        self._calls: defaultdict[str, deque[float]] = defaultdict(deque)

    def wait(self, key: str) -> float:
        """Seconds until `key` may call again (0.0: go, and the call is counted)."""
        now = time.monotonic()
        with self._lock:
            calls = self._calls[key]
            while calls and calls[0] <= now - self.seconds:
                calls.popleft()
            if len(calls) >= self.limit:
                return max(0.001, calls[0] + self.seconds - now)
            calls.append(now)
        return 0.0

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()


def text_reply(status: int, text: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, text.encode("utf-8"), "text/plain; charset=utf-8", dict(headers or {}))


def segments(path: str) -> list[str]:
    """A request path's segments, percent-decoded one by one (so an encoded "/" stays inside its segment)."""
    return [unquote(segment) for segment in path.strip("/").split("/")]
