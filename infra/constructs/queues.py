"""The publish lanes: one SQS queue per lane with its own dead-letter queue, from infra.resources.QUEUES."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from chalice.utils import to_cfn_resource_name
from constructs import Construct

from infra.resources import QUEUES, QueueSpec


@dataclass(frozen=True)
class Lane:
    spec: QueueSpec
    queue: sqs.Queue
    dlq: sqs.Queue


class PublishLanes(Construct):
    """Both lanes, keyed by lane name ("normal", "urgent")."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.lanes = {spec.lane: self._lane(spec) for spec in QUEUES}

    def _lane(self, spec: QueueSpec) -> Lane:
        # SSE-SQS costs nothing and needs no key grants; every queue refuses plain HTTP.
        dlq = sqs.Queue(
            self,
            to_cfn_resource_name(spec.dlq_name),
            retention_period=Duration.seconds(spec.dlq_retention_seconds),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        queue = sqs.Queue(
            self,
            to_cfn_resource_name(spec.name),
            visibility_timeout=Duration.seconds(spec.visibility_timeout_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=spec.max_receive_count),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        return Lane(spec=spec, queue=queue, dlq=dlq)
