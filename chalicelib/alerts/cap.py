"""Read CAP (Common Alerting Protocol) alerts into the alert model, tolerantly and safely, and answer
what every alert post asks: which language to show, which level, which hazard, and whether it is over.

Document rules, in the order they apply:

1. Size: a body over `MAX_CAP_BYTES` is ``too_large``, checked before anything is read.
2. An empty body and an HTML page (``<!DOCTYPE html`` or ``<html`` at the start) are ``not_cap``:
   HTML is rarely well-formed XML, so it is recognised before the XML parser sees it.
3. Safety (defusedxml): a DTD, an entity declaration or an external reference is ``unsafe_xml``. CAP
   never needs a DTD, and they are how XML bombs and external-entity (XXE) reads work.
4. A declared character encoding the parser cannot use (unknown, multi-byte) is ``encoding``.
5. Tolerated: any namespace or none (CAP 1.0-1.2, extra namespaces), element names in any case,
   whitespace before the XML declaration, processing instructions (xml-stylesheet), comments, an
   enveloped XML signature (an unknown element inside ``alert``). Two repairs are tried, each once, on
   a document that is not well-formed:
   - content after the root element (a detached signature, a second alert): the document is read as
     if the elements were wrapped in one root;
   - bytes that are not UTF-8 in a document declared (or defaulting to) UTF-8: each run is read as
     Windows-1252, so Latin-1 accents survive; characters XML forbids (C0 controls) are dropped.
   Still not well-formed: ``malformed``.
6. Alerts: the root ``alert``, else every outermost ``alert`` below the root (SMHI's ``<alerts>``
   wrapper, an EDXL or SOAP envelope, an Atom feed that embeds CAP), in document order. None:
   ``not_cap``. In a document with several, one that cannot be read is logged and skipped; when none
   can be read, the first one's error is raised.

Field rules:

- identifier, sender, sent, status and msgType are required (``missing_field``); status and msgType
  are matched in any case, an unknown value is ``bad_value``. scope defaults to ``Public``.
- Empty elements (``<references />``, ``<instruction/>``) read as absent.
- Times must carry a UTC offset (CAP's ``-00:00`` is UTC, ``Z`` is accepted) and fall in 1970-2999;
  otherwise ``bad_value``: a guessed offset would move an alert's validity by hours, and absurd years
  would overflow time-zone arithmetic downstream.
- references: every ``sender,identifier,sent`` triple, separated by any whitespace (spaces around
  the commas tolerated); text that forms no triple is ignored.
- Info language: as written; when absent, ``it-IT`` for an Italian alerting authority (a WMO OID
  sender ``2.49.0.0.380…`` or ``2.49.0.1.380…``, as the DPC uses), else CAP's default ``en-US``.
  The DPC writes Italian without saying so, and calling it en-US would mislead every language choice.
- Polygons: ``lat,lon`` pairs separated by whitespace. Pairs that are not two numbers within WGS84
  range are skipped; an open ring is closed. A polygon left with fewer than 3 distinct points or with
  no area (collinear points) is dropped with a warning: it cannot contain any place, and dropping it
  keeps every polygon a consumer sees usable for point-in-polygon tests. Thin slivers are kept.
- Circles: ``lat,lon radius_km``; a radius of 0 (CAP's way to give a point) is kept; an unreadable
  circle, or one with a negative radius or one past half the Earth's circumference, is dropped with
  a warning.
- Text is stripped; multi-line descriptions keep their lines; HTML in a description is left as is.

`preferred_info`, `alert_level`, `hazard` and `is_all_clear` document their own rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Protocol, TypeVar, get_args
from xml.etree.ElementTree import Element, ParseError
from xml.parsers.expat import errors as expat_errors

import defusedxml.ElementTree as safe_xml
from defusedxml import DefusedXmlException

from chalicelib.alerts.errors import AlertError, shown
from chalicelib.alerts.geometry import twice_area
from chalicelib.alerts.model import (
    Alert,
    Area,
    Circle,
    Info,
    Level,
    MessageType,
    Point,
    Reference,
    Status,
)
from chalicelib.observability import logger

MAX_CAP_BYTES = 2 * 1024 * 1024

_Value = TypeVar("_Value")

# Stable hazard keys, Italian as the posts are; "altro" when nothing says which.
HAZARDS = (
    "idrogeologico", "idraulico", "temporali", "vento", "neve", "ghiaccio", "calore", "freddo",
    "pioggia", "alluvione", "mare", "valanghe", "incendi", "nebbia", "altro",
)  # fmt: skip

_STATUSES: dict[str, Status] = {status.casefold(): status for status in get_args(Status)}
_MESSAGE_TYPES: dict[str, MessageType] = {kind.casefold(): kind for kind in get_args(MessageType)}

# A comment's body may not contain "-->": a lazy ".*?" there would backtrack exponentially.
_HTML_START = re.compile(
    rb"(?:\xef\xbb\xbf)?\s*(?:<!--(?:[^-]|-(?!->))*-->\s*)*<(?:!doctype\s+html|html)[\s>]", re.IGNORECASE
)
_HTML_SNIFF_BYTES = 1024
_PROLOGUE = re.compile(rb"(?:\xef\xbb\xbf)?(?:<\?xml\b[^>]*\?>)?")  # BOM and XML declaration, if any
_DECLARED_ENCODING = re.compile(rb"""^(?:\xef\xbb\xbf)?<\?xml\b[^>]*?encoding\s*=\s*["']([^"']*)""")
_UTF8_NAMES = ("", "utf-8", "utf8")
_UNDECODED = re.compile("[\udc80-\udcff]+")  # bytes that "surrogateescape" could not decode
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")  # never valid in XML

_EARLIEST_YEAR, _LATEST_YEAR = 1970, 2999
_ITALIAN_AUTHORITY = re.compile(r"(?:urn:oid:)?2\.49\.0\.[01]\.380(?:\.|$)")
_REFERENCE_PARTS = 3  # sender, identifier, sent
# Written so that a long run of digits cannot backtrack: every pattern here meets documents of
# megabytes, where a quadratic regex is a denial of service.
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")
_TRIANGLE = 3  # distinct points, at the least
_MIN_AREA_DEG2 = 1e-10  # about a square metre: below it, rounding noise on collinear points
_MAX_RADIUS_KM = 20_037.5  # half the Earth's circumference

# alert_level: awareness_level's number or colour; Italian colour words after "allerta" and the like,
# and the DPC's degrees of criticità; CAP severity last.
_AWARENESS_LEVELS = {
    "1": Level.GREEN, "2": Level.YELLOW, "3": Level.ORANGE, "4": Level.RED,
    "green": Level.GREEN, "yellow": Level.YELLOW, "orange": Level.ORANGE, "red": Level.RED,
}  # fmt: skip
_ITALIAN_LEVELS = {
    "verde": Level.GREEN, "gialla": Level.YELLOW, "giallo": Level.YELLOW, "arancione": Level.ORANGE,
    "arancio": Level.ORANGE, "rossa": Level.RED, "rosso": Level.RED,
    "ordinaria": Level.YELLOW, "moderata": Level.ORANGE, "elevata": Level.RED,
}  # fmt: skip
_NO_LETTER_BEFORE, _NO_LETTER_AFTER = r"(?<![^\W\d_])", r"(?![^\W\d_])"
_ITALIAN_LEVEL = re.compile(
    _NO_LETTER_BEFORE
    + r"(?:(?:allerta|allarme|codice|livello|all(?=_))(?:[\s_:'/-]+(?:meteo|di))*[\s_:'/-]+"
    + r"(?P<colour>verde|giall[oa]|arancio(?:ne)?|ross[oa])"
    + _NO_LETTER_AFTER
    + r"|(?P<criticity>ordinaria|moderata|elevata)\s+criticit)",  # criticità, CRITICITA'...
    re.IGNORECASE,
)
_SEVERITY_LEVELS = {
    "minor": Level.GREEN, "moderate": Level.YELLOW, "severe": Level.ORANGE, "extreme": Level.RED,
}  # fmt: skip

# hazard: MeteoAlarm's awareness_type numbers, then words (Italian, and English for other countries).
_AWARENESS_TYPES = {
    "1": "vento", "2": "neve", "3": "temporali", "4": "nebbia", "5": "calore", "6": "freddo", "7": "mare",
    "8": "incendi", "9": "valanghe", "10": "pioggia", "12": "alluvione", "13": "alluvione",
}  # fmt: skip
_HAZARD_PATTERNS = (
    ("idrogeologico", r"idrogeologic[oa]"),
    ("idraulico", r"idraulic[oa]"),
    ("temporali", r"temporal[ei]|thunderstorms?"),
    ("valanghe", r"valang(?:a|he)|avalanches?"),
    ("incendi", r"incend(?:io|i)|(?:wild)?fires?"),
    ("nebbia", r"nebbi[ae]|fog"),
    ("ghiaccio", r"ghiacci[oa]?|gelat[ae]|ice|frost"),
    ("neve", r"nev[ei]|nevicat[ae]|snow(?:fall)?"),
    ("calore", r"calore|caldo|heat|high[- ]temperatures?"),
    ("freddo", r"fredd[oa]|gelo|cold|low[- ]temperatures?"),
    ("mare", r"mareggiat[ae]|moto ondoso|coastal(?:[- ]?event)?"),
    ("alluvione", r"alluvion[ei]|esondazion[ei]|flood(?:s|ing)?|rain[- ]flood"),
    ("pioggia", r"piogg(?:ia|e)|precipitazion[ei]|rain(?:fall)?"),
    ("vento", r"vent[oi]|wind|gales?|hurricane|tornado(?:es)?"),
)
_HAZARD_WORD = re.compile(
    _NO_LETTER_BEFORE
    + "(?:"
    + "|".join(f"(?P<{key}>{pattern})" for key, pattern in _HAZARD_PATTERNS)
    + ")"
    + _NO_LETTER_AFTER,
    re.IGNORECASE,
)


def parse_cap(body: bytes, *, source_url: str | None = None) -> tuple[Alert, ...]:
    """Every alert of a CAP document, in document order. Raises AlertError, and nothing else."""
    root = load_xml(body, max_bytes=MAX_CAP_BYTES)
    elements = _alert_elements(root)
    if not elements:
        raise AlertError("not_cap", f"no CAP alert in the document (its root is {shown(local_name(root))})")
    return read_each(partial(read_alert, XmlNode(element), source_url=source_url) for element in elements)


# --- helpers for posts ---


def preferred_info(alert: Alert, languages: Sequence[str] = ("it", "en")) -> Info | None:
    """The info block to show: the first whose language is, or is a variant of, the first language of
    `languages` that any block has ("it" takes it-IT, it-CH, it); else the first block. None when the
    alert has none (a Cancel may not). Tags compare in any case, ``_`` read as ``-``."""
    for wanted in languages:
        for info in alert.infos:
            if _speaks(info.language, wanted):
                return info
    return alert.infos[0] if alert.infos else None


def alert_level(info: Info) -> Level | None:
    """The awareness level of an info block, from the first source that gives one:

    1. the ``awareness_level`` parameter (MeteoAlarm): its number 1-4 or its colour word, any case;
    2. Italian level words in the event, else the headline, else the description (the first of these
       with any; the most severe in it): a colour (verde, gialla/giallo, arancione/arancio,
       rossa/rosso) right after "allerta", "allarme", "codice", "livello" or the DPC's "all_"
       ("allerta meteo arancione", "ALLERTA GIALLA"), or a DPC degree of criticità (ordinaria: yellow,
       moderata: orange, elevata: red). A bare colour word is not enough ("Croce Rossa");
    3. CAP severity: Minor green, Moderate yellow, Severe orange, Extreme red.

    None when nothing says (severity Unknown)."""
    return (
        _awareness_level(info)
        or _italian_level(info)
        or _SEVERITY_LEVELS.get(info.severity.strip().casefold())
    )


def hazard(info: Info) -> str:
    """A stable Italian hazard key, one of `HAZARDS`: from the ``awareness_type`` parameter (its
    MeteoAlarm number: 1 vento, 2 neve, 3 temporali, 4 nebbia, 5 calore, 6 freddo, 7 mare, 8 incendi,
    9 valanghe, 10 pioggia, 12 and 13 alluvione; else its name), else from the first hazard word in the
    event, else the headline, else the description (Italian words as the DPC and regions write them,
    "rischio temporali", "idrogeologico", and English ones); "altro" when none is found."""
    value = _parameter(info, "awareness_type")
    number = value.partition(";")[0].strip()
    return (
        _AWARENESS_TYPES.get(number)
        or _hazard_word(value)
        or next(filter(None, map(_hazard_word, (info.event, info.headline, info.description))), "altro")
    )


def is_all_clear(alert: Alert, info: Info | None) -> bool:
    """Whether the alert ends the one it references: a Cancel; or an Update whose info has
    responseType AllClear, or expires at or before it takes effect (France ends warnings so, without a
    Cancel). effective defaults to sent, as in CAP."""
    if alert.msg_type == "Cancel":
        return True
    if alert.msg_type != "Update" or info is None:
        return False
    ended = info.expires is not None and info.expires <= (info.effective or alert.sent)
    return ended or any(kind.casefold() == "allclear" for kind in info.response_type)


def _speaks(language: str, wanted: str) -> bool:
    tag, want = (text.strip().casefold().replace("_", "-") for text in (language, wanted))
    return tag == want or tag.startswith(want + "-")


def _parameter(info: Info, name: str) -> str:
    return next((value for key, value in info.parameters if key.casefold() == name), "")


def _awareness_level(info: Info) -> Level | None:
    fields = (field.strip().casefold() for field in _parameter(info, "awareness_level").split(";"))
    return next((_AWARENESS_LEVELS[field] for field in fields if field in _AWARENESS_LEVELS), None)


def _italian_level(info: Info) -> Level | None:
    for text in (info.event, info.headline, info.description):
        words = [match["colour"] or match["criticity"] for match in _ITALIAN_LEVEL.finditer(text)]
        if words:
            return max(_ITALIAN_LEVELS[word.casefold()] for word in words)
    return None


def _hazard_word(text: str) -> str | None:
    match = _HAZARD_WORD.search(text)
    return match.lastgroup if match else None


# --- reading alerts, from XML here and from MeteoAlarm's JSON in meteoalarm.py ---


class CapNode(Protocol):
    """A CAP element, read the same way whatever it was written in."""

    def texts(self, name: str) -> tuple[str, ...]:
        """The stripped, non-empty text of every child called `name`."""
        ...

    def children(self, name: str) -> tuple[CapNode, ...]: ...


@dataclass(frozen=True)
class XmlNode:
    """An XML element whose children are found by local name in any case, whatever their namespace."""

    element: Element

    def texts(self, name: str) -> tuple[str, ...]:
        # itertext: a description with (invalid, but real) XHTML markup inside keeps its text.
        return tuple(text for child in self._named(name) if (text := "".join(child.itertext()).strip()))

    def children(self, name: str) -> tuple[XmlNode, ...]:
        return tuple(XmlNode(child) for child in self._named(name))

    def _named(self, name: str) -> Iterable[Element]:
        key = name.casefold()
        return (child for child in self.element if local_name(child) == key)


def local_name(element: Element) -> str:
    """The tag without its namespace, case-folded; "" for comments and processing instructions."""
    return element.tag.rpartition("}")[2].casefold() if isinstance(element.tag, str) else ""


def read_alert(
    node: CapNode, *, source_url: str | None = None, extra: Mapping[str, str] | None = None
) -> Alert:
    """An alert from a CAP alert element, by the field rules of this module."""
    identifier = _required(node, "identifier")
    sender = _required(node, "sender")
    language = "it-IT" if _ITALIAN_AUTHORITY.match(sender) else "en-US"
    return Alert(
        identifier=identifier,
        sender=sender,
        sent=parse_time(_required(node, "sent"), "sent"),
        status=_required_value(node, "status", status_of),
        msg_type=_required_value(node, "msgType", message_type_of),
        scope=first_text(node, "scope") or "Public",
        references=_references(" ".join(node.texts("references"))),
        note=first_text(node, "note"),
        infos=tuple(_info(info, language) for info in node.children("info")),
        source_url=source_url,
        extra=dict(extra or {}),
    )


def read_each(readers: Iterable[Callable[[], Alert]]) -> tuple[Alert, ...]:
    """The alerts that read: one broken alert of a list must not hide the others. Those that do not
    are logged; when none reads, the first one's error is raised."""
    alerts: list[Alert] = []
    errors: list[AlertError] = []
    for read in readers:
        try:
            alerts.append(read())
        except AlertError as error:
            errors.append(error)
    if errors and not alerts:
        raise errors[0]
    for skipped in errors:
        logger.warning("Alert skipped", extra={"reason": skipped.reason, "error": str(skipped)})
    return tuple(alerts)


def status_of(text: str) -> Status | None:
    return _STATUSES.get(text.strip().casefold())


def message_type_of(text: str) -> MessageType | None:
    return _MESSAGE_TYPES.get(text.strip().casefold())


def parse_time(text: str, field: str) -> datetime:
    try:
        moment: datetime | None = datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or not _EARLIEST_YEAR <= moment.year <= _LATEST_YEAR:
        raise AlertError("bad_value", f"{field} {shown(text)} is not a date and time with a UTC offset")
    return moment


def first_text(node: CapNode, name: str) -> str:
    """The text of the first child called `name` that has any; "" when none has."""
    texts = node.texts(name)
    return texts[0] if texts else ""


def _required(node: CapNode, name: str) -> str:
    text = first_text(node, name)
    if not text:
        raise AlertError("missing_field", f"the alert has no {name}")
    return text


def _required_value(node: CapNode, name: str, value_of: Callable[[str], _Value | None]) -> _Value:
    text = _required(node, name)
    value = value_of(text)
    if value is None:
        raise AlertError("bad_value", f"{name} {shown(text)} is not a CAP value")
    return value


def _references(text: str) -> tuple[Reference, ...]:
    triples = (token.split(",") for token in _comma_tokens(text))
    return tuple(Reference(*parts) for parts in triples if len(parts) == _REFERENCE_PARTS and all(parts))


def _comma_tokens(text: str) -> list[str]:
    """The whitespace-separated tokens of `text`, with spaces around commas removed ("45.1, 9.2" is
    one token). Split and strip, not a regex: linear on any input."""
    return ",".join(part.strip() for part in text.split(",")).split()


def _info(node: CapNode, default_language: str) -> Info:
    return Info(
        language=first_text(node, "language") or default_language,
        event=first_text(node, "event"),
        category=node.texts("category"),
        response_type=node.texts("responseType"),
        urgency=first_text(node, "urgency"),
        severity=first_text(node, "severity"),
        certainty=first_text(node, "certainty"),
        effective=_time(node, "effective"),
        onset=_time(node, "onset"),
        expires=_time(node, "expires"),
        sender_name=first_text(node, "senderName"),
        headline=first_text(node, "headline"),
        description=first_text(node, "description"),
        instruction=first_text(node, "instruction"),
        web=first_text(node, "web"),
        parameters=_pairs(node, "parameter"),
        areas=tuple(_area(area) for area in node.children("area")),
    )


def _time(node: CapNode, name: str) -> datetime | None:
    text = first_text(node, name)
    return parse_time(text, name) if text else None


def _pairs(node: CapNode, name: str) -> tuple[tuple[str, str], ...]:
    """(valueName, value) of each `name` child (parameter, geocode) that has both."""
    pairs = ((first_text(child, "valueName"), first_text(child, "value")) for child in node.children(name))
    return tuple((key, value) for key, value in pairs if key and value)


def _area(node: CapNode) -> Area:
    polygons = (_polygon(text) for text in node.texts("polygon"))
    circles = (_circle(text) for text in node.texts("circle"))
    return Area(
        description=first_text(node, "areaDesc"),
        polygons=tuple(polygon for polygon in polygons if polygon is not None),
        circles=tuple(circle for circle in circles if circle is not None),
        geocodes=_pairs(node, "geocode"),
    )


def _polygon(text: str) -> tuple[Point, ...] | None:
    pairs = _comma_tokens(text)
    points = [point for point in map(_point, pairs) if point is not None]
    if points and points[0] != points[-1]:
        points.append(points[0])
    if len(set(points)) < _TRIANGLE or twice_area(points) < 2 * _MIN_AREA_DEG2:
        logger.warning("Polygon without area dropped", extra={"pairs": len(pairs), "usable": len(points)})
        return None
    if len(points) < len(pairs):
        logger.warning("Polygon pairs skipped", extra={"pairs": len(pairs), "usable": len(points)})
    return tuple(points)


def _point(pair: str) -> Point | None:
    """A "lat,lon" pair, or None unless both are plain numbers within WGS84's range."""
    lat_text, comma, lon_text = pair.partition(",")
    if not (comma and _NUMBER.fullmatch(lat_text) and _NUMBER.fullmatch(lon_text)):
        return None
    lat, lon = float(lat_text), float(lon_text)
    return (lat, lon) if -90 <= lat <= 90 and -180 <= lon <= 180 else None  # noqa: PLR2004


def _circle(text: str) -> Circle | None:
    center_text, radius_text = (*_comma_tokens(text), "", "")[:2]
    center = _point(center_text)
    radius = float(radius_text) if _NUMBER.fullmatch(radius_text) else -1.0
    if center is None or not 0 <= radius <= _MAX_RADIUS_KM:
        logger.warning("Circle dropped: not a point and a radius in km")
        return None
    return Circle(center=center, radius_km=radius)


# --- safe XML ---


def check_size(body: bytes, max_bytes: int) -> None:
    if len(body) > max_bytes:
        raise AlertError("too_large", f"the document is {len(body):,} bytes, over the limit of {max_bytes:,}")


def load_xml(body: bytes, *, max_bytes: int) -> Element:
    """The root element of a document read by rules 1-5 of this module."""
    check_size(body, max_bytes)
    stripped = body.lstrip(b" \t\r\n")
    # Whitespace before the XML declaration is an error to expat; UTF-16 text does not start with "<".
    document = stripped if stripped.startswith(b"<") else body
    if not document.strip() or _HTML_START.match(document[:_HTML_SNIFF_BYTES]):
        raise AlertError("not_cap", "an empty document or an HTML page, not CAP")
    return _parse_repairing(document)


def _parse_repairing(document: bytes) -> Element:
    applied: set[Callable[[bytes], bytes]] = set()
    while True:
        try:
            return _parse(document)
        except ParseError as error:
            repair = _REPAIRS.get(error.code)
            repaired = repair(document) if repair is not None and repair not in applied else document
            if repair is None or repaired == document:
                raise AlertError("malformed", f"not well-formed XML ({error})") from error
            applied.add(repair)
            document = repaired


def _parse(document: bytes) -> Element:
    try:
        root: Element = safe_xml.fromstring(
            document, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as error:
        raise AlertError(
            "unsafe_xml", "the document has a DTD, an entity declaration or an external reference"
        ) from error
    except (LookupError, ValueError) as error:  # unknown or multi-byte codec; UnicodeError is a ValueError
        raise AlertError(
            "encoding", f"the declared encoding {shown(_declared_encoding(document))} cannot be read"
        ) from error
    return root


def _as_forest(document: bytes) -> bytes:
    """The document's elements wrapped in one root, after its XML declaration (which must stay first
    and keeps saying how to decode the rest)."""
    prologue = _PROLOGUE.match(document)
    start = prologue.end() if prologue else 0
    return document[:start] + b"<_>" + document[start:] + b"</_>"


def _as_clean_utf8(document: bytes) -> bytes:
    if _declared_encoding(document).casefold() not in _UTF8_NAMES:
        return document  # bytes of another declared encoding are the parser's to decode
    return clean_text(decode_damaged_utf8(document)).encode("utf-8")


def _declared_encoding(document: bytes) -> str:
    declared = _DECLARED_ENCODING.match(document)
    return declared.group(1).decode("ascii", "replace") if declared else ""


def decode_damaged_utf8(body: bytes) -> str:
    """UTF-8 text in which each run of bytes that are not UTF-8 is read as Windows-1252 (Latin-1's
    superset), so a document mixing both keeps its good accents and recovers the damaged ones."""
    return _UNDECODED.sub(_run_as_cp1252, body.decode("utf-8", "surrogateescape"))


def _run_as_cp1252(run: re.Match[str]) -> str:
    return bytes(ord(char) - 0xDC00 for char in run.group()).decode("cp1252", "replace")


def clean_text(text: str) -> str:
    """`text` without the characters XML forbids (C0 controls, lone surrogates): they cannot be
    posted, and some platforms refuse a message that has one."""
    return _NOT_TEXT.sub("", text)


_REPAIRS: dict[int, Callable[[bytes], bytes]] = {
    expat_errors.codes[expat_errors.XML_ERROR_JUNK_AFTER_DOC_ELEMENT]: _as_forest,
    expat_errors.codes[expat_errors.XML_ERROR_INVALID_TOKEN]: _as_clean_utf8,
    expat_errors.codes[expat_errors.XML_ERROR_PARTIAL_CHAR]: _as_clean_utf8,
}


def _alert_elements(root: Element) -> list[Element]:
    """The outermost elements called alert, in document order (iteratively: depth is the sender's)."""
    found: list[Element] = []
    pending = [root]
    while pending:
        element = pending.pop()
        if local_name(element) == "alert":
            found.append(element)
        else:
            pending.extend(reversed(element))
    return found
