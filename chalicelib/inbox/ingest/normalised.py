"""What an ingest path makes of one platform event, before anything is stored; and the few things
every platform shares when it turns a message into an InboundMessage."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.config.models import AnyChannel, Tenant
from chalicelib.inbox.model import InboundMessage, Location

# What a message without words holds, for the staff reading the inbox (Italian, as the inbox is);
# keys are the platforms' own names for the content.
CONTENT_LABELS = {
    "photo": "[foto]",
    "image": "[foto]",
    "video": "[video]",
    "video_note": "[videomessaggio]",
    "voice": "[messaggio vocale]",
    "audio": "[audio]",
    "document": "[documento]",
    "file": "[documento]",
    "sticker": "[sticker]",
    "animation": "[GIF]",
    "contact": "[contatto]",
    "location": "[posizione]",
}
MAX_TEXT_CHARS = 10_000  # beyond any platform's own limit: a longer text is not a citizen's message


@dataclass(frozen=True)
class PostCopy:
    """Telegram: one of our channel's posts as copied into its discussion group, where comments
    thread under the copy (see telegram.py)."""

    tenant: str
    channel: str
    copy_remote_id: str
    post_remote_id: str


@dataclass(frozen=True)
class Normalised:
    messages: tuple[InboundMessage, ...] = ()
    ignored: tuple[str, ...] = ()  # why each other item of the event was left out (metric reasons)
    copies: tuple[PostCopy, ...] = ()


def as_object(value: object) -> dict[str, Any]:
    """A JSON object of the platform's event, or an empty one where something else stands."""
    return value if isinstance(value, dict) else {}


def objects(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def with_labels(text: str, labels: list[str]) -> str:
    """The words of a message after what it carries: "[foto] Via Roma allagata"."""
    return " ".join([*dict.fromkeys(labels), text.strip()]).strip()[:MAX_TEXT_CHARS]


def location(lat: object, lon: object) -> Location | None:
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        return None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):  # noqa: PLR2004
        return None
    return Location(float(lat), float(lon))


def platform_time(seconds: object, fallback: datetime) -> datetime:
    """A platform's epoch seconds as an aware datetime; the webhook's own time when it is absent or
    absurd (the message's key depends on it, so it must be the same at every redelivery)."""
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and 0 < seconds < 4e9:  # noqa: PLR2004
        return datetime.fromtimestamp(seconds, UTC)
    return fallback


def inbox_channel(tenant: Tenant, channel_id: str) -> AnyChannel | None:
    try:
        channel = tenant.channel(channel_id)
    except KeyError:
        return None
    return channel if channel.inbox else None
