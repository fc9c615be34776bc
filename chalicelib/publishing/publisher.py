"""The publisher: each SQS record is one delivery. Claim it, render, post, record the remote id.

Guarantees (see README "Delivery guarantees"): a delivery is claimed with a conditional write before
the platform is called, and marked posted only after the platform confirmed it, so nothing is marked
done that did not go out. Retryable failures go back to the queue, spaced by the platform's own
rate-limit signal; permanent ones are recorded with their reason and not retried; records that keep
failing end in the DLQ (alarmed). Idempotency per platform is the adapter's (Mastodon: Idempotency-Key).
Replies to citizens ride the urgent lane too: their jobs go to chalicelib/inbox/sending.py with this
lane's rules (`_LaneRules`), so an answer waits, spends budget, retries and is held as a post is.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import ClientError
from chalice.app import SQSEvent

from chalicelib import observability as obs
from chalicelib import settings
from chalicelib.announcements import Announcement
from chalicelib.channels.base import (
    AuthError,
    ChannelAdapter,
    Editing,
    PermanentError,
    PostGone,
    PostResult,
    PublishError,
    RateLimited,
    RenderedPost,
    RetryableError,
    Skipped,
)
from chalicelib.channels.registry import adapter_for
from chalicelib.clock import seconds_left, utcnow
from chalicelib.config.loader import current_config
from chalicelib.config.models import AnyChannel
from chalicelib.inbox import sending
from chalicelib.inbox import store as inbox_store
from chalicelib.observability import logger
from chalicelib.publishing import budget
from chalicelib.publishing.lanes import (
    MAX_SQS_DELAY_SECONDS,
    AnnounceJob,
    DeliveryMessage,
    LaneMessage,
    PushJob,
    ReplyJob,
    delay_message,
    enqueue,
    parse_message,
    requeue,
)
from chalicelib.storage import channel_health
from chalicelib.storage import deliveries as store
from chalicelib.storage.alert_threads import highest_active_level
from chalicelib.storage.announcements import get_announcement
from chalicelib.storage.deliveries import ClaimOutcome, Delivery, PostedAs, Turn

# Stop taking new records when the invocation is this close to its timeout, so a record is never
# cut off between the platform's answer and the record of it: longer than the slowest record
# (Mastodon's limits and status calls at 3 + 10 s each, plus DynamoDB).
SAFETY_MARGIN_SECONDS = 35.0
DEFAULT_RETRY_BASE_SECONDS = 60.0
MAX_BACKOFF_SECONDS = 3600
# A platform that says "retry now" (a reset time already past) is still given a breath.
MIN_RATE_LIMIT_WAIT_SECONDS = 5.0
# Failures after which the platform may have acted although we saw no success: the answer was lost
# (read timeout) or unreadable. Retrying them may duplicate a post on a platform without idempotency.
UNCERTAIN_REASONS = frozenset({"timeout", "malformed_response"})
# Failures after which the post may be out: an uncertain one, or a platform refusing the same text
# again (most likely because an earlier attempt went through).
MAYBE_OUT_REASONS = UNCERTAIN_REASONS | {"duplicate"}
# A reply in an alert thread waits for the thread's first post, checking every few seconds.
THREAD_WAIT_SECONDS = 3.0
THREAD_PATIENCE = timedelta(minutes=10)
# A thread's turn outlasts its holder's invocation by this much: the clocks of two workers
# (NTP-synchronised on Lambda) and a DynamoDB write may be this far apart.
TURN_MARGIN_SECONDS = 5.0
# Held news looks again this often (SQS's longest delay is 15 minutes).
NEWS_PAUSE_RECHECK_SECONDS = 300.0
# A delivery to a channel whose token was refused waits this long between looks at its health row;
# the health check (every 15 minutes) is what finds the new token working.
DEFAULT_UNHEALTHY_RECHECK_SECONDS = float(MAX_SQS_DELAY_SECONDS)


class RetryLater(Exception):
    """The record is put back on its queue (SQS redelivers it); nothing was posted."""


@dataclass
class _Invocation:
    """State of one batch: channels paused by a rate limit, and the time left."""

    context: Any
    paused_until: dict[tuple[str, str], float] = field(default_factory=dict)
    crisis: dict[str, bool] = field(default_factory=dict)  # per tenant, read once per batch
    unhealthy: dict[tuple[str, str], bool] = field(default_factory=dict)  # per channel, read once per batch

    def pause(self, message: LaneMessage, seconds: float) -> None:
        self.paused_until[(message.tenant, message.channel)] = time.monotonic() + seconds

    def pause_left(self, message: LaneMessage) -> float:
        return max(0.0, self.paused_until.get((message.tenant, message.channel), 0.0) - time.monotonic())

    def news_paused(self, tenant: str) -> bool:
        """Crisis mode: the tenant holds routine news while a severe enough alert is in force."""
        if tenant not in self.crisis:
            self.crisis[tenant] = _in_crisis(tenant)
        return self.crisis[tenant]

    def channel_unhealthy(self, message: LaneMessage) -> bool:
        key = (message.tenant, message.channel)
        if key not in self.unhealthy:
            health = channel_health.get_health(message.tenant, message.channel)
            self.unhealthy[key] = health is not None and not health.healthy
        return self.unhealthy[key]

    def running_out(self) -> bool:
        left = seconds_left(self.context)
        return left is not None and left < SAFETY_MARGIN_SECONDS


def _in_crisis(tenant_id: str) -> bool:
    try:
        alerts = current_config().tenant(tenant_id).alerts
    except KeyError:
        return False  # an unknown tenant: the claim records why nothing is posted
    threshold = alerts.news_pause_level if alerts else None
    if threshold is None:
        return False
    active = highest_active_level(tenant_id, utcnow())
    return active is not None and active >= threshold


def handle_batch(event: SQSEvent) -> dict[str, Any]:
    invocation = _Invocation(context=event.context)
    response = process_partial_response(
        event=event.to_dict(),
        record_handler=functools.partial(publish_record, invocation),
        # A batch where every record failed is still a partial answer, not a function error: the
        # failures are already recorded per delivery, and an error would only trip the alarm.
        processor=BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False),
        context=event.context,  # type: ignore[arg-type]  # Chalice's context is Lambda's own object
    )
    return dict(response)


def publish_record(invocation: _Invocation, record: SQSRecord) -> None:
    message = parse_message(record.body)
    # Alert jobs (a large feed's announce slices, WebSub pushes) ride the urgent lane too; their
    # modules load only in a container that gets one, not on every publisher's cold start.
    if isinstance(message, AnnounceJob | PushJob):
        from chalicelib.alerts.polling import run_alert_job

        return run_alert_job(message)
    if isinstance(message, ReplyJob):
        return sending.send_reply(message, _LaneRules(invocation, message, record))
    # The announcement id is the correlation id: it ties the poll that found an item to every
    # delivery of it, across functions and retries.
    logger.set_correlation_id(message.announcement_id)
    logger.append_keys(tenant=message.tenant, channel=message.channel)
    wait = _reason_to_wait(invocation, message)
    if wait is not None:
        return _come_back(message, record, *wait)
    now = utcnow()
    claim = store.claim_delivery(message.tenant, message.announcement_id, message.channel, now)
    if claim.outcome is ClaimOutcome.BUSY and claim.delivery is not None:
        # Come back when the other worker's lease ends: it has posted and recorded by then, or died.
        lease_left = claim.delivery.lease_until - now if claim.delivery.lease_until else store.lease()
        return _come_back(message, record, lease_left.total_seconds() + 1, "another worker holds it")
    if claim.outcome is not ClaimOutcome.CLAIMED or claim.delivery is None:
        logger.info("Delivery needs no work", extra={"outcome": claim.outcome.value})
        return None
    delivery = claim.delivery
    if claim.outcome_unknown:
        # The last worker died mid-call. Platforms with idempotency dedupe the retry; others may
        # show the post twice. Counted so the rate of such retries is visible.
        logger.warning("Retrying a delivery whose previous attempt has an unknown outcome")
        obs.count(obs.UNCERTAIN_RETRIES, platform=delivery.platform)
    return _attempt(invocation, message, record, delivery)


def _reason_to_wait(invocation: _Invocation, message: LaneMessage) -> tuple[float, str] | None:
    """Why this delivery should not even be claimed now, and for how long."""
    if invocation.running_out():
        return 0, "invocation about to time out"
    pause = invocation.pause_left(message)
    if pause:
        return pause, "channel rate limited"
    if message.lane == "normal" and invocation.news_paused(message.tenant):
        return NEWS_PAUSE_RECHECK_SECONDS, "crisis mode: an alert is in force"
    if invocation.channel_unhealthy(message):
        # Not failed: the post goes out once a human fixes the token (alerts still expire meanwhile).
        return _unhealthy_recheck(), "channel unhealthy"
    return None


def _come_back(message: LaneMessage, record: SQSRecord, seconds: float, why: str) -> None:
    """Postpone a delivery that was not attempted. It must not use up one of the message's
    receives (the DLQ is for deliveries that fail, not for ones that waited), so a fresh copy is
    queued with a delay and this record succeeds; past SQS's 15-minute delay limit the record is
    hidden instead and does count."""
    if seconds <= MAX_SQS_DELAY_SECONDS:
        requeue(message, seconds)
        logger.info("Delivery postponed", extra={"why": why, "retry_in_s": round(seconds)})
        return
    delay_message(message.lane, record.receipt_handle, seconds)
    raise RetryLater(why)


def _attempt(
    invocation: _Invocation, message: DeliveryMessage, record: SQSRecord, delivery: Delivery
) -> None:
    taken_at = utcnow()
    try:
        anchor = _thread_anchor(delivery)
        channel = _channel(delivery.tenant, delivery.channel)
        refusal = _take_budget(message, channel, taken_at)
        if refusal is not None:
            return _wait_for_budget(invocation, message, record, delivery, refusal)
        sent = _post(delivery, channel, anchor, invocation)
    except ThreadWait as waiting:
        return _wait_for_thread(message, record, delivery, waiting, taken_at)
    except RetryableError as error:
        return _retry(invocation, message, record, delivery, error)
    except AuthError as error:
        return _hold_for_credentials(invocation, message, record, delivery, error)
    except PermanentError as error:
        return _settle(delivery, error, taken_at)
    except Exception:
        store.release_delivery(delivery, "internal", "unexpected error (see logs)", utcnow())
        raise
    _record(delivery, sent)
    return None


def _settle(delivery: Delivery, error: PermanentError, taken_at: datetime) -> None:
    """Record a final outcome without a post: skipped (not for this channel) or failed (alarmed)."""
    if isinstance(error, Skipped):
        _give_back_budget(delivery, taken_at)
        if store.skip_delivery(delivery, error.reason, str(error), utcnow()):
            obs.count(obs.POSTS_SKIPPED, platform=delivery.platform, reason=error.reason)
            logger.info("Delivery skipped", extra={"reason": error.reason, "error": str(error)})
    elif store.fail_delivery(delivery, error.reason, str(error), utcnow()):
        obs.count(obs.PUBLISH_FAILURES, platform=delivery.platform, reason=error.reason)
        logger.error("Delivery failed permanently", extra={"reason": error.reason, "error": str(error)})


def _wait_for_thread(
    message: DeliveryMessage, record: SQSRecord, delivery: Delivery, waiting: ThreadWait, taken_at: datetime
) -> None:
    if isinstance(waiting, ThreadBusy):
        _give_back_budget(delivery, taken_at)  # taken before the thread's turn was asked for
    # A wait is not an attempt: counting it would stretch the back-off of the next real failure
    # (doubling per attempt) by every few seconds spent waiting.
    store.release_delivery(delivery, waiting.reason, waiting.why, utcnow(), attempted=False)
    return _come_back(message, record, THREAD_WAIT_SECONDS, waiting.why)


def _give_back_budget(delivery: Delivery, taken_at: datetime) -> None:
    """Nothing went to the platform: the budget slot goes back, so skips and waits never crowd out
    posts."""
    channel = _channel(delivery.tenant, delivery.channel)
    configured = budget.budget_for(channel.platform, channel.budget)
    budget.give_back(delivery.tenant, delivery.channel, configured, taken_at)


def _wait_for_budget(
    invocation: _Invocation,
    message: DeliveryMessage,
    record: SQSRecord,
    delivery: Delivery,
    refusal: budget.Refusal,
) -> None:
    """The lane's share of the channel's window is used up: nothing was posted."""
    store.release_delivery(delivery, "budget", f"{refusal.used} of {refusal.cap} posts used", utcnow())
    return _budget_pause(invocation, message, record, delivery.platform, refusal)


def _take_budget(message: LaneMessage, channel: AnyChannel, now: datetime) -> budget.Refusal | None:
    configured = budget.budget_for(channel.platform, channel.budget)
    return budget.take(message.tenant, message.channel, message.lane, configured, now)


def _budget_pause(
    invocation: _Invocation, message: LaneMessage, record: SQSRecord, platform: str, refusal: budget.Refusal
) -> None:
    """Come back when the budget's window turns (in 15-minute steps for daily windows, so waiting
    never uses up receives)."""
    obs.count(obs.BUDGET_WAITS, platform=platform, lane=message.lane)
    wait = min(refusal.wait_seconds, MAX_SQS_DELAY_SECONDS)
    invocation.pause(message, wait)
    return _come_back(message, record, wait, "post budget used up")


def _hold_for_credentials(
    invocation: _Invocation, message: DeliveryMessage, record: SQSRecord, delivery: Delivery, error: AuthError
) -> None:
    """The platform refused the credentials: mark the channel unhealthy (metric and alarm once, on
    the change), and keep the delivery for when the token is fixed instead of failing it."""
    now = utcnow()
    if not store.release_delivery(delivery, error.reason, str(error), now):
        logger.warning("Claim lost to another worker", extra={"reason": error.reason})
        return None
    return _mark_unhealthy(invocation, message, record, delivery.platform, error)


def _mark_unhealthy(
    invocation: _Invocation, message: LaneMessage, record: SQSRecord, platform: str, error: AuthError
) -> None:
    """Record the channel unhealthy (metric and alarm once, on the change) and come back when its
    health is looked at again."""
    now = utcnow()
    health = channel_health.ChannelHealth(
        tenant=message.tenant,
        channel=message.channel,
        platform=platform,
        state="unhealthy",
        reason=error.reason,
        detail=str(error),
        since=now,
        checked_at=now,
    )
    if channel_health.record_health(health):
        obs.count(obs.CHANNELS_TURNED_UNHEALTHY, platform=platform)
        logger.error("Channel credentials refused: channel marked unhealthy", extra={"error": str(error)})
    invocation.unhealthy[(message.tenant, message.channel)] = True
    return _come_back(message, record, _unhealthy_recheck(), "channel unhealthy")


def _unhealthy_recheck() -> float:
    return settings.seconds(settings.UNHEALTHY_RECHECK_SECONDS_ENV, DEFAULT_UNHEALTHY_RECHECK_SECONDS)


def _retry(
    invocation: _Invocation,
    message: DeliveryMessage,
    record: SQSRecord,
    delivery: Delivery,
    error: RetryableError,
) -> None:
    if not store.release_delivery(delivery, error.reason, str(error), utcnow()):
        # Our lease ran out during the call and another worker holds the delivery now.
        logger.warning("Claim lost to another worker", extra={"reason": error.reason})
        return None
    return _retry_later(
        invocation, message, record, error, platform=delivery.platform, attempts=delivery.attempts
    )


def _retry_later(
    invocation: _Invocation,
    message: LaneMessage,
    record: SQSRecord,
    error: RetryableError,
    *,
    platform: str,
    attempts: int,
) -> None:
    """Back on the lane after a retryable failure: when the platform's rate limit ends, or after a
    back-off that uses up one of the message's receives."""
    obs.count(obs.PUBLISH_RETRIES, platform=platform, reason=error.reason)
    if error.reason in UNCERTAIN_REASONS:
        obs.count(obs.UNCERTAIN_RETRIES, platform=platform)
    if isinstance(error, RateLimited):
        # The platform asked to wait: that is not a failure of this delivery.
        wait = max(error.retry_after or 0.0, MIN_RATE_LIMIT_WAIT_SECONDS)
        invocation.pause(message, wait)
        logger.warning("Delivery rate limited", extra={"retry_in_s": round(wait)})
        return _come_back(message, record, wait, error.reason)
    wait = error.retry_after if error.retry_after is not None else _backoff(attempts)
    logger.warning("Delivery will be retried", extra={"reason": error.reason, "retry_in_s": round(wait)})
    delay_message(message.lane, record.receipt_handle, wait)
    raise RetryLater(error.reason)


