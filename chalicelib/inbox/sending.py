"""Staff replies and automatic answers sent to the citizen: the urgent lane's reply jobs.

replies.py records each reply's delivery row ("queued") and puts a job naming it on the urgent lane;
the publisher hands the job here together with the lane's rules (`Lane`: the waits, the post budget,
the retries and the health hold it applies to posts, so an answer is urgent-lane work like an
alert's post). For each job:
1. claim the row with a conditional write that leases it to this worker, as deliveries are claimed:
   a job may arrive twice, and a worker may die mid-call. The row stays "queued" while leased, since
   nothing was confirmed yet; a lease that ran out means the last attempt's outcome is unknown
   (counted as UncertainRetries): a platform without idempotency may then show the answer twice;
2. check the channel (still configured, enabled and healthy, urgent budget left) and read the reply
   and the citizen's message it answers from the table: the job holds no text;
3. `answer` with the channel's adapter, threaded to the citizen's message, under an idempotency key
   made from the reply alone (`answer_key`): a client's retry of the staff API (same message id) and
   every redelivery of the job are the same answer wherever the platform can tell;
4. record "sent" with the platform's id, or "failed" with the reason (metrics RepliesSent and
   ReplyFailures, by platform); a sent answer's id is also linked to its conversation
   (store.link_answer), so a citizen replying to the answer stays in the conversation. A
   retryable failure puts the row back and the job back on the lane, spaced as the platform asked;
   a refused token marks the channel unhealthy and holds the reply until the token works again, as
   it holds posts.
Nothing here logs the text, the citizen's ids or an error's words (a platform's message may quote
them), nor the answer's remote id: a Telegram private chat's id is the citizen's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import observability as obs
from chalicelib.channels.base import (
    Answering,
    AuthError,
    PermanentError,
    PostResult,
    PublishError,
    ReplyTarget,
    RetryableError,
)
from chalicelib.channels.registry import adapter_for
from chalicelib.clock import iso, parse_iso, utcnow
from chalicelib.config.models import AnyChannel
from chalicelib.inbox import store
from chalicelib.inbox.model import Message
from chalicelib.inbox.threading import replied_id
from chalicelib.observability import logger
from chalicelib.publishing.budget import Refusal
from chalicelib.publishing.lanes import ReplyJob
from chalicelib.storage import dynamo, keys
from chalicelib.storage.deliveries import lease

_MAX_DETAIL = 500


class Lane(Protocol):
    """The lane's rules as the publisher applies them to posts (publisher._LaneRules)."""

    def reason_to_wait(self) -> tuple[float, str] | None:
        """Why the job should not even be claimed now (the invocation about to end, the channel
        rate limited or unhealthy), and for how long."""
        ...

    def come_back(self, seconds: float, why: str) -> None:
        """See the job again in `seconds`, without using up one of its receives."""
        ...

    def channel(self) -> AnyChannel:
        """The job's channel as configured; PermanentError when it was removed or disabled."""
        ...

    def take_budget(self, channel: AnyChannel) -> Refusal | None:
        """One post from the channel's budget on this lane; a Refusal when it is used up."""
        ...

    def wait_for_budget(self, platform: str, refusal: Refusal) -> None:
        """Come back when the budget's window turns."""
        ...

    def retry_later(self, platform: str, error: RetryableError, attempts: int) -> None:
        """Come back when a rate limit ends, or after a back-off that uses up a receive (raises)."""
        ...

    def hold_for_credentials(self, platform: str, error: AuthError) -> None:
        """Mark the channel unhealthy and come back when its health is looked at again."""
        ...


@dataclass(frozen=True)
class ClaimedReply:
    """A reply this worker holds the lease of, until `lease_until` (its row's value, as stored)."""

    job: ReplyJob
    platform: str
    attempts: int
    lease_until: str


@dataclass(frozen=True)
class Claim:
    reply: ClaimedReply | None  # None: nothing to send now
    state: str | None = None  # the row's state when not claimed; None when there is no row
    busy_until: datetime | None = None  # another worker's live lease
    outcome_unknown: bool = False  # claimed after a lease ran out: the last attempt may have sent it


