"""devtools/aws_local: the local AWS has exactly the table, lanes and topic infra/resources.py describes
(the same definitions the CDK stack is checked against in tests/infra), and behaves like them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib import settings
from devtools import aws_local
from infra.resources import QUEUES, TABLE, QueueSpec

REGION = "eu-south-1"


@pytest.fixture(scope="module")
def moto() -> Iterator[aws_local.MotoServer]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        patch.setenv("AWS_ACCESS_KEY_ID", "local")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "local")
        patch.delenv("AWS_PROFILE", raising=False)
        server = aws_local.start_moto()
        yield server
        server.stop()


@pytest.fixture(scope="module")
def local(moto: aws_local.MotoServer) -> aws_local.LocalResources:
    return aws_local.create_resources(moto.url)


def client(moto: aws_local.MotoServer, service: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=moto.url)


def test_table_has_the_spec_keys_indexes_and_ttl(
    moto: aws_local.MotoServer, local: aws_local.LocalResources
) -> None:
    dynamodb = client(moto, "dynamodb")
    table = dynamodb.describe_table(TableName=local.table_name)["Table"]

    def key_schema(pk: str, sk: str) -> list[dict[str, str]]:
        return [{"AttributeName": pk, "KeyType": "HASH"}, {"AttributeName": sk, "KeyType": "RANGE"}]

    assert table["KeySchema"] == key_schema(TABLE.partition_key, TABLE.sort_key)
    indexes = {
        index["IndexName"]: (index["KeySchema"], index["Projection"]["ProjectionType"])
        for index in table.get("GlobalSecondaryIndexes", [])
    }
    assert indexes == {
        index.name: (key_schema(index.partition_key, index.sort_key), "ALL") for index in TABLE.indexes
    }
    assert {d["AttributeType"] for d in table["AttributeDefinitions"]} == {"S"}
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = dynamodb.describe_time_to_live(TableName=local.table_name)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", TABLE.ttl_attribute)


def test_gsi_answers_queries_on_its_keys(moto: aws_local.MotoServer, local: aws_local.LocalResources) -> None:
    dynamodb = client(moto, "dynamodb")
    (index,) = TABLE.indexes
    item = {
        TABLE.partition_key: {"S": "T#comune-a"},
        TABLE.sort_key: {"S": "DLV#1#telegram"},
        index.partition_key: {"S": "T#comune-a#DLV#pending"},
        index.sort_key: {"S": "2026-11-22T08:00:00Z"},
    }
    dynamodb.put_item(TableName=local.table_name, Item=item)
    found = dynamodb.query(
        TableName=local.table_name,
        IndexName=index.name,
        KeyConditionExpression="#pk = :pk",
        ExpressionAttributeNames={"#pk": index.partition_key},
        ExpressionAttributeValues={":pk": item[index.partition_key]},
    )["Items"]
    assert found == [item]


def attributes(moto: aws_local.MotoServer, url: str) -> dict[str, str]:
    result: dict[str, str] = client(moto, "sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
        "Attributes"
    ]
    return result


@pytest.mark.parametrize("spec", QUEUES, ids=lambda spec: spec.lane)
def test_lane_queue_and_dlq_follow_the_spec(
    moto: aws_local.MotoServer, local: aws_local.LocalResources, spec: QueueSpec
) -> None:
    queue = attributes(moto, local.queue_urls[spec.lane])
    dlq = attributes(moto, local.dlq_urls[spec.lane])
    assert queue["QueueArn"] == local.queue_arns[spec.lane]
    assert dlq["QueueArn"] == local.dlq_arns[spec.lane]
    assert int(queue["VisibilityTimeout"]) == spec.visibility_timeout_seconds
    assert json.loads(queue["RedrivePolicy"]) == {
        "deadLetterTargetArn": local.dlq_arns[spec.lane],
        "maxReceiveCount": spec.max_receive_count,
    }
    assert int(dlq["MessageRetentionPeriod"]) == spec.dlq_retention_seconds
    assert queue["SqsManagedSseEnabled"] == dlq["SqsManagedSseEnabled"] == "true"


@pytest.mark.parametrize("spec", QUEUES, ids=lambda spec: spec.lane)
def test_a_message_received_max_receive_count_times_moves_to_the_dlq(
    moto: aws_local.MotoServer, local: aws_local.LocalResources, spec: QueueSpec
) -> None:
    sqs = client(moto, "sqs")
    url = local.queue_urls[spec.lane]
    sqs.send_message(QueueUrl=url, MessageBody=f"poison-{spec.lane}")
    for _ in range(spec.max_receive_count):
        (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
        # What a failed batch item amounts to, without waiting out the visibility timeout.
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    (dead,) = sqs.receive_message(QueueUrl=local.dlq_urls[spec.lane])["Messages"]
    assert dead["Body"] == f"poison-{spec.lane}"


def test_a_new_server_starts_empty(moto: aws_local.MotoServer, local: aws_local.LocalResources) -> None:
    second = aws_local.start_moto()
    try:
        assert client(moto, "dynamodb").list_tables()["TableNames"] == []
    finally:
        # moto's state belongs to the process: put back what this module's other tests use.
        aws_local.create_resources(second.url)
        second.stop()


def test_alarm_topic_exists(moto: aws_local.MotoServer, local: aws_local.LocalResources) -> None:
    topic = client(moto, "sns").get_topic_attributes(TopicArn=local.alarm_topic_arn)["Attributes"]
    assert topic["TopicArn"] == local.alarm_topic_arn


def test_env_maps_the_runtime_variables_to_these_resources(local: aws_local.LocalResources) -> None:
    assert local.env() == {
        settings.TABLE_ENV: local.table_name,
        settings.PUBLISH_QUEUE_URL_ENV: local.queue_urls["normal"],
        settings.PUBLISH_QUEUE_ARN_ENV: local.queue_arns["normal"],
        settings.URGENT_QUEUE_URL_ENV: local.queue_urls["urgent"],
        settings.URGENT_QUEUE_ARN_ENV: local.queue_arns["urgent"],
        settings.INBOX_QUEUE_URL_ENV: local.queue_urls["inbox"],
        settings.INBOX_QUEUE_ARN_ENV: local.queue_arns["inbox"],
    }
    # The lanes the publisher and settings.queue_arn() know are the lanes created.
    assert set(local.queue_urls) == {"normal", "urgent", "inbox"}


def test_moto_logs_no_line_per_request(
    moto: aws_local.MotoServer,
    local: aws_local.LocalResources,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    client(moto, "dynamodb").describe_table(TableName=local.table_name)
    assert [record for record in caplog.records if record.name == "werkzeug"] == []
    assert "POST /" not in capfd.readouterr().err
