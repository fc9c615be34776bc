"""Deliveries: one per (announcement, channel), the unit of exactly-once publishing.

Life cycle: pending -> in_flight (claimed with a lease, before the platform is called) -> posted
(remote id recorded right after the platform answered), failed (permanent, with a reason) or skipped
(the post does not belong on that channel, e.g. Instagram without an image; with a reason).
A retryable failure goes back to pending. An in_flight delivery whose lease ran out means a worker
died mid-call: it may be claimed again, and the claim says so (`outcome_unknown`) because on a
platform without idempotency the earlier call may have posted.

On a channel whose alert updates edit the thread's first post, the first post's delivery also
orders its thread there (`take_thread_turn`): a watermark of the latest post of the thread (put
back when that post did not go out), and a turn, held until its holder's invocation has ended at
the latest, so that only one of them goes out at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Literal

from botocore.exceptions import ClientError

from chalicelib import settings
from chalicelib.clock import epoch, iso, parse_iso
from chalicelib.storage import dynamo, keys

Status = Literal["pending", "in_flight", "posted", "failed", "skipped"]
Lane = Literal["normal", "urgent"]
# How a posted delivery went out: a post of its own, a reply in its alert thread, or an edit of the
# thread's first post (alert updates on channels with `alert_updates: edit`). A delivery with a
# thread anchor posted as "post" went out unthreaded (its thread's first post failed or was deleted).
PostedAs = Literal["post", "reply", "edit"]
DELIVERY_TTL = timedelta(days=400)
# Longer than the slowest platform exchange (connect + read timeouts, two calls for Mastodon).
DEFAULT_LEASE_SECONDS = 120.0


def lease() -> timedelta:
    return timedelta(seconds=settings.seconds(settings.LEASE_SECONDS_ENV, DEFAULT_LEASE_SECONDS))


@dataclass(frozen=True)
class Delivery:
    tenant: str
    announcement_id: str
    channel: str
    platform: str
    lane: Lane
    status: Status
    attempts: int
    created_at: datetime
    enqueued_at: datetime | None = None
    lease_until: datetime | None = None
    remote_id: str | None = None
    url: str | None = None
    posted_at: datetime | None = None
    error_reason: str | None = None
    error: str | None = None
    # The announcement whose post on this same channel this one replies to (alert threads).
    thread_anchor: str | None = None
    posted_as: PostedAs | None = None  # once posted (None for deliveries posted before it was recorded)
    # How many posts it went out as (a long text is a thread on some platforms); None for deliveries
    # posted before it was recorded. An update edits only a thread's first post of one piece.
    pieces: int | None = None

    @property
    def key(self) -> dict[str, Any]:
        return dynamo.to_dynamo(
            {"pk": keys.tenant_pk(self.tenant), "sk": keys.delivery_sk(self.announcement_id, self.channel)}
        )

    @property
    def idempotency_key(self) -> str:
        """Stable across retries, unique per delivery: what platforms with idempotency dedupe on."""
        return f"banditore-{self.tenant}-{self.announcement_id}-{self.channel}"


class ClaimOutcome(Enum):
    CLAIMED = "claimed"
    ALREADY_POSTED = "already_posted"
    ALREADY_FAILED = "already_failed"
    ALREADY_SKIPPED = "already_skipped"
    BUSY = "busy"  # another worker holds a live lease
    MISSING = "missing"


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    delivery: Delivery | None
    outcome_unknown: bool = False  # re-claimed after a lease expired: the last call may have posted


def delivery_item(
    *,
    tenant: str,
    announcement_id: str,
    channel: str,
    platform: str,
    lane: Lane,
    created: datetime,
    thread_anchor: str | None = None,
) -> dict[str, Any]:
    return {
        "pk": keys.tenant_pk(tenant),
        "sk": keys.delivery_sk(announcement_id, channel),
        "announcement_id": announcement_id,
        "channel": channel,
        "platform": platform,
        "lane": lane,
        "status": "pending",
        "attempts": 0,
        "created_at": iso(created),
        "updated_at": iso(created),
        "gsi1pk": keys.delivery_status_pk(tenant, "pending"),
        "gsi1sk": iso(created),
        "expires_at": epoch(created + DELIVERY_TTL),
        "thread_anchor": thread_anchor,
    }


def delivery_from_item(item: dict[str, Any]) -> Delivery:
    def when(name: str) -> datetime | None:
        return parse_iso(item[name]) if item.get(name) else None

    return Delivery(
        tenant=item["pk"].removeprefix("T#"),
        announcement_id=item["announcement_id"],
        channel=item["channel"],
        platform=item["platform"],
        lane=item.get("lane", "normal"),
        status=item["status"],
        attempts=int(item.get("attempts", 0)),
        created_at=parse_iso(item["created_at"]),
        enqueued_at=when("enqueued_at"),
        lease_until=when("lease_until"),
        remote_id=item.get("remote_id"),
        url=item.get("url"),
        posted_at=when("posted_at"),
        error_reason=item.get("error_reason"),
        error=item.get("error"),
        thread_anchor=item.get("thread_anchor"),
        posted_as=item.get("posted_as"),
        pieces=int(item["pieces"]) if item.get("pieces") is not None else None,
    )


def get_delivery(tenant: str, announcement_id: str, channel: str) -> Delivery | None:
    response = dynamo.client().get_item(
        TableName=dynamo.table_name(),
        Key=dynamo.to_dynamo(
            {"pk": keys.tenant_pk(tenant), "sk": keys.delivery_sk(announcement_id, channel)}
        ),
        ConsistentRead=True,
    )
    return delivery_from_item(dynamo.from_dynamo(response["Item"])) if "Item" in response else None


def claim_delivery(tenant: str, announcement_id: str, channel: str, now: datetime) -> Claim:
    """Take the delivery before calling the platform: a conditional write only one worker wins."""
    key = dynamo.to_dynamo({"pk": keys.tenant_pk(tenant), "sk": keys.delivery_sk(announcement_id, channel)})
    try:
        response = dynamo.client().update_item(
            TableName=dynamo.table_name(),
            Key=key,
            UpdateExpression=(
                "SET #s = :in_flight, lease_until = :lease, attempts = attempts + :one, updated_at = :now, "
                "gsi1pk = :gpk, gsi1sk = :now"
            ),
            ConditionExpression=(
                "attribute_exists(pk) AND (#s = :pending OR (#s = :in_flight AND lease_until < :now))"
            ),
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=dynamo.values(
                {
                    ":in_flight": "in_flight",
                    ":pending": "pending",
                    ":lease": iso(now + lease()),
                    ":one": 1,
                    ":now": iso(now),
                    ":gpk": keys.delivery_status_pk(tenant, "in_flight"),
                }
            ),
            ReturnValues="ALL_OLD",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as error:
        if not dynamo.is_condition_failure(error):
            raise
        old = error.response.get("Item")
        return _refused_claim(dynamo.from_dynamo(old) if old else None)
    before = delivery_from_item(dynamo.from_dynamo(response["Attributes"]))
    claimed = replace(before, status="in_flight", lease_until=now + lease(), attempts=before.attempts + 1)
    return Claim(ClaimOutcome.CLAIMED, claimed, outcome_unknown=before.status == "in_flight")


def _refused_claim(old: dict[str, Any] | None) -> Claim:
    if old is None:
        return Claim(ClaimOutcome.MISSING, None)
    delivery = delivery_from_item(old)
    outcome = {
        "posted": ClaimOutcome.ALREADY_POSTED,
        "failed": ClaimOutcome.ALREADY_FAILED,
        "skipped": ClaimOutcome.ALREADY_SKIPPED,
    }.get(delivery.status, ClaimOutcome.BUSY)
    return Claim(outcome, delivery)


def record_posted(
    delivery: Delivery,
    remote_id: str,
    url: str | None,
    now: datetime,
    *,
    posted_as: PostedAs = "post",
    pieces: int = 1,
) -> bool:
    """Record the platform's id right after success (for an edit, the edited post's), and how many
    posts it took. False if it was already recorded as posted (a second worker posted too: a
    duplicate on a platform without idempotency)."""
    try:
        dynamo.client().update_item(
            TableName=dynamo.table_name(),
            Key=delivery.key,
            UpdateExpression=(
                "SET #s = :posted, remote_id = :rid, posted_at = :now, updated_at = :now, posted_as = :as, "
                "pieces = :pieces"
                + (", #u = :url" if url else "")
                + " REMOVE lease_until, gsi1pk, gsi1sk, error_reason, #e"
            ),
            ConditionExpression="#s <> :posted",
            ExpressionAttributeNames={"#s": "status", "#e": "error", **({"#u": "url"} if url else {})},
            ExpressionAttributeValues=dynamo.values(
                {
                    ":posted": "posted",
                    ":rid": remote_id,
                    ":now": iso(now),
                    ":as": posted_as,
                    ":pieces": pieces,
                    **({":url": url} if url else {}),
                }
            ),
        )
    except ClientError as error:
        if dynamo.is_condition_failure(error):
            return False
        raise
    return True


def release_delivery(
    delivery: Delivery, reason: str, message: str, now: datetime, *, attempted: bool = True
) -> bool:
    """A retryable failure: back to pending so the next SQS delivery can claim it at once.
    `attempted=False`: the claim only found it must wait (its alert thread), nothing went to the
    platform, so the claim's attempt is taken back: `attempts` (and the retry back-off counted from
    it) are the platform's attempts, however long the delivery waited."""
    return _set_status(delivery, "pending", reason, message, now, uncount=not attempted)


