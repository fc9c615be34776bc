"""The announcement: what the comune has to say, normalised from a source, before any platform shape."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Priority = Literal["normal", "urgent"]
# What an alert post does to its thread: a channel may edit its first post for an update instead
# of replying (channel option `alert_updates`), but a new post, a level increase or an end never edits.
AlertChange = Literal["new", "update", "level_up", "end"]


@dataclass(frozen=True)
class Image:
    url: str
    alt: str = ""
    mime_type: str | None = None


@dataclass(frozen=True)
class Announcement:
    tenant: str
    id: str
    source: str
    title: str
    summary: str  # plain text, already stripped of HTML
    link: str | None = None
    image: Image | None = None
    categories: tuple[str, ...] = ()
    published: datetime | None = None  # timezone-aware, Europe/Rome
    priority: Priority = "normal"
    kind: Literal["news", "alert"] = "news"
    # An alert's post is worthless after the alert expired: the publisher drops it rather than post late.
    valid_until: datetime | None = None
    alert_change: AlertChange | None = None  # alerts only