@dataclass(frozen=True)
class _Sent:
    """How a delivery went out: the platform's answer (naming the first post of a thread), as what,
    and in how many posts (a long text is a thread on some platforms; an edit rewrites one)."""

    result: PostResult
    posted_as: PostedAs
    pieces: int = 1


def _record(delivery: Delivery, sent: _Sent) -> None:
    now, result, posted_as = utcnow(), sent.result, sent.posted_as
    if not store.record_posted(
        delivery, result.remote_id, result.url, now, posted_as=posted_as, pieces=sent.pieces
    ):
        if posted_as == "edit":
            return  # another worker made the same edit: idempotent, nothing shows twice
        logger.warning(
            "Delivery was already recorded as posted: duplicate post", extra={"remote_id": result.remote_id}
        )
        obs.count(obs.DUPLICATE_POSTS, platform=delivery.platform)
        return
    # How it went out (post, reply, edit) is on the delivery and in the log, not a metric dimension:
    # each dimension set is a metric of its own, billed, and the dashboard reads the per-platform one.
    obs.count(obs.POSTS_PUBLISHED, platform=delivery.platform)
    obs.seconds(obs.PUBLISH_LATENCY, (now - delivery.created_at).total_seconds())
    if posted_as == "edit":
        # The edited post stays linked to the announcement it was made for (the thread's first).
        logger.info("Edited", extra={"remote_id": result.remote_id, "attempts": delivery.attempts})
        return
    try:
        # Citizens' replies to this post then link to its announcement in the inbox.
        inbox_store.link_post(
            delivery.tenant, delivery.channel, result.remote_id, delivery.announcement_id, now=now
        )
    except ClientError:
        # Not worth failing the record: its retry would find the delivery posted and stop before here.
        logger.warning("Post not linked for the inbox", extra={"remote_id": result.remote_id})
    logger.info(
        "Posted", extra={"remote_id": result.remote_id, "url": result.url, "attempts": delivery.attempts}
    )


