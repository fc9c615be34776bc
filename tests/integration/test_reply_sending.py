"""Reply jobs on the urgent lane, on the local stack (DynamoDB and SQS in moto, the platform sandbox):
the reply's row claimed once whatever the duplicates, a live lease waited for and a dead one taken
over, retries, the channel's health hold and budget as for posts, and each permanent refusal
recorded as "failed" with its reason and counted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from chalicelib import aws
from chalicelib.clock import utcnow
from chalicelib.config.models import OfficeHours
from chalicelib.inbox import replies, store
from chalicelib.inbox.model import Citizen, InboundKind, InboundMessage
from chalicelib.inbox.sending import claim_reply
from chalicelib.publishing import lanes
from chalicelib.publishing.lanes import ReplyJob
from chalicelib.storage import dynamo, keys
from chalicelib.storage.channel_health import get_health
from devtools.sandbox.meta import FacebookFake
from devtools.sandbox.telegram import TelegramFake
from devtools.stack import LocalStack
from tests.conftest import tenant
from tests.integration.staff_api_support import reset

TENANT = "comune-a"
PAGE = "104512345678901"
CHANNELS = [
    {
        "id": "telegram",
        "platform": "telegram",
        "chat": "@ComuneA",
        "token": "env:TEST_UNSET_T1",
        "inbox": True,
    },
    {"id": "facebook", "platform": "facebook", "page_id": PAGE, "token": "env:TEST_UNSET_FB", "inbox": True},
    {
        "id": "instagram",
        "platform": "instagram",
        "user_id": "17841400123456789",
        "token": "env:TEST_UNSET_IG",
    },
    {
        "id": "spento",
        "platform": "telegram",
        "chat": "@ComuneSpento",
        "token": "env:TEST_UNSET_T2",
        "enabled": False,
    },
    {
        "id": "stretto",
        "platform": "telegram",
        "chat": "@ComuneStretto",
        "token": "env:TEST_UNSET_T3",
        "budget": {"posts": 2, "per_seconds": 3600, "urgent_reserve": 1},
    },
]
PLATFORM = {channel["id"]: channel["platform"] for channel in CHANNELS}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    state = tmp_path_factory.mktemp("replies")
    config = state / "config.yaml"
    config.write_text(
        yaml.safe_dump({"version": 1, "tenants": [tenant(TENANT, channels=CHANNELS) | {"inbox": {}}]}),
        encoding="utf-8",
    )
    with pytest.MonkeyPatch.context() as env:
        # Leases and back-offs short enough to play out in seconds.
        env.setenv("BANDITORE_LEASE_SECONDS", "1")
        env.setenv("BANDITORE_RETRY_BASE_SECONDS", "0.05")
        env.setenv("BANDITORE_UNHEALTHY_RECHECK_SECONDS", "0.2")
        env.delenv("BANDITORE_SECRETS_FILE", raising=False)
        started = LocalStack(config, state_dir=state / "state", persist=False).start()
        try:
            yield started
        finally:
            started.stop()


@pytest.fixture(autouse=True)
def empty(stack: LocalStack) -> None:
    reset(stack)
    stack.sandbox.reset()


def asks(
    channel: str,
    ids: dict[str, str],
    *,
    user: str = "1001",
    kind: InboundKind = "direct",
    ago: timedelta = timedelta(minutes=2),
) -> store.RecordResult:
    """A citizen's message on `channel`, recorded as ingestion records it, with its reply target."""
    platform = PLATFORM[channel]
    message = InboundMessage(
        tenant=TENANT,
        channel=channel,
        platform=platform,
        platform_message_id=f"{user}:{ids.get('message_id', ids.get('comment_id'))}",
        citizen=Citizen(platform, user, "Maria Rossi"),
        text="Le scuole sono aperte domani?",
        received_at=datetime.now(UTC) - ago,
        kind=kind,
        reply_target=ids,
    )
    return store.record_inbound(message, retention_days=30, now=message.received_at)