def send_reply(job: ReplyJob, lane: Lane) -> None:
    # The reply's message id is the correlation id: it ties the staff API call to every attempt.
    logger.set_correlation_id(job.message_id)
    logger.append_keys(tenant=job.tenant, channel=job.channel)
    wait = lane.reason_to_wait()
    if wait is not None:
        return lane.come_back(*wait)
    now = utcnow()
    claim = claim_reply(job, now)
    if claim.busy_until is not None:
        # When the other worker's lease ends it has sent and recorded the answer, or died.
        return lane.come_back((claim.busy_until - now).total_seconds() + 1, "another worker holds it")
    if claim.reply is None:
        logger.info("Reply needs no work", extra={"state": claim.state or "missing"})
        return None
    if claim.outcome_unknown:
        logger.warning("Retrying a reply whose previous attempt has an unknown outcome")
        obs.count(obs.UNCERTAIN_RETRIES, platform=claim.reply.platform)
    return _attempt(claim.reply, lane)


def _attempt(reply: ClaimedReply, lane: Lane) -> None:
    try:
        channel = lane.channel()
        answer = _prepared(reply.job)
        if not _within_budget(reply, lane, channel):
            return None
        result = answer(channel)
    except RetryableError as error:
        if _released(reply, error):
            lane.retry_later(reply.platform, error, reply.attempts)
        return None
    except AuthError as error:
        if _released(reply, error):
            lane.hold_for_credentials(reply.platform, error)
        return None
    except PermanentError as error:
        return _fail(reply, error)
    except Exception:
        release_reply(reply, "internal", "unexpected error (see logs)")
        raise
    _record_sent(reply, result)
    return _link(reply, answer, result)


@dataclass(frozen=True)
class _Answer:
    """A reply ready to go, but for its channel's adapter."""

    target: ReplyTarget
    message: Message
    idempotency_key: str
    expires_at: int  # the conversation's, as the answer's link to it

    def __call__(self, channel: AnyChannel) -> PostResult:
        adapter = adapter_for(channel)
        if not isinstance(adapter, Answering):
            raise PermanentError(
                f"{channel.platform} channels cannot answer citizens", reason="answers_unsupported"
            )
        return adapter.answer(
            self.target,
            self.message.text,
            idempotency_key=self.idempotency_key,
            private=self.message.private,
            automatic=self.message.automatic,
        )


def _prepared(job: ReplyJob) -> _Answer:
    """The reply and the citizen's message it answers, as the table holds them now."""
    conversation = store.get_conversation(job.tenant, job.conversation_id)
    message = store.get_message(job.tenant, job.conversation_id, job.message_id)
    if conversation is None or message is None:
        raise PermanentError("the reply is no longer in its conversation", reason="reply_missing")
    answered = (
        store.get_message(job.tenant, job.conversation_id, message.reply_to_message_id)
        if message.reply_to_message_id
        else None
    )
    if answered is None or not answered.reply_target:
        raise PermanentError(
            "the citizen's message it answers is not in the inbox", reason="reply_target_missing"
        )
    target = ReplyTarget(
        ids=answered.reply_target,
        direct=conversation.kind == "direct",
        message_at=answered.at,
        last_message_at=conversation.last_inbound_at,
    )
    return _Answer(target, message, answer_key(job.tenant, message), conversation.expires_at)


def answer_key(tenant: str, message: Message) -> str:
    """The idempotency key of a reply's answer, made from the reply alone (its message id). The time
    it was written comes first, in the form atproto.record_key reads: Bluesky's record then carries
    the moment the answer was meant."""
    return f"banditore-{tenant}-{message.at:%Y%m%dT%H%M%S}-reply-{message.id}"


def _within_budget(reply: ClaimedReply, lane: Lane, channel: AnyChannel) -> bool:
    """Take one post from the channel's urgent budget; when it is used up, put the reply back and
    come back with the window (nothing was sent)."""
    refusal = lane.take_budget(channel)
    if refusal is None:
        return True
    if release_reply(reply, "budget", f"{refusal.used} of {refusal.cap} posts used"):
        lane.wait_for_budget(reply.platform, refusal)
    return False


def _released(reply: ClaimedReply, error: PublishError) -> bool:
    if release_reply(reply, error.reason, str(error)):
        return True
    # Our lease ran out during the call and another worker holds the reply now: its outcome counts.
    logger.warning("Claim lost to another worker", extra={"reason": error.reason})
    return False


def _fail(reply: ClaimedReply, error: PermanentError) -> None:
    if fail_reply(reply, error.reason, str(error)):
        obs.count(obs.REPLY_FAILURES, platform=reply.platform, reason=error.reason)
        logger.error("Reply failed permanently", extra={"reason": error.reason})


def _record_sent(reply: ClaimedReply, result: PostResult) -> None:
    if not mark_sent(reply, result):
        logger.warning("Reply was already recorded as sent: duplicate answer")
        obs.count(obs.DUPLICATE_POSTS, platform=reply.platform)
        return
    obs.count(obs.REPLIES_SENT, platform=reply.platform)
    logger.info("Reply sent", extra={"attempts": reply.attempts})


