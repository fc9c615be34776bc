"""Fetch a feed politely and safely: conditional GET, bounded size, time and redirects, errors classified.

Politeness: the validators of the last poll go out as If-None-Match / If-Modified-Since, so an
unchanged feed costs the site a 304; 429 (and 503 with Retry-After) become ``rate_limited`` with the
delay the server asked for; Cache-Control max-age is passed up for the caller to space its polls.

Safety: the body is streamed and abandoned past `max_bytes` (refused outright when Content-Length
already says so), whether or not it arrives compressed; the whole download has a deadline besides the
per-read timeout, so a server that drips a byte a second cannot hold the function; redirects are
followed by hand, at most `session.max_redirects`, without ever reading a redirect's body.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from urllib.parse import urljoin

import requests
from requests.utils import requote_uri
from urllib3.exceptions import ReadTimeoutError

from chalicelib.http import TIMEOUT
from chalicelib.sources.errors import FeedError

Timeout = float | tuple[float, float]

MAX_FETCH_SECONDS = 30.0  # the whole download, redirects included
MAX_RETRY_AFTER_SECONDS = 86_400.0  # a longer wait is a misconfigured server, not a plan
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1"
)
_CHUNK_BYTES = 64 * 1024
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)", re.IGNORECASE)
_SECONDS = re.compile(r"\d+", re.ASCII)


@dataclass(frozen=True)
class FetchResult:
    status: int  # 200 (or another 2xx) with a body, 304 when unchanged
    url: str  # the final URL, after redirects
    body: bytes  # empty when unchanged
    # Validators to send on the next poll: the server's new ones, or on a 304 that repeats none,
    # the ones that were sent.
    etag: str | None
    last_modified: str | None
    content_type: str | None  # with its parameters (charset), as parse_feed wants it
    max_age: int | None  # Cache-Control max-age in seconds: the server asks not to be polled sooner

    @property
    def not_modified(self) -> bool:
        return self.status == HTTPStatus.NOT_MODIFIED


def fetch_feed(
    url: str,
    *,
    session: requests.Session,
    etag: str | None,
    last_modified: str | None,
    max_bytes: int,
    timeout: Timeout = TIMEOUT,
    max_seconds: float = MAX_FETCH_SECONDS,
) -> FetchResult:
    """GET a feed. Raises FeedError with a reason for anything but a usable 2xx or a 304."""
    deadline = time.monotonic() + max_seconds
    with _classified_errors(url):
        response = _get_following_redirects(session, url, _request_headers(etag, last_modified), timeout)
        with contextlib.closing(response):
            _raise_for_status(response)
            if response.status_code == HTTPStatus.NOT_MODIFIED:
                return _result(response, b"", etag=etag, last_modified=last_modified)
            body = _read_bounded(response, max_bytes=max_bytes, deadline=deadline, seconds=max_seconds)
            return _result(response, body, etag=None, last_modified=None)


def _request_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    headers = {"Accept": ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def _get_following_redirects(
    session: requests.Session, url: str, headers: dict[str, str], timeout: Timeout
) -> requests.Response:
    target = url
    for _ in range(session.max_redirects + 1):
        response = _send_once(session, target, headers, timeout)
        location = session.get_redirect_target(response)
        if location is None:
            return response
        response.close()
        target = requote_uri(urljoin(response.url, location))
    raise FeedError(
        "too_many_redirects", f"GET {url}: more than {session.max_redirects} redirects (last to {target})"
    )


def _send_once(
    session: requests.Session, url: str, headers: dict[str, str], timeout: Timeout
) -> requests.Response:
    # Session.get reads a redirect's whole body into memory, even with allow_redirects=False (to
    # prepare Response.next). The session's adapter alone sends one request and reads nothing.
    request = session.prepare_request(requests.Request("GET", url, headers=headers))
    settings = session.merge_environment_settings(request.url, {}, True, None, None)  # proxies, CA bundle
    verify = True if settings["verify"] is None else settings["verify"]
    response = session.get_adapter(url).send(
        request,
        stream=True,
        timeout=timeout,
        verify=verify,
        cert=settings["cert"],
        proxies=settings["proxies"],
    )
    # Kept as Session.send would: some sites set a cookie on a redirect and loop until it comes back.
    session.cookies.update(response.cookies)
    return response


def _raise_for_status(response: requests.Response) -> None:
    status = response.status_code
    if status == HTTPStatus.NOT_MODIFIED or HTTPStatus.OK <= status < HTTPStatus.MULTIPLE_CHOICES:
        return
    answer = f"GET {response.url}: the server answered {status} {response.reason or ''}".rstrip()
    retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
    if status == HTTPStatus.TOO_MANY_REQUESTS or (
        status == HTTPStatus.SERVICE_UNAVAILABLE and retry_after is not None
    ):
        when = "" if retry_after is None else f"; retry after {retry_after:.0f} s"
        raise FeedError("rate_limited", answer + when, retry_after=retry_after, status=status)
    raise FeedError("http_status", answer, status=status)


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds from now, from either form (delay-seconds or an HTTP-date)."""
    if value is None:
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # "-0000" parses naive; HTTP-dates are always GMT
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _read_bounded(response: requests.Response, *, max_bytes: int, deadline: float, seconds: float) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if _SECONDS.fullmatch(declared) and int(declared) > max_bytes:
        raise FeedError(
            "too_large",
            f"GET {response.url}: Content-Length {int(declared):,} is over the limit of "
            f"{max_bytes:,} bytes; not downloaded",
        )
    chunks: list[bytes] = []
    size = 0
    # iter_content yields decompressed bytes, so a small gzip body that inflates is counted as it grows.
    for chunk in response.iter_content(chunk_size=_CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            raise FeedError(
                "too_large", f"GET {response.url}: the body grew past the limit of {max_bytes:,} bytes"
            )
        if time.monotonic() > deadline:
            raise FeedError("timeout", f"GET {response.url}: the download took more than {seconds:g} s")
        chunks.append(chunk)
    return b"".join(chunks)


def _result(
    response: requests.Response, body: bytes, *, etag: str | None, last_modified: str | None
) -> FetchResult:
    headers = response.headers
    max_age = _MAX_AGE.search(headers.get("Cache-Control", ""))
    return FetchResult(
        status=response.status_code,
        url=response.url,
        body=body,
        etag=headers.get("ETag") or etag,
        last_modified=headers.get("Last-Modified") or last_modified,
        content_type=headers.get("Content-Type"),
        max_age=int(max_age.group(1)) if max_age else None,
    )


@contextlib.contextmanager
def _classified_errors(url: str) -> Iterator[None]:
    """Turn what requests raises into FeedErrors; the order matters (SSLError is a ConnectionError,
    ConnectTimeout both a ConnectionError and a Timeout)."""
    try:
        yield
    except requests.exceptions.SSLError as exc:
        raise FeedError("tls", f"GET {url}: TLS failed ({exc})") from exc
    except requests.exceptions.Timeout as exc:
        raise FeedError("timeout", f"GET {url}: timed out ({exc})") from exc
    except requests.exceptions.ConnectionError as exc:
        # A read timeout while streaming the body arrives wrapped as a ConnectionError.
        if exc.args and isinstance(exc.args[0], ReadTimeoutError):
            raise FeedError("timeout", f"GET {url}: timed out reading the body ({exc})") from exc
        raise FeedError("connection", f"GET {url}: connection failed ({exc})") from exc
    except requests.exceptions.ChunkedEncodingError as exc:
        raise FeedError(
            "connection", f"GET {url}: the connection broke before the body was complete"
        ) from exc
    except requests.exceptions.ContentDecodingError as exc:
        raise FeedError("malformed", f"GET {url}: the body could not be decompressed ({exc})") from exc
    except requests.exceptions.RequestException as exc:
        raise FeedError("connection", f"GET {url}: request failed ({exc})") from exc
