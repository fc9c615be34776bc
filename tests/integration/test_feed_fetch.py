"""fetch_feed over real HTTP against a loopback server: conditional GET, limits, errors, a big feed."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import requests

from chalicelib.sources.cms import parse_feed
from chalicelib.sources.errors import FeedError
from chalicelib.sources.fetch import FetchResult, fetch_feed
from tests.feedserver import FeedServer, Reply, news_items, rss_document

FEEDS = Path(__file__).parents[2] / "events" / "feeds"
RSS = (FEEDS / "comune-notizie.rss").read_bytes()
RSS_TYPE = "application/rss+xml; charset=utf-8"
FAST = (1.0, 0.5)  # connect, read: short, so the timeout tests take well under a second
MB = 1024 * 1024


# `session` (a new_session()) and `closed_port_url` come from tests/integration/conftest.py.
@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as feeds:
        yield feeds


def fetch(
    server: FeedServer,
    session: requests.Session,
    path: str = "/feed",
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    max_bytes: int = 5 * MB,
    max_seconds: float = 5.0,
) -> FetchResult:
    return fetch_feed(
        server.url(path),
        session=session,
        etag=etag,
        last_modified=last_modified,
        max_bytes=max_bytes,
        timeout=FAST,
        max_seconds=max_seconds,
    )


def failure(
    server: FeedServer,
    session: requests.Session,
    path: str = "/feed",
    *,
    max_bytes: int = 5 * MB,
    max_seconds: float = 5.0,
) -> FeedError:
    with pytest.raises(FeedError) as raised:
        fetch(server, session, path, max_bytes=max_bytes, max_seconds=max_seconds)
    return raised.value


def zeros(total: int, chunk: int = 64 * 1024, pause: float = 0.0) -> Iterator[bytes]:
    for _ in range(total // chunk):
        if pause:
            time.sleep(pause)
        yield bytes(chunk)


# --- conditional GET ---


def test_etag_then_304_sends_if_none_match_and_keeps_the_validator(
    server: FeedServer, session: requests.Session
) -> None:
    headers = {"Content-Type": RSS_TYPE, "ETag": '"v1"', "Cache-Control": "public, max-age=300"}
    server.routes["/feed"] = (200, headers, RSS)

    first = fetch(server, session)
    assert (first.status, first.body, first.etag, first.max_age) == (200, RSS, '"v1"', 300)
    assert first.content_type == RSS_TYPE
    assert first.url == server.url("/feed")
    assert not first.not_modified

    second = fetch(server, session, etag=first.etag)
    assert second.not_modified
    assert (second.status, second.body, second.etag) == (304, b"", '"v1"')
    assert server.request_headers["/feed"][1]["If-None-Match"] == '"v1"'
    assert server.hits["/feed"] == 2


def test_last_modified_then_304(server: FeedServer, session: requests.Session) -> None:
    stamp = "Mon, 17 Nov 2025 08:30:00 GMT"
    server.routes["/feed"] = (200, {"Content-Type": RSS_TYPE, "Last-Modified": stamp}, RSS)

    first = fetch(server, session)
    assert (first.status, first.last_modified, first.etag) == (200, stamp, None)

    second = fetch(server, session, last_modified=first.last_modified)
    assert second.not_modified
    assert second.last_modified == stamp
    assert server.request_headers["/feed"][1]["If-Modified-Since"] == stamp


def test_a_changed_feed_comes_back_with_its_new_validator(
    server: FeedServer, session: requests.Session
) -> None:
    server.routes["/feed"] = (200, {"ETag": '"v1"'}, RSS)
    first = fetch(server, session)
    server.routes["/feed"] = (200, {"ETag": '"v2"'}, RSS + b"\n")

    second = fetch(server, session, etag=first.etag)

    assert (second.status, second.etag, second.body) == (200, '"v2"', RSS + b"\n")


def test_a_304_without_validators_keeps_the_ones_sent(server: FeedServer, session: requests.Session) -> None:
    server.routes["/feed"] = (304, {}, b"")

    result = fetch(server, session, etag='"v7"', last_modified="Mon, 17 Nov 2025 08:30:00 GMT")

    assert result.not_modified
    assert (result.etag, result.last_modified) == ('"v7"', "Mon, 17 Nov 2025 08:30:00 GMT")


def test_a_first_poll_sends_no_validators_and_asks_for_feeds(
    server: FeedServer, session: requests.Session
) -> None:
    server.routes["/feed"] = (200, {}, RSS)

    fetch(server, session)

    sent = server.request_headers["/feed"][0]
    assert sent["If-None-Match"] is None
    assert sent["If-Modified-Since"] is None
    assert "application/rss+xml" in sent["Accept"]
    assert sent["User-Agent"].startswith("Banditore/")


# --- the server says no ---


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (429, "120", 120.0),
        (503, "7", 7.0),
        (429, None, None),
        (429, "soon", None),
    ],
)
def test_rate_limited_with_retry_after_in_seconds(
    server: FeedServer,
    session: requests.Session,
    status: int,
    retry_after: str | None,
    expected: float | None,
) -> None:
    server.routes["/feed"] = (status, {"Retry-After": retry_after} if retry_after else {}, b"slow down")

    error = failure(server, session)

    assert (error.reason, error.status, error.retry_after) == ("rate_limited", status, expected)


@pytest.mark.parametrize("status", [429, 503])
def test_rate_limited_with_retry_after_as_an_http_date(
    server: FeedServer, session: requests.Session, status: int
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    server.routes["/feed"] = (status, {"Retry-After": when}, b"")

    error = failure(server, session)

    assert error.reason == "rate_limited"
    assert error.retry_after is not None
    assert 85 <= error.retry_after <= 90


def test_a_retry_after_in_the_past_means_now_and_a_huge_one_is_capped(
    server: FeedServer, session: requests.Session
) -> None:
    server.routes["/past"] = (429, {"Retry-After": "Mon, 17 Nov 2025 08:30:00 GMT"}, b"")
    server.routes["/years"] = (429, {"Retry-After": "999999999"}, b"")

    assert failure(server, session, "/past").retry_after == 0.0
    assert failure(server, session, "/years").retry_after == 86_400.0


@pytest.mark.parametrize("status", [404, 410, 500, 503])
def test_other_error_statuses(server: FeedServer, session: requests.Session, status: int) -> None:
    server.routes["/feed"] = (status, {}, b"nope")

    error = failure(server, session)

    assert (error.reason, error.status, error.retry_after) == ("http_status", status, None)
    assert str(status) in str(error)
    assert server.url("/feed") in str(error)


# --- size limits ---


def test_a_declared_50_mb_body_is_refused_without_reading_it(
    server: FeedServer, session: requests.Session
) -> None:
    size = 50 * MB
    server.routes["/big"] = (200, {"Content-Length": str(size)}, lambda: zeros(size))

    started = time.monotonic()
    error = failure(server, session, "/big")

    assert error.reason == "too_large"
    assert "Content-Length" in str(error)
    assert time.monotonic() - started < 1.0
    # Whatever the kernel buffered before the client hung up, it is far from the whole body.
    assert server.bytes_sent["/big"] < size // 4


def test_a_chunked_body_growing_past_the_limit_is_abandoned(
    server: FeedServer, session: requests.Session
) -> None:
    server.routes["/endless"] = (200, {"Content-Type": RSS_TYPE}, lambda: zeros(100 * MB))

    error = failure(server, session, "/endless", max_bytes=1 * MB)

    assert error.reason == "too_large"
    assert "grew past" in str(error)
    assert server.bytes_sent["/endless"] < 25 * MB


def test_a_small_gzip_body_that_inflates_past_the_limit_is_abandoned(
    server: FeedServer, session: requests.Session
) -> None:
    bomb = gzip.compress(bytes(20 * MB))
    assert len(bomb) < 100_000
    server.routes["/gzip"] = (200, {"Content-Encoding": "gzip"}, bomb)

    error = failure(server, session, "/gzip", max_bytes=1 * MB)

    assert error.reason == "too_large"


def test_a_gzip_body_within_the_limit_arrives_inflated(server: FeedServer, session: requests.Session) -> None:
    server.routes["/gzip"] = (200, {"Content-Encoding": "gzip"}, gzip.compress(RSS))

    assert fetch(server, session, "/gzip").body == RSS


# --- time limits ---


def test_a_server_slow_to_answer_times_out(server: FeedServer, session: requests.Session) -> None:
    server.routes["/slow"] = Reply(200, {}, RSS, delay=3.0)

    started = time.monotonic()
    error = failure(server, session, "/slow")

    assert error.reason == "timeout"
    assert time.monotonic() - started < 1.5


def test_a_body_that_stalls_times_out(server: FeedServer, session: requests.Session) -> None:
    def stalls() -> Iterator[bytes]:
        yield b"<?xml version='1.0'?><rss>"
        time.sleep(2.0)
        yield b"</rss>"

    server.routes["/stall"] = (200, {}, stalls)

    error = failure(server, session, "/stall")

    assert error.reason == "timeout"
    assert "reading the body" in str(error)


def test_a_body_dripping_forever_hits_the_download_deadline(
    server: FeedServer, session: requests.Session
) -> None:
    server.routes["/drip"] = (200, {}, lambda: zeros(10 * MB, chunk=100, pause=0.05))

    started = time.monotonic()
    error = failure(server, session, "/drip", max_seconds=0.5)

    assert error.reason == "timeout"
    assert "took more than 0.5 s" in str(error)
    assert time.monotonic() - started < 1.5


# --- redirects ---


def test_a_redirect_loop_stops_after_max_redirects(server: FeedServer, session: requests.Session) -> None:
    server.routes["/a"] = (302, {"Location": "/b"}, b"")
    server.routes["/b"] = (301, {"Location": server.url("/a")}, b"")

    error = failure(server, session, "/a")

    assert error.reason == "too_many_redirects"
    assert server.hits["/a"] + server.hits["/b"] == session.max_redirects + 1


def test_redirects_within_the_limit_are_followed_to_the_final_url(
    server: FeedServer, session: requests.Session
) -> None:
    server.routes["/old"] = (301, {"Location": "/moved"}, b"")
    server.routes["/moved"] = (307, {"Location": "/notizie/feed.rss"}, b"")
    server.routes["/notizie/feed.rss"] = (200, {"Content-Type": RSS_TYPE}, RSS)

    result = fetch(server, session, "/old")

    assert (result.status, result.url, result.body) == (200, server.url("/notizie/feed.rss"), RSS)


def test_a_cookie_set_on_a_redirect_is_sent_back(server: FeedServer, session: requests.Session) -> None:
    server.routes["/feed"] = (302, {"Location": "/feed?checked=1", "Set-Cookie": "waf=ok; Path=/"}, b"")
    server.routes["/feed?checked=1"] = (200, {}, RSS)

    assert fetch(server, session).body == RSS
    assert server.request_headers["/feed?checked=1"][0]["Cookie"] == "waf=ok"


def test_a_redirect_body_is_never_read(server: FeedServer, session: requests.Session) -> None:
    server.routes["/old"] = (
        302,
        {"Location": "/feed", "Content-Length": str(50 * MB)},
        lambda: zeros(50 * MB),
    )
    server.routes["/feed"] = (200, {}, RSS)

    assert fetch(server, session, "/old").body == RSS
    assert server.bytes_sent["/old"] < 10 * MB


# --- transport failures ---


def test_connection_refused(session: requests.Session, closed_port_url: str) -> None:
    with pytest.raises(FeedError) as raised:
        fetch_feed(closed_port_url + "/feed", session=session, etag=None, last_modified=None, max_bytes=MB)

    assert raised.value.reason == "connection"


def test_tls_failure(server: FeedServer, session: requests.Session) -> None:
    https_url = server.url("/feed").replace("http://", "https://")

    with pytest.raises(FeedError) as raised:
        fetch_feed(https_url, session=session, etag=None, last_modified=None, max_bytes=MB, timeout=FAST)

    assert raised.value.reason == "tls"


def test_a_body_cut_short(server: FeedServer, session: requests.Session) -> None:
    server.routes["/cut"] = (200, {"Content-Length": "100000"}, lambda: [RSS[:500]])

    assert failure(server, session, "/cut").reason == "connection"


def test_a_body_that_is_not_the_gzip_it_claims(server: FeedServer, session: requests.Session) -> None:
    server.routes["/feed"] = (200, {"Content-Encoding": "gzip"}, b"this is not gzip at all")

    assert failure(server, session).reason == "malformed"


# --- a big feed, end to end ---


def test_a_1000_item_feed_fetched_and_parsed(server: FeedServer, session: requests.Session) -> None:
    document = rss_document(news_items(1000))
    server.routes["/feed"] = (200, {"Content-Type": "application/rss+xml"}, document)

    fetched = fetch(server, session)
    parsed = parse_feed(
        fetched.body, url=fetched.url, content_type=fetched.content_type, tolerate_malformed=False
    )

    assert len(parsed.items) == 1000
    assert len({item.guid for item in parsed.items}) == 1000
    newest = parsed.items[0]
    assert newest.link == "https://www.comune.valdimonte.example/notizie/avviso-1000"
    assert newest.image is not None
    assert newest.image.url == server.url("/media/avviso-1000.jpg")
    assert parsed.warnings == ()
