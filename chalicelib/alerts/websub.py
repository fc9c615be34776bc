"""WebSub (W3C Recommendation, 2018) subscriber for alert feeds: the feed's hub pushes each change to
us, and its alerts are posted at once instead of on the next poll (the poller keeps running: it is
the safety net when a push is lost, and the pipeline posts nothing twice).

Flow. The renewal schedule reads each MeteoAlarm Atom source, and where the feed advertises a hub
(``rel="hub"``) subscribes its topic (``rel="self"``) with the callback
``$BANDITORE_WEBSUB_CALLBACK_URL/websub/<subscription id>`` and a random secret of that subscription
alone, kept in DynamoDB. The hub verifies our intent with a GET to the callback; we echo its challenge
and record the lease. Each POST the hub then makes is checked against the HMAC of its raw body and,
when genuine, stored (gzip'd, as a DynamoDB item) and answered 202 at once; a PushJob on the urgent
lane then reads and announces it as a polled body of that feed (`polling.run_push_job`) for every
tenant listing it. Leases are renewed a day before they end; subscriptions of feeds no longer
configured are ended.

Decisions on the spec:
- A push whose X-Hub-Signature is missing, malformed, of another algorithm than sha1/sha256/sha384/
  sha512, or wrong, is ignored and still answered 202 like a genuine one (§8: the subscriber MUST
  ignore it and MAY answer 2xx "to prevent brute-force attempts of the signature"): a forger learns
  nothing, and the hub does not retry a body that will never verify.
- An unknown subscription answers 404 (GET, as §5.3 says, and POST); a body over MAX_PUSH_BYTES 413
  (the hub counts it a failure; the poller still reads the feed).
- Unsubscribing is confirmed only when we asked for it: anyone can ask a hub to unsubscribe our
  callback, and only our echo of the challenge makes it happen. Subscribing is confirmed for a
  subscription we hold with that topic, whether first asked or renewed.
- WebSub has no replay protection: a replayed signed body is a feed body already read, and the
  pipeline's per-alert rows make it post nothing.
- The secret is sent only to https hubs (http on loopback only, for the local stack): over http it
  would travel in clear. Hub redirects are not followed, so the secret never reaches another host.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
from botocore.exceptions import BotoCoreError, ClientError
from chalice.app import Request, Response

from chalicelib import observability as obs
from chalicelib.alerts.errors import AlertError
from chalicelib.alerts.fanout import alert_feeds
from chalicelib.alerts.meteoalarm import MAX_LIST_BYTES, parse_atom
from chalicelib.alerts.polling import ATOM_FORMAT, feed_session
from chalicelib.clock import iso, utcnow
from chalicelib.http import TIMEOUT
from chalicelib.observability import logger
from chalicelib.publishing.lanes import PushJob, send_jobs
from chalicelib.sources.errors import FeedError
from chalicelib.sources.fetch import fetch_feed
from chalicelib.storage.alert_feeds import feed_key, put_pushed_body
from chalicelib.storage.subscriptions import (
    Status,
    Subscription,
    create_subscription,
    delete_subscription,
    get_subscription,
    list_subscriptions,
    update_subscription,
)

# The API's public base URL (e.g. https://alerts.comune.example.it or the API Gateway stage URL); the
# renewal function needs it, the routes do not. Unset: no subscriptions, alerts are polled only.
CALLBACK_URL_ENV = "BANDITORE_WEBSUB_CALLBACK_URL"

# Asked for; the hub decides and says so when it verifies. A longer grant is recorded as this long:
# renewing early costs nothing, while a verification forged with a long lease must not stop renewals.
LEASE_SECONDS = 7 * 86_400
RENEW_WITHIN = timedelta(days=1)  # renewal runs hourly: a day leaves room for a hub down for hours
RETRY_AFTER = timedelta(hours=1)  # a request the hub never verified, or denied, is sent again after this
# API Gateway takes 10 MB and a synchronous Lambda event 6 MB, base64 included; Italy's whole Atom list
# is a few hundred kB on a bad day. A larger push is refused and the poller reads the feed instead.
MAX_PUSH_BYTES = 2 * 1024 * 1024
MAX_CHALLENGE_CHARS = 512
# Metric names of the push path (the shared ones live in chalicelib.observability).
PUSHES_IGNORED = "WebSubPushesIgnored"
HUB_REQUEST_FAILURES = "WebSubHubRequestFailures"
PUSHES_POLLED = "WebSubPushesPolled"  # genuine pushes whose body could not be kept: the feed is polled
PUSH_HAND_OFF_FAILURES = "WebSubPushHandOffFailures"  # answered 503: the hub delivers again

_DIGESTS = {name: getattr(hashlib, name) for name in ("sha1", "sha256", "sha384", "sha512")}
_SUBSCRIPTION_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_DIGITS = re.compile(r"\d{1,12}")
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

Mode = Literal["subscribe", "unsubscribe"]


# --- signatures ---


def signature_is_valid(header: str | None, body: bytes, secret: str) -> bool:
    """Whether an X-Hub-Signature value (``method=hex``) is the HMAC of the raw body under the secret.
    A missing or malformed value, or a method the spec does not name, is simply not valid."""
    method, _, given = (header or "").strip().partition("=")
    digest = _DIGESTS.get(method.strip().lower())
    if digest is None:
        return False
    expected = hmac.new(secret.encode(), body, digest).hexdigest()
    # compare_digest takes as long wherever the values differ: timing tells a forger nothing.
    return hmac.compare_digest(given.strip().lower().encode(), expected.encode())


# --- routes ---


def answer_verification(
    subscription_id: str, query: Mapping[str, str], now: datetime | None = None
) -> Response:
    """GET /websub/{id}: the hub verifying a subscribe or unsubscribe request, or reporting a denial."""
    subscription = _find(subscription_id)
    if subscription is None:
        return _error(404, "unknown_subscription", "no subscription with this id")
    if query.get("hub.topic") != subscription.topic:
        return _error(404, "unknown_topic", "this subscription is for another topic")
    mode = query.get("hub.mode", "")
    if mode == "denied":
        return _record_denial(subscription, query.get("hub.reason"))
    challenge = query.get("hub.challenge", "")
    if not _is_challenge(challenge):
        return _error(
            400, "bad_challenge", f"hub.challenge must be 1 to {MAX_CHALLENGE_CHARS} printable characters"
        )
    if mode == "subscribe":
        return _confirm_subscribe(subscription, challenge, query.get("hub.lease_seconds"), now or utcnow())
    return _confirm_unsubscribe(subscription, challenge, mode)


def receive_content(subscription_id: str, request: Request, now: datetime | None = None) -> Response:
    """POST /websub/{id}: the hub delivering the feed. Answered 202 once the signature is checked
    and, when genuine, the body handed to a job on the urgent lane (503 when it cannot be: the hub
    retries); see the module notes for what an invalid one gets."""
    declared = request.headers.get("content-length", "")
    if _DIGITS.fullmatch(declared) and int(declared) > MAX_PUSH_BYTES:
        return _too_large()
    subscription = _find(subscription_id)
    if subscription is None:
        return _error(404, "unknown_subscription", "no subscription with this id")
    body = request.raw_body
    body = body.encode() if isinstance(body, str) else body
    if len(body) > MAX_PUSH_BYTES:
        return _too_large()
    signature = request.headers.get("x-hub-signature")
    if signature_is_valid(signature, body, subscription.secret):
        return _hand_off(subscription, body, now or utcnow())
    obs.count(PUSHES_IGNORED, reason="unsigned" if signature is None else "bad_signature")
    logger.warning(
        "WebSub push ignored: missing or invalid signature",
        extra={"subscription": subscription.id, "signed": signature is not None},
    )
    return _accepted()


def _find(subscription_id: str) -> Subscription | None:
    if not _SUBSCRIPTION_ID.fullmatch(subscription_id):
        return None  # never a key of ours: no need to ask the table
    return get_subscription(subscription_id)


def _is_challenge(challenge: str) -> bool:
    return 0 < len(challenge) <= MAX_CHALLENGE_CHARS and challenge.isascii() and challenge.isprintable()


def _record_denial(subscription: Subscription, reason: str | None) -> Response:
    update_subscription(subscription.id, status="denied", last_error="denied")
    logger.warning(
        "WebSub hub denied the subscription",
        extra={"subscription": subscription.id, "hub": subscription.hub, "reason": (reason or "")[:200]},
    )
    return Response(body="", status_code=200, headers={"Content-Type": "text/plain"})


def _confirm_unsubscribe(subscription: Subscription, challenge: str, mode: str) -> Response:
    if mode != "unsubscribe":
        return _error(400, "bad_mode", "hub.mode must be subscribe, unsubscribe or denied")
    if subscription.status != "unsubscribing":
        return _error(404, "not_requested", "no unsubscribe request is pending for this subscription")
    delete_subscription(subscription.id)
    logger.info("WebSub subscription ended", extra={"subscription": subscription.id})
    return _challenge_echo(challenge)


def _confirm_subscribe(
    subscription: Subscription, challenge: str, lease_text: str | None, now: datetime
) -> Response:
    if subscription.status not in ("pending", "active"):
        return _error(404, "not_requested", "no subscribe request is pending for this subscription")
    if lease_text is not None and not _DIGITS.fullmatch(lease_text):
        return _error(400, "bad_lease", "hub.lease_seconds must be a number of seconds")
    # The spec makes the hub send the lease; one that does not is taken to grant what we asked.
    lease = min(int(lease_text), LEASE_SECONDS) if lease_text is not None else LEASE_SECONDS
    expires = now + timedelta(seconds=lease)
    update_subscription(
        subscription.id, status="active", lease_expires=expires, verified_at=now, last_error=None
    )
    logger.info(
        "WebSub subscription verified", extra={"subscription": subscription.id, "lease_expires": iso(expires)}
    )
    return _challenge_echo(challenge)


def _challenge_echo(challenge: str) -> Response:
    return Response(body=challenge, status_code=200, headers={"Content-Type": "text/plain; charset=utf-8"})


def _too_large() -> Response:
    return _error(413, "too_large", f"the body is over the limit of {MAX_PUSH_BYTES:,} bytes")


def _error(status: int, code: str, message: str) -> Response:
    return Response(body={"error": code, "message": message}, status_code=status)


def _hand_off(subscription: Subscription, body: bytes, now: datetime) -> Response:
    """Keep a genuine push and queue the job that reads and announces it, then answer at once: the
    reading (CAP documents to fetch) and the announcing (7,900 comuni) cannot fit API Gateway's 29 s.
    A body that cannot be kept is replaced by a poll of the feed; a job that cannot be queued is
    answered 503, so the hub delivers again."""
    if not alert_feeds().get((subscription.feed_url, ATOM_FORMAT)):
        # The source left the config; the next renewal ends the subscription.
        logger.info("WebSub push for a feed no tenant lists", extra={"subscription": subscription.id})
        return _accepted()
    feed = feed_key(subscription.feed_url, ATOM_FORMAT)
    try:
        push = put_pushed_body(feed, body, now)
    except (ClientError, BotoCoreError) as error:
        logger.warning(
            "WebSub push not stored", extra={"subscription": subscription.id, "error": type(error).__name__}
        )
        push = None
    if push is None:
        obs.count(PUSHES_POLLED)
    try:
        queued = send_jobs([PushJob(feed, push)])
    except (ClientError, BotoCoreError) as error:
        logger.warning(
            "WebSub push job failed", extra={"subscription": subscription.id, "error": type(error).__name__}
        )
        queued = 0
    if queued != 1:
        obs.count(PUSH_HAND_OFF_FAILURES)
        return _error(503, "unavailable", "the push could not be queued; deliver it again")
    logger.info("WebSub push queued", extra={"subscription": subscription.id, "stored": push is not None})
    return _accepted()


def _accepted() -> Response:
    return Response(body="", status_code=202, headers={"Content-Type": "text/plain"})


# --- subscribing and renewing ---


def renew_subscriptions(now: datetime | None = None) -> dict[str, Any]:
    """Subscribe each Atom alert feed that advertises a hub and has no live subscription, renew
    leases ending within RENEW_WITHIN, ask again where the hub never verified or denied, and end the
    subscriptions of feeds no longer configured."""
    now = now or utcnow()
    base = os.environ.get(CALLBACK_URL_ENV, "").rstrip("/")
    if not base:
        logger.info("WebSub is off: no callback URL", extra={"variable": CALLBACK_URL_ENV})
        return {"renewed_at": iso(now), "skipped": f"{CALLBACK_URL_ENV} is not set"}
    feeds = [url for url, feed_format in alert_feeds() if feed_format == ATOM_FORMAT]
    kept, orphans = _by_feed(list_subscriptions(), feeds)
    results = [_subscribe(url, kept.get(url), base, now) for url in feeds if _due(kept.get(url), now)]
    results += [_end(orphan, base, now) for orphan in orphans]
    return {"renewed_at": iso(now), "results": results}


def _by_feed(
    subscriptions: Iterable[Subscription], feeds: list[str]
) -> tuple[dict[str, Subscription], list[Subscription]]:
    """One subscription per configured feed, the active one with the longest lease first; the rest
    (duplicates from overlapping runs, feeds no longer configured) are to be ended."""
    kept: dict[str, Subscription] = {}
    orphans: list[Subscription] = []
    for subscription in sorted(subscriptions, key=_usefulness, reverse=True):
        if subscription.feed_url in feeds and subscription.feed_url not in kept:
            kept[subscription.feed_url] = subscription
        else:
            orphans.append(subscription)
    return kept, orphans


def _usefulness(subscription: Subscription) -> tuple[bool, datetime]:
    return subscription.status == "active", subscription.lease_expires or datetime.min.replace(tzinfo=UTC)


def _due(subscription: Subscription | None, now: datetime) -> bool:
    if subscription is None or subscription.status == "unsubscribing":  # new, or configured again
        return True
    if subscription.status == "active" and subscription.lease_expires is not None:
        return subscription.lease_expires - now <= RENEW_WITHIN
    return now - subscription.requested_at >= RETRY_AFTER


def _subscribe(url: str, subscription: Subscription | None, base: str, now: datetime) -> dict[str, Any]:
    try:
        hub, topic = _discover(url)
    except (FeedError, AlertError) as error:
        logger.warning("WebSub hub discovery failed", extra={"feed": url, "reason": error.reason})
        return {"feed": url, "result": "unreadable", "reason": error.reason}
    if hub is None:
        return {"feed": url, "result": "no_hub"}
    if not _may_receive_secret(hub):
        logger.warning("WebSub hub not on https: not subscribed", extra={"feed": url, "hub": hub})
        return {"feed": url, "result": "insecure_hub"}
    subscription = _requested(url, subscription, hub, topic, now)
    return {"feed": url, "subscription": subscription.id, "result": _ask_hub(subscription, "subscribe", base)}


def _discover(url: str) -> tuple[str | None, str]:
    """The feed's hub and topic, from the feed itself (its own name for itself, else its URL)."""
    fetched = fetch_feed(url, session=feed_session(), etag=None, last_modified=None, max_bytes=MAX_LIST_BYTES)
    index = parse_atom(fetched.body, url=fetched.url)
    return index.hub, index.topic or fetched.url