def telegram_asks(stack: LocalStack, channel: str = "telegram", user: int = 1001) -> store.RecordResult:
    """A citizen writes to the bot in private, on the fake as on the inbox."""
    written = stack.sandbox.fake("telegram", TelegramFake).citizen_message(user, "Aperte?")
    return asks(channel, {"chat_id": str(user), "message_id": str(written["message_id"])}, user=str(user))


def staff_reply(
    asked: store.RecordResult, text: str = "Sì, sono aperte.", *, answers: bool = True
) -> ReplyJob:
    """What the staff API does for a reply: record it, queue it."""
    recorded = store.record_outbound(
        TENANT,
        asked.conversation.id,
        text=text,
        author="operatore",
        retention_days=30,
        hours=OfficeHours(),
        now=utcnow(),
        reply_to_message_id=asked.message.id if answers else None,
        delivery_id="d",
    )
    replies.queue_reply(recorded.conversation, recorded.message, now=utcnow())
    return ReplyJob(TENANT, asked.conversation.id, recorded.message.id, asked.conversation.channel)


def row(job: ReplyJob) -> dict[str, Any]:
    response = dynamo.client().get_item(
        TableName=dynamo.table_name(),
        Key=dynamo.to_dynamo(
            {"pk": keys.messages_pk(TENANT, job.conversation_id), "sk": keys.reply_sk(job.message_id)}
        ),
        ConsistentRead=True,
    )
    return dynamo.from_dynamo(response["Item"])


def log(stack: LocalStack) -> str:
    return (stack.state_dir / "lambda.log").read_text(encoding="utf-8")


def drain_until(stack: LocalStack, done: Any, seconds: float = 8.0) -> None:
    """Pump the lanes until `done()` (jobs may wait out a delay or a hidden message meanwhile)."""
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        stack.drain(timeout=2)
        time.sleep(0.1)


# ---- once, and only once ----------------------------------------------------------------------


def test_a_reply_goes_out_once_whatever_the_duplicate_jobs(stack: LocalStack) -> None:
    asked = telegram_asks(stack)
    job = staff_reply(asked)
    # SQS delivers at least once: the same job again.
    aws.client("sqs").send_message(QueueUrl=lanes.queue_url("urgent"), MessageBody=job.to_json())

    stack.drain()

    [post] = stack.sandbox.posts("telegram")
    assert (post["target"], post["text"]) == ("1001", "Sì, sono aperte.")
    assert str(post["options"]["replied_to"]) == asked.message.reply_target["message_id"]
    sent = row(job)
    assert (sent["state"], sent["attempts"]) == ("sent", 1)
    assert sent["remote_id"] == f"1001:{post['id']}"
    assert "lease_until" not in sent
    assert replies.delivery_states(TENANT, job.conversation_id, [job.message_id]) == {job.message_id: "sent"}
    written = log(stack)
    assert '"RepliesSent"' in written and "Reply needs no work" in written
    # Neither the text nor the citizen's chat (their user id) reaches the logs.
    assert "Sì, sono aperte" not in written and "1001:" not in written


def test_a_live_lease_is_waited_for_and_a_dead_one_taken_over(stack: LocalStack) -> None:
    job = staff_reply(telegram_asks(stack))
    taken = claim_reply(job, utcnow())  # another worker took it, and dies before the platform answers
    assert taken.reply is not None

    stack.drain()
    assert stack.sandbox.posts("telegram") == []  # not while its lease lives
    drain_until(stack, lambda: row(job)["state"] == "sent")

    assert len(stack.sandbox.posts("telegram")) == 1
    assert row(job)["attempts"] == 2
    assert '"UncertainRetries"' in log(stack)


