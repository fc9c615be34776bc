"""The two SQS lanes (normal, urgent) and the messages that travel on them: a delivery of an
announcement to a channel, and on the urgent lane a reply to a citizen (chalicelib/inbox), a slice
of an alert feed's tenants to announce to (chalicelib/alerts/fanout.py) and a feed body a WebSub hub
pushed (chalicelib/alerts/polling.py). All are references to rows, never content; `parse_message`
is the one place that tells them apart."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib import aws, settings
from chalicelib.storage.deliveries import Delivery, Lane

_SEND_BATCH = 10
MAX_SQS_DELAY_SECONDS = 900
_MAX_BODY = 1024
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_T")


class BadMessage(ValueError):
    """A queue message that is neither a delivery nor a reply reference; it can never succeed, so
    it is left to SQS to move to the DLQ (visible, alarmed) rather than silently dropped."""


@dataclass(frozen=True)
class DeliveryMessage:
    tenant: str
    announcement_id: str
    channel: str
    lane: Lane

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": 1,
                "tenant": self.tenant,
                "announcement": self.announcement_id,
                "channel": self.channel,
                "lane": self.lane,
            }
        )

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryMessage:
        return cls(delivery.tenant, delivery.announcement_id, delivery.channel, delivery.lane)


@dataclass(frozen=True)
class ReplyJob:
    """A staff reply or an automatic answer on its way to the citizen: it names the reply's message
    (chalicelib/inbox/replies.py queues it, chalicelib/inbox/sending.py sends it), never its text."""

    tenant: str
    conversation_id: str
    message_id: str
    channel: str
    lane: Lane = "urgent"

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": 1,
                "kind": "reply",
                "tenant": self.tenant,
                "conversation": self.conversation_id,
                "message": self.message_id,
                "channel": self.channel,
                "lane": self.lane,
            }
        )


@dataclass(frozen=True)
class AnnounceJob:
    """Announce a feed's alerts to one slice of the tenants listing it: `chunk` of the feed's
    members sorted by tenant id, the alerts from the snapshot `snapshot`; `members` is the members'
    digest the slices were cut under (None in a message queued before it was carried), which the job
    checks against its own config (chalicelib/alerts/fanout.py)."""

    feed: str
    snapshot: str
    chunk: int
    members: str | None
    lane: Lane = "urgent"

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": 1,
                "kind": "announce",
                "feed": self.feed,
                "snapshot": self.snapshot,
                "chunk": self.chunk,
                "members": self.members,
                "lane": self.lane,
            }
        )


@dataclass(frozen=True)
class PushJob:
    """Read and announce a feed now: the body its WebSub hub pushed (`push`, the stored body's key),
    or, when that could not be stored, the feed as the poller fetches it (`push` None)."""

    feed: str
    push: str | None
    lane: Lane = "urgent"

    def to_json(self) -> str:
        return json.dumps({"v": 1, "kind": "push", "feed": self.feed, "push": self.push, "lane": self.lane})


LaneMessage = DeliveryMessage | ReplyJob
AlertJob = AnnounceJob | PushJob


def parse_message(body: str) -> LaneMessage | AlertJob:
    """A lane message of any kind; a delivery names no `kind` (its messages came first)."""
    if len(body) > _MAX_BODY:
        raise BadMessage("message body too large")
    try:
        data = json.loads(body)
    except ValueError:
        raise BadMessage("message body is not JSON") from None
    if not isinstance(data, dict) or data.get("v") != 1:
        raise BadMessage("unknown message version")
    lane = data.get("lane")
    if lane not in ("normal", "urgent"):
        raise BadMessage("lane must be normal or urgent")
    kind = data.get("kind", "delivery")
    if kind == "reply":
        return ReplyJob(
            tenant=_identifier(data, "tenant"),
            conversation_id=_identifier(data, "conversation"),
            message_id=_identifier(data, "message"),
            channel=_identifier(data, "channel"),
            lane=lane,
        )
    if kind in ("announce", "push"):
        return _alert_job(data, kind)
    if kind != "delivery":
        raise BadMessage("kind must be delivery, reply, announce or push")
    return DeliveryMessage(
        tenant=_identifier(data, "tenant"),
        announcement_id=_identifier(data, "announcement"),
        channel=_identifier(data, "channel"),
        lane=lane,
    )


def _alert_job(data: dict[str, Any], kind: str) -> AlertJob:
    if kind == "push":
        push = data.get("push")
        return PushJob(
            feed=_identifier(data, "feed"), push=None if push is None else _identifier(data, "push")
        )
    chunk = data.get("chunk")
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 0:
        raise BadMessage("chunk must be a number")
    members = data.get("members")
    return AnnounceJob(
        feed=_identifier(data, "feed"),
        snapshot=_identifier(data, "snapshot"),
        chunk=chunk,
        members=None if members is None else _identifier(data, "members"),
    )


def send_jobs(jobs: Sequence[AlertJob]) -> int:
    """Queue alert jobs on the urgent lane; how many SQS accepted (the caller's state says what a
    refused one means: its feed is read again on the next pass)."""
    accepted = 0
    for start in range(0, len(jobs), _SEND_BATCH):
        response = _sqs().send_message_batch(
            QueueUrl=queue_url("urgent"),
            Entries=[
                {"Id": str(i), "MessageBody": job.to_json()}
                for i, job in enumerate(jobs[start : start + _SEND_BATCH])
            ],
        )
        accepted += len(response.get("Successful", []))
    return accepted


def _identifier(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value or not set(value) <= _ID_CHARS:
        raise BadMessage(f"{name} must be an identifier")
    return value


def _sqs() -> Any:
    return aws.client("sqs")


def queue_url(lane: Lane) -> str:
    return settings.required(
        settings.URGENT_QUEUE_URL_ENV if lane == "urgent" else settings.PUBLISH_QUEUE_URL_ENV
    )


def enqueue(deliveries: Sequence[Delivery]) -> list[Delivery]:
    """Send delivery messages on their lanes; returns those SQS accepted (the rest stay pending and
    housekeeping enqueues them again, so a partial failure loses nothing)."""
    accepted: list[Delivery] = []
    for lane in ("urgent", "normal"):
        batch = [d for d in deliveries if d.lane == lane]
        for start in range(0, len(batch), _SEND_BATCH):
            chunk = batch[start : start + _SEND_BATCH]
            response = _sqs().send_message_batch(
                QueueUrl=queue_url(lane),
                Entries=[
                    {"Id": str(i), "MessageBody": DeliveryMessage.of(d).to_json()}
                    for i, d in enumerate(chunk)
                ],
            )
            accepted.extend(chunk[int(entry["Id"])] for entry in response.get("Successful", []))
    return accepted


def requeue(message: LaneMessage, seconds: float) -> None:
    """Queue a fresh copy of a message, delivered after `seconds` (at most 15 minutes)."""
    _sqs().send_message(
        QueueUrl=queue_url(message.lane),
        MessageBody=message.to_json(),
        DelaySeconds=max(0, min(math.ceil(seconds), MAX_SQS_DELAY_SECONDS)),
    )


def delay_message(lane: Lane, receipt_handle: str, seconds: float) -> None:
    """Hide a message for `seconds` (a platform's Retry-After) instead of the default visibility."""
    _sqs().change_message_visibility(
        QueueUrl=queue_url(lane),
        ReceiptHandle=receipt_handle,
        VisibilityTimeout=max(0, min(math.ceil(seconds), 43_200)),
    )
