"""Staff replies on their way to the citizen: each reply's delivery row, and the job that carries it.

The staff API records a reply in its conversation first (store.record_outbound: the first response
counts from the moment staff answer), then hands it to `queue_reply`, which writes the reply's
delivery row in state "queued" and sends a job on the urgent lane, so an answer to a citizen never
waits behind routine posts. The job names the reply and never holds its text:
    {"v": 1, "kind": "reply", "tenant": ..., "conversation": ..., "message": ..., "channel": ...,
     "lane": "urgent"}
The urgent lane's consumer hands reply jobs to chalicelib/inbox/sending.py, which claims the row
(a job may arrive more than once), reads the message from the table, sends it with the channel
adapter's `answer` (honouring the platform's rules: Messenger's 24-hour window, private replies to
comments) and moves the row to "sent" with the platform's id, or to "failed" with the reason. Until
then the reply reads "queued": nothing says "sent" before a platform confirmed it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from botocore.exceptions import ClientError

from chalicelib import aws
from chalicelib.clock import iso
from chalicelib.inbox.model import Conversation, Message
from chalicelib.publishing import lanes
from chalicelib.storage import dynamo, keys
from chalicelib.storage.deliveries import Lane

DeliveryState = Literal["queued", "sent", "failed"]
LANE: Lane = "urgent"
_BATCH_GET = 100  # BatchGetItem's limit


@dataclass(frozen=True)
class ReplyDelivery:
    message_id: str
    state: DeliveryState


def queue_reply(conversation: Conversation, message: Message, *, now: datetime) -> ReplyDelivery:
    """Record the reply as queued and send its job. Called again for the same reply (a client's
    retry), a reply still queued is sent again — the first send may be what failed — and one
    already sent or failed is left alone."""
    row = {
        "pk": keys.messages_pk(conversation.tenant, conversation.id),
        "sk": keys.reply_sk(message.id),
        "state": "queued",
        "channel": conversation.channel,
        "platform": conversation.platform,
        "private": message.private,
        "queued_at": iso(now),
        "expires_at": conversation.expires_at,  # erased and expired with the conversation
    }
    try:
        dynamo.client().put_item(
            TableName=dynamo.table_name(),
            Item=dynamo.to_dynamo(row),
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as error:
        if not dynamo.is_condition_failure(error):
            raise
        state: DeliveryState = dynamo.from_dynamo(error.response.get("Item", {})).get("state", "queued")
        if state != "queued":
            return ReplyDelivery(message.id, state)
    job = lanes.ReplyJob(conversation.tenant, conversation.id, message.id, conversation.channel, LANE)
    aws.client("sqs").send_message(QueueUrl=lanes.queue_url(LANE), MessageBody=job.to_json())
    return ReplyDelivery(message.id, "queued")


def delivery_states(
    tenant: str, conversation_id: str, message_ids: Sequence[str]
) -> dict[str, DeliveryState]:
    """The delivery state of each of these replies (by message id) that has a delivery row."""
    pk = keys.messages_pk(tenant, conversation_id)
    states: dict[str, DeliveryState] = {}
    unique = list(dict.fromkeys(message_ids))
    for start in range(0, len(unique), _BATCH_GET):
        wanted = [
            dynamo.to_dynamo({"pk": pk, "sk": keys.reply_sk(m)}) for m in unique[start : start + _BATCH_GET]
        ]
        request = {
            dynamo.table_name(): {
                "Keys": wanted,
                "ConsistentRead": True,  # a reply queued a moment ago shows as queued
                "ProjectionExpression": "sk, #state",
                "ExpressionAttributeNames": {"#state": "state"},
            }
        }
        for response in dynamo.drain(dynamo.client().batch_get_item, request, "UnprocessedKeys"):
            for raw in response.get("Responses", {}).get(dynamo.table_name(), []):
                item = dynamo.from_dynamo(raw)
                states[str(item["sk"]).removeprefix(keys.reply_sk(""))] = item["state"]
    return states
