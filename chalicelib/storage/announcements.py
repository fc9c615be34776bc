"""Announcements as stored: the normalised content every channel renders from."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from chalicelib.announcements import Announcement, Image
from chalicelib.clock import ROME, epoch, iso, parse_iso
from chalicelib.storage import dynamo, keys

ANNOUNCEMENT_TTL = timedelta(days=400)


def announcement_item(announcement: Announcement, created: datetime) -> dict[str, Any]:
    image = announcement.image
    return {
        "pk": keys.tenant_pk(announcement.tenant),
        "sk": keys.announcement_sk(announcement.id),
        "source": announcement.source,
        "kind": announcement.kind,
        "priority": announcement.priority,
        "title": announcement.title,
        "summary": announcement.summary,
        "link": announcement.link,
        "image": {"url": image.url, "alt": image.alt, "mime_type": image.mime_type} if image else None,
        "categories": list(announcement.categories),
        "published": iso(announcement.published) if announcement.published else None,
        "valid_until": iso(announcement.valid_until) if announcement.valid_until else None,
        "alert_change": announcement.alert_change,
        "created_at": iso(created),
        "expires_at": epoch(created + ANNOUNCEMENT_TTL),
    }


def get_announcement(tenant: str, announcement_id: str) -> Announcement | None:
    response = dynamo.client().get_item(
        TableName=dynamo.table_name(),
        Key=dynamo.to_dynamo({"pk": keys.tenant_pk(tenant), "sk": keys.announcement_sk(announcement_id)}),
    )
    if "Item" not in response:
        return None
    item = dynamo.from_dynamo(response["Item"])
    image = item.get("image")
    return Announcement(
        tenant=tenant,
        id=announcement_id,
        source=item["source"],
        title=item["title"],
        summary=item.get("summary", ""),
        link=item.get("link"),
        image=Image(url=image["url"], alt=image.get("alt", ""), mime_type=image.get("mime_type"))
        if image
        else None,
        categories=tuple(item.get("categories", [])),
        published=parse_iso(item["published"]).astimezone(ROME) if item.get("published") else None,
        priority=item.get("priority", "normal"),
        kind=item.get("kind", "news"),
        valid_until=parse_iso(item["valid_until"]) if item.get("valid_until") else None,
        alert_change=item.get("alert_change"),
    )
