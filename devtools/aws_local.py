"""The local AWS: moto in server mode on 127.0.0.1, and Banditore's resources created in it from
infra/resources.py, the definitions the CDK stack is built from, so the local stack, the tests and
the benchmarks run against the same table, lanes and topic as production.

    server = start_moto()
    os.environ["AWS_ENDPOINT_URL"] = server.url      # plus a region and any credentials
    resources = create_resources(server.url)
    os.environ.update(resources.env())
    ...
    server.stop()
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

import boto3
import requests
from moto.server import ThreadedMotoServer

from infra.resources import (
    ALARM_TOPIC_NAME,
    DEFAULT_REGION,
    QUEUES,
    TABLE,
    QueueSpec,
    local_name,
    runtime_environment,
)


@dataclass(frozen=True)
class MotoServer:
    """A running moto server; `url` is what AWS_ENDPOINT_URL (or endpoint_url=) should be."""

    url: str
    _server: ThreadedMotoServer

    def stop(self) -> None:
        self._server.stop()


def start_moto() -> MotoServer:
    """An empty moto on 127.0.0.1 and a free port, in a daemon thread of this process."""
    # werkzeug logs one line per request at INFO; on a busy local stack that drowns everything.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    # moto is not thread-safe: a DynamoDB transaction deep-copies the table while another request
    # may be changing it ("dictionary changed size during iteration", a 500). Real DynamoDB is
    # concurrent; here requests take turns, which only costs time on a machine of a few cores.
    wsgi = server._server
    if wsgi is not None:
        wsgi.app = _one_at_a_time(wsgi.app)
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # moto keeps its state per process, not per server: what an earlier server of this process
    # created (another test module, a restarted local stack) would still be there.
    requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()
    return MotoServer(url=url, _server=server)


def _one_at_a_time(app: Any) -> Any:
    lock = threading.Lock()

    def serialised(environ: dict[str, Any], start_response: Any) -> Any:
        with lock:
            # The whole body is produced inside the lock: moto builds it before returning.
            return list(app(environ, start_response))

    return serialised


@dataclass(frozen=True)
class LocalResources:
    """Names, URLs and ARNs of what create_resources made; queues are keyed by lane."""

    region: str
    table_name: str
    queue_urls: dict[str, str]
    queue_arns: dict[str, str]
    dlq_urls: dict[str, str]
    dlq_arns: dict[str, str]
    alarm_topic_arn: str

    def env(self) -> dict[str, str]:
        """The variables the runtime reads to find these resources, as the CDK stack sets them."""
        return runtime_environment(
            table_name=self.table_name, queue_urls=self.queue_urls, queue_arns=self.queue_arns
        )


def create_resources(endpoint_url: str | None = None) -> LocalResources:
    """Create the table (with its GSIs and TTL), both lanes with their DLQs and redrive policy,
    and the alarm topic, in the region boto3 is configured for (else eu-south-1).

    Point-in-time recovery and deletion protection are production safeguards for data the local
    stack does not have, so they are not set here.
    """
    session = boto3.session.Session()
    region = session.region_name or DEFAULT_REGION
    dynamodb = session.client("dynamodb", region_name=region, endpoint_url=endpoint_url)
    sqs = session.client("sqs", region_name=region, endpoint_url=endpoint_url)
    sns = session.client("sns", region_name=region, endpoint_url=endpoint_url)

    table_name = _create_table(dynamodb)
    lanes = {spec.lane: _create_lane(sqs, spec) for spec in QUEUES}
    return LocalResources(
        region=region,
        table_name=table_name,
        queue_urls={lane: queue.url for lane, (queue, _) in lanes.items()},
        queue_arns={lane: queue.arn for lane, (queue, _) in lanes.items()},
        dlq_urls={lane: dlq.url for lane, (_, dlq) in lanes.items()},
        dlq_arns={lane: dlq.arn for lane, (_, dlq) in lanes.items()},
        alarm_topic_arn=sns.create_topic(Name=local_name(ALARM_TOPIC_NAME))["TopicArn"],
    )


def _create_table(dynamodb: Any) -> str:
    name = local_name(TABLE.name)
    keys = [TABLE.partition_key, TABLE.sort_key]
    for index in TABLE.indexes:
        keys += [index.partition_key, index.sort_key]
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key in dict.fromkeys(keys)],
        KeySchema=_key_schema(TABLE.partition_key, TABLE.sort_key),
        GlobalSecondaryIndexes=[
            {
                "IndexName": index.name,
                "KeySchema": _key_schema(index.partition_key, index.sort_key),
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in TABLE.indexes
        ],
    )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TABLE.ttl_attribute}
    )
    return name


def _key_schema(partition_key: str, sort_key: str) -> list[dict[str, str]]:
    return [
        {"AttributeName": partition_key, "KeyType": "HASH"},
        {"AttributeName": sort_key, "KeyType": "RANGE"},
    ]


@dataclass(frozen=True)
class _Queue:
    url: str
    arn: str


def _create_lane(sqs: Any, spec: QueueSpec) -> tuple[_Queue, _Queue]:
    dlq = _create_queue(
        sqs, local_name(spec.dlq_name), MessageRetentionPeriod=str(spec.dlq_retention_seconds)
    )
    queue = _create_queue(
        sqs,
        local_name(spec.name),
        VisibilityTimeout=str(spec.visibility_timeout_seconds),
        RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq.arn, "maxReceiveCount": spec.max_receive_count}),
    )
    return queue, dlq


def _create_queue(sqs: Any, name: str, **attributes: str) -> _Queue:
    url = sqs.create_queue(QueueName=name, Attributes={"SqsManagedSseEnabled": "true", **attributes})[
        "QueueUrl"
    ]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return _Queue(url=url, arn=arn)