def _may_receive_secret(hub: str) -> bool:
    parts = urlsplit(hub)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)


def _requested(
    url: str, subscription: Subscription | None, hub: str, topic: str, now: datetime
) -> Subscription:
    """The subscription as stored before the hub is asked: a hub may verify before it answers."""
    if subscription is None:
        created = Subscription(
            id=secrets.token_urlsafe(18),
            feed_url=url,
            hub=hub,
            topic=topic,
            secret=secrets.token_urlsafe(32),  # 43 characters: the spec wants under 200 bytes
            status="pending",
            requested_at=now,
        )
        create_subscription(created)
        return created
    # A renewal keeps an active subscription active: the hub goes on pushing while it verifies. The
    # secret stays too, so pushes signed before and after the renewal both verify.
    status: Status = "active" if subscription.status == "active" else "pending"
    update_subscription(subscription.id, hub=hub, topic=topic, status=status, requested_at=now)
    return replace(subscription, hub=hub, topic=topic, status=status, requested_at=now)


def _end(subscription: Subscription, base: str, now: datetime) -> dict[str, Any]:
    outcome = {"feed": subscription.feed_url, "subscription": subscription.id}
    if subscription.status != "unsubscribing":
        update_subscription(subscription.id, status="unsubscribing", requested_at=now)
        return outcome | {"result": _ask_hub(subscription, "unsubscribe", base)}
    if now - subscription.requested_at >= RETRY_AFTER:
        delete_subscription(subscription.id)  # the hub never confirmed: its lease lapses by itself
        return outcome | {"result": "forgotten"}
    return outcome | {"result": "waiting"}


