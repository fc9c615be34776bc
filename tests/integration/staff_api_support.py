"""The staff API as tests reach it: a local stack serving the routes over real HTTP (Chalice's local
server), DynamoDB and SQS in moto behind it, dev tokens minted by the stack, and citizens' messages
recorded through the inbox store as ingestion records them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import requests
import yaml

from chalicelib.inbox import store
from chalicelib.storage import dynamo
from devtools.stack import LocalStack
from tests.conftest import tenant
from tests.integration.inbox_support import inbound

# Two tenants with an inbox, and one without (its data would still be reachable: GDPR).
TENANTS = ("comune-a", "comune-b")
WITHOUT_INBOX = "comune-c"


@contextmanager
def staff_api_stack(state_dir: Path) -> Iterator[LocalStack]:
    config = state_dir / "config.yaml"
    tenants = [tenant(name) | {"inbox": {"retention_days": 30}} for name in TENANTS]
    config.write_text(
        yaml.safe_dump({"version": 1, "tenants": [*tenants, tenant(WITHOUT_INBOX)]}), encoding="utf-8"
    )
    stack = LocalStack(config, state_dir=state_dir / "state", persist=False)
    try:
        yield stack.start(serve_api=True)
    finally:
        stack.stop()


class StaffClient:
    """HTTP calls to the staff API with one token (or none). A connection per request: on a kept-alive
    connection Chalice's local server answers 40 ms late (its writes meet delayed ACKs)."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {token}"} if token is not None else {}

    def request(self, method: str, path: str, **options: Any) -> requests.Response:
        headers = {**self.headers, **options.pop("headers", {})}
        return requests.request(method, self.base_url + path, headers=headers, timeout=10, **options)

    def get(self, path: str, **options: Any) -> requests.Response:
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Any) -> requests.Response:
        return self.request("POST", path, **options)

    def patch(self, path: str, **options: Any) -> requests.Response:
        return self.request("PATCH", path, **options)

    def delete(self, path: str, **options: Any) -> requests.Response:
        return self.request("DELETE", path, **options)


def citizen_writes(
    message_id: str,
    *,
    tenant_id: str = TENANTS[0],
    ago: timedelta = timedelta(hours=2),
    urgent: bool = False,
    **options: Any,
) -> store.RecordResult:
    """A citizen's message, recorded as ingestion records it (a while ago, so staff answer after)."""
    message = inbound(message_id, tenant=tenant_id, at=datetime.now(UTC) - ago, **options)
    return store.record_inbound(message, retention_days=30, now=message.received_at, urgent=urgent)


def reset(stack: LocalStack) -> None:
    """Empty the table and the lanes between tests (a scan: tests only)."""
    client = dynamo.client()
    table = dynamo.table_name()
    for page in client.get_paginator("scan").paginate(TableName=table, ProjectionExpression="pk, sk"):
        for start in range(0, len(page["Items"]), 25):
            batch = [{"DeleteRequest": {"Key": key}} for key in page["Items"][start : start + 25]]
            dynamo.drain(client.batch_write_item, {table: batch}, "UnprocessedItems")
    assert stack.resources is not None
    sqs = boto3.client("sqs")
    for url in stack.resources.queue_urls.values():
        # Received and deleted: SQS allows one purge a minute.
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
            entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)]
            sqs.delete_message_batch(QueueUrl=url, Entries=entries)


def queued_jobs(stack: LocalStack, lane: str) -> list[dict[str, Any]]:
    """The bodies of the messages waiting on a lane (received, then made visible again)."""
    assert stack.resources is not None
    sqs = boto3.client("sqs")
    url = stack.resources.queue_urls[lane]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
        "Messages", []
    )
    for message in messages:
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    return [json.loads(message["Body"]) for message in messages]
