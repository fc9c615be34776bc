"""An alert as Banditore understands it, whatever feed it came from (CAP XML, MeteoAlarm JSON or
Atom, the DPC bulletin). Plain frozen dataclasses: parsers build them, matching and rendering read them.
Times are timezone-aware; coordinates are WGS84 degrees (latitude, longitude) as CAP gives them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Literal

Status = Literal["Actual", "Exercise", "System", "Test", "Draft"]
MessageType = Literal["Alert", "Update", "Cancel", "Ack", "Error"]
Point = tuple[float, float]  # (latitude, longitude)


class Level(IntEnum):
    """Awareness level, ordered so that comparisons mean "more severe"."""

    GREEN = 1
    YELLOW = 2
    ORANGE = 3
    RED = 4


@dataclass(frozen=True)
class Reference:
    """One `sender,identifier,sent` triple of CAP `references`: the alert this one updates or cancels."""

    sender: str
    identifier: str
    sent: str  # as written: references are matched on the text, not on a parsed time


@dataclass(frozen=True)
class Circle:
    center: Point
    radius_km: float


@dataclass(frozen=True)
class Area:
    description: str
    polygons: tuple[tuple[Point, ...], ...] = ()
    circles: tuple[Circle, ...] = ()
    geocodes: tuple[tuple[str, str], ...] = ()  # (valueName, value), e.g. ("EMMA_ID", "IT009")


@dataclass(frozen=True)
class Info:
    """One `info` block: CAP repeats it once per language, each a full copy."""

    language: str  # "it-IT", "en-GB"; when absent "it-IT" for an Italian authority's sender OID, else "en-US"
    event: str
    category: tuple[str, ...] = ()
    response_type: tuple[str, ...] = ()
    urgency: str = ""
    severity: str = ""
    certainty: str = ""
    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    sender_name: str = ""
    headline: str = ""
    description: str = ""
    instruction: str = ""
    web: str = ""
    parameters: tuple[tuple[str, str], ...] = ()  # (valueName, value), in document order
    areas: tuple[Area, ...] = ()


@dataclass(frozen=True)
class Alert:
    identifier: str
    sender: str
    sent: datetime
    status: Status
    msg_type: MessageType
    scope: str = "Public"
    references: tuple[Reference, ...] = ()
    note: str = ""
    infos: tuple[Info, ...] = ()
    source_url: str | None = None  # where the document was read (for the post's link of last resort)
    extra: dict[str, str] = field(default_factory=dict)
