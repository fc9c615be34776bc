"""What the chat adapters share: a webhook URL that is itself the credential (Slack, Discord), markup
that escapes a feed item's text everywhere but in its links, and the Retry-After header."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

import requests

from chalicelib.channels.base import AuthError, PostImage
from chalicelib.channels.text import RenderOptions, url_spans
from chalicelib.channels.transport import Timeout, UrlSecretFilter, read_token, redact_urllib3_logs
from chalicelib.http import TIMEOUT

Markup = Callable[[str], str]

# The secret part of Slack (/services/T…/B…/secret) and Discord (/webhooks/<id>/<token>) webhook paths.
_SECRET_PATH = UrlSecretFilter(re.compile(r"(/services/|/webhooks/\d+/)[^\s\"'?#]+"), r"\1***")


def read_webhook_url(provider: Callable[[], str], *, platform: str) -> str:
    """The webhook URL, resolved at publish time. A value that is not an http(s) URL can never work:
    like a revoked token, the channel needs a human. The URL is never part of the message."""
    url = read_token(provider, platform=platform).strip()
    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("https", "http") and bool(parts.hostname)
    except ValueError:  # an unclosed IPv6 bracket and the like
        usable = False
    if not usable:
        raise AuthError(f"{platform}: the configured webhook URL is not an http(s) URL")
    return url


def redact_webhook_paths_in_logs() -> None:
    """urllib3 logs request paths (DEBUG): a webhook's path holds its secret."""
    redact_urllib3_logs(_SECRET_PATH)


def outside_urls(text: str, escape: Markup, link: Markup) -> str:
    """`text` with `escape` applied between its URLs and `link` to each URL: markup or mentions in a
    feed item cannot format or notify anything, while its links stay whole and clickable."""
    pieces, start = [], 0
    for url_start, url_end in url_spans(text):
        pieces += [escape(text[start:url_start]), link(text[url_start:url_end])]
        start = url_end
    pieces.append(escape(text[start:]))
    return "".join(pieces)


def with_title(text: str, title: str | None, markup: Markup, emphasis: Markup) -> str:
    """`text` marked up, its first block emphasised when it is the announcement's title. Marking up
    the title apart gives the same characters as marking up the whole (the title is a block of its
    own, so no URL spans the cut): a renderer can measure the whole, plus the emphasis, as it fits."""
    if title and (text == title or text.startswith(title + "\n")):
        return emphasis(markup(title)) + markup(text[len(title) :])
    return markup(text)


def web_image(image: PostImage | None, *, max_url: int) -> PostImage | None:
    """The image, if the platform can fetch it itself: an http(s) URL within its length limit."""
    if image is None or len(image.url) > max_url:
        return None
    try:
        parts = urlsplit(image.url)
    except ValueError:
        return None
    return image if parts.scheme in ("https", "http") and parts.hostname else None


def retry_after_header(response: requests.Response) -> float | None:
    """Seconds the `Retry-After` header asks to wait, when it gives them as a number (the form Slack,
    Discord and Matrix homeservers send)."""
    value = (response.headers.get("Retry-After") or "").strip()
    return float(value) if value.isascii() and value.isdigit() else None


class IncomingWebhookAdapter:
    """What Slack's and Discord's adapters hold alike: the webhook URL (itself the secret, resolved
    at publish time), the session and the render options; their log lines never show the URL."""

    def __init__(
        self,
        *,
        webhook_url: Callable[[], str],
        session: requests.Session,
        options: RenderOptions | None = None,
        offline: bool = False,
        timeout: Timeout = TIMEOUT,
    ) -> None:
        self._webhook_url = webhook_url
        self._session = session
        self._options = options or RenderOptions()
        self.offline = offline
        self._timeout = timeout
        redact_webhook_paths_in_logs()