class ThreadWait(Exception):
    """The delivery waits for its alert thread: it is released and comes back, nothing posted."""

    reason = "waiting_for_thread"
    why = "the post it replies to is not out yet"


class ThreadNotReady(ThreadWait):
    """The post this delivery replies to is still on its way."""


class ThreadBusy(ThreadWait):
    """Another post of this delivery's alert thread is going out on the channel (its turn)."""

    reason = "thread_busy"
    why = "another post of its thread is going out"


def _thread_anchor(delivery: Delivery) -> Delivery | None:
    """The posted delivery of the thread's first post on this channel (what a delivery in an alert
    thread replies to or edits). A reply waits for its thread's first post, but not forever: if that
    post failed, or is still not out after THREAD_PATIENCE, the reply goes out on its own rather
    than not at all (None)."""
    if not delivery.thread_anchor:
        return None
    anchor = store.get_delivery(delivery.tenant, delivery.thread_anchor, delivery.channel)
    if anchor is None or anchor.status in ("failed", "skipped"):
        return None
    if anchor.status == "posted" and anchor.remote_id:
        return anchor
    if utcnow() - delivery.created_at < THREAD_PATIENCE:
        raise ThreadNotReady(delivery.thread_anchor)
    logger.warning(
        "Replying without a thread: its first post is not out", extra={"anchor": delivery.thread_anchor}
    )
    return None


