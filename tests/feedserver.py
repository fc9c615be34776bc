"""A real HTTP server on loopback for feed tests, and a builder for RSS documents.

`FeedServer` serves a mutable dict of path -> (status, headers, body), counts requests per path and
keeps the request headers, and answers conditional GETs the way a CMS does (If-None-Match against
the reply's ETag, If-Modified-Since against its Last-Modified). A body is bytes, or a callable
returning an iterable of chunks: sent chunked, or raw when the headers give a Content-Length. A
`Reply` can also wait before answering (a slow server). The server binds 127.0.0.1 on a random
port, runs on a daemon thread and stops on leaving its `with` block.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from xml.sax.saxutils import escape, quoteattr

Body = bytes | Callable[[], Iterable[bytes]]


class Reply(NamedTuple):
    status: int
    headers: Mapping[str, str]
    body: Body = b""
    delay: float = 0.0  # seconds to wait before the status line


class FeedServer:
    def __init__(
        self, routes: Mapping[str, tuple[int, Mapping[str, str], Body] | Reply] | None = None
    ) -> None:
        self.routes: dict[str, tuple[int, Mapping[str, str], Body] | Reply] = dict(routes or {})
        self.hits: Counter[str] = Counter()
        self.request_headers: dict[str, list[Message]] = {}
        self.bytes_sent: Counter[str] = Counter()  # body bytes written to the socket, per path
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._http.daemon_threads = True
        self._http.feed_server = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._serve, name="feed-server", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()  # wakes handlers that are waiting out a delay
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        self._http.serve_forever(poll_interval=0.02)  # the default 0.5 s would make every stop that slow

    def _record(self, path: str, headers: Message) -> Reply | None:
        with self._lock:
            self.hits[path] += 1
            self.request_headers.setdefault(path, []).append(headers)
            route = self.routes.get(path)
        return None if route is None else Reply(*route)

    def _count_sent(self, path: str, size: int) -> None:
        with self._lock:
            self.bytes_sent[path] += size


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    def do_GET(self) -> None:
        feeds: FeedServer = self.server.feed_server  # type: ignore[attr-defined]
        path = self.path
        reply = feeds._record(path, self.headers)
        if reply is None:
            reply = Reply(404, {"Content-Type": "text/plain"}, b"not found")
        if reply.delay and feeds._stopping.wait(reply.delay):
            return
        if _is_fresh(reply, self.headers):
            self._send_head(304, {k: v for k, v in reply.headers.items() if k.lower() != "content-length"})
            return
        body = reply.body
        if isinstance(body, bytes):
            self._send_head(reply.status, {"Content-Length": str(len(body)), **reply.headers})
            self._write(feeds, path, [body], chunked=False)
        else:
            chunked = not any(k.lower() == "content-length" for k in reply.headers)
            self._send_head(
                reply.status, {**reply.headers, **({"Transfer-Encoding": "chunked"} if chunked else {})}
            )
            self._write(feeds, path, body(), chunked=chunked)
            # A generated body may stop short of its Content-Length: closing tells the client so.
            self.close_connection = True

    def _send_head(self, status: int, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _write(self, feeds: FeedServer, path: str, chunks: Iterable[bytes], *, chunked: bool) -> None:
        try:
            for chunk in chunks:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                feeds._count_sent(path, len(chunk))
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up: what the size and time limits are for

    def log_message(self, format: str, *args: object) -> None:
        """Silent: test output is for the tests."""


def _is_fresh(reply: Reply, request: Message) -> bool:
    if reply.status != 200:
        return False
    etag, modified = reply.headers.get("ETag"), reply.headers.get("Last-Modified")
    if request["If-None-Match"] is not None:
        return etag is not None and request["If-None-Match"] == etag
    return modified is not None and request["If-Modified-Since"] == modified


def rss_document(
    items: Iterable[Mapping[str, str]], *, title: str = "Comune di Valdimonte \N{EN DASH} Notizie"
) -> bytes:
    """An RSS 2.0 document with one <item> per mapping of element name -> text (escaped here)."""
    return "".join(_rss_parts(items, title)).encode()


def _rss_parts(items: Iterable[Mapping[str, str]], title: str) -> Iterator[str]:
    yield '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
    yield f"<title>{escape(title)}</title><link>https://www.comune.valdimonte.example/</link>"
    yield "<description>Notizie dal Comune</description>\n"
    for item in items:
        yield "<item>"
        for name, value in item.items():
            if name == "enclosure":
                yield f'<enclosure url={quoteattr(value)} type="image/jpeg" length="1000"/>'
            else:
                yield f"<{name}>{escape(value)}</{name}>"
        yield "</item>\n"
    yield "</channel></rss>\n"


def news_items(count: int) -> list[dict[str, str]]:
    """`count` realistic, distinct news items, the newest first."""
    return [
        {
            "title": f"Avviso n. {n}: lavori in via Roma e modifiche alla viabilità",
            "link": f"https://www.comune.valdimonte.example/notizie/avviso-{n}?utm_source=rss",
            "guid": f"valdimonte-avviso-{n}",
            "pubDate": f"Mon, {1 + n % 28:02d} Sep 2025 {n % 24:02d}:30:00 +0200",
            "category": "Lavori pubblici",
            "description": (
                f"<p>Da lunedì è istituito il <strong>senso unico alternato</strong> (avviso {n}).</p>"
                f'<p><img src="/media/avviso-{n}.jpg" alt="Il cantiere {n}"></p>'
                "<ul><li>Orario dei lavori: 8.00\N{EN DASH}17.00</li>"
                "<li>Accesso garantito ai residenti</li></ul>"
            ),
        }
        for n in range(count, 0, -1)
    ]
