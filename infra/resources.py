"""Banditore's AWS resources as plain data: the one definition both stacks are built from.

The CDK constructs (infra/constructs/) and the local stack (devtools/aws_local.py) each create the
table, the publish lanes and the alarm topic from these specs, so the two cannot drift apart. No CDK
imports here: the local stack must not need Node or aws-cdk-lib.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib import settings

APP_NAME = "banditore"
# Milan: the region closest to the comuni; the CDK app and the local stack default to it.
DEFAULT_REGION = "eu-south-1"


@dataclass(frozen=True)
class IndexSpec:
    """A global secondary index on string keys, projecting every attribute."""

    name: str
    partition_key: str
    sort_key: str


@dataclass(frozen=True)
class TableSpec:
    """The single DynamoDB table (string keys, on-demand, TTL); access patterns live in
    chalicelib/storage/keys.py."""

    name: str
    partition_key: str
    sort_key: str
    indexes: tuple[IndexSpec, ...]
    ttl_attribute: str


# AWS asks for a visibility timeout of at least six times the consumer's timeout, so a batch that
# Lambda retries after throttling is not redelivered while still in flight. Both consumers run
# with lambda_timeout 60 (.chalice/config.json); tests/infra checks the ratio on the template.
CONSUMER_TIMEOUT_SECONDS = 60
VISIBILITY_TIMEOUT_SECONDS = 6 * CONSUMER_TIMEOUT_SECONDS
# A message still undelivered after eight failed attempts is parked in the DLQ (which alarms),
# where it stays 14 days, the SQS maximum, for someone to look at and redrive. With the
# publisher's back-off (1, 2, 4 ... 60 minutes) eight attempts span about two hours, so a
# platform's maintenance window at 3 a.m. is ridden out without a human. Waiting for a rate
# limit does not use up attempts (the publisher re-queues a copy instead).
MAX_RECEIVE_COUNT = 8
DLQ_RETENTION_SECONDS = 14 * 24 * 3600


@dataclass(frozen=True)
class QueueSpec:
    """A publish lane: a standard SQS queue drained by one Chalice function, with its own DLQ."""

    lane: str  # the name chalicelib.settings.queue_arn() and the publisher use
    name: str
    consumer: str  # the Chalice function (`name=` in app.py) that drains the queue
    url_env: str
    arn_env: str
    visibility_timeout_seconds: int = VISIBILITY_TIMEOUT_SECONDS
    max_receive_count: int = MAX_RECEIVE_COUNT
    dlq_retention_seconds: int = DLQ_RETENTION_SECONDS
    # What a message left in the DLQ is, as its alarm tells ops (Italian, like every alarm).
    dlq_contents: str = "pubblicazioni abbandonate"

    @property
    def dlq_name(self) -> str:
        return f"{self.name}-dlq"


TABLE = TableSpec(
    name="table",
    partition_key="pk",
    sort_key="sk",
    indexes=(IndexSpec(name="gsi1", partition_key="gsi1pk", sort_key="gsi1sk"),),
    ttl_attribute="expires_at",
)

QUEUES = (
    QueueSpec(
        lane="normal",
        name="publish",
        consumer="publish",
        url_env=settings.PUBLISH_QUEUE_URL_ENV,
        arn_env=settings.PUBLISH_QUEUE_ARN_ENV,
    ),
    # Alerts: their own queue and consumer, so a backlog of routine posts never delays them.
    QueueSpec(
        lane="urgent",
        name="publish-urgent",
        consumer="publish_urgent",
        url_env=settings.URGENT_QUEUE_URL_ENV,
        arn_env=settings.URGENT_QUEUE_ARN_ENV,
    ),
    # Citizens' messages as the inbox webhooks received them: stored before the webhook answers,
    # processed by process_inbound; eight failed attempts (48 minutes) park an event in the DLQ.
    QueueSpec(
        lane="inbox",
        name="inbox",
        consumer="process_inbound",
        url_env=settings.INBOX_QUEUE_URL_ENV,
        arn_env=settings.INBOX_QUEUE_ARN_ENV,
        dlq_contents="messaggi dei cittadini non elaborati",
    ),
)

ALARM_TOPIC_NAME = "alarms"


def local_name(name: str) -> str:
    """The physical name of a resource on the local stack. In AWS, CloudFormation names them, so
    two deployments (staging, production) can share an account without clashing."""
    return f"{APP_NAME}-{name}"


def runtime_environment(
    *, table_name: str, queue_urls: Mapping[str, str], queue_arns: Mapping[str, str]
) -> dict[str, str]:
    """The variables the runtime reads to find its resources, keyed by lane for the queues.

    Values are CDK tokens in the stack and real names/URLs on the local stack; the names are the
    same because both build them here.
    """
    env = {settings.TABLE_ENV: table_name}
    for spec in QUEUES:
        env[spec.url_env] = queue_urls[spec.lane]
        env[spec.arn_env] = queue_arns[spec.lane]
    return env