def fail_delivery(delivery: Delivery, reason: str, message: str, now: datetime) -> bool:
    """A permanent failure: recorded with its reason, kept in the status index for operators."""
    return _set_status(delivery, "failed", reason, message, now)


def skip_delivery(delivery: Delivery, reason: str, message: str, now: datetime) -> bool:
    """Not for this channel: final like a failure, but not one (no alarm), kept in the index."""
    return _set_status(delivery, "skipped", reason, message, now)


def _set_status(
    delivery: Delivery, status: Status, reason: str, message: str, now: datetime, *, uncount: bool = False
) -> bool:
    """Only the holder of the claim may change it: False if the lease ran out and another worker
    took the delivery meanwhile (its outcome, not ours, is the one to keep; and its claim's attempt
    is not ours to take back)."""
    try:
        dynamo.client().update_item(
            TableName=dynamo.table_name(),
            Key=delivery.key,
            UpdateExpression=(
                "SET #s = :status, error_reason = :reason, #e = :message, updated_at = :now, "
                "gsi1pk = :gpk, gsi1sk = :now"
                + (", attempts = attempts - :one" if uncount else "")
                + " REMOVE lease_until"
            ),
            ConditionExpression="#s = :in_flight AND lease_until = :lease",
            ExpressionAttributeNames={"#s": "status", "#e": "error"},
            ExpressionAttributeValues=dynamo.values(
                {
                    ":status": status,
                    ":reason": reason,
                    ":message": message[:500],
                    ":now": iso(now),
                    ":gpk": keys.delivery_status_pk(delivery.tenant, status),
                    ":in_flight": "in_flight",
                    ":lease": iso(delivery.lease_until) if delivery.lease_until else "",
                    **({":one": 1} if uncount else {}),
                }
            ),
        )
    except ClientError as error:
        if dynamo.is_condition_failure(error):
            return False
        raise
    return True