def _link(reply: ClaimedReply, answer: _Answer, result: PostResult) -> None:
    """Link the answer's platform id to its conversation. The answer is out and recorded whatever
    happens here: a failure only means a citizen's reply to it opens a conversation of its own."""
    job = reply.job
    try:
        store.link_answer(
            job.tenant,
            reply.platform,
            job.channel,
            replied_id(reply.platform, result.remote_id),
            job.conversation_id,
            expires_at=answer.expires_at,
        )
    except (ClientError, BotoCoreError) as error:
        logger.warning("Answer not linked to its conversation", extra={"error": type(error).__name__})


# ---- the reply's delivery row ---------------------------------------------------------------


def claim_reply(job: ReplyJob, now: datetime) -> Claim:
    """Lease a queued reply before calling the platform: a conditional write only one worker wins.
    A reply whose last lease ran out is claimed again (its worker died mid-call)."""
    lease_until = iso(now + lease())
    try:
        response = dynamo.client().update_item(
            TableName=dynamo.table_name(),
            Key=_key(job),
            UpdateExpression="SET lease_until = :lease ADD attempts :one",
            ConditionExpression=(
                "#state = :queued AND (attribute_not_exists(lease_until) OR lease_until < :now)"
            ),
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=dynamo.values(
                {":lease": lease_until, ":one": 1, ":queued": "queued", ":now": iso(now)}
            ),
            ReturnValues="ALL_OLD",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as error:
        if not dynamo.is_condition_failure(error):
            raise
        old = dynamo.from_dynamo(error.response.get("Item") or {})
        busy = old.get("state") == "queued" and bool(old.get("lease_until"))
        return Claim(None, old.get("state"), parse_iso(old["lease_until"]) if busy else None)
    old = dynamo.from_dynamo(response["Attributes"])
    reply = ClaimedReply(job, str(old["platform"]), int(old.get("attempts", 0)) + 1, lease_until)
    return Claim(reply, "queued", outcome_unknown="lease_until" in old)


def release_reply(reply: ClaimedReply, reason: str, detail: str) -> bool:
    """A retryable failure: the reply is free for the job's next delivery, the reason kept."""
    return _update(
        reply,
        "SET error_reason = :reason, #error = :detail REMOVE lease_until",
        {":reason": reason, ":detail": detail[:_MAX_DETAIL]},
        held=True,
    )


def fail_reply(reply: ClaimedReply, reason: str, detail: str) -> bool:
    """A permanent failure: final, with its reason and the platform's words."""
    return _update(
        reply,
        "SET #state = :failed, error_reason = :reason, #error = :detail, failed_at = :now REMOVE lease_until",
        {":failed": "failed", ":reason": reason, ":detail": detail[:_MAX_DETAIL], ":now": iso(utcnow())},
        held=True,
    )


def mark_sent(reply: ClaimedReply, result: PostResult) -> bool:
    """Record the platform's id right after it confirmed the answer; whoever's lease it was, since
    the answer is out. False when it already was (another worker sent it too: a duplicate)."""
    url = {":url": result.url} if result.url else {}
    return _update(
        reply,
        "SET #state = :sent, remote_id = :rid, sent_at = :now"
        + (", answer_url = :url" if url else "")
        + " REMOVE lease_until, error_reason, #error",
        {":sent": "sent", ":rid": result.remote_id, ":now": iso(utcnow()), **url},
        held=False,
    )


def _update(reply: ClaimedReply, expression: str, values: dict[str, Any], *, held: bool) -> bool:
    """Change the row while it is still queued and, when `held`, still under this worker's lease
    (after a lease ran out, the other worker's outcome is the one to keep)."""
    condition = "#state = :queued" + (" AND lease_until = :lease" if held else "")
    names = {"#state": "state", **({"#error": "error"} if "#error" in expression else {})}
    lease_value = {":lease": reply.lease_until} if held else {}
    try:
        dynamo.client().update_item(
            TableName=dynamo.table_name(),
            Key=_key(reply.job),
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=dynamo.values({**values, ":queued": "queued", **lease_value}),
        )
    except ClientError as error:
        if dynamo.is_condition_failure(error):
            return False
        raise
    return True


def _key(job: ReplyJob) -> dict[str, Any]:
    return dynamo.to_dynamo(
        {"pk": keys.messages_pk(job.tenant, job.conversation_id), "sk": keys.reply_sk(job.message_id)}
    )
