"""The one error a feed source raises, classified by a short stable `reason` for metrics and records."""

from __future__ import annotations

import re
from typing import Literal

# A feed URL may carry credentials (user:password@) or a key in its query string; messages go to
# logs and to the source's stored state, so both are blanked wherever a URL appears in them.
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")
_QUERY = re.compile(r"\?[^\s#)]+?(?=[:,]?(?:\s|\)|$))")

FeedErrorReason = Literal[
    "timeout",  # connect or read timed out, or the whole download took too long
    "connection",  # refused, reset, DNS failure, body cut short
    "tls",  # certificate or handshake failure (an expired certificate is common on small sites)
    "too_large",  # the body is larger than the source's max_body_bytes
    "too_many_redirects",
    "http_status",  # any other 4xx/5xx; `status` says which
    "rate_limited",  # 429, or 503 with Retry-After; `retry_after` says when to come back
    "unsafe_xml",  # the document declares entities (XML bomb, XXE)
    "malformed",  # not well-formed XML, or a body that cannot be decompressed
    "not_a_feed",  # HTML page, empty body, XML that is no RSS/Atom
    "encoding",  # the declared character encoding is a codec that cannot read the document
]


class FeedError(Exception):
    """A feed could not be fetched or read. The message is plain English for logs; it may name the
    feed URL but never carries credentials or document content."""

    def __init__(
        self,
        reason: FeedErrorReason,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(scrub_urls(message))
        self.reason: FeedErrorReason = reason
        self.retry_after = retry_after  # seconds, when the server said when to come back
        self.status = status  # the HTTP status, when the server answered


def scrub_urls(text: str) -> str:
    """`text` with the credentials and query strings of its URLs replaced by "***"."""
    return _QUERY.sub("?***", _CREDENTIALS.sub("***@", text))