class Turn(Enum):
    """Whether a delivery in an alert thread may go out now on a channel that edits its first post."""

    TAKEN = "taken"
    SUPERSEDED = "superseded"  # a later announcement of the thread went out (or is going out) there
    BUSY = "busy"  # another delivery of the thread is going out there now


def thread_mark(announcement_id: str, published: datetime) -> str:
    """A thread announcement's place in its thread, sortable as a string: when it was published
    (fixed-width UTC), then its id, so two announcements never share one and a retry finds its own."""
    return f"{iso(published)}#{announcement_id}"


# `mark_before` of a watermark raised where there was none (DynamoDB keeps no null in a string).
_NO_MARK = ""


@dataclass(frozen=True)
class ThreadTurn:
    """The answer to `take_thread_turn`. `raised`: this delivery's own mark is the watermark now
    (raised by this call, or by an earlier attempt of the same delivery), and `previous_mark` is the
    one before it (None: no mark yet), for `restore_thread_mark` if its post does not go out."""

    turn: Turn
    raised: bool = False
    previous_mark: str | None = None


def take_thread_turn(
    anchor: Delivery, mark: str, holder: str, now: datetime, *, until: datetime, supersedable: bool
) -> ThreadTurn:
    """On the thread's first delivery (`anchor`, posted) of a channel with `alert_updates: edit`:
    take the thread's turn on that channel `until` then, and raise its watermark (`thread_mark`) to
    `mark`, before the platform is called. The turn serialises the thread's edits and replies on
    the channel, so that an older update can never edit the first post after a newer one (or after
    the end); `end_thread_turn` gives it back. `supersedable` (an update): SUPERSEDED when a later
    mark is there already, nothing to post (its announcement is noted on the row, to be published
    again if that later mark is taken back: `restore_thread_mark`). Others (an end, a level notice)
    always go out and only raise the watermark when theirs is later. `holder` is the delivery's own
    announcement: its retry, after a failure or a lease lost in a crash, takes the turn again at once."""
    try:
        old = _take_turn(anchor, holder, now, until, mark=mark)
    except ClientError as error:
        if not dynamo.is_condition_failure(error):
            raise
        found = error.response.get("Item")
    else:
        return ThreadTurn(Turn.TAKEN, raised=True, previous_mark=old.get("thread_mark"))
    item = dynamo.from_dynamo(found) if found else {}
    if not item:
        return ThreadTurn(Turn.TAKEN)  # the row is gone: nothing left to order against
    if item.get("turn_of") not in (None, holder) and item.get("turn_until", "") >= iso(now):
        return ThreadTurn(Turn.BUSY)
    # The mark there is our own: an earlier attempt of this delivery raised it (and may have posted).
    own = item.get("thread_mark") == mark
    if supersedable and not own:
        _note_superseded(anchor, holder)
        return ThreadTurn(Turn.SUPERSEDED)
    try:
        _take_turn(anchor, holder, now, until, mark=None)
    except ClientError as error:
        if not dynamo.is_condition_failure(error):
            raise
        return ThreadTurn(Turn.BUSY)  # taken by another between the two writes
    before = item.get("mark_before") if own else None  # None: not known (a mark put back since)
    return ThreadTurn(Turn.TAKEN, raised=before is not None, previous_mark=before or None)


