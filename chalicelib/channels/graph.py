"""What Facebook Pages, Instagram and Threads share: Meta's Graph API. One error shape
`{"error": {message, type, code, error_subcode, is_transient, fbtrace_id}}` classified here once, the
usage headers that say how long a throttle lasts, the one way this code sends a token, and replies as
comments (Facebook, Instagram).

Classification is by Graph's `code` first, not by HTTP status: Graph answers most refusals with 400,
throttles included, and Instagram answers its own transient failures with 400 and a negative code.

The token goes in the `access_token` form field of POSTs; reads (GET) can only carry it in the query
string, so urllib3's log lines, which print the request path and query, are redacted, and no error built
here carries a URL. Graph's messages never echo a token; any that did would be masked anyway.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from http import HTTPStatus
from typing import Any

import requests

from chalicelib.channels.base import (
    AuthError,
    ChannelCheck,
    PermanentError,
    PostGone,
    PostResult,
    PublishError,
    RateLimited,
    RetryableError,
)
from chalicelib.channels.transport import (
    Timeout,
    UrlSecretFilter,
    check_with,
    detail,
    json_object,
    malformed,
    masked,
    read_token,
    redact_urllib3_logs,
    send,
)
from chalicelib.observability import logger

# 102 "API Session" and 190 "Access token has expired/invalid" (subcodes 458-467 say why: app removed,
# password changed, expired, checkpoint...): a human must issue a new token either way.
AUTH_CODES = frozenset({102, 190})
# 4 app, 17 user/account, 32 Page, 613 custom rate limits; 80001-80014 business-use-case limits
# (80001 Pages, 80002 Instagram, ...).
THROTTLE_CODES = frozenset({4, 17, 32, 613, *range(80001, 80015)})
# 1 "API Unknown", 2 "API Service": Graph's own trouble. Instagram uses -1 and -2 for its server
# errors and media download timeouts, answered with HTTP 400.
TRANSIENT_CODES = frozenset({1, 2, -1, -2})
PERMISSION_CODE = 10
PERMISSION_RANGE = range(200, 300)
REFUSALS: dict[int, str] = {
    100: "invalid_parameter",
    368: "blocked",  # temporarily blocked for policy violations ("misusing this feature")
    506: "duplicate",  # "Duplicate status message": the same text posted again
}
# Refusals a subcode names more precisely than its code: Messenger's 10/2018278, "This message is
# sent outside of allowed window" (a permission code, though no permission would help).
SUBCODE_REFUSALS: dict[int, str] = {2018278: "messenger_window_closed"}
# Instagram's content publishing quota (50 posts per 24 h): code 9, subcode 2207042. The quota is a
# rolling day; an hour is a fair first wait, the redelivery backs off further if it persists.
PUBLISHING_LIMIT_SUBCODE = 2207042
PUBLISHING_LIMIT_SECONDS = 3600.0
# Instagram's "we restrict certain activity to protect our community" (code 4, subcode 2207051): a
# spam verdict on this post, not a throttle that passes.
SPAM_SUBCODE = 2207051
# Instagram's "media not ready for publishing" (code 9007, subcode 2207027): publish came too early.
NOT_READY_SUBCODE = 2207027
# The image behind a URL was refused: 324 "Missing or invalid image file" and 100/1366046 "Can't
# Read Files" (Facebook Page photos, observed in the wild), 36000 "image size too large" (Instagram,
# documented) and 36001/36003, unsupported format and aspect ratio (Instagram, recalled, not seen in
# the docs). Adapters post without the image, or skip the post where an image is required.
IMAGE_CODES = frozenset({324, 36000, 36001, 36003})
IMAGE_SUBCODES = frozenset({1366046})
# When a throttle comes without usage headers saying how long it lasts. Page and app limits are
# rolling windows (an hour, a day): five minutes lets part of the window pass without idling long.
DEFAULT_THROTTLE_SECONDS = 300.0
USAGE_HEADERS = ("X-Business-Use-Case-Usage", "X-Page-Usage", "X-App-Usage")
_TOKEN_IN_QUERY = UrlSecretFilter(re.compile(r"((?:access|input)_token=)[^&\s\"']+"), r"\1***")
# "Object with ID '...' does not exist, cannot be loaded due to missing permissions, or does not support
# this operation": the node a call names is gone (deleted) as far as this token can tell.
MISSING_NODE = (100, 33)
# A comment's remote id is "<post id>:<comment id>": a later reply goes under the same post (Graph ids
# are digits and underscores, never a colon).
COMMENT_SEPARATOR = ":"


@dataclass(frozen=True)
class GraphError:
    message: str
    type: str
    code: int | None
    subcode: int | None
    is_transient: bool
    fbtrace_id: str | None

    def describe(self) -> str:
        codes = f"code {self.code}" + (f"/{self.subcode}" if self.subcode is not None else "")
        trace = f", fbtrace_id {self.fbtrace_id}" if self.fbtrace_id else ""
        return f"{self.message or self.type or 'no message'} ({codes}{trace})"


def graph_error(body: Mapping[str, Any] | None) -> GraphError | None:
    """The error object of a Graph answer, None when the body has none (or is not Graph's)."""
    error = (body or {}).get("error")
    if not isinstance(error, dict):
        return None
    return GraphError(
        message=str(error.get("message") or ""),
        type=str(error.get("type") or ""),
        code=_integer(error.get("code")),
        subcode=_integer(error.get("error_subcode")),
        is_transient=error.get("is_transient") is True,
        fbtrace_id=str(error["fbtrace_id"]) if error.get("fbtrace_id") else None,
    )


def _integer(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def error_for(response: requests.Response, *, platform: str, secrets: Iterable[str] = ()) -> PublishError:
    """Classify a Graph answer that failed (or carried an error object with a 2xx)."""
    error = graph_error(json_object(response))
    if error is None:
        return _without_graph_error(response, platform)
    return classify(
        error, status=response.status_code, headers=response.headers, platform=platform, secrets=secrets
    )


def classify(
    error: GraphError,
    *,
    status: int,
    headers: Mapping[str, str],
    platform: str,
    secrets: Iterable[str] = (),
) -> PublishError:
    problem = masked(detail(error.describe()), secrets)
    if error.code in AUTH_CODES:
        return AuthError(f"{platform} refused the token: {problem}")
    retry = _retryable(error, status, headers, platform, problem)
    if retry is not None:
        return retry
    return PermanentError(f"{platform} refused the post: {problem}", reason=_refusal_reason(error, status))


def _retryable(
    error: GraphError, status: int, headers: Mapping[str, str], platform: str, problem: str
) -> RetryableError | None:
    if error.subcode == PUBLISHING_LIMIT_SUBCODE:
        return RateLimited(f"{platform} publishing limit: {problem}", retry_after=PUBLISHING_LIMIT_SECONDS)
    if error.code in THROTTLE_CODES and error.subcode != SPAM_SUBCODE:
        wait = usage_wait(headers) or DEFAULT_THROTTLE_SECONDS
        return RateLimited(f"{platform} rate limit: {problem}", retry_after=wait)
    if error.subcode == NOT_READY_SUBCODE:
        return RetryableError(f"{platform} media not ready: {problem}", reason="media_not_ready")
    if error.code in TRANSIENT_CODES or error.is_transient or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        return RetryableError(f"{platform} answered {status}: {problem}", reason="server_error")
    return None


def _refusal_reason(error: GraphError, status: int) -> str:
    code = error.code
    if error.subcode in SUBCODE_REFUSALS:
        return SUBCODE_REFUSALS[error.subcode]
    if error.subcode == SPAM_SUBCODE:
        return "blocked"
    if code in IMAGE_CODES or error.subcode in IMAGE_SUBCODES:
        return "image_unsuitable"
    if code == PERMISSION_CODE or (code is not None and code in PERMISSION_RANGE):
        return "permission"
    if code is None:
        return f"http_{status}"
    return REFUSALS.get(code, f"graph_{code}")


def _without_graph_error(response: requests.Response, platform: str) -> PublishError:
    """An answer without Graph's error object: a proxy's page or a bare gateway error."""
    status = response.status_code
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        wait = usage_wait(response.headers) or DEFAULT_THROTTLE_SECONDS
        return RateLimited(f"{platform} rate limit (HTTP 429)", retry_after=wait)
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        return RetryableError(f"{platform} answered {status}", reason="server_error")
    if response.ok:
        return malformed(platform, "answer", "a success without the expected fields")
    return malformed(platform, "answer", f"HTTP {status} without a Graph error object")


def usage_wait(headers: Mapping[str, str]) -> float | None:
    """Seconds until access comes back, from `estimated_time_to_regain_access` (minutes) in the usage
    headers: X-Business-Use-Case-Usage maps an id to a list of per-use-case entries, X-Page-Usage and
    X-App-Usage are flat objects. The longest wait wins; None when no header gives one."""
    minutes: list[float] = []
    for name in USAGE_HEADERS:
        for entry in _usage_entries(headers.get(name)):
            value = entry.get("estimated_time_to_regain_access")
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                minutes.append(float(value))
    return max(minutes) * 60 if minutes else None


def _usage_entries(raw: str | None) -> list[dict[str, Any]]:
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        return []
    if not isinstance(data, dict):
        return []
    if "call_count" in data or "estimated_time_to_regain_access" in data:
        return [data]
    entries = [item for value in data.values() if isinstance(value, list) for item in value]
    return [entry for entry in entries if isinstance(entry, dict)]


@dataclass(frozen=True)
class Polling:
    """How long publish waits for a media container: a few seconds at most, as a delivery runs in a
    Lambda invocation that has other posts to make."""

    interval: float = 1.0
    max_wait: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


# Where a container's status is explained: Instagram's `status` holds the error subcode when
# `status_code` is ERROR; Threads' `error_message` names the problem.
_DETAIL = {"status_code": "status", "status": "error_message"}


class GraphClient:
    """Requests to one Graph host and version with one token, each answer checked and classified."""

    def __init__(
        self,
        *,
        platform: str,
        api_base: str,
        api_version: str,
        token: Callable[[], str],
        session: requests.Session,
        timeout: Timeout,
    ) -> None:
        self.platform = platform
        self.base = f"{api_base.rstrip('/')}/{api_version}"
        self._token = token
        self._session = session
        self._timeout = timeout
        redact_urllib3_logs(_TOKEN_IN_QUERY)

    def token(self) -> str:
        return read_token(self._token, platform=self.platform)

    def post(
        self, path: str, *, endpoint: str, fields: Mapping[str, str], gone: str | None = None
    ) -> dict[str, Any]:
        """POST to a node's edge (or the node itself); `gone`, when given, says what the node `path`
        names missing (MISSING_NODE) means: PostGone with that message."""
        token = self.token()
        response = send(
            self._session,
            "POST",
            f"{self.base}/{path}",
            platform=self.platform,
            endpoint=endpoint,
            timeout=self._timeout,
            data={**fields, "access_token": token},
        )
        error = graph_error(json_object(response))
        if gone is not None and error is not None and (error.code, error.subcode) == MISSING_NODE:
            raise PostGone(f"{self.platform}: {gone} ({detail(error.describe())})")
        return self._checked(response, endpoint, token)

    def get(self, path: str, *, endpoint: str, fields: str) -> dict[str, Any]:
        token = self.token()
        return self._checked(
            self.get_response(path, endpoint=endpoint, fields=fields, token=token), endpoint, token
        )

    def get_response(
        self, path: str, *, endpoint: str, fields: str | None = None, token: str, **params: str
    ) -> requests.Response:
        """A read, answered as is (health checks report rather than raise)."""
        query = {**params, **({"fields": fields} if fields else {}), "access_token": token}
        return send(
            self._session,
            "GET",
            f"{self.base}/{path}",
            platform=self.platform,
            endpoint=endpoint,
            timeout=self._timeout,
            params=query,
        )

    def error_for(self, response: requests.Response, token: str = "") -> PublishError:
        return error_for(response, platform=self.platform, secrets=(token,))

    def _checked(self, response: requests.Response, endpoint: str, token: str) -> dict[str, Any]:
        body = json_object(response)
        if not response.ok or body is None or "error" in body:
            if response.ok and body is None:
                raise malformed(self.platform, endpoint, "the answer is not a JSON object")
            raise self.error_for(response, token)
        return body

    def comment(
        self, text: str, reply_to: str, *, link: Callable[[str], str | None], gone_is_post_gone: bool = False
    ) -> PostResult:
        """A comment under the post `reply_to` names (a post, or an earlier comment of ours, whose
        remote id names its post first); `link` gives the post's public link. `gone_is_post_gone`:
        a deleted post raises PostGone (a publish may then post on its own), else Graph's error."""
        root = reply_to.split(COMMENT_SEPARATOR, 1)[0]
        gone = f"the post {root} to comment on is gone; nothing was posted" if gone_is_post_gone else None
        body = self.post(f"{root}/comments", endpoint="comments", fields={"message": text}, gone=gone)
        comment_id = required_id(body, "id", platform=self.platform, endpoint="comments")
        return PostResult(remote_id=f"{root}{COMMENT_SEPARATOR}{comment_id}", url=link(root))

    def permalink(self, media_id: str) -> str | None:
        """The public link of a published post. Asked after the post exists, so a failure here must
        not fail the delivery (a retry would post again): it only costs the link."""
        try:
            body = self.get(media_id, endpoint="permalink", fields="permalink")
        except PublishError as exc:
            logger.warning(
                "Permalink unavailable",
                extra={"platform": self.platform, "media_id": media_id, "problem": exc.reason},
            )
            return None
        link = body.get("permalink")
        return link if isinstance(link, str) and link.startswith("https://") else None

    def wait_for_container(self, container: str, *, status_field: str, polling: Polling) -> None:
        """Poll a media container (Instagram, Threads) until it can be published. Still processing
        after `polling.max_wait`: RetryableError, and the redelivery starts over with a new container
        (an unpublished one expires by itself in 24 h). ERROR or EXPIRED: the container is dead."""
        deadline = polling.clock() + polling.max_wait
        while True:
            body = self.get(
                container, endpoint="container_status", fields=f"{status_field},{_DETAIL[status_field]}"
            )
            status = body.get(status_field)
            if status == "FINISHED":
                return
            if status in {"ERROR", "EXPIRED"}:
                problem = detail(body.get(_DETAIL[status_field]))
                raise PermanentError(
                    f"{self.platform} media container {status}: {problem}",
                    reason=f"container_{status.lower()}",
                )
            if status != "IN_PROGRESS":
                raise malformed(self.platform, "container_status", f"unexpected container status {status!r}")
            if polling.clock() + polling.interval > deadline:
                raise RetryableError(
                    f"{self.platform}: the media is still being processed after {polling.max_wait:g} s",
                    reason="media_processing",
                )
            polling.sleep(polling.interval)

    def check(self, path: str, *, endpoint: str, fields: str) -> ChannelCheck:
        """One authenticated read as a health check (transport.check_with)."""
        token = ""

        def read() -> requests.Response:
            nonlocal token
            token = self.token()
            return self.get_response(path, endpoint=endpoint, fields=fields, token=token)

        return check_with(read, lambda response: self.error_for(response, token))


def expiry_of(day: date | None) -> datetime | None:
    """A configured expiry date as the instant the token stops working (the start of that day, UTC)."""
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC) if day else None


def required_id(body: Mapping[str, Any], key: str, *, platform: str, endpoint: str) -> str:
    """An id field of a successful answer (Graph ids are strings of digits, sometimes "a_b")."""
    value = body.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise malformed(platform, endpoint, f"the answer has no {key}")
    return value
