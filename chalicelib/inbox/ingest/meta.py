"""Meta (Facebook Pages): the one webhook every Page's inbox shares, and what its events mean.

GET /webhooks/meta is the subscription check: hub.mode=subscribe with a hub.verify_token equal (in
constant time) to the verify_token of a Facebook inbox channel gets hub.challenge back as text, else
403. POST /webhooks/meta carries X-Hub-Signature-256 = "sha256=" + HMAC-SHA256 of the raw body under
the Meta app's secret. The URL is shared by every Page (an app subscribes once), so a call is
admitted when the body is signed with the app secret of any Facebook inbox channel, and processing
takes each entry only for the Pages whose own app secret signed it: one comune's app cannot speak for
another comune's Page. A replayed genuine call is harmless: its messages are recorded once (dedupe).

What an entry holds:
- changes[] with field "feed", item "comment", verb "add": a comment on the Page's feed under post_id
  ("{page}_{post}", the remote id our posts are recorded with), so a comment on one of our posts
  links to its announcement; parent_id names the comment it answers when it is not the post itself;
- messaging[] with a message: a Messenger message (direct); a location attachment is kept.
Ignored, and counted: the Page's own comments and the echoes of its own messages, edits and
removals, other feed items (reactions, posts, shares), receipts and postbacks, other objects
(Instagram, users), Pages no inbox channel has.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from chalice.app import Request, Response

from chalicelib.clock import utcnow
from chalicelib.config.loader import current_config
from chalicelib.config.models import Config, FacebookChannel
from chalicelib.inbox.ingest import webhook
from chalicelib.inbox.ingest.normalised import (
    CONTENT_LABELS,
    Normalised,
    as_object,
    location,
    objects,
    platform_time,
    with_labels,
)
from chalicelib.inbox.ingest.queue import InboundEvent, enqueue
from chalicelib.inbox.model import Citizen, InboundMessage, Location
from chalicelib.observability import logger
from chalicelib.secrets import SecretError, resolve_secret

PLATFORM = "facebook"
SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_CHALLENGE_CHARS = 256
MILLISECONDS = 1000


# ---- the webhook ----------------------------------------------------------------------------


def answer_verification(query: Mapping[str, str]) -> Response:
    """GET /webhooks/meta: Meta checking the callback when the app subscribes."""
    challenge = query.get("hub.challenge", "")
    tokens = _resolved(channel.verify_token for _, channel in inbox_pages(current_config()))
    if (
        query.get("hub.mode") == "subscribe"
        and 0 < len(challenge) <= MAX_CHALLENGE_CHARS
        and challenge.isascii()
        and challenge.isprintable()
        and any(webhook.same_secret(query.get("hub.verify_token"), token) for token in tokens)
    ):
        return Response(
            body=challenge, status_code=200, headers={"Content-Type": "text/plain; charset=utf-8"}
        )
    return webhook.refusal(PLATFORM, webhook.Refused(403, "bad_verify_token"))


def receive_event(request: Request, now: datetime | None = None) -> Response:
    """POST /webhooks/meta: checked, put on the inbox lane, answered 200."""
    try:
        body, signature = _checked(request)
    except webhook.Refused as refused:
        return webhook.refusal(PLATFORM, refused)
    enqueue(InboundEvent("meta", now or utcnow(), body, signature=signature))
    return webhook.accepted()


def _checked(request: Request) -> tuple[bytes, str]:
    body = webhook.read_body(request)
    pages = inbox_pages(current_config())
    if not pages:
        raise webhook.Refused(404, "no_meta_inbox")
    signature = request.headers.get(SIGNATURE_HEADER) or ""
    secrets = _resolved(channel.app_secret for _, channel in pages)
    if not any(webhook.signed_sha256(signature, body, secret) for secret in secrets):
        raise webhook.Refused(401, "bad_signature")
    if not isinstance(webhook.json_object(body).get("object"), str):
        raise webhook.Refused(400, "no_object")
    return body, signature


def inbox_pages(config: Config) -> list[tuple[str, FacebookChannel]]:
    """Every Facebook inbox channel, with its tenant id."""
    return [
        (tenant.id, channel)
        for tenant in config.tenants
        for channel in tenant.channels
        if isinstance(channel, FacebookChannel) and channel.inbox
    ]


def _resolved(refs: Iterator[str | None]) -> list[str]:
    """The values of these secret references; one that cannot be read is left out (and logged by
    reference), so a single misconfigured Page does not stop the others' webhooks."""
    values = []
    for ref in dict.fromkeys(ref for ref in refs if ref):
        try:
            values.append(resolve_secret(ref))
        except SecretError as error:
            logger.warning("Meta webhook secret unreadable", extra={"problem": str(error)})
    return values