def _take_turn(
    anchor: Delivery, holder: str, now: datetime, until: datetime, *, mark: str | None
) -> dict[str, Any]:
    """Take the turn (and raise the watermark to `mark`, strictly, keeping the one it replaces in
    `mark_before`); the row as it was before."""
    free = "(attribute_not_exists(turn_until) OR turn_until < :now OR turn_of = :holder)"
    later = " AND (attribute_not_exists(thread_mark) OR thread_mark < :mark)" if mark is not None else ""
    raise_mark = ", mark_before = if_not_exists(thread_mark, :no_mark), thread_mark = :mark"
    response = dynamo.client().update_item(
        TableName=dynamo.table_name(),
        Key=anchor.key,
        UpdateExpression="SET turn_of = :holder, turn_until = :until"
        + (raise_mark if mark is not None else ""),
        ConditionExpression=f"attribute_exists(pk) AND {free}{later}",
        ExpressionAttributeValues=dynamo.values(
            {
                ":holder": holder,
                ":now": iso(now),
                ":until": iso(until),
                **({":mark": mark, ":no_mark": _NO_MARK} if mark is not None else {}),
            }
        ),
        ReturnValues="ALL_OLD",
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )
    return dynamo.from_dynamo(response.get("Attributes", {}))


def _note_superseded(anchor: Delivery, announcement_id: str) -> None:
    try:
        dynamo.client().update_item(
            TableName=dynamo.table_name(),
            Key=anchor.key,
            UpdateExpression="ADD superseded :ids",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=dynamo.values({":ids": {announcement_id}}),
        )
    except ClientError as error:
        # A condition failure: the row is gone (expired), nothing left to order against.
        if not dynamo.is_condition_failure(error):
            raise