def test_a_retryable_failure_keeps_the_reply_queued_until_it_goes(stack: LocalStack) -> None:
    job = staff_reply(telegram_asks(stack))
    stack.sandbox.inject("telegram", "server_error", endpoint="sendMessage")

    stack.drain()
    waiting = row(job)
    assert (waiting["state"], waiting["error_reason"]) == ("queued", "server_error")
    drain_until(stack, lambda: row(job)["state"] == "sent")

    sent = row(job)
    assert (sent["state"], sent["attempts"]) == ("sent", 2)
    assert "error_reason" not in sent
    assert len(stack.sandbox.posts("telegram")) == 1


def test_a_refused_token_holds_the_reply_and_marks_the_channel_unhealthy(stack: LocalStack) -> None:
    token = "sandbox-comune-a-telegram"
    stack.sandbox.revoke_token("telegram", token)
    job = staff_reply(telegram_asks(stack))

    stack.drain()
    held = row(job)
    assert (held["state"], held["error_reason"]) == ("queued", "auth")  # held, not failed
    health = get_health(TENANT, "telegram")
    assert health is not None and (health.state, health.reason) == ("unhealthy", "auth")
    assert '"ChannelsTurnedUnhealthy"' in log(stack) and '"ReplyFailures"' not in log(stack)

    stack.sandbox.restore_token("telegram", token)
    stack.check_channels()  # a human fixed the token; the health check finds it working
    drain_until(stack, lambda: row(job)["state"] == "sent")
    assert len(stack.sandbox.posts("telegram")) == 1


def test_answers_spend_the_channels_urgent_budget(stack: LocalStack) -> None:
    jobs = [staff_reply(telegram_asks(stack, "stretto", user)) for user in (2001, 2002, 2003)]

    stack.drain()

    states = [row(job)["state"] for job in jobs]
    assert states.count("sent") == 2  # the urgent share of the hour: every post of it
    [waiting] = [row(job) for job in jobs if row(job)["state"] == "queued"]
    assert waiting["error_reason"] == "budget"
    assert len(stack.sandbox.posts("telegram")) == 2
    assert '"BudgetWaits"' in log(stack)
    # Not failed: back on the lane, due when the window turns (in SQS's 15-minute steps).
    lane = aws.client("sqs").get_queue_attributes(
        QueueUrl=lanes.queue_url("urgent"), AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )
    assert lane["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"


# ---- refusals --------------------------------------------------------------------------------


def test_a_messenger_answer_past_the_window_fails_with_its_reason(stack: LocalStack) -> None:
    ago = timedelta(days=8)
    mid = stack.sandbox.fake("facebook", FacebookFake).citizen_message(
        PAGE, "7001", at=datetime.now(UTC) - ago
    )
    job = staff_reply(asks("facebook", {"recipient_id": "7001", "message_id": mid}, user="7001", ago=ago))

    stack.drain()

    failed = row(job)
    assert (failed["state"], failed["error_reason"]) == ("failed", "messenger_window_closed")
    assert "7 days" in failed["error"]
    assert replies.delivery_states(TENANT, job.conversation_id, [job.message_id]) == {
        job.message_id: "failed"
    }
    assert stack.sandbox.posts() == []
    assert '"ReplyFailures"' in log(stack) and "messenger_window_closed" in log(stack)


@pytest.mark.parametrize(
    ("channel", "reason"),
    [("instagram", "answers_unsupported"), ("spento", "channel_disabled")],
)
def test_a_channel_that_cannot_answer_fails_the_reply(stack: LocalStack, channel: str, reason: str) -> None:
    job = staff_reply(asks(channel, {"chat_id": "1001", "message_id": "5"}, kind="comment"))

    stack.drain()

    assert (row(job)["state"], row(job)["error_reason"]) == ("failed", reason)
    assert stack.sandbox.stats()["requests"] == {}


def test_a_reply_to_no_citizen_message_fails(stack: LocalStack) -> None:
    job = staff_reply(telegram_asks(stack), answers=False)

    stack.drain()

    assert (row(job)["state"], row(job)["error_reason"]) == ("failed", "reply_target_missing")
    assert stack.sandbox.posts() == []
