"""The publisher against the platform fakes over real HTTP, with DynamoDB and SQS in moto: faults,
rate limits, permanent errors, the DLQ, and a publisher killed between a platform's success and
its record. The end state must match the guarantees stated in the README."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import boto3
import pytest

from chalicelib.storage.channel_health import get_health
from chalicelib.storage.deliveries import Delivery, deliveries_of
from devtools.dlq import redrive
from devtools.stack import ROOT, LocalStack, sqs_event
from infra.resources import MAX_RECEIVE_COUNT
from tests.conftest import FEEDS, tenant

RSS = (FEEDS / "comune-notizie.rss").read_bytes()


def _deliveries(stack: LocalStack, result: dict[str, Any]) -> list[Delivery]:
    return [
        d
        for source in result["sources"]
        for announcement in source.get("announcements", [])
        for d in deliveries_of(source["tenant"], announcement)
    ]


def _parked(stack: LocalStack) -> set[tuple[str, str, str]]:
    """(tenant, announcement, channel) of the messages waiting in either DLQ (peeked, not taken)."""
    sqs = boto3.client("sqs")
    found = set()
    for url in stack.resources.dlq_urls.values():
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
            "Messages", []
        ):
            body = json.loads(message["Body"])
            found.add((body["tenant"], body["announcement"], body["channel"]))
    return found


def _emitted(log: str, metric: str) -> float:
    """The total of a metric in the EMF lines of a log, under its service-only dimension set (each
    count is emitted once more under its breakdown, for the dashboard)."""
    total = 0.0
    for line in log.splitlines():
        blob = json.loads(line) if line.startswith("{") else {}
        directives = blob.get("_aws", {}).get("CloudWatchMetrics", [])
        if any(dims == ["service"] for d in directives for dims in d["Dimensions"]) and metric in blob:
            values = blob[metric]
            total += sum(values) if isinstance(values, list) else values
    return total


def _settle(stack: LocalStack, result: dict[str, Any], timeout: float = 120) -> list[Delivery]:
    """Pump until every delivery is posted, failed with a reason, or parked in a DLQ (messages on
    a retry delay are waited for)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.drain()
        deliveries = _deliveries(stack, result)
        unsettled = {
            (d.tenant, d.announcement_id, d.channel)
            for d in deliveries
            if d.status not in {"posted", "failed"}
        }
        if unsettled <= _parked(stack):
            return deliveries
        time.sleep(0.3)
    return _deliveries(stack, result)


def test_faults_on_a_share_of_calls_lose_nothing_and_duplicate_nothing(make_stack: Any) -> None:
    stack = make_stack(
        [
            tenant("comune-a"),
            tenant("comune-b", sources=[{"id": "avvisi", "url": "https://sample.feeds.invalid/feed.rss"}]),
        ],
        {"feed.rss": RSS},
    )
    stack.sandbox.inject("telegram", "rate_limit", rate=0.3, seed=3, retry_after=1)
    stack.sandbox.inject("mastodon", "server_error", rate=0.3, seed=5)
    stack.sandbox.inject("mastodon", "rate_limit", rate=0.2, seed=11, retry_after=1)
    stack.sandbox.inject("telegram", "malformed", count=2)
    stack.sandbox.inject("telegram", "timeout", count=1, delay=12)  # past the 10 s read timeout
    result = stack.poll()

    deliveries = _settle(stack, result)

    assert len(deliveries) == 2 * 6 * 2  # 2 tenants x 6 items x 2 channels
    posted = [d for d in deliveries if d.status == "posted"]
    parked = [d for d in deliveries if d.status != "posted"]
    # nothing lost: whatever did not go out waits in a DLQ (alarmed), with the reason of its last try
    assert {(d.tenant, d.announcement_id, d.channel) for d in parked} == _parked(stack)
    assert all(
        d.status == "pending" and d.attempts == MAX_RECEIVE_COUNT and d.error_reason == "server_error"
        for d in parked
    )
    assert len(posted) >= len(deliveries) - 2
    assert sum(f["fired"] for f in stack.sandbox.state.faults.to_json()) > 0
    # nothing duplicated: one post per posted delivery, under the remote id it recorded
    posts = stack.sandbox.posts()
    assert sorted(p["id"] for p in posts) == sorted(d.remote_id.split(":")[-1] for d in posted)
    assert max(d.attempts for d in deliveries) > 1