def restore_thread_mark(anchor: Delivery, mine: str, previous: str | None) -> list[str]:
    """The post that raised the watermark to `mine` did not go out: put back the `previous` one, so
    that an older update arriving later is not skipped for a post nobody sees. Only while the mark
    is still ours (nobody raised it since). Returns the announcements skipped as superseded on the
    channel meanwhile, taken off the row: the caller publishes them again (`revive_superseded`),
    and each takes the turn anew, against the watermark as it is then."""
    restore = "SET thread_mark = :previous REMOVE" if previous is not None else "REMOVE thread_mark,"
    try:
        response = dynamo.client().update_item(
            TableName=dynamo.table_name(),
            Key=anchor.key,
            UpdateExpression=f"{restore} mark_before, superseded",
            ConditionExpression="thread_mark = :mine",
            ExpressionAttributeValues=dynamo.values(
                {":mine": mine, **({":previous": previous} if previous is not None else {})}
            ),
            ReturnValues="ALL_OLD",
        )
    except ClientError as error:
        if dynamo.is_condition_failure(error):
            return []
        raise
    return sorted(dynamo.from_dynamo(response.get("Attributes", {})).get("superseded", ()))


def revive_superseded(tenant: str, announcement_id: str, channel: str, now: datetime) -> Delivery | None:
    """A delivery skipped as superseded back to pending (to be enqueued again); None if it is not one
    (any more)."""
    try:
        response = dynamo.client().update_item(
            TableName=dynamo.table_name(),
            Key=dynamo.to_dynamo(
                {"pk": keys.tenant_pk(tenant), "sk": keys.delivery_sk(announcement_id, channel)}
            ),
            UpdateExpression=(
                "SET #s = :pending, updated_at = :now, gsi1pk = :gpk, gsi1sk = :now REMOVE error_reason, #e"
            ),
            ConditionExpression="#s = :skipped AND error_reason = :superseded",
            ExpressionAttributeNames={"#s": "status", "#e": "error"},
            ExpressionAttributeValues=dynamo.values(
                {
                    ":pending": "pending",
                    ":skipped": "skipped",
                    ":superseded": "superseded",
                    ":now": iso(now),
                    ":gpk": keys.delivery_status_pk(tenant, "pending"),
                }
            ),
            ReturnValues="ALL_NEW",
        )
    except ClientError as error:
        if dynamo.is_condition_failure(error):
            return None
        raise
    return delivery_from_item(dynamo.from_dynamo(response["Attributes"]))


def end_thread_turn(anchor: Delivery, holder: str) -> None:
    """Give the thread's turn back (if still ours: a lease that ran out may be another's now)."""
    try:
        dynamo.client().update_item(
            TableName=dynamo.table_name(),
            Key=anchor.key,
            UpdateExpression="REMOVE turn_of, turn_until",
            ConditionExpression="turn_of = :holder",
            ExpressionAttributeValues=dynamo.values({":holder": holder}),
        )
    except ClientError as error:
        if not dynamo.is_condition_failure(error):
            raise


def mark_enqueued(delivery: Delivery, now: datetime) -> None:
    dynamo.client().update_item(
        TableName=dynamo.table_name(),
        Key=delivery.key,
        UpdateExpression="SET enqueued_at = :now",
        ExpressionAttributeValues=dynamo.values({":now": iso(now)}),
    )


def deliveries_of(tenant: str, announcement_id: str) -> list[Delivery]:
    response = dynamo.client().query(
        TableName=dynamo.table_name(),
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues=dynamo.values(
            {":pk": keys.tenant_pk(tenant), ":prefix": keys.delivery_sk(announcement_id, "")}
        ),
        ConsistentRead=True,
    )
    return [delivery_from_item(dynamo.from_dynamo(raw)) for raw in response["Items"]]


def deliveries_with_status(
    tenant: str,
    status: Status,
    *,
    updated_after: datetime | None = None,
    updated_before: datetime | None = None,
) -> list[Delivery]:
    """Work and failures of a tenant by status, oldest first (sparse index: posted ones are not there)."""
    low = iso(updated_after) if updated_after else "0"  # sorts before every ISO timestamp
    high = iso(updated_before) if updated_before else "~"  # "~" sorts after every ISO timestamp
    paginator = dynamo.client().get_paginator("query")
    found: list[Delivery] = []
    for page in paginator.paginate(
        TableName=dynamo.table_name(),
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :gpk AND gsi1sk BETWEEN :low AND :high",
        ExpressionAttributeValues=dynamo.values(
            {":gpk": keys.delivery_status_pk(tenant, status), ":low": low, ":high": high}
        ),
    ):
        found.extend(delivery_from_item(dynamo.from_dynamo(raw)) for raw in page["Items"])
    return found
