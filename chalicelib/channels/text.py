"""Text shaping shared by every renderer: counting (graphemes, UTF-16, URL weight), URLs, hashtags,
HTML escaping (Telegram, Matrix), and fitting a post under a platform limit without ever cutting its
link."""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import regex

from chalicelib.announcements import Announcement
from chalicelib.channels.base import PermanentError, PostImage

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


# Below U+0300 (ASCII, Latin-1 and Latin Extended: Italian's precomposed "è", "à"…) no code point joins
# another into one grapheme, except CR before LF. Renderers measure dozens of candidate cuts per post.
_JOINS_OTHERS = regex.compile(r"[^\x00-\x0c\x0e-\u02ff]")


def grapheme_count(text: str) -> int:
    """User-perceived characters: a flag, a family emoji or "e" + combining accent count as one."""
    if _JOINS_OTHERS.search(text) is None:
        return len(text) - text.count("\r\n")
    return len(_GRAPHEME.findall(text))


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
    """Escape the three characters Telegram's HTML mode requires (& < >), and nothing else (text
    between tags, as Matrix's formatted_body takes it too)."""
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
class RenderOptions:
    """What a channel's config changes in every renderer: written once here, applied by all."""

    utm: tuple[tuple[str, str], ...] = ()  # (name, value) pairs added to the announcement's link
    hashtags: bool = True
    default_alt_text: str | None = None


def with_utm(link: str, utm: tuple[tuple[str, str], ...]) -> str:
    """The link with UTM parameters added; parameters the link already sets are kept as they are
    (the comune may have tagged it on purpose), the fragment stays last."""
    if not utm:
        return link
    parts = urlsplit(link)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {name for name, _ in query}
    query += [(name, value) for name, value in utm if name not in present]
    return urlunsplit(parts._replace(query=urlencode(query)))


def post_image(announcement: Announcement, options: RenderOptions) -> PostImage | None:
    """The announcement's image with an alt text that is never empty: the feed's, else the channel's
    default, else the announcement's title (a screen reader says something true about the post)."""
    image = announcement.image
    if image is None:
        return None
    alt = " ".join(image.alt.split()) or options.default_alt_text or " ".join(announcement.title.split())
    return PostImage(url=image.url, alt=alt or "Immagine")


@dataclass(frozen=True)
class PostParts:
    """A post as plain-text blocks; renderers fit these, then add their markup."""

    title: str
    summary: str
    link: str | None = None
    hashtags: tuple[str, ...] = ()

    @classmethod
    def from_announcement(cls, announcement: Announcement, options: RenderOptions | None = None) -> PostParts:
        options = options or RenderOptions()
        link = announcement.link.strip() if announcement.link else None
        return cls(
            # A title is one line: feeds often carry newlines and runs of spaces in it.
            title=" ".join(announcement.title.split()),
            summary=announcement.summary.strip(),
            link=with_utm(link, options.utm) if link else None,
            hashtags=hashtags(announcement.categories) if options.hashtags else (),
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


def thread_texts(
    parts: PostParts, *, measure: Measure, limit: int, max_posts: int
) -> tuple[tuple[str, ...], bool]:
    """A post too long for one as a thread of at most `max_posts` texts, each within `limit`, and
    whether anything was cut. The first text carries the title, the start of the summary, the link
    and the hashtags (so its link card is the thread's); the summary goes on in the replies, cut at
    words, each text numbered " (i/n)". What does not fit in `max_posts` is cut with an ellipsis, as
    `fit_post` cuts a single post."""
    if max_posts <= 1 or measure(plain_text(parts)) <= limit:
        fitted, truncated = fit_post(parts, measure=measure, limit=limit)
        return (plain_text(fitted),), truncated
    widest_marker = f" ({max_posts}/{max_posts})"
    room = limit - measure(widest_marker)
    first, truncated = fit_post(parts, measure=measure, limit=room)
    rest = _after(parts.summary, first.summary)
    if not first.summary or rest is None:
        # Not even a word of the summary fits next to the title and link: one cut post says more.
        fitted, truncated = fit_post(parts, measure=measure, limit=limit)
        return (plain_text(fitted),), truncated
    texts = [plain_text(first)]
    truncated = False
    while rest and len(texts) < max_posts:
        piece = shorten(rest, lambda text: measure(text) <= room)
        remainder = _after(rest, piece) if piece else None
        if not piece or remainder is None:
            truncated = True
            break
        texts.append(piece)
        rest = remainder
    truncated = truncated or bool(rest)
    if len(texts) == 1:
        fitted, cut = fit_post(parts, measure=measure, limit=limit)
        return (plain_text(fitted),), cut
    count = len(texts)
    return tuple(f"{text} ({index}/{count})" for index, text in enumerate(texts, start=1)), truncated


def _after(text: str, head: str) -> str | None:
    """What follows `head` (a start of `text` cut by `shorten`, maybe ending in an ellipsis) in
    `text`, without the separators at the cut; None when `head` is not a start of `text`."""
    kept = head.removesuffix(ELLIPSIS).rstrip()
    text = text.strip()
    if not text.startswith(kept):
        return None
    return text[len(kept) :].lstrip(_CUT_TRAILING + " \n")


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


def within_characters(text: str, limit: int) -> str:
    """`text` within `limit` characters (code points, as a platform counts a plain field such as an alt
    text), cut after a word; cut hard when not even the first word fits."""
    return shorten(text, lambda candidate: len(candidate) <= limit) or text[:limit]


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
