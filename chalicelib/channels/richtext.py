"""Bluesky rich text: a post's text as it goes out, with its facets (app.bsky.richtext.facet).

Bluesky links nothing by itself: a link or a hashtag is clickable only through a facet naming its
span in UTF-8 *bytes* ("è" is 2 bytes, an emoji 4). And a URL counts in full against the 300
graphemes, so a long one is shown shortened ("comune.example.it/notizie/lavor…") while its facet
carries the whole URI. Renderers measure with `shown_length`, the length of what is actually sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import regex

from chalicelib.channels.text import ELLIPSIS, grapheme_count, url_spans

LINK_FEATURE = "app.bsky.richtext.facet#link"
TAG_FEATURE = "app.bsky.richtext.facet#tag"
# A shown URL takes at most this many graphemes; its host is always shown whole, so a reader sees
# where the link goes.
SHOWN_URL_MAX = 32
# app.bsky.richtext.facet#tag: maxGraphemes 64, maxLength 640 (bytes).
TAG_MAX_GRAPHEMES = 64
TAG_MAX_BYTES = 640

_GRAPHEME = regex.compile(r"\X")
_SCHEME = regex.compile(r"https?://(?:www\.)?", regex.IGNORECASE)
_HOST_END = regex.compile(r"[/?#]")
# A hashtag starts a word and has a letter: "#LavoriPubblici", "#A1" yes; "#1", "a#b", "(#b)" no, as
# in Bluesky's apps. Letters, marks and digits only, so "#Roma." and "#Roma:" tag "Roma".
_TAG = regex.compile(r"(?<!\S)#([\p{L}\p{M}\p{N}_]*\p{L}[\p{L}\p{M}\p{N}_]*)")


@dataclass(frozen=True)
class RichText:
    text: str
    facets: tuple[dict[str, Any], ...]


def shown_url(url: str) -> str:
    """How a URL appears in the text: without its scheme and "www.", cut after SHOWN_URL_MAX graphemes
    (never inside the host) and marked with an ellipsis."""
    shown: str = _SCHEME.sub("", url, count=1)
    graphemes = _GRAPHEME.findall(shown)
    if len(graphemes) <= SHOWN_URL_MAX:
        return shown
    host = _HOST_END.search(shown)
    host_end = host.start() if host else len(shown)
    kept, length = 0, 0
    while kept < len(graphemes) and (length < host_end or kept < SHOWN_URL_MAX - 1):
        length += len(graphemes[kept])
        kept += 1
    if kept == len(graphemes):  # a host longer than the limit, and nothing after it
        return shown
    return "".join(graphemes[:kept]) + ELLIPSIS


def shown_text(text: str, link: str | None = None) -> str:
    """`text` with each URL as `shown_url` shows it."""
    return "".join(shown for shown, _ in _segments(text, link))


def shown_length(text: str, link: str | None = None) -> int:
    """Graphemes of the text as sent: what Bluesky's 300 applies to."""
    return grapheme_count(shown_text(text, link))


def rich_text(text: str, link: str | None = None) -> RichText:
    """The text as sent and its facets: a link facet for each URL (the whole URI, on its shown
    span), then a tag facet for each hashtag, ordered by position as clients expect.

    `link` is the announcement's link as it is: a URL in the text is taken to end before trailing
    sentence punctuation ("see https://comune.it/x."), which may be part of this one ("...?id=7.")."""
    facets: list[tuple[int, dict[str, Any]]] = []
    sent_bytes = 0
    for shown, url in _segments(text, link):
        if url is not None:
            facets.append((sent_bytes, _facet(sent_bytes, shown, {"$type": LINK_FEATURE, "uri": url})))
        sent_bytes += _utf8_length(shown)
    sent = shown_text(text, link)
    facets += _tag_facets(sent)
    facets.sort(key=lambda item: item[0])
    return RichText(text=sent, facets=tuple(facet for _, facet in facets))


def _segments(text: str, link: str | None) -> list[tuple[str, str | None]]:
    """The text in pieces as sent: (plain text, None) and (shown URL, the URL), in order."""
    segments: list[tuple[str, str | None]] = []
    position = 0
    for start, found_end in url_spans(text):
        if start < position:  # inside the announcement's link, taken whole below
            continue
        end = found_end
        if link and text.startswith(link, start):
            end = max(end, start + len(link))
        url = text[start:end]
        segments += [(text[position:start], None), (shown_url(url), url)]
        position = end
    segments.append((text[position:], None))
    return segments


def _tag_facets(sent: str) -> list[tuple[int, dict[str, Any]]]:
    found = []
    for match in _TAG.finditer(sent):
        tag = match.group(1)
        if grapheme_count(tag) > TAG_MAX_GRAPHEMES or _utf8_length(tag) > TAG_MAX_BYTES:
            continue  # Bluesky would refuse the record: leave it as plain text
        start = _utf8_length(sent[: match.start()])
        found.append((start, _facet(start, match.group(), {"$type": TAG_FEATURE, "tag": tag})))
    return found


def _facet(byte_start: int, span: str, feature: dict[str, str]) -> dict[str, Any]:
    return {
        "index": {"byteStart": byte_start, "byteEnd": byte_start + _utf8_length(span)},
        "features": [feature],
    }


def _utf8_length(text: str) -> int:
    return len(text.encode("utf-8"))
