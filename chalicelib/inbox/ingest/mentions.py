"""poll_mentions: citizens' mentions of, and replies to, the comune on platforms without a webhook for
them, read on a schedule from each `inbox: true` channel's notifications.

Per channel: read the notifications after the stored cursor; normalise each into the InboundMessage
the webhooks produce and hand it to process.ingest (recorded, flagged, answered exactly as a
webhook's); only then store where the read stopped as the cursor. A crash between the two reads the
same again, which the store's dedupe per platform message makes harmless; nothing is skipped. Work
is bounded: at most MAX_READS reads per channel and run, and no channel is started when the
invocation has too little time left. A failing channel is logged and counted (MentionPollFailures,
alarmed when it keeps failing) and the others go on; its cursor stays where the last read left it.

Which platforms: those in READERS. Mastodon pages oldest first from the cursor (min_id answers the
page right after a notification id), so each read moves the cursor on and a backlog is simply read
over the next runs. Bluesky (indexedAt) and X (post id) page from the newest down to the cursor, at
most `pages_per_read` pages a read: when those run out first, the read's older-pages cursor and the
newest position it saw are stored beside the cursor (MentionCursor), the next reads go on down from
there (counted and logged as MentionBacklogs), and the cursor moves to that newest position only
when the backlog reaches it. Mentions newer than the backlog wait for it to finish. Our own posts
are left out (Mastodon never notifies them). Nothing here logs message text or citizen identifiers.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib import observability as obs
from chalicelib.channels.atproto import POST_COLLECTION, PostRef
from chalicelib.channels.bluesky import BlueskyAdapter
from chalicelib.channels.mastodon import MastodonAdapter
from chalicelib.channels.registry import adapter_for
from chalicelib.channels.x import XAdapter
from chalicelib.clock import parse_iso, utcnow
from chalicelib.config.loader import current_config
from chalicelib.config.models import AnyChannel, Tenant
from chalicelib.inbox import store
from chalicelib.inbox.ingest.normalised import MAX_TEXT_CHARS, as_object, objects
from chalicelib.inbox.ingest.process import ingest
from chalicelib.inbox.model import Citizen, InboundMessage, MentionCursor
from chalicelib.observability import logger

MAX_READS = 5  # per channel and run: a larger backlog is read over the next runs
# Bluesky and X: pages one read goes down from the newest (100 mentions each), as the adapters do
# by default: far beyond a comune's mentions in minutes, while a runaway backlog stays bounded.
PAGES_PER_READ = 10
# Room kept at the end of the invocation: a channel is not started with less left than this.
TIME_BUDGET_SECONDS = 30
_BREAK = re.compile(r"<br\s*/?>|</p>\s*<p>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class MentionPage:
    messages: tuple[InboundMessage, ...]
    cursor: MentionCursor  # where polling stands once `messages` are recorded


# (tenant, channel, where polling stands, pages a newest-first read may go down)
Reader = Callable[[Tenant, AnyChannel, MentionCursor, int], MentionPage]


def poll_all_mentions(
    now: datetime | None = None, seconds_left: float | None = None, *, pages_per_read: int = PAGES_PER_READ
) -> dict[str, Any]:
    now = now or utcnow()
    deadline = time.monotonic() + seconds_left - TIME_BUDGET_SECONDS if seconds_left else None
    results: dict[str, Any] = {}
    for tenant in current_config().tenants:
        for channel in tenant.channels:
            read = READERS.get(channel.platform)
            if read is None or not channel.inbox:
                continue
            name = f"{tenant.id}/{channel.id}"
            if deadline is not None and time.monotonic() > deadline:
                results[name] = "deferred"
                continue
            results[name] = _poll_channel_safely(read, tenant, channel, now, pages_per_read)
    if "deferred" in results.values():
        logger.warning("Out of time: some channels' mentions wait for the next run")
    return {"channels": results}


def _poll_channel_safely(
    read: Reader, tenant: Tenant, channel: AnyChannel, now: datetime, pages_per_read: int
) -> int | str:
    try:
        return _poll_channel(read, tenant, channel, now, pages_per_read)
    except Exception as error:
        # One broken channel (token, platform down, odd answer) never stops the others; its cursor
        # stays at the last page recorded. The type only: a message could quote a citizen's words.
        obs.count(obs.MENTION_POLL_FAILURES, platform=channel.platform, error=type(error).__name__)
        logger.warning(
            "Mention poll failed",
            extra={"tenant": tenant.id, "channel": channel.id, "error": type(error).__name__},
        )
        return "failed"


def _poll_channel(
    read: Reader, tenant: Tenant, channel: AnyChannel, now: datetime, pages_per_read: int
) -> int:
    cursor = store.mention_cursor(tenant.id, channel.id)
    recorded = 0
    for _ in range(MAX_READS):
        page = read(tenant, channel, cursor, pages_per_read)
        for message in page.messages:
            ingest(message, tenant, now)
        recorded += len(page.messages)
        if page.cursor == cursor:  # nothing new
            break
        # Only now: every message of the read is recorded.
        cursor = page.cursor
        store.set_mention_cursor(tenant.id, channel.id, cursor, now=now)
    extra = {"tenant": tenant.id, "channel": channel.id, "messages": recorded}
    if cursor.backlog is not None:
        obs.count(obs.MENTION_BACKLOGS, platform=channel.platform)
        logger.warning("Mention backlog: older mentions are read on the next runs", extra=extra)
    logger.info("Mentions polled", extra=extra)
    return recorded


def _after_newest_first(cursor: MentionCursor, newest: str | None, older: str | None) -> MentionCursor:
    """Where polling stands after a read from the newest down (from `cursor.backlog` when it is
    set): `newest` is the newest position the read saw, `older` where it stopped when its pages ran
    out before reaching `cursor.seen`. `seen` moves only once everything down to it is recorded."""
    top = cursor.backlog_top if cursor.backlog is not None else newest
    if older is not None:
        return MentionCursor(cursor.seen, older, top)
    return MentionCursor(top or cursor.seen)


# ---- Mastodon --------------------------------------------------------------------------------


def _mastodon_page(tenant: Tenant, channel: AnyChannel, cursor: MentionCursor, pages: int) -> MentionPage:
    """One page, oldest first, right after `cursor.seen`: a read never leaves a gap behind it."""
    del pages  # one page a read; the run's reads are the bound
    adapter = adapter_for(channel)
    if not isinstance(adapter, MastodonAdapter):
        raise TypeError(f"{channel.platform} channel has no Mastodon adapter")
    notifications = adapter.mentions(cursor.seen)
    messages = [
        message
        for notification in notifications
        if (message := _mastodon_message(tenant.id, channel.id, notification)) is not None
    ]
    return MentionPage(tuple(messages), MentionCursor(notifications[-1]["id"]) if notifications else cursor)


def _mastodon_message(tenant: str, channel: str, notification: dict[str, Any]) -> InboundMessage | None:
    """A mention as a message: "direct" for a direct status, a comment under our post when it
    replies to one (linked to its announcement), else a comment on no post (one conversation per
    citizen and channel). None for what is no citizen's status."""
    status = as_object(notification.get("status"))
    account = as_object(status.get("account"))
    status_id, acct = status.get("id"), account.get("acct")
    at = _created_at(status.get("created_at"), notification.get("created_at"))
    if not isinstance(status_id, str) or not isinstance(acct, str) or not acct or at is None:
        obs.count(obs.INBOUND_IGNORED, platform="mastodon", reason="no_status")
        return None
    parent = status.get("in_reply_to_id")
    parent = parent if isinstance(parent, str) else None
    direct = status.get("visibility") == "direct"
    ours = parent if parent and store.announcement_for(tenant, channel, parent) else None
    return InboundMessage(
        tenant=tenant,
        channel=channel,
        platform="mastodon",
        platform_message_id=status_id,
        citizen=Citizen(
            "mastodon", acct, str(account.get("display_name") or account.get("username") or "")[:200]
        ),
        text=_status_text(str(status.get("content") or "")),
        received_at=at,
        kind="direct" if direct else "comment",
        in_reply_to_remote_id=None if direct else ours,
        parent_message_id=parent if parent != ours else None,
        reply_target={"status_id": status_id, "acct": acct},
    )


