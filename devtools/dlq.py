"""Move failed delivery messages from a lane's DLQ back to the lane, with a progress bar.

Safe to run at any time: a message is deleted from the DLQ only after SQS accepted its copy, and
a delivery that was meanwhile posted is acknowledged by the publisher's claim without posting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
from tqdm import tqdm


@dataclass(frozen=True)
class RedriveResult:
    lane: str
    moved: int
    failed: int


def dead_letter_url(sqs: Any, queue_url: str) -> str:
    """The DLQ of a queue, from its RedrivePolicy (so no DLQ name is configured twice)."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])["Attributes"]
    arn = json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"]
    _, _, _, _, account, name = arn.split(":")
    return str(sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])


def redrive(lane: str, queue_url: str, *, show_progress: bool = True) -> RedriveResult:
    sqs = boto3.client("sqs")
    dlq_url = dead_letter_url(sqs, queue_url)
    waiting = int(
        sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"
        ]["ApproximateNumberOfMessages"]
    )
    moved = failed = 0
    with tqdm(total=waiting, desc=f"coda {lane}", unit="msg", disable=not show_progress) as bar:
        while True:
            # Long polling: a short poll samples only some SQS servers and may come back empty
            # while messages remain, which would end the redrive early.
            messages = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []
            )
            if not messages:
                break
            sent = sqs.send_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "MessageBody": m["Body"]} for i, m in enumerate(messages)],
            )
            accepted = [messages[int(entry["Id"])] for entry in sent.get("Successful", [])]
            if accepted:
                sqs.delete_message_batch(
                    QueueUrl=dlq_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(accepted)
                    ],
                )
            moved += len(accepted)
            failed += len(messages) - len(accepted)
            bar.update(len(messages))
            if len(accepted) < len(messages):
                break  # SQS refused some: stop rather than spin; they stay in the DLQ
    return RedriveResult(lane=lane, moved=moved, failed=failed)
