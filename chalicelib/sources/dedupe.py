"""Recognise an item already seen, even when the feed changes its guid, its link or its domain.

Each item gets several keys (`dedupe_keys`) and counts as seen when ANY of them was stored before, so a
CMS that regenerates guids, moves from http to https or republishes the same text under a new address
still posts nothing twice. Keys are short stable strings (DynamoDB sort keys):

- ``g:<hash>``: the guid, when it is not just the link again (a guid that is a URL is canonicalised);
- ``l:<hash>``: the canonical link, unless it is the site's home page, which names no item (some CMSs
  give every item the home page as link, and one such key would silence the whole feed);
- ``c:<hash>``: the title and summary, case-folded with whitespace collapsed.

Two URL forms live here. `clean_link` is the link a citizen gets: absolute as given, with tracking
parameters removed (the publisher adds its own UTM per channel) and nothing else changed that a server
could care about. `canonical_url` is for comparison only: it also treats http and https, ``www.`` and
the bare host, a trailing slash, the query order and the fragment as the same, because a comune's CMS
serves the same page under all of them and peers re-post when the form changes.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import TYPE_CHECKING
from urllib.parse import (
    SplitResult,
    parse_qsl,
    quote,
    unquote,
    unquote_plus,
    urlencode,
    urlsplit,
    urlunsplit,
)

if TYPE_CHECKING:
    from chalicelib.sources.cms import FeedItem

KEY_HEX_CHARS = 32  # 128 bits of sha256: no collision in any comune's lifetime, short for a sort key

_TRACKING_PREFIXES = ("utm_", "mtm_")  # Google Analytics, Matomo (Web Analytics Italia runs Matomo)
_TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "ttclid",
        "igshid", "li_fat_id", "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok",
        "pk_campaign", "pk_kwd", "pk_keyword", "pk_source", "pk_medium", "pk_content", "pk_cid",
    }
)  # fmt: skip
_DEFAULT_PORTS = {"http": 80, "https": 443}
_WEB_SCHEMES = frozenset(_DEFAULT_PORTS)
# Characters left unescaped when a path is re-quoted, so "%7E" and "~", "%c3%a8" and "è" compare equal.
_PATH_SAFE = "/:@!$&'()*+,;=~"
_WHITESPACE = re.compile(r"\s+")


def clean_link(url: str) -> str:
    """The link as published: lower-case scheme and host, no credentials, no default port, no tracking
    parameters; path, parameter order and fragment exactly as the CMS wrote them."""
    parts = urlsplit(url.strip())
    query = "&".join(_without_tracking(parts.query))
    return urlunsplit((parts.scheme.lower(), _netloc(parts), parts.path or "/", query, parts.fragment))


def canonical_url(url: str) -> str:
    """The comparison form of a URL: `clean_link`, then https for http, no ``www.``, no fragment,
    percent-escapes normalised, query parameters sorted, no trailing slash except the root's.
    Like `clean_link`, raises ValueError only for what urlsplit cannot parse (an unclosed "[")."""
    parts = urlsplit(clean_link(url))
    scheme = "https" if parts.scheme in _WEB_SCHEMES else parts.scheme
    host = parts.netloc.removeprefix("www.")
    path = quote(unquote(parts.path), safe=_PATH_SAFE)
    path = path.rstrip("/") or "/"
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)), quote_via=quote)
    return urlunsplit((scheme, host, path, query, ""))


def dedupe_keys(item: FeedItem) -> tuple[str, ...]:
    """The keys under which `item` is stored as seen (see `is_duplicate` for how they decide)."""
    keys: list[str] = []
    link = canonical_url(item.link) if item.link else None
    guid = _guid_identity(item.guid)
    if guid and guid != link:
        keys.append(_key("g", guid))
    if link and not _is_home_page(link):
        keys.append(_key("l", link))
    content = _content_identity(item.title, item.summary)
    if content:
        keys.append(_key("c", content))
    return tuple(keys)


def is_duplicate(item_keys: tuple[str, ...], seen: set[str]) -> bool:
    """Whether an item with these keys was seen, weighing the evidence each key gives:

    - its guid was seen: the same item (edited, or re-ordered in the feed);
    - its text was seen: the same item re-published under a new guid or link, or on another
      domain. Content keys expire after a few days (storage.seen), so a notice the comune repeats
      in the same words a week later is a new one;
    - it has no guid and its link was seen: the link is its identity (RSS's guid-as-permalink),
      so a typo fixed in the text does not post it again.
    A seen link alone does not make an item with its own guid a duplicate: CMSs give many items a
    listing page as link.
    """
    kinds = {key[:2]: key in seen for key in item_keys}
    if kinds.get("g:") or kinds.get("c:"):
        return True
    return "g:" not in kinds and kinds.get("l:", False)


def _is_home_page(canonical: str) -> bool:
    parts = urlsplit(canonical)
    return parts.path == "/" and not parts.query  # "/?p=123" is an item (WordPress without permalinks)


def _netloc(parts: SplitResult) -> str:
    host = (parts.hostname or "").rstrip(".")  # hostname is lower-cased and without credentials
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal keeps its brackets
    port = _port(parts)
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    return host


def _port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:  # not a number or out of range: no server listens there, so it identifies nothing
        return None


def _without_tracking(query: str) -> list[str]:
    # Pairs are kept as written: decoding and re-encoding them could change what the server receives.
    return [
        pair
        for pair in query.split("&")
        if pair and not _is_tracking(unquote_plus(pair.partition("=")[0]).lower())
    ]


def _is_tracking(name: str) -> bool:
    return name in _TRACKING_PARAMS or name.startswith(_TRACKING_PREFIXES)


def _guid_identity(guid: str | None) -> str | None:
    guid = (guid or "").strip()
    if not guid:
        return None
    try:
        parts = urlsplit(guid)
        # WordPress-style guids are URLs ("https://comune.it/?p=123") and change form like links do.
        is_web_url = parts.scheme.lower() in _WEB_SCHEMES and bool(parts.netloc)
        return canonical_url(guid) if is_web_url else guid
    except ValueError:  # looks like a URL but is not one (e.g. an unclosed "[" host): keep it opaque
        return guid


def _content_identity(title: str, summary: str) -> str | None:
    text = unicodedata.normalize("NFKC", f"{title}\n{summary}").casefold()
    return _WHITESPACE.sub(" ", text).strip() or None


def _key(kind: str, value: str) -> str:
    return f"{kind}:{hashlib.sha256(value.encode()).hexdigest()[:KEY_HEX_CHARS]}"