def _status_text(content: str) -> str:
    """A status's HTML as the words a person reads: paragraphs and breaks as new lines."""
    return html.unescape(_TAG.sub("", _BREAK.sub("\n", content))).strip()[:MAX_TEXT_CHARS]


def _created_at(*candidates: object) -> datetime | None:
    """The status's time (stable: the message's key depends on it), else the notification's."""
    for value in candidates:
        if isinstance(value, str):
            try:
                return parse_iso(value)
            except ValueError:
                continue
    return None


# ---- Bluesky ---------------------------------------------------------------------------------


def _bluesky_page(tenant: Tenant, channel: AnyChannel, cursor: MentionCursor, pages: int) -> MentionPage:
    adapter = adapter_for(channel)
    if not isinstance(adapter, BlueskyAdapter):
        raise TypeError(f"{channel.platform} channel has no Bluesky adapter")
    did, notifications, older = adapter.mentions(cursor.seen, older=cursor.backlog, max_pages=pages)
    messages = [
        message
        for notification in notifications
        if (message := _bluesky_message(tenant.id, channel.id, did, notification)) is not None
    ]
    newest = str(notifications[-1]["indexedAt"]) if notifications else None
    return MentionPage(tuple(messages), _after_newest_first(cursor, newest, older))


def _bluesky_message(
    tenant: str, channel: str, did: str, notification: dict[str, Any]
) -> InboundMessage | None:
    """A mention or reply as a comment: under our post when it answers one (linked to its
    announcement), else on no post. None for our own posts and what is no citizen's post."""
    author, record = as_object(notification.get("author")), as_object(notification.get("record"))
    uri, cid, author_did = notification.get("uri"), notification.get("cid"), author.get("did")
    at = _created_at(record.get("createdAt"), notification.get("indexedAt"))
    if author_did == did:
        obs.count(obs.INBOUND_IGNORED, platform="bluesky", reason="own_post")
        return None
    if not isinstance(uri, str) or not isinstance(cid, str) or not isinstance(author_did, str) or at is None:
        obs.count(obs.INBOUND_IGNORED, platform="bluesky", reason="no_post")
        return None
    reply = as_object(record.get("reply"))
    parent, root = as_object(reply.get("parent")), as_object(reply.get("root"))
    ours = _our_post(did, parent, root)
    post = ours if ours and store.announcement_for(tenant, channel, ours) else None
    target = {"uri": uri, "cid": cid}
    if isinstance(root.get("uri"), str) and isinstance(root.get("cid"), str):
        target |= {"root_uri": root["uri"], "root_cid": root["cid"]}
    name = author.get("displayName") or author.get("handle") or ""
    return InboundMessage(
        tenant=tenant,
        channel=channel,
        platform="bluesky",
        platform_message_id=uri,
        citizen=Citizen("bluesky", author_did, str(name)[:200]),
        text=str(record.get("text") or "").strip()[:MAX_TEXT_CHARS],
        received_at=at,
        kind="comment",
        in_reply_to_remote_id=post,
        parent_message_id=None if post else parent.get("uri"),
        reply_target=target,
    )


