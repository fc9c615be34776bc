"""Read MeteoAlarm's two list formats: the JSON warnings API (whole alerts, CAP as JSON) and the Atom
feed (one entry per info and area, each pointing to its CAP document).

JSON rules: the body is ``{"warnings": [{"alert": {…}, "uuid": …}, …]}``; each ``alert`` is read by the
same code as a CAP XML alert (`cap.read_alert`), so the same fields are required and the same
tolerance applies; lists stand where CAP repeats an element (category, responseType, info, area,
parameter, geocode), and a single value is taken where a list was expected. The uuid goes to
``Alert.extra["uuid"]``, and with the feed's `url` makes the alert's `source_url` (``<url>/<uuid>``,
where MeteoAlarm serves that warning's CAP XML). An empty list is a quiet day, not an error. Text is
cleaned of characters XML forbids. Invalid UTF-8 is read as in CAP documents.

Atom rules: the document is read as safely as a CAP document (`cap.load_xml`). Entries are matched by
local name, whatever the prefix of their ``cap:`` fields. Entries of one identifier collapse into one
`AtomEntry`, in first-seen order: its CAP link (the first of type ``application/cap+xml``, made
absolute; http(s) only), message type and status are the first given, its `expires` the latest, so an
index entry is never thought expired while one of its infos still runs. Entries without an
identifier are skipped. Unreadable values become None: the CAP document is the authority, the index
only says what to fetch. The feed's ``rel="hub"`` link is the WebSub hub, its ``rel="self"`` the topic.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from urllib.parse import urljoin, urlsplit
from xml.etree.ElementTree import Element

from chalicelib.alerts.cap import (
    XmlNode,
    check_size,
    clean_text,
    decode_damaged_utf8,
    first_text,
    load_xml,
    local_name,
    message_type_of,
    parse_time,
    read_alert,
    read_each,
    status_of,
)
from chalicelib.alerts.errors import AlertError, shown
from chalicelib.alerts.model import Alert, MessageType, Status
from chalicelib.observability import logger

# A country's whole list: Italy's is tens of kilobytes on a quiet day, a few hundred on a bad one.
MAX_LIST_BYTES = 8 * 1024 * 1024

_CAP_MEDIA_TYPE = "application/cap+xml"
_WEB_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class AtomEntry:
    """One CAP alert listed in the feed: what to fetch, and enough to skip it without fetching."""

    identifier: str
    cap_url: str | None
    msg_type: MessageType | None
    status: Status | None
    sent: datetime | None
    expires: datetime | None


@dataclass(frozen=True)
class AtomIndex:
    entries: tuple[AtomEntry, ...]  # one per CAP identifier, in feed order
    hub: str | None  # the WebSub hub that pushes this feed's changes
    topic: str | None  # the feed's own URL as it names itself: what to subscribe to at the hub


def parse_warnings_json(body: bytes, *, url: str | None = None) -> tuple[Alert, ...]:
    """Every readable warning of a MeteoAlarm JSON list. Raises AlertError, and nothing else."""
    check_size(body, MAX_LIST_BYTES)
    try:
        document = json.loads(decode_damaged_utf8(body).removeprefix("\ufeff"))
    except (ValueError, RecursionError) as error:  # RecursionError: nesting deeper than json handles
        raise AlertError("malformed", f"not JSON ({type(error).__name__})") from error
    warnings = document.get("warnings") if isinstance(document, dict) else None
    if not isinstance(warnings, list):
        raise AlertError("not_cap", "not a MeteoAlarm warnings list: no warnings array")
    return read_each(partial(_warning, warning, url) for warning in warnings)


def parse_atom(body: bytes, *, url: str) -> AtomIndex:
    """The CAP alerts a MeteoAlarm Atom feed lists, one per identifier. Raises AlertError only."""
    root = load_xml(body, max_bytes=MAX_LIST_BYTES)
    if local_name(root) != "feed":
        raise AlertError("not_a_feed", f"not an Atom feed (its root is {shown(local_name(root))})")
    entries: dict[str, AtomEntry] = {}
    skipped = 0
    for element in _children(root, "entry"):
        entry = _atom_entry(element, url)
        if entry is None:
            skipped += 1
        else:
            known = entries.get(entry.identifier)
            entries[entry.identifier] = entry if known is None else _merged(known, entry)
    if skipped:
        logger.warning("Atom entries without a CAP identifier skipped", extra={"skipped": skipped})
    return AtomIndex(
        entries=tuple(entries.values()), hub=_link(root, url, rel="hub"), topic=_link(root, url, rel="self")
    )


# --- JSON ---


@dataclass(frozen=True)
class _JsonNode:
    """A JSON object read as a CAP element: keys in any case, a list where CAP repeats an element."""

    fields: Mapping[str, object]

    def texts(self, name: str) -> tuple[str, ...]:
        values = (clean_text(str(value)).strip() for value in self._values(name) if _is_scalar(value))
        return tuple(value for value in values if value)

    def children(self, name: str) -> tuple[_JsonNode, ...]:
        return tuple(_JsonNode(value) for value in self._values(name) if isinstance(value, dict))

    def _values(self, name: str) -> list[object]:
        key = name.casefold()
        value = next((value for field, value in self.fields.items() if field.casefold() == key), None)
        return value if isinstance(value, list) else [value]


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _warning(warning: object, url: str | None) -> Alert:
    fields = warning if isinstance(warning, dict) else {}
    alert = fields.get("alert")
    if not isinstance(alert, dict):
        raise AlertError("not_cap", "a warning without an alert object")
    uuid = _JsonNode(fields).texts("uuid")
    source_url = f"{url.rstrip('/')}/{uuid[0]}" if url and uuid else url
    return read_alert(_JsonNode(alert), source_url=source_url, extra={"uuid": uuid[0]} if uuid else None)


# --- Atom ---


def _children(element: Element, name: str) -> list[Element]:
    return [child for child in element if local_name(child) == name]


def _atom_entry(element: Element, base: str) -> AtomEntry | None:
    node = XmlNode(element)
    identifier = first_text(node, "identifier")
    if not identifier:
        return None
    kind = first_text(node, "message_type") or first_text(node, "msgType")
    return AtomEntry(
        identifier=identifier,
        cap_url=_link(element, base, media_type=_CAP_MEDIA_TYPE),
        msg_type=message_type_of(kind),
        status=status_of(first_text(node, "status")),
        sent=_time_or_none(node, "sent"),
        expires=_time_or_none(node, "expires"),
    )


def _link(element: Element, base: str, *, rel: str = "", media_type: str = "") -> str | None:
    """The first http(s) link among `element`'s children with that rel or media type, made absolute."""
    for link in _children(element, "link"):
        if (rel and link.get("rel", "").strip().casefold() != rel) or (
            media_type and link.get("type", "").strip().casefold() != media_type
        ):
            continue
        href = _web_url(link.get("href", ""), base)
        if href:
            return href
    return None


def _web_url(href: str, base: str) -> str | None:
    try:
        absolute = urljoin(base, href.strip())
        parts = urlsplit(absolute)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None
    return absolute if href.strip() and parts.scheme in _WEB_SCHEMES and parts.hostname else None


def _time_or_none(node: XmlNode, name: str) -> datetime | None:
    text = first_text(node, name)
    try:
        return parse_time(text, name) if text else None
    except AlertError:
        return None


def _merged(first: AtomEntry, later: AtomEntry) -> AtomEntry:
    expiries = [moment for moment in (first.expires, later.expires) if moment is not None]
    return replace(
        first,
        cap_url=first.cap_url or later.cap_url,
        msg_type=first.msg_type or later.msg_type,
        status=first.status or later.status,
        sent=first.sent or later.sent,
        expires=max(expiries, default=None),
    )
