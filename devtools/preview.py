"""`banditore preview`: parse a feed document and show, for each item, the announcement and the
exact text each configured channel would get. No side effects: nothing is stored or posted.

The JSON is a stable interface (schema "banditore.preview/1", documented in README):
{
  "schema": "banditore.preview/1",
  "feed": {"location": str, "items": int, "warnings": [str]},
  "items": [
    {"announcement": {"title", "summary", "link", "image": {"url", "alt"} | null, "categories": [str],
                      "published": ISO-8601 | null, "dedupe_keys": [str]},
     "channels": [{"tenant", "channel", "platform", "text", "length", "limit", "truncated", "parse_mode"}]}
  ]
}
Without --config, one default channel per platform is shown (tenant and channel are null).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chalicelib.channels.registry import adapter_for
from chalicelib.config.loader import load_config
from chalicelib.config.models import MastodonChannel, TelegramChannel
from chalicelib.http import new_session
from chalicelib.publishing.announce import announcement_from_item
from chalicelib.sources.cms import FeedItem, parse_feed
from chalicelib.sources.dedupe import dedupe_keys
from chalicelib.sources.fetch import fetch_feed

SCHEMA = "banditore.preview/1"
MAX_PREVIEW_BYTES = 20_000_000
# Rendering needs no token: these references are never resolved.
_NO_TOKEN = "env:PREVIEW_NEVER_RESOLVED"  # noqa: S105 (a reference, not a secret)
_DEFAULT_CHANNELS: list[tuple[str | None, TelegramChannel | MastodonChannel]] = [
    (None, TelegramChannel(id="telegram", platform="telegram", chat="@anteprima", token=_NO_TOKEN)),
    (
        None,
        MastodonChannel.model_validate(
            {
                "id": "mastodon",
                "platform": "mastodon",
                "instance": "https://mastodon.invalid",
                "token": _NO_TOKEN,
            }
        ),
    ),
]


def read_feed(location: str) -> tuple[bytes, str, str | None]:
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
    body, url, content_type = read_feed(location)
    parsed = parse_feed(body, url=url, content_type=content_type, tolerate_malformed=True)
    channels = _channels(config_path, tenant_id)
    items = []
    for item in parsed.items:
        keys = dedupe_keys(item)
        rendered = []
        for tenant, channel in channels:
            announcement = announcement_from_item(
                item, tenant=tenant or "preview", source="preview", announcement_id="preview"
            )
            post = adapter_for(channel, offline=True).render(announcement)
            rendered.append(
                {
                    "tenant": tenant,
                    "channel": channel.id if tenant else None,
                    "platform": channel.platform,
                    "text": post.text,
                    "length": post.length,
                    "limit": post.limit,
                    "truncated": post.truncated,
                    "parse_mode": post.parse_mode,
                }
            )
        items.append({"announcement": _announcement_json(item, keys), "channels": rendered})
    return {
        "schema": SCHEMA,
        "feed": {"location": location, "items": len(parsed.items), "warnings": list(parsed.warnings)},
        "items": items,
    }


def _channels(
    config_path: Path | None, tenant_id: str | None
) -> list[tuple[str | None, TelegramChannel | MastodonChannel]]:
    if config_path is None:
        return _DEFAULT_CHANNELS
    config = load_config(str(config_path))
    tenants = [config.tenant(tenant_id)] if tenant_id else config.tenants
    return [(tenant.id, channel) for tenant in tenants for channel in tenant.channels if channel.enabled]


def _announcement_json(item: FeedItem, keys: tuple[str, ...]) -> dict[str, Any]:
    return {
        "title": item.title,
        "summary": item.summary,
        "link": item.link,
        "image": {"url": item.image.url, "alt": item.image.alt} if item.image else None,
        "categories": list(item.categories),
        "published": item.published.isoformat() if item.published else None,
        "dedupe_keys": list(keys),
    }