def _ask_hub(subscription: Subscription, mode: Mode, base: str) -> str:
    form = {
        "hub.mode": mode,
        "hub.topic": subscription.topic,
        "hub.callback": f"{base}/websub/{subscription.id}",
    }
    if mode == "subscribe":
        form |= {"hub.secret": subscription.secret, "hub.lease_seconds": str(LEASE_SECONDS)}
    try:
        response = feed_session().post(subscription.hub, data=form, timeout=TIMEOUT, allow_redirects=False)
        response.close()
    except requests.RequestException as error:
        # The exception's text can quote the request; its type says enough.
        return _hub_failed(subscription, mode, type(error).__name__)
    if not 200 <= response.status_code < 300:  # noqa: PLR2004 (the 2xx range)
        return _hub_failed(subscription, mode, f"http_{response.status_code}")
    if subscription.last_error:
        update_subscription(subscription.id, last_error=None)
    return "requested"


def _hub_failed(subscription: Subscription, mode: Mode, reason: str) -> str:
    update_subscription(subscription.id, last_error=reason)
    obs.count(HUB_REQUEST_FAILURES, reason=reason)
    logger.warning(
        "WebSub hub request failed",
        extra={"subscription": subscription.id, "hub": subscription.hub, "mode": mode, "reason": reason},
    )
    return f"failed: {reason}"
