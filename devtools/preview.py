"""`banditore preview`: parse a document and show what each configured channel would get. No side
effects: nothing is stored or posted. A news feed (RSS/Atom) gives one entry per item; an alert
document (CAP, a wrapper of CAP alerts, MeteoAlarm's JSON warnings) one entry per alert, with what
each tenant's zones and location match.

The JSON is a stable interface (schema "banditore.preview/1", documented in README):
{
  "schema": "banditore.preview/1",
  "feed": {"location": str, "kind": "news" | "alerts", "items": int, "warnings": [str]},
  "items": [                                                    (news)
    {"announcement": {"title", "summary", "link", "image": {"url", "alt"} | null, "categories": [str],
                      "published": ISO-8601 | null, "dedupe_keys": [str]},
     "channels": [CHANNEL]}
  ],
  "alerts": [                                                   (alerts)
    {"alert": {"identifier", "sender", "msg_type", "status", "sent", "level": "yellow"… | null,
               "hazard", "all_clear": bool, "expires": ISO-8601 | null},
     "tenants": [{"tenant", "matched_areas": [str], "concerned": bool, "reason": REASON | null,
                  "channels": [CHANNEL]}]}
  ]
}
CHANNEL = {"tenant", "channel", "platform", "text", "length", "limit", "truncated", "parse_mode"}.
REASON, why an alert is not posted for a tenant now (the first that applies): "no info block" (a
Cancel may carry none), "no alerts configured", "not a public alert" (Test, Exercise, Draft, System;
Ack, Error; not public scope), "not for these areas", "no readable level", "below minimum level",
"expired".
Without --config, one default channel per platform is shown (tenant and channel are null), an alert's
areas are all its areas and it concerns whoever reads it if its level is readable. `alerts` shows a
new alert's first post, rendered wherever the alert covers the tenant's areas (so a dated sample
still shows its text); `concerned` and `reason` say whether it would be posted now.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from chalicelib.alerts.areas import Concern, best_info, concerns
from chalicelib.alerts.cap import alert_level, hazard, is_all_clear, parse_cap, preferred_info
from chalicelib.alerts.meteoalarm import parse_warnings_json
from chalicelib.alerts.model import Alert, Info, Level
from chalicelib.alerts.render import AlertFacts, alert_post, area_name
from chalicelib.announcements import Announcement
from chalicelib.channels.registry import adapter_for
from chalicelib.clock import utcnow
from chalicelib.config.loader import load_config
from chalicelib.config.models import AnyChannel, Channel, Tenant
from chalicelib.http import new_session
from chalicelib.publishing.announce import announcement_from_item
from chalicelib.sources.cms import parse_feed
from chalicelib.sources.dedupe import dedupe_keys
from chalicelib.sources.fetch import fetch_feed

SCHEMA = "banditore.preview/1"
MAX_PREVIEW_BYTES = 20_000_000
# A CAP document's root (or an SMHI-style wrapper of several) within its first bytes.
_CAP_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?alerts?[\s>]")
# Rendering needs no token: these references are never resolved.
_NO_TOKEN = "env:PREVIEW_NEVER_RESOLVED"  # noqa: S105 (a reference, not a secret)
# One channel of each platform, as a comune would configure it; rendering never resolves a secret.
DEFAULT_CHANNELS: list[tuple[str | None, AnyChannel]] = [
    (None, TypeAdapter(Channel).validate_python(fields))
    for fields in (
        {"platform": "telegram", "chat": "@anteprima", "token": _NO_TOKEN},
        {"platform": "mastodon", "instance": "https://mastodon.invalid", "token": _NO_TOKEN},
        {"platform": "facebook", "page_id": "1", "token": _NO_TOKEN},
        {"platform": "instagram", "user_id": "1", "token": _NO_TOKEN},
        {"platform": "threads", "user_id": "me", "token": _NO_TOKEN},
        {"platform": "bluesky", "handle": "anteprima.bsky.social", "app_password": _NO_TOKEN},
        {
            "platform": "x",
            "consumer_key": _NO_TOKEN,
            "consumer_secret": _NO_TOKEN,
            "access_token": _NO_TOKEN,
            "access_token_secret": _NO_TOKEN,
        },
        {"platform": "slack", "webhook_url": _NO_TOKEN},
        {"platform": "discord", "webhook_url": _NO_TOKEN},
        {
            "platform": "matrix",
            "homeserver": "https://matrix.invalid",
            "room_id": "!anteprima:matrix.invalid",
            "token": _NO_TOKEN,
        },
    )
    for fields in [{"id": fields["platform"], **fields}]
]


def read_document(location: str) -> tuple[bytes, str, str | None]:
    """The document's bytes, its URL (for relative links) and content type."""
    if location.startswith(("http://", "https://")):
        fetched = fetch_feed(
            location, session=new_session(), etag=None, last_modified=None, max_bytes=MAX_PREVIEW_BYTES
        )
        return fetched.body, fetched.url, fetched.content_type
    path = Path(location)
    return path.read_bytes(), path.resolve().as_uri(), None


