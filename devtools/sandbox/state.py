"""What the sandbox remembers across requests: posts, request and fault counts, revoked tokens, faults."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from devtools.sandbox.faults import Fault, FaultPlan


@dataclass(frozen=True)
class Post:
    platform: str
    target: str  # Telegram: the chat as addressed (@channel or id); Mastodon: @account
    id: str
    text: str  # as sent: Telegram's is HTML
    url: str | None
    time: datetime
    idempotency_key: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # parse_mode, visibility, language...
    edits: tuple[str, ...] = ()  # the texts it had before each edit, oldest first

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "time": self.time.isoformat(), "edits": list(self.edits)}


class SandboxState:
    def __init__(self, *, enforce_rate_limits: bool = False) -> None:
        # Off by default: tests and demos post in bursts that real limits would slow to a crawl.
        self.enforce_rate_limits = enforce_rate_limits
        self.faults = FaultPlan()
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._posts: list[Post] = []
            self._requests: Counter[tuple[str, str]] = Counter()
            self._fired: Counter[tuple[str, str]] = Counter()
            self._replays: Counter[str] = Counter()
            self._revoked: set[tuple[str, str]] = set()
        self.faults.clear()

    def count_request(self, platform: str, endpoint: str) -> None:
        with self._lock:
            self._requests[platform, endpoint] += 1

    def count_fault(self, fault: Fault) -> None:
        with self._lock:
            self._fired[fault.platform, fault.kind] += 1

    def count_replay(self, platform: str) -> None:
        with self._lock:
            self._replays[platform] += 1

    def revoke(self, platform: str, token: str) -> None:
        with self._lock:
            self._revoked.add((platform, token))

    def restore(self, platform: str, token: str) -> None:
        """A human fixed the credentials: the platform accepts this token again."""
        with self._lock:
            self._revoked.discard((platform, token))

    def is_revoked(self, platform: str, token: str) -> bool:
        with self._lock:
            return (platform, token) in self._revoked

    def add_post(self, post: Post) -> None:
        with self._lock:
            self._posts.append(post)

    def edit_post(self, platform: str, post_id: str, text: str, *, target: str | None = None) -> Post | None:
        """Give a post a new text, keeping the one it had in its `edits` (the same text again is no
        edit); `target` where ids are unique per chat only (Telegram). None if no such post."""
        with self._lock:
            for index, post in enumerate(self._posts):
                if post.platform == platform and post.id == post_id and target in (None, post.target):
                    if post.text == text:
                        return post
                    self._posts[index] = replace(post, text=text, edits=(*post.edits, post.text))
                    return self._posts[index]
        return None

    def posts(self, platform: str | None = None) -> list[Post]:
        """Posts in the order they were made."""
        with self._lock:
            return [post for post in self._posts if platform in (None, post.platform)]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": _nested(self._requests),
                "faults": _nested(self._fired),
                "posts": dict(Counter(post.platform for post in self._posts)),
                "idempotent_replays": dict(self._replays),
            }


def _nested(counts: Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
    result: dict[str, dict[str, int]] = {}
    for (outer, inner), value in sorted(counts.items()):
        result.setdefault(outer, {})[inner] = value
    return result