def _channel(tenant: str, channel_id: str) -> AnyChannel:
    try:
        channel = current_config().tenant(tenant).channel(channel_id)
    except KeyError:
        raise PermanentError("channel no longer in the configuration", reason="channel_removed") from None
    if not channel.enabled:
        raise PermanentError("channel disabled in the configuration", reason="channel_disabled")
    return channel


def _post(delivery: Delivery, channel: AnyChannel, anchor: Delivery | None, invocation: _Invocation) -> _Sent:
    """Post the delivery, and say how it went out. In an alert thread on a channel that edits, the
    thread's posts go out one at a time and in order (`_in_thread_turn`)."""
    announcement = get_announcement(delivery.tenant, delivery.announcement_id)
    if announcement is None:
        raise PermanentError("announcement not found", reason="announcement_missing")
    if announcement.valid_until and announcement.valid_until <= utcnow():
        raise PermanentError("the alert expired before it could be posted", reason="expired")
    adapter = adapter_for(channel)
    post = adapter.render(announcement)
    if anchor is None or channel.alert_updates != "edit":
        return _publish(adapter, post, delivery, anchor.remote_id if anchor else None)
    return _in_thread_turn(adapter, post, delivery, anchor, announcement, turn_end=_turn_end(invocation))


def _turn_end(invocation: _Invocation) -> datetime:
    """A thread's turn lasts as long as its holder can: Lambda ends an invocation at the function's
    timeout (.chalice/config.json), so the rest of this one, plus a margin. Without a Lambda
    context (a script), the delivery's lease."""
    left = seconds_left(invocation.context)
    length = timedelta(seconds=left + TURN_MARGIN_SECONDS) if left is not None else store.lease()
    return utcnow() + length


