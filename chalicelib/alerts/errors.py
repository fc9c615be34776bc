"""The one error an alert parser raises, classified by a short stable `reason` for metrics and logs."""

from __future__ import annotations

from typing import Literal

AlertErrorReason = Literal[
    "too_large",  # the body is over the parser's size limit; nothing was read
    "unsafe_xml",  # a DTD, an entity declaration or an external reference (XML bomb, XXE)
    "encoding",  # the declared character encoding is one the XML parser cannot use
    "malformed",  # not well-formed XML or JSON, even after the repairs the parser tries
    "not_cap",  # well-formed, but no CAP alert in it (an HTML page, another XML, a JSON of another shape)
    "not_a_feed",  # a document given as an Atom feed is not one
    "missing_field",  # a CAP field an alert cannot do without (identifier, sender, sent, status, msgType)
    "bad_value",  # a field that is present but unusable (an unknown status, a time without UTC offset)
]

_SHOWN_CHARS = 40


class AlertError(Exception):
    """An alert document could not be read. The message is plain English for logs: at most a field
    name and a short, quoted value, never the document's text."""

    def __init__(self, reason: AlertErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason: AlertErrorReason = reason


def shown(value: str) -> str:
    """A value quoted for a message: cut short, and through repr, which escapes control characters (a
    value comes from anyone's document and must not forge log lines)."""
    return repr(value if len(value) <= _SHOWN_CHARS else value[: _SHOWN_CHARS - 1] + "…")
