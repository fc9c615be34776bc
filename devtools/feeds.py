"""Serve the sample feeds in events/feeds/ on loopback, the way a real CMS would: ETag and
Last-Modified validators and 304 answers, so the local stack exercises conditional GET.

Feeds may point at images beside them as https://sample.feeds.invalid/<file>: the server writes its
own address there, so the image fetcher and the platform fakes reach them on this machine."""

from __future__ import annotations

import hashlib
import threading
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_TYPES = {
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".xml": "application/xml",
    ".jpg": "image/jpeg",
    ".png": "image/png",
}
_FEED_SUFFIXES = frozenset({".rss", ".atom", ".xml"})
SAMPLE_HOST_URL = b"https://sample.feeds.invalid"


class SampleFeedServer:
    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.directory = directory.resolve()
        self.requests = 0
        handler = type("Handler", (_Handler,), {"server_ref": self})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="sample-feeds", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SampleFeedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def file_for(self, path: str) -> Path | None:
        candidate = (self.directory / path.lstrip("/").split("?")[0]).resolve()
        if candidate.parent != self.directory or not candidate.is_file():
            return None  # no path traversal, no subfolders
        return candidate


class _Handler(BaseHTTPRequestHandler):
    server_ref: SampleFeedServer

    def do_GET(self) -> None:
        self.server_ref.requests += 1
        file = self.server_ref.file_for(self.path)
        if file is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        original = file.read_bytes()
        # The validator is the file's, not the served body's: the address written into a feed
        # changes with each run's port, the feed itself does not.
        etag = '"' + hashlib.sha256(original).hexdigest()[:16] + '"'
        body = original
        if file.suffix in _FEED_SUFFIXES:
            body = original.replace(SAMPLE_HOST_URL, self.server_ref.url.encode())
        modified = formatdate(file.stat().st_mtime, usegmt=True)
        if self.headers.get("If-None-Match") == etag:
            self.send_response(HTTPStatus.NOT_MODIFIED)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", _TYPES.get(file.suffix, "application/octet-stream"))
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", modified)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the local stack prints its own summary."""