def _in_thread_turn(
    adapter: ChannelAdapter,
    post: RenderedPost,
    delivery: Delivery,
    anchor: Delivery,
    announcement: Announcement,
    *,
    turn_end: datetime,
) -> _Sent:
    """Where updates edit the thread's first post, the last edit to land is what the post says, and
    updates arrive in parallel or reordered by retries. So each post of the thread takes the
    thread's turn on the channel first (store.take_thread_turn: a lease on the first post's
    delivery, and its watermark raised to this announcement's CAP sent time): an update older than
    what the thread has already said there is skipped ("superseded", nothing posted), and none
    edits while another post of the thread is going out (ThreadBusy: it comes back). An end or a
    level notice always goes out, and raises the watermark, so no older update edits after it.

    The watermark stands for a post that went out or may have: when nothing went out (refused,
    credentials refused, a failure that will be retried), it is put back, so that an older update
    is not skipped for a post nobody sees (_restore_mark).

    Residual window: the turn lasts until its holder's invocation ends (`turn_end`). Only a request
    the platform acts on after that (sent, then cut off by the timeout) can edit after a newer
    post's worker took the turn."""
    published = announcement.published or delivery.created_at
    mark = store.thread_mark(announcement.id, published)
    holder = delivery.announcement_id
    # Only an update edits (and may be superseded): a new alert, a level increase and an end are
    # posts people must see.
    edits = announcement.alert_change == "update"
    taken = store.take_thread_turn(anchor, mark, holder, utcnow(), until=turn_end, supersedable=edits)
    if taken.turn is Turn.BUSY:
        raise ThreadBusy(anchor.announcement_id)
    try:
        if taken.turn is Turn.SUPERSEDED:
            raise Skipped("a later post of its alert thread went out on this channel", reason="superseded")
        return (
            _edit_or_reply(adapter, post, delivery, anchor)
            if edits
            else _publish(adapter, post, delivery, anchor.remote_id)
        )
    except PublishError as error:
        # Before the turn is given back, so no other post of the thread goes out in between.
        if taken.raised and not isinstance(error, Skipped) and error.reason not in MAYBE_OUT_REASONS:
            _restore_mark(delivery, anchor, mark, taken.previous_mark)
        raise
    finally:
        _end_thread_turn(anchor, holder)


