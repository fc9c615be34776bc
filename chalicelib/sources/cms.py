"""Read a CMS news feed (RSS 0.9x/1.0/2.0 or Atom) into plain `FeedItem`s, refusing unsafe documents.

Document rules, in the order they apply:

1. Entities: a document that declares one (``<!ENTITY``, any case, in any encoding feedparser could
   decode it with) is refused as ``unsafe_xml`` before feedparser sees it. Declared entities are how XML
   bombs and external-entity (XXE) reads work, and no news feed needs one. A DOCTYPE that only names an
   external DTD (RSS 0.91's Netscape DOCTYPE) is fine: nothing ever loads it.
2. The body reaches feedparser as a stream, never as a string, which feedparser may take for a file
   name or a URL and open.
3. A document in which feedparser recognises no RSS or Atom (an HTML page, an empty body, other XML)
   is ``not_a_feed``.
4. A document that is not well-formed XML is ``malformed`` unless the source sets
   `tolerate_malformed`; then the items of feedparser's lenient parser are taken, with a warning.
   Undefined entities (``&nbsp;`` in XML, the HTML entities of old RSS 0.91 feeds) count as malformed.
5. Accepted with a warning: a declared encoding that does not decode the bytes (Latin-1 declared as
   UTF-8: feedparser reads it in the encoding that works) and a non-XML content type (``text/html``).
   A declared codec that makes feedparser fail outright (punycode) is ``encoding``.
   ``text/xml`` without a charset follows RFC 7303 (the XML declaration decides), not RFC 3023's
   US-ASCII, so it raises no warning.
6. feedparser's HTML sanitiser and URI rewriting are off: nothing here emits HTML, only text, and the
   one image URL kept is resolved here. That saves about a quarter of the parse time.

Item rules:

- guid: RSS guid, Atom id or RSS 1.0 rdf:about, stripped; None when absent.
- link: the item's link made absolute and passed through `clean_link`; None unless http(s).
- title: plain text on one line (HTML titles are converted), at most `TITLE_MAX_CHARS`.
- summary: plain text of the summary (RSS description, Atom summary), else of the content
  (content:encoded, Atom content): tags dropped, entities decoded, whitespace collapsed, paragraphs and
  headings separated by a blank line, line breaks and list items (``• ``) on lines of their own,
  script/style text dropped; cut at a word boundary with "…" past `SUMMARY_MAX_CHARS`.
- image: the first image enclosure, media:content or media:thumbnail, its alt taken from an ``<img>``
  with the same URL in the item's HTML; else the first ``<img>`` of the summary, then of the content,
  with its alt. Images must be http(s); tracking pixels (width or height 0 or 1) are ignored.
- categories: each category's label, else its term, whitespace collapsed, first spelling kept of those
  equal but for case, in feed order.
- published: the published date, else the updated date (Atom requires only updated; RSS 1.0 has
  dc:date), in Europe/Rome. None when there is none: dateless items are kept, never dropped.
  feedparser reads a date without an offset as UTC.
- An entry with no title, no summary and no link has nothing to announce: it is skipped with a warning.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

import feedparser

from chalicelib.announcements import Image
from chalicelib.sources.dedupe import clean_link
from chalicelib.sources.errors import FeedError

ROME = ZoneInfo("Europe/Rome")
TITLE_MAX_CHARS = 300
SUMMARY_MAX_CHARS = 5_000

_ENTITY_DECLARATION = re.compile("<!ENTITY", re.IGNORECASE)
_XML_DECLARED_ENCODING = re.compile(r"""<\?xml[^>]*?encoding\s*=\s*["']([^"']*)""")
_EBCDIC_XML_START = b"\x4c\x6f\xa7\x94"  # "<?xm" in EBCDIC, which feedparser recognises
_WHITESPACE = re.compile(r"\s+")
_BLANK_LINES = re.compile(r"\n{3,}")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif")
_WEB_SCHEMES = ("http", "https")

# The break each element leaves in plain text: a blank line (2) around paragraphs and the like, a line
# break (1) around the rest. Breaks in a row merge into the strongest, except <br>s, which add up.
_PARAGRAPH, _LINE = 2, 1
_BREAKS = {
    **dict.fromkeys(
        ("p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "ul", "ol", "table", "pre", "figure",
         "hr", "section", "article", "header", "footer", "aside", "address", "details"),
        _PARAGRAPH,
    ),
    **dict.fromkeys(("li", "div", "tr", "dt", "dd", "figcaption", "caption"), _LINE),
}  # fmt: skip
_UNREAD = frozenset({"script", "style", "template", "noscript"})  # their text is never shown to readers


@dataclass(frozen=True)
class FeedItem:
    guid: str | None
    link: str | None
    title: str
    summary: str
    image: Image | None = None
    categories: tuple[str, ...] = ()
    published: datetime | None = None  # timezone-aware, Europe/Rome


@dataclass(frozen=True)
class ParsedFeed:
    version: str  # feedparser's format code: rss20, rss10, rss091n, atom10...
    title: str
    link: str | None
    items: tuple[FeedItem, ...]  # in document order
    warnings: tuple[str, ...] = ()


def parse_feed(body: bytes, *, url: str, content_type: str | None, tolerate_malformed: bool) -> ParsedFeed:
    """Parse a fetched feed. `url` is where it was fetched from (the base of relative links)."""
    _refuse_entity_declarations(body, url=url, content_type=content_type)
    try:
        result = feedparser.parse(
            io.BytesIO(body),
            response_headers=_response_headers(url, content_type),
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except UnicodeError as exc:  # feedparser lets a few codecs' failures through (punycode, undefined)
        raise FeedError("encoding", f"{url}: the declared character encoding cannot read it ({exc})") from exc
    version = _text(result.get("version"))
    if not version:
        raise FeedError("not_a_feed", f"{url}: no RSS or Atom feed in the document")
    warnings = _document_warnings(result, url=url, content_type=content_type, tolerate=tolerate_malformed)
    items: list[FeedItem] = []
    for number, entry in enumerate(result.entries, start=1):
        item = _feed_item(entry, base=url)
        if item is None:
            warnings.append(f"entry {number} has no title, summary or link: skipped")
        else:
            items.append(item)
    return ParsedFeed(
        version=version,
        title=_title(result.feed),
        link=_web_link(result.feed.get("link"), url),
        items=tuple(items),
        warnings=tuple(warnings),
    )


# --- document checks ---


def _refuse_entity_declarations(body: bytes, *, url: str, content_type: str | None) -> None:
    if any(_ENTITY_DECLARATION.search(text) for text in _readings(body, content_type)):
        raise FeedError(
            "unsafe_xml",
            f"{url}: the document declares XML entities (<!ENTITY>), the mechanism of XML bombs and "
            "external-entity attacks; refused without parsing",
        )


def _readings(body: bytes, content_type: str | None) -> Iterator[str]:
    """The document as each decoder feedparser might pick would read it, enough to find a declaration."""
    # ASCII-compatible encodings write "<!ENTITY" as the same bytes, and UTF-16/32 as the same bytes with
    # NULs between them: one reading without the NULs covers all of them, and feedparser's fallbacks.
    readings = [body.replace(b"\x00", b"").decode("latin-1")]
    if body.startswith(_EBCDIC_XML_START):
        readings.append(body.decode("cp037", "replace"))
    yield from readings
    # A declared encoding may decode other bytes into "<!ENTITY" (UTF-7 reads "+ADw-" as "<"), so the
    # document is also read in each one declared, as feedparser would.
    for encoding in _declared_encodings(content_type, readings):
        decoded = _decoded(body, encoding)
        if decoded is not None:
            yield decoded


def _decoded(body: bytes, encoding: str) -> str | None:
    for errors in ("replace", "strict"):  # some codecs (idna) only decode strictly
        try:
            return body.decode(encoding, errors)
        except LookupError:  # unknown to Python, or not a text encoding: feedparser skips it too
            return None
        except UnicodeError:
            continue
    return None  # undecodable: feedparser cannot read it in this encoding either


def _declared_encodings(content_type: str | None, readings: list[str]) -> set[str]:
    declared = {match.group(1) for text in readings if (match := _XML_DECLARED_ENCODING.search(text[:1024]))}
    charset = _charset(content_type or "")
    return declared | {charset} if charset else declared


def _charset(content_type: str) -> str:
    """The charset parameter of a Content-Type, parsed the way feedparser does."""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip("\"'")
    return ""


def _response_headers(url: str, content_type: str | None) -> dict[str, str]:
    # Content-Location is how feedparser learns the base URL of a document given as a stream.
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = _xml_type_per_rfc7303(content_type)
    return headers


def _xml_type_per_rfc7303(content_type: str) -> str:
    # feedparser follows RFC 3023: text/xml without a charset is US-ASCII, the XML declaration ignored.
    # RFC 7303 replaced that rule with the one of application/xml, which is what CMSs rely on.
    mime = content_type.partition(";")[0].strip().lower()
    is_text_xml = mime == "text/xml" or (mime.startswith("text/") and mime.endswith("+xml"))
    return "application/xml" if is_text_xml and not _charset(content_type) else content_type


def _document_warnings(result: Any, *, url: str, content_type: str | None, tolerate: bool) -> list[str]:
    if not result.get("bozo"):
        return []
    problem = result.get("bozo_exception")
    if isinstance(problem, feedparser.CharacterEncodingOverride):
        return [f"wrong character encoding: {problem}"]
    if isinstance(problem, feedparser.NonXMLContentType):
        # Without a content type (a file, a test) feedparser only says that none was given.
        return [f"not served as XML: {problem}"] if content_type else []
    if not tolerate:
        raise FeedError(
            "malformed",
            f"{url}: not well-formed XML ({problem}); set tolerate_malformed on the source to accept "
            "what a lenient parser reads",
        )
    return [f"not well-formed XML ({problem}): items read by the lenient parser"]


# --- items ---


@dataclass(frozen=True)
class _Fragment:
    text: str
    images: tuple[Image, ...]


class _EntryText:
    """The entry's text parts, summary first and then content, each read once and only when needed."""

    def __init__(self, entry: Any, base: str) -> None:
        details = [entry.get("summary_detail"), *(entry.get("content") or [])]
        self._details = [detail for detail in details if detail and _text(detail.get("value")).strip()]
        self._base = base
        self._read: list[_Fragment] = []

    def fragments(self) -> Iterator[_Fragment]:
        for index, detail in enumerate(self._details):
            if index == len(self._read):
                self._read.append(_read_detail(detail, self._base))
            yield self._read[index]

    def summary(self) -> str:
        text = next((fragment.text for fragment in self.fragments() if fragment.text), "")
        return _truncate(text, SUMMARY_MAX_CHARS)

    def images(self) -> Iterator[Image]:
        return (image for fragment in self.fragments() for image in fragment.images)


def _feed_item(entry: Any, *, base: str) -> FeedItem | None:
    text = _EntryText(entry, base)
    title = _title(entry)
    summary = text.summary()
    link = _web_link(entry.get("link"), base)
    if not (title or summary or link):
        return None
    return FeedItem(
        guid=_text(entry.get("id")).strip() or None,
        link=link,
        title=title,
        summary=summary,
        image=_image(entry, text, base),
        categories=_categories(entry),
        published=_published(entry),
    )


def _title(node: Any) -> str:
    detail = node.get("title_detail") or {}
    value = _text(node.get("title"))
    if _is_html(detail):
        value = _html_text(value, base="").text
    return _truncate(" ".join(value.split()), TITLE_MAX_CHARS)


def _image(entry: Any, text: _EntryText, base: str) -> Image | None:
    attached = _attached_image(entry, base)
    if attached is None:
        return next(text.images(), None)
    alt = next((image.alt for image in text.images() if image.url == attached.url and image.alt), "")
    return replace(attached, alt=alt)


def _attached_image(entry: Any, base: str) -> Image | None:
    for url, mime, is_image in _attachments(entry):
        link = _absolute_web_url(url, base)
        mime_type = _text(mime) or None
        if link and (is_image or _looks_like_image(link, mime_type)):
            return Image(url=link, mime_type=mime_type)
    return None


def _attachments(entry: Any) -> Iterator[tuple[object, object, bool]]:
    """(url, MIME type, known to be an image) of each enclosure, media:content and media:thumbnail."""
    for enclosure in entry.get("enclosures") or []:
        yield enclosure.get("href"), enclosure.get("type"), False
    for media in entry.get("media_content") or []:
        yield media.get("url"), media.get("type"), media.get("medium") == "image"
    for thumbnail in entry.get("media_thumbnail") or []:
        yield thumbnail.get("url"), None, True


def _looks_like_image(url: str, mime_type: str | None) -> bool:
    if mime_type:
        return mime_type.lower().startswith("image/")
    return urlsplit(url).path.lower().endswith(_IMAGE_SUFFIXES)


def _categories(entry: Any) -> tuple[str, ...]:
    names: dict[str, str] = {}  # case-folded -> first spelling, in feed order
    for tag in entry.get("tags") or []:
        name = " ".join((_text(tag.get("label")) or _text(tag.get("term"))).split())
        if name:
            names.setdefault(name.casefold(), name)
    return tuple(names.values())


def _published(entry: Any) -> datetime | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        return None
    year, month, day, hour, minute, second = parsed[:6]
    try:
        # feedparser gives UTC; a leap second (60) would not fit a datetime.
        moment = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except (TypeError, ValueError):
        return None
    return moment.astimezone(ROME)


# --- text and URLs ---


def _read_detail(detail: Any, base: str) -> _Fragment:
    value = _text(detail.get("value"))
    if _is_html(detail):
        # Relative image URLs are relative to the element's xml:base, which feedparser records.
        return _html_text(value, base=_absolute_web_url(detail.get("base"), base) or base)
    lines = (" ".join(line.split()) for line in value.splitlines())
    return _Fragment(text=_BLANK_LINES.sub("\n\n", "\n".join(lines)).strip(), images=())


def _is_html(detail: Any) -> bool:
    return "html" in _text(detail.get("type"))


def _html_text(html: str, *, base: str) -> _Fragment:
    reader = _HtmlReader(base)
    reader.feed(html)
    reader.close()
    return _Fragment(text=reader.text(), images=tuple(reader.images))


class _HtmlReader(HTMLParser):
    """Collects the plain text of an HTML fragment and its images, in document order."""

    def __init__(self, base: str) -> None:
        super().__init__(convert_charrefs=True)
        self.images: list[Image] = []
        self._base = base
        self._parts: list[str] = []
        self._unread_depth = 0
        # Breaks and the list bullet wait for the next text, so that nested blocks ("<li><p>") and
        # empty ones leave no stray lines.
        self._pending_break = 0
        self._bullet = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _UNREAD:
            self._unread_depth += 1
        elif tag == "img":
            self._add_image(dict(attrs))
        elif tag == "br":
            self._pending_break = min(self._pending_break + 1, _PARAGRAPH)
        elif tag in ("td", "th"):
            self._parts.append(" ")
        self._pending_break = max(self._pending_break, _BREAKS.get(tag, 0))
        self._bullet = self._bullet or tag == "li"

    def handle_endtag(self, tag: str) -> None:
        if tag in _UNREAD:
            self._unread_depth = max(0, self._unread_depth - 1)
        self._pending_break = max(self._pending_break, _BREAKS.get(tag, 0))

    def handle_data(self, data: str) -> None:
        if self._unread_depth:
            return
        if data.strip():
            self._parts.append("\n" * self._pending_break + ("• " if self._bullet else ""))
            self._pending_break, self._bullet = 0, False
        self._parts.append(_WHITESPACE.sub(" ", data))

    def text(self) -> str:
        return "\n".join(line.strip() for line in "".join(self._parts).split("\n")).strip()

    def _add_image(self, attrs: Mapping[str, str | None]) -> None:
        url = _absolute_web_url(attrs.get("src"), self._base)
        is_pixel = {attrs.get("width"), attrs.get("height")} & {"0", "1"}
        if url and not is_pixel:
            self.images.append(Image(url=url, alt=" ".join((attrs.get("alt") or "").split())))


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    boundary = max(cut.rfind(" "), cut.rfind("\n"))
    if boundary > limit // 2:  # a word boundary not too far back; else cut mid-word
        cut = cut[:boundary]
    return cut.rstrip() + "…"


def _absolute_web_url(value: object, base: str) -> str | None:
    text = _text(value).strip()
    if not text:
        return None
    try:
        absolute = urljoin(base, text)
        parts = urlsplit(absolute)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None
    return absolute if parts.scheme in _WEB_SCHEMES and parts.hostname else None


def _web_link(value: object, base: str) -> str | None:
    absolute = _absolute_web_url(value, base)
    return clean_link(absolute) if absolute else None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