# ---- the event ------------------------------------------------------------------------------


def normalise(event: InboundEvent, config: Config) -> Normalised:
    payload = event.payload()
    if payload.get("object") != "page":
        return Normalised(ignored=("other_object",))
    entries = payload.get("entry")
    messages: list[InboundMessage] = []
    ignored: list[str] = []
    for entry in entries if isinstance(entries, list) else []:
        page = str(entry.get("id")) if isinstance(entry, dict) else ""
        owners = [(t, c) for t, c in inbox_pages(config) if c.page_id == page and _signed_by(c, event)]
        if not owners:
            ignored.append("unknown_page")
        for tenant, channel in owners:
            for item in entry_items(entry, tenant, channel, event.received_at):
                if isinstance(item, InboundMessage):
                    messages.append(item)
                else:
                    ignored.append(item)
    return Normalised(messages=tuple(messages), ignored=tuple(ignored))


def _signed_by(channel: FacebookChannel, event: InboundEvent) -> bool:
    """Whether this Page's app signed the event. A secret that cannot be read now raises: the
    record is retried, its messages never dropped for it."""
    if channel.app_secret is None:
        return False
    return webhook.signed_sha256(event.signature, event.body, resolve_secret(channel.app_secret))


def entry_items(
    entry: dict[str, Any], tenant: str, channel: FacebookChannel, received_at: datetime
) -> Iterator[InboundMessage | str]:
    """Each comment and Messenger message of a Page's entry, or why an item is not one."""
    for change in objects(entry.get("changes")):
        if change.get("field") != "feed":
            yield "other_field"
            continue
        yield _comment(as_object(change.get("value")), tenant, channel, received_at)
    for event in objects(entry.get("messaging")):
        yield _direct(event, tenant, channel, received_at)


def _comment(
    value: dict[str, Any], tenant: str, channel: FacebookChannel, received_at: datetime
) -> InboundMessage | str:
    if value.get("item") != "comment":
        return "not_a_comment"
    if value.get("verb") != "add":
        return "edited"
    author = as_object(value.get("from"))
    author_id, comment_id, post_id = map(
        _string, (author.get("id"), value.get("comment_id"), value.get("post_id"))
    )
    if not (author_id and comment_id and post_id):
        return "malformed"
    if author_id == channel.page_id:
        return "own_post"
    parent = value.get("parent_id")
    labels = [CONTENT_LABELS[name] for name in ("photo", "video") if value.get(name)]
    return InboundMessage(
        tenant=tenant,
        channel=channel.id,
        platform=PLATFORM,
        platform_message_id=comment_id,
        citizen=Citizen(PLATFORM, author_id, str(author.get("name") or "")[:200]),
        text=with_labels(_string(value.get("message")), labels),
        received_at=platform_time(value.get("created_time"), received_at),
        kind="comment",
        in_reply_to_remote_id=post_id,
        parent_message_id=parent if isinstance(parent, str) and parent != post_id else None,
        reply_target={"comment_id": comment_id, "post_id": post_id},
    )


def _direct(
    event: dict[str, Any], tenant: str, channel: FacebookChannel, received_at: datetime
) -> InboundMessage | str:
    message = event.get("message")
    if not isinstance(message, dict):
        return "not_a_message"  # delivery and read receipts, postbacks, reactions
    sender, mid = as_object(event.get("sender")).get("id"), message.get("mid")
    if message.get("is_echo") or sender == channel.page_id:
        return "own_post"
    if not isinstance(sender, str) or not sender or not isinstance(mid, str) or not mid:
        return "malformed"
    attachments = objects(message.get("attachments"))
    labels = [CONTENT_LABELS.get(str(a.get("type")), "[allegato]") for a in attachments]
    timestamp = event.get("timestamp")
    return InboundMessage(
        tenant=tenant,
        channel=channel.id,
        platform=PLATFORM,
        platform_message_id=mid,
        # Messenger tells only the page-scoped id; the name would take a Graph call per citizen.
        citizen=Citizen(PLATFORM, sender, ""),
        text=with_labels(_string(message.get("text")), labels),
        received_at=platform_time(
            timestamp / MILLISECONDS if isinstance(timestamp, int) else None, received_at
        ),
        kind="direct",
        location=_shared_location(attachments),
        reply_target={"recipient_id": sender, "message_id": mid},
    )


def _shared_location(attachments: list[dict[str, Any]]) -> Location | None:
    for attachment in attachments:
        if attachment.get("type") == "location":
            place = as_object(as_object(attachment.get("payload")).get("coordinates"))
            return location(place.get("lat"), place.get("long"))
    return None


def _string(value: object) -> str:
    return value if isinstance(value, str) else ""