def _restore_mark(delivery: Delivery, anchor: Delivery, mine: str, previous: str | None) -> None:
    """Nothing of this post went out (after an uncertain failure it may have, and the mark stays):
    put the thread's watermark back, and publish again the updates skipped as superseded by it
    meanwhile."""
    try:
        skipped = store.restore_thread_mark(anchor, mine, previous)
    except ClientError:
        # An older update may then be skipped for a post nobody sees: rare, and logged.
        logger.warning("Thread watermark not put back", extra={"anchor": anchor.announcement_id})
        return
    if skipped:
        _publish_again(delivery, skipped)


def _publish_again(delivery: Delivery, announcement_ids: list[str]) -> None:
    """Back on their lane, the updates skipped for a post that did not go out: each takes the turn
    anew, so the newest of them edits last (or each is skipped again for a newer post that is out).
    One that cannot be put back is counted and logged as an error: someone must republish it."""
    now = utcnow()
    try:
        revived = [
            revivable
            for announcement_id in announcement_ids
            if (revivable := store.revive_superseded(delivery.tenant, announcement_id, delivery.channel, now))
        ]
        lost = len(revived) - len(enqueue(revived))
    except ClientError:
        lost = len(announcement_ids)
    if lost:
        obs.count(obs.THREAD_UPDATES_LOST, lost, platform=delivery.platform)
        logger.error(
            "Updates skipped for a post that did not go out could not be published again",
            extra={"announcements": announcement_ids},
        )
        return
    logger.info(
        "Updates skipped for a post that did not go out go out again",
        extra={"announcements": announcement_ids},
    )