def test_a_refused_token_holds_the_channel_until_a_check_finds_it_fixed_and_others_carry_on(
    make_stack: Any,
) -> None:
    stack = make_stack([tenant()], {"feed.rss": RSS})
    token = "sandbox-comune-prova-telegram"
    stack.sandbox.revoke_token("telegram", token)
    result = stack.poll()

    stack.drain(timeout=5)

    deliveries = _deliveries(stack, result)
    assert {d.status for d in deliveries if d.channel == "mastodon"} == {"posted"}
    held = [d for d in deliveries if d.channel == "telegram"]
    assert {d.status for d in held} == {"pending"}  # held, not failed: nothing is lost
    assert sum(d.attempts for d in held) == 1  # one refusal, then no more calls to the platform
    health = get_health("comune-prova", "telegram")
    assert health is not None and (health.state, health.reason) == ("unhealthy", "auth")
    assert stack.check_channels()["unhealthy"] == ["comune-prova/telegram"]

    stack.sandbox.restore_token("telegram", token)
    assert stack.check_channels()["unhealthy"] == []
    deliveries = _settle(stack, result)

    assert {d.status for d in deliveries} == {"posted"}
    assert len(stack.sandbox.posts("telegram")) == 6
    log = (stack.state_dir / "lambda.log").read_text(encoding="utf-8")
    assert token not in log  # the token never reaches a log line
    assert _emitted(log, "ChannelsTurnedUnhealthy") == 1  # raised on the change, not on every hold
    assert '"PublishFailures"' not in log


def test_a_delivery_that_keeps_failing_lands_in_the_dlq_and_a_redrive_posts_it(make_stack: Any) -> None:
    one_item = (
        RSS.split(b"<item>")[0]
        + b"<item>"
        + RSS.split(b"<item>")[1].split(b"</item>")[0]
        + b"</item></channel></rss>"
    )
    stack = make_stack([tenant(channels=[tenant()["channels"][1]])], {"feed.rss": one_item})
    stack.sandbox.inject("mastodon", "server_error", count=100)
    result = stack.poll()
    sqs = boto3.client("sqs")
    dlq = stack.resources.dlq_urls["normal"]

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _dlq_depth(sqs, dlq) == 0:
        stack.drain()
        time.sleep(0.3)

    assert _dlq_depth(sqs, dlq) == 1
    [delivery] = _deliveries(stack, result)
    assert (delivery.status, delivery.error_reason, delivery.attempts) == (
        "pending",
        "server_error",
        MAX_RECEIVE_COUNT,
    )
    assert stack.sandbox.posts() == []

    stack.sandbox.clear_faults()
    moved = redrive("normal", stack.resources.queue_urls["normal"], show_progress=False)
    assert (moved.moved, moved.failed) == (1, 0)
    [delivery] = _settle(stack, result)
    assert delivery.status == "posted"
    assert len(stack.sandbox.posts()) == 1


def _dlq_depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


_PUBLISHER = """
import json, sys
from chalice.local import LambdaContext
import app
app.app.handler_map["publish"](json.load(sys.stdin), LambdaContext("publish", 512, 60000))
"""


@pytest.mark.parametrize(("platform", "expected_posts"), [("mastodon", 1), ("telegram", 2)])
def test_publisher_killed_after_the_platform_succeeded(
    make_stack: Any, platform: str, expected_posts: int
) -> None:
    """The process dies between the platform's answer and the record. Mastodon dedupes the retry
    by Idempotency-Key (exactly once); Telegram has no idempotency, so it posts again (at least
    once) and the retry is counted as uncertain. Either way the delivery ends posted."""
    one_item = (
        RSS.split(b"<item>")[0]
        + b"<item>"
        + RSS.split(b"<item>")[1].split(b"</item>")[0]
        + b"</item></channel></rss>"
    )
    channel = next(c for c in tenant()["channels"] if c["platform"] == platform)
    stack = make_stack([tenant(channels=[channel])], {"feed.rss": one_item})
    result = stack.poll()
    sqs = boto3.client("sqs")
    queue = stack.resources.queue_urls["normal"]
    [message] = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"])[
        "Messages"
    ]
    # The item has an image: Telegram posts it with sendPhoto, Mastodon still with statuses.
    endpoint = "sendPhoto" if platform == "telegram" else None
    stack.sandbox.inject(platform, "hang_after_commit", count=1, delay=30, endpoint=endpoint)

    child = subprocess.Popen(
        [sys.executable, "-c", _PUBLISHER], cwd=ROOT, stdin=subprocess.PIPE, env=dict(os.environ), text=True
    )
    child.stdin.write(json.dumps(sqs_event([message], stack.resources.queue_arns["normal"])))
    child.stdin.close()
    deadline = time.monotonic() + 30
    while not stack.sandbox.posts(platform) and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)

    assert len(stack.sandbox.posts(platform)) == 1  # the platform has it...
    [delivery] = _deliveries(stack, result)
    assert delivery.status == "in_flight"  # ...but nobody recorded it
    # SQS makes the message visible again when its visibility timeout ends; the lease expires too.
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    time.sleep(1.1)

    [delivery] = _settle(stack, result)

    assert delivery.status == "posted"
    posts = stack.sandbox.posts(platform)
    assert len(posts) == expected_posts
    assert delivery.remote_id.split(":")[-1] == posts[-1]["id"]
    assert '"UncertainRetries"' in (stack.state_dir / "lambda.log").read_text(encoding="utf-8")