def build_preview(
    location: str, config_path: Path | None = None, tenant_id: str | None = None
) -> dict[str, Any]:
    body, url, content_type = read_document(location)
    tenants = _tenants(config_path, tenant_id)
    head = body[:4096].lstrip()
    if head.startswith(b"{"):
        return _alerts_preview(location, parse_warnings_json(body, url=url), tenants)
    if _CAP_ROOT.search(head) and b"<feed" not in head and b"<rss" not in head:
        return _alerts_preview(location, parse_cap(body, source_url=url), tenants)
    parsed = parse_feed(body, url=url, content_type=content_type, tolerate_malformed=True)
    items = []
    for item in parsed.items:
        announcement = announcement_from_item(
            item, tenant="preview", source="preview", announcement_id="preview"
        )
        items.append(
            {
                "announcement": {
                    "title": item.title,
                    "summary": item.summary,
                    "link": item.link,
                    "image": {"url": item.image.url, "alt": item.image.alt} if item.image else None,
                    "categories": list(item.categories),
                    "published": item.published.isoformat() if item.published else None,
                    "dedupe_keys": list(dedupe_keys(item)),
                },
                "channels": [c for t in tenants for c in _rendered(announcement, t)],
            }
        )
    return {
        "schema": SCHEMA,
        "feed": {
            "location": location,
            "kind": "news",
            "items": len(items),
            "warnings": list(parsed.warnings),
        },
        "items": items,
    }


def _alerts_preview(location: str, alerts: tuple[Alert, ...], tenants: list[Tenant | None]) -> dict[str, Any]:
    now = utcnow()
    return {
        "schema": SCHEMA,
        "feed": {"location": location, "kind": "alerts", "items": len(alerts), "warnings": []},
        "alerts": [_alert_entry(alert, tenants, now) for alert in alerts],
    }


def _alert_entry(alert: Alert, tenants: list[Tenant | None], now: datetime) -> dict[str, Any]:
    info = preferred_info(alert)
    level = alert_level(info) if info else None
    entry: dict[str, Any] = {
        "alert": {
            "identifier": alert.identifier,
            "sender": alert.sender,
            "msg_type": alert.msg_type,
            "status": alert.status,
            "sent": alert.sent.isoformat(),
            "level": level.name.lower() if level else None,
            "hazard": hazard(info) if info else None,
            "all_clear": is_all_clear(alert, info),
            "expires": info.expires.isoformat() if info and info.expires else None,
        },
        "tenants": [],
    }
    for tenant in tenants:
        tenant_info, tenant_level, concern = _concern(alert, tenant, now)
        channels: list[dict[str, Any]] = []
        if concern.areas and tenant_info is not None and tenant_level is not None:
            facts = AlertFacts(
                alert=alert,
                info=tenant_info,
                level=tenant_level,
                hazard=hazard(tenant_info),
                areas=concern.areas,
            )
            post = alert_post(facts, now=now)
            channels = _rendered(
                post.announcement(tenant="preview", announcement_id="preview", source="preview"), tenant
            )
        entry["tenants"].append(
            {
                "tenant": tenant.id if tenant else None,
                "matched_areas": [area_name(area) for area in concern.areas],
                "concerned": concern.concerned,
                "reason": concern.reason,
                "channels": channels,
            }
        )
    return entry


def _concern(alert: Alert, tenant: Tenant | None, now: datetime) -> tuple[Info | None, Level | None, Concern]:
    """The info block the tenant's post would be made of (the one the pipeline picks), its level,
    and whether the alert concerns the tenant now. Without a config: the preferred block, all its areas."""
    if tenant is not None and tenant.alerts is not None:
        info, _, level = best_info(alert, tenant.alerts)
    else:
        info = preferred_info(alert)
        level = alert_level(info) if info else None
    if info is None:
        return None, None, Concern((), "no info block")
    if tenant is None:
        return info, level, Concern(info.areas, None if level else "no readable level")
    return info, level, concerns(alert, info, tenant, level=level, now=now)


def _tenants(config_path: Path | None, tenant_id: str | None) -> list[Tenant | None]:
    if config_path is None:
        return [None]
    config = load_config(str(config_path))
    return [config.tenant(tenant_id)] if tenant_id else list(config.tenants)


def _rendered(announcement: Announcement, tenant: Tenant | None) -> list[dict[str, Any]]:
    """What each channel of the tenant (or each default channel) would get."""
    channels = DEFAULT_CHANNELS if tenant is None else [(tenant.id, c) for c in tenant.channels if c.enabled]
    rendered = []
    for tenant_id, channel in channels:
        post = adapter_for(channel, offline=True).render(announcement)
        rendered.append(
            {
                "tenant": tenant_id,
                "channel": channel.id if tenant_id else None,
                "platform": channel.platform,
                "text": post.text,
                "thread": list(post.thread),
                "length": post.length,
                "limit": post.limit,
                "truncated": post.truncated,
                "parse_mode": post.parse_mode,
                "image": {"url": post.image.url, "alt": post.image.alt} if post.image else None,
            }
        )
    return rendered
