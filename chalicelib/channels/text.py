"""Text shaping shared by every renderer: counting (graphemes, UTF-16, URL weight), URLs, hashtags,
Telegram HTML escaping, and fitting a post under a platform limit without ever cutting its link."""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace

import regex

from chalicelib.announcements import Announcement
from chalicelib.channels.base import PermanentError

ELLIPSIS = "…"
BLOCK_SEPARATOR = "\n\n"

Measure = Callable[[str], int]
Fits = Callable[[str], bool]

_GRAPHEME = regex.compile(r"\X")
# A URL runs to whitespace, a control character or a character it cannot hold unescaped.
_URL_CANDIDATE = regex.compile(r'https?://[^\s\p{Cc}<>"]+', regex.IGNORECASE)
# A URL needs a dotted host, as platforms' link extractors require before they shorten or link it.
_URL_WITH_HOST = regex.compile(r"https?://[^/?#.]+(?:\.[^/?#.]+)+(?:[/?#]|$)", regex.IGNORECASE)
# Punctuation that ends a sentence rather than a URL ("see https://comune.it/x.").
_URL_TRAILING = ".,;:!?'\")]}" + ELLIPSIS
_WORD_END = regex.compile(r"\S(?=\s)")
_TAG_WORD = regex.compile(r"[\p{L}\p{N}\p{M}]+")
_LETTER = regex.compile(r"\p{L}")
# Dropped before the ellipsis, so a cut reads "Lavori in corso…" and not "Lavori in corso,…".
_CUT_TRAILING = ",;:"


def grapheme_count(text: str) -> int:
    """User-perceived characters: a flag, a family emoji or "e" + combining accent count as one."""
    return sum(1 for _ in _GRAPHEME.finditer(text))


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's limits (an emoji outside the BMP is 2)."""
    return len(text.encode("utf-16-le")) // 2