def _end_thread_turn(anchor: Delivery, holder: str) -> None:
    try:
        store.end_thread_turn(anchor, holder)
    except ClientError:
        # The post is out or refused already; the turn lapses with its lease.
        logger.warning("Thread turn not given back", extra={"anchor": anchor.announcement_id})


def _edit_or_reply(
    adapter: ChannelAdapter, post: RenderedPost, delivery: Delivery, anchor: Delivery
) -> _Sent:
    """An update rewrites the thread's first post. Only a first post that was the whole of its post,
    with an update that fits in one: an edit rewrites one post, and the rest of a thread would keep
    the old text under the new head; such an update replies in the thread. If the platform refuses
    the edit for good it replies as well; a first post that is gone makes it a post of its own."""
    reply_to = anchor.remote_id
    if anchor.pieces != 1 or post.thread:
        # pieces is None for a first post recorded before pieces were: it may be a thread.
        logger.info(
            "Update replies: an edit would rewrite only part of a thread",
            extra={"anchor_pieces": anchor.pieces, "update_pieces": 1 + len(post.thread)},
        )
        return _publish(adapter, post, delivery, reply_to)
    if reply_to and isinstance(adapter, Editing):
        try:
            return _Sent(adapter.edit(reply_to, post), "edit")
        except AuthError:
            raise  # a reply would be refused as well: the channel needs a human
        except PostGone as error:
            logger.warning("Post to edit is gone: posting on its own", extra={"reason": error.reason})
            reply_to = None
        except PermanentError as error:
            # Retryable errors are not caught: the retry edits again, and an edit is idempotent.
            logger.warning(
                "Edit refused: replying in the thread instead",
                extra={"reason": error.reason, "error": str(error)},
            )
    return _publish(adapter, post, delivery, reply_to)


def _publish(adapter: ChannelAdapter, post: RenderedPost, delivery: Delivery, reply_to: str | None) -> _Sent:
    # A post with a thread goes out as its first post and a reply for each piece (ChannelAdapter).
    key, pieces = delivery.idempotency_key, 1 + len(post.thread)
    if reply_to is None:
        return _Sent(adapter.publish(post, idempotency_key=key), "post", pieces)
    try:
        return _Sent(adapter.publish(post, idempotency_key=key, reply_to=reply_to), "reply", pieces)
    except PostGone as error:
        # Nothing was posted, so the same key serves the post of its own.
        logger.warning("Post to reply to is gone: posting on its own", extra={"reason": error.reason})
        return _Sent(adapter.publish(post, idempotency_key=key), "post", pieces)


def _backoff(attempts: int) -> float:
    base = settings.seconds(settings.RETRY_BASE_SECONDS_ENV, DEFAULT_RETRY_BASE_SECONDS)
    return float(min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


@dataclass(frozen=True)
class _LaneRules:
    """This lane's rules for a reply job (sending.Lane): the same waits, budget, retries and health
    hold as for posts, while the reply's claim and record stay with sending.py."""

    invocation: _Invocation
    job: ReplyJob
    record: SQSRecord

    def reason_to_wait(self) -> tuple[float, str] | None:
        return _reason_to_wait(self.invocation, self.job)

    def come_back(self, seconds: float, why: str) -> None:
        _come_back(self.job, self.record, seconds, why)

    def channel(self) -> AnyChannel:
        return _channel(self.job.tenant, self.job.channel)

    def take_budget(self, channel: AnyChannel) -> budget.Refusal | None:
        return _take_budget(self.job, channel, utcnow())

    def wait_for_budget(self, platform: str, refusal: budget.Refusal) -> None:
        _budget_pause(self.invocation, self.job, self.record, platform, refusal)

    def retry_later(self, platform: str, error: RetryableError, attempts: int) -> None:
        _retry_later(self.invocation, self.job, self.record, error, platform=platform, attempts=attempts)

    def hold_for_credentials(self, platform: str, error: AuthError) -> None:
        _mark_unhealthy(self.invocation, self.job, self.record, platform, error)