def _our_post(did: str, parent: dict[str, Any], root: dict[str, Any]) -> str | None:
    """The remote id publish gave the post of ours a reply answers (atproto.PostRef), if it is ours."""
    prefix = f"at://{did}/{POST_COLLECTION}/"
    parent_uri, root_uri = str(parent.get("uri") or ""), str(root.get("uri") or "")
    if not parent_uri.startswith(prefix) or not root_uri.startswith(prefix):
        return None
    return PostRef(
        did=did,
        rkey=parent_uri.removeprefix(prefix),
        cid=str(parent.get("cid") or ""),
        root_rkey=root_uri.removeprefix(prefix),
        root_cid=str(root.get("cid") or ""),
    ).encode()


# ---- X ---------------------------------------------------------------------------------------


def _x_page(tenant: Tenant, channel: AnyChannel, cursor: MentionCursor, pages: int) -> MentionPage:
    adapter = adapter_for(channel)
    if not isinstance(adapter, XAdapter):
        raise TypeError(f"{channel.platform} channel has no X adapter")
    user_id, posts, older = adapter.mentions(cursor.seen, older=cursor.backlog, max_pages=pages)
    messages = [
        message for post in posts if (message := _x_message(tenant.id, channel.id, user_id, post)) is not None
    ]
    newest = str(posts[-1]["id"]) if posts else None
    return MentionPage(tuple(messages), _after_newest_first(cursor, newest, older))


def _x_message(tenant: str, channel: str, user_id: str, post: dict[str, Any]) -> InboundMessage | None:
    """A mention as a comment: under our post when it replies to one (linked to its announcement),
    else on no post. None for our own posts and what is no citizen's post."""
    author = as_object(post.get("author"))
    post_id, author_id = post.get("id"), post.get("author_id")
    at = _created_at(post.get("created_at"))
    if author_id == user_id:
        obs.count(obs.INBOUND_IGNORED, platform="x", reason="own_post")
        return None
    if not isinstance(post_id, str) or not isinstance(author_id, str) or at is None:
        obs.count(obs.INBOUND_IGNORED, platform="x", reason="no_post")
        return None
    replied = [
        ref.get("id") for ref in objects(post.get("referenced_tweets")) if ref.get("type") == "replied_to"
    ]
    parent = replied[0] if replied and isinstance(replied[0], str) else None
    ours = parent if parent and store.announcement_for(tenant, channel, parent) else None
    return InboundMessage(
        tenant=tenant,
        channel=channel,
        platform="x",
        platform_message_id=post_id,
        citizen=Citizen("x", author_id, str(author.get("name") or author.get("username") or "")[:200]),
        text=html.unescape(str(post.get("text") or "")).strip()[:MAX_TEXT_CHARS],  # X escapes &, < and >
        received_at=at,
        kind="comment",
        in_reply_to_remote_id=ours,
        parent_message_id=None if ours else parent,
        reply_target={"tweet_id": post_id},
    )


READERS: dict[str, Reader] = {"mastodon": _mastodon_page, "bluesky": _bluesky_page, "x": _x_page}