def url_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every http(s) URL in `text`, trailing sentence punctuation excluded."""
    spans = []
    for match in _URL_CANDIDATE.finditer(text):
        url = match.group().rstrip(_URL_TRAILING)
        if _URL_WITH_HOST.match(url):
            spans.append((match.start(), match.start() + len(url)))
    return spans


def url_weighted_length(text: str, *, url_weight: int) -> int:
    """Graphemes, each URL counted as `url_weight` whatever its length (Mastodon's rule).

    URLs are replaced by a placeholder of that many characters before counting, as Mastodon does,
    so a URL next to a combining mark is counted exactly the way the server counts it."""
    placeholder = "x" * url_weight
    pieces, start = [], 0
    for url_start, url_end in url_spans(text):
        pieces += [text[start:url_start], placeholder]
        start = url_end
    pieces.append(text[start:])
    return grapheme_count("".join(pieces))


def escape_html(text: str) -> str:
    """Escape the three characters Telegram's HTML mode requires (& < >), and nothing else."""
    return html.escape(text, quote=False)


def hashtag(category: str) -> str | None:
    """A category as a CamelCase hashtag ("Lavori pubblici" -> "#LavoriPubblici"), readable by screen
    readers; None when nothing letter-like is left (a tag of digits only is not a hashtag)."""
    words = _TAG_WORD.findall(unicodedata.normalize("NFC", category))
    tag = "".join(word[:1].upper() + word[1:] for word in words)
    return f"#{tag}" if _LETTER.search(tag) else None


def hashtags(categories: tuple[str, ...]) -> tuple[str, ...]:
    """Hashtags for the categories, in order, each once whatever its case."""
    seen: set[str] = set()
    tags = []
    for category in categories:
        tag = hashtag(category)
        if tag and tag.casefold() not in seen:
            seen.add(tag.casefold())
            tags.append(tag)
    return tuple(tags)


@dataclass(frozen=True)
class PostParts:
    """A post as plain-text blocks; renderers fit these, then add their markup."""

    title: str
    summary: str
    link: str | None = None
    hashtags: tuple[str, ...] = ()

    @classmethod
    def from_announcement(cls, announcement: Announcement) -> PostParts:
        return cls(
            # A title is one line: feeds often carry newlines and runs of spaces in it.
            title=" ".join(announcement.title.split()),
            summary=announcement.summary.strip(),
            link=announcement.link.strip() if announcement.link else None,
            hashtags=hashtags(announcement.categories),
        )


def join_blocks(*blocks: str) -> str:
    """Blocks separated by a blank line, empty ones left out."""
    return BLOCK_SEPARATOR.join(block for block in blocks if block)


def plain_text(parts: PostParts) -> str:
    """The post as readers see it: title, summary, link, hashtags."""
    return join_blocks(parts.title, parts.summary, parts.link or "", " ".join(parts.hashtags))


def fit_post(parts: PostParts, *, measure: Measure, limit: int) -> tuple[PostParts, bool]:
    """Shorten a post until `measure(plain_text(...)) <= limit`; returns the parts and whether they
    were shortened. The summary goes first, then the title, then the hashtags; the link never."""

    def fits(candidate: PostParts) -> bool:
        return measure(plain_text(candidate)) <= limit

    if fits(parts):
        return parts, False
    for tags in (parts.hashtags, ()):
        fitted = _shorten_title_or_summary(replace(parts, hashtags=tags), fits)
        if fitted is not None:
            return fitted, True
    raise PermanentError(f"the link alone is over the platform limit of {limit}", reason="link_too_long")


def _shorten_title_or_summary(parts: PostParts, fits: Callable[[PostParts], bool]) -> PostParts | None:
    summary = shorten(parts.summary, lambda text: fits(replace(parts, summary=text)))
    if summary:
        return replace(parts, summary=summary)
    title = shorten(parts.title, lambda text: fits(replace(parts, title=text, summary="")))
    return None if title is None else replace(parts, title=title, summary="")


def shorten(text: str, fits: Fits) -> str | None:
    """The longest start of `text` that fits, cut after a whole word and marked with an ellipsis.

    Inside a word only when not even the first word fits (and never inside a URL, which is kept whole
    or dropped). Returns "" when only the empty text fits, None when not even that does."""
    text = text.strip()
    if fits(text):
        return text
    ends = [match.end() for match in _WORD_END.finditer(text)]
    best = _longest_fitting(len(ends), lambda index: _cut_after_word(text, ends[index]), fits)
    if best is None:
        best = _cut_inside_first_word(text, fits)
    if best:
        return best
    return "" if fits("") else None


def _cut_after_word(text: str, end: int) -> str:
    head = text[:end]
    trimmed = head.rstrip(_CUT_TRAILING) or head
    ends_with_url = any(url_end == len(trimmed) for _, url_end in url_spans(trimmed))
    # An ellipsis glued to a URL would become part of the link on platforms that auto-link.
    return f"{trimmed} {ELLIPSIS}" if ends_with_url else trimmed + ELLIPSIS


def _cut_inside_first_word(text: str, fits: Fits) -> str | None:
    words = text.split(maxsplit=1)
    if not words or url_spans(words[0]):
        return None
    word = words[0]
    # Cut between graphemes only: half a flag or an accent without its letter is not text.
    ends = [match.end() for match in _GRAPHEME.finditer(word)][:-1]
    return _longest_fitting(len(ends), lambda index: word[: ends[index]] + ELLIPSIS, fits)


def _longest_fitting(count: int, candidate: Callable[[int], str], fits: Fits) -> str | None:
    """Binary search for the last fitting candidate; candidates grow with their index, so this takes
    log(count) measurements instead of one per word. Only a candidate that was checked is returned."""
    low, high, best = 0, count - 1, None
    while low <= high:
        middle = (low + high) // 2
        text = candidate(middle)
        if fits(text):
            best, low = text, middle + 1
        else:
            high = middle - 1
    return best
