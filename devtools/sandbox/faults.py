"""Fault injection: what goes wrong, on which platform and endpoint, for how many calls or how often."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

KINDS = (
    "rate_limit",  # 429 in the platform's shape, with its retry signal
    "server_error",  # 5xx
    "timeout",  # answer only after `delay` seconds (longer than the client's read timeout), post nothing
    "expired_token",  # 401 as for a revoked token
    "forbidden",  # 403 (Telegram: bot not a member of the chat)
    "malformed",  # 200 with a body that is not JSON
    "hang_after_commit",  # record the post, then answer only after `delay` seconds
    "blocked",  # Meta: error 368, temporarily blocked for policy reasons (refused for fakes without it)
    "duplicate",  # Meta: error 506, duplicate status message (refused for fakes without it)
)
# Kinds the server plays out itself (the platform acts, then its answer is late): no fake builds them.
SERVER_KINDS = frozenset({"hang_after_commit"})


class FaultError(ValueError):
    """A fault description that cannot be used; the message says why."""


@dataclass
class Fault:
    platform: str
    kind: str
    count: int | None = None  # the next N matching calls...
    rate: float | None = None  # ...or this share of them, drawn from a seeded RNG
    seed: int = 0
    endpoint: str | None = None  # None: the platform's posting endpoint (the sandbox fills it in)
    delay: float = 5.0  # timeout / hang_after_commit
    retry_after: int = 5  # rate_limit
    fired: int = 0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.platform, str) or not self.platform:
            raise FaultError("platform must be a platform's name")
        if self.kind not in KINDS:
            raise FaultError(f"kind must be one of {', '.join(KINDS)}")
        if self.count is not None and self.rate is not None:
            raise FaultError("give either count or rate, not both")
        if self.count is None and self.rate is None:
            self.count = 1
        self._check_numbers()
        self._rng = random.Random(self.seed)

    def _check_numbers(self) -> None:
        if self.count is not None and (not isinstance(self.count, int) or self.count < 1):
            raise FaultError("count must be a whole number of calls, at least 1")
        if self.rate is not None and not (isinstance(self.rate, int | float) and 0 <= self.rate <= 1):
            raise FaultError("rate must be a number between 0 and 1")
        if not isinstance(self.delay, int | float) or self.delay < 0:
            raise FaultError("delay must be a number of seconds")
        if not isinstance(self.retry_after, int) or self.retry_after < 0:
            raise FaultError("retry_after must be a whole number of seconds")

    @classmethod
    def from_json(cls, data: Any) -> Fault:
        if not isinstance(data, dict):
            raise FaultError("a fault is a JSON object")
        allowed = {"platform", "kind", "count", "rate", "seed", "endpoint", "delay", "retry_after"}
        unknown = set(data) - allowed
        if unknown:
            raise FaultError(f"unknown fields: {', '.join(sorted(unknown))}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise FaultError(str(exc)) from None

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.fired >= self.count

    def strikes(self, platform: str, endpoint: str) -> bool:
        """Whether this call fails; counts the hit."""
        if platform != self.platform or endpoint != self.endpoint or self.exhausted:
            return False
        if self.rate is not None and self._rng.random() >= self.rate:
            return False
        self.fired += 1
        return True

    def to_json(self) -> dict[str, Any]:
        keys = ("platform", "kind", "count", "rate", "seed", "endpoint", "delay", "retry_after", "fired")
        return {key: getattr(self, key) for key in keys}


class FaultPlan:
    """The active faults, consulted in the order they were added; the first that strikes wins."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def strike(self, platform: str, endpoint: str) -> Fault | None:
        with self._lock:
            hit = next((f for f in self._faults if f.strikes(platform, endpoint)), None)
            self._faults = [f for f in self._faults if not f.exhausted]
        return hit

    def to_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.to_json() for fault in self._faults]
