"""The HTTP exchange shared by the adapters: transport failures, unreadable answers and secrets become
classified errors whose messages name the platform and endpoint only, never a URL (it can hold a token),
and urllib3's log lines, which print URLs, are redacted where a platform puts a secret in one."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any

import requests

from chalicelib.channels.base import (
    AuthError,
    ChannelCheck,
    PermanentError,
    PublishError,
    RateLimited,
    RetryableError,
)
from chalicelib.secrets import SecretError

Timeout = tuple[float, float]
MAX_DETAIL = 200


def refuse_offline(platform: str) -> PermanentError:
    """The error an offline adapter (preview) raises instead of touching the network."""
    return PermanentError(f"{platform}: offline adapter cannot publish", reason="offline")


def read_token(provider: Callable[[], str], *, platform: str) -> str:
    """Resolve the token at publish time. An unreadable secret may be a passing SSM outage, so it is
    retryable; if it persists, the redrive policy and the DLQ alarm bring it to a human."""
    try:
        return provider()
    except SecretError as exc:  # its message names the reference, never the value
        problem = str(exc)
    raise RetryableError(f"{platform}: {problem}", reason="secret_unavailable")


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    platform: str,
    endpoint: str,
    timeout: Timeout,
    **options: Any,
) -> requests.Response:
    """One request. A timeout or a dropped connection leaves the outcome unknown (the platform may
    have acted), which the caller's idempotency, or its documented lack, has to cover.

    requests puts the URL in its exception messages, so the error is raised outside the `except`
    block: no message, cause or context of ours carries it."""
    try:
        return session.request(method, url, timeout=timeout, **options)
    except requests.Timeout:
        problem, reason = "timed out", "timeout"
    except requests.RequestException as exc:
        problem, reason = f"connection failed ({type(exc).__name__})", "connection_error"
    raise RetryableError(f"{platform} {endpoint}: {problem}", reason=reason)


def json_object(response: requests.Response) -> dict[str, Any] | None:
    """The answer's JSON object, or None when the body is not one (proxies answer with HTML)."""
    try:
        body = response.json()
    except ValueError:  # requests' JSONDecodeError included
        return None
    return body if isinstance(body, dict) else None


def require_json_object(response: requests.Response, *, platform: str, endpoint: str) -> dict[str, Any]:
    body = json_object(response)
    if body is None:
        raise malformed(platform, endpoint, "the answer is not a JSON object")
    return body


def malformed(platform: str, endpoint: str, problem: str) -> RetryableError:
    return RetryableError(f"{platform} {endpoint}: {problem}", reason="malformed_response")


def detail(*parts: object) -> str:
    """A platform's own error text (its parts that are present, such as a code and a message, joined
    with ": "), shortened for messages and records."""
    text = ": ".join(str(part) for part in parts if part)
    return text[:MAX_DETAIL] if text else "no detail"


def masked(text: str, secrets: Iterable[str]) -> str:
    """`text` with each secret in it replaced by ***: platforms' messages are not known to echo a
    token, and masking one anyway costs nothing."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def http_error(
    platform: str,
    status: int,
    problem: str,
    *,
    retry_after: float | None = None,
    refusals: Mapping[int, str],
) -> PublishError:
    """Classify a platform's non-success answer: rate limit, bad token, platform trouble (retry), or a
    refusal (permanent, with the reason `refusals` gives its status)."""
    if status == HTTPStatus.TOO_MANY_REQUESTS or retry_after is not None:
        return RateLimited(f"{platform} rate limit: {problem}", retry_after=retry_after)
    if status == HTTPStatus.UNAUTHORIZED:
        return AuthError(f"{platform} refused the token ({status}): {problem}")
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        return RetryableError(f"{platform} answered {status}: {problem}", reason="server_error")
    reason = refusals.get(status, f"http_{status}")
    return PermanentError(f"{platform} refused the post ({status}): {problem}", reason=reason)


def check_with(
    request: Callable[[], requests.Response], error_for: Callable[[requests.Response], PublishError]
) -> ChannelCheck:
    """A health check from one authenticated read: healthy on 2xx, else the classified error's reason
    ("auth" for a dead token) and message. Transport trouble and unreadable secrets are reported,
    not raised: a check says what it saw."""
    try:
        response = request()
    except PublishError as exc:
        return ChannelCheck(healthy=False, reason=exc.reason, detail=str(exc))
    if response.ok:
        return ChannelCheck(healthy=True, reason="ok")
    error = error_for(response)
    return ChannelCheck(healthy=False, reason=error.reason, detail=str(error))


class UrlSecretFilter(logging.Filter):
    """Masks what `pattern` matches in a log record's message, as `replacement` says (a bot token in
    the path, a webhook's secret path, an access_token in the query)."""

    def __init__(self, pattern: re.Pattern[str], replacement: str) -> None:
        super().__init__()
        self._pattern = pattern
        self._replacement = replacement

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._pattern.sub(self._replacement, message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def redact_urllib3_logs(secret_filter: UrlSecretFilter) -> None:
    """urllib3 logs request paths with their query (DEBUG) and retried URLs (WARNING): the filter
    masks a secret in them before any handler sees the record. Added once, however many adapters ask."""
    logging.getLogger("urllib3.connectionpool").addFilter(secret_filter)
