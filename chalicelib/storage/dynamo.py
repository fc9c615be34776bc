"""DynamoDB access helpers: the client, item (de)serialisation, batch draining, condition checks."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from chalicelib import aws, settings

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

Item = dict[str, Any]


def client() -> Any:
    return aws.client("dynamodb")


def table_name() -> str:
    return settings.required(settings.TABLE_ENV)


def to_dynamo(item: Mapping[str, Any]) -> dict[str, Any]:
    """Serialise a plain dict; None values are dropped (DynamoDB has no use for them) and floats
    become Decimal (boto3 refuses floats)."""
    return {k: _serializer.serialize(_clean(v)) for k, v in item.items() if v is not None}


def from_dynamo(item: Mapping[str, Any]) -> Item:
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def values(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Serialise expression attribute values."""
    return {k: _serializer.serialize(_clean(v)) for k, v in mapping.items()}


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set):
        return sorted(value)
    return value


def is_condition_failure(error: Exception) -> bool:
    """A write refused by its condition; for a transaction, only when a condition was the reason
    (a conflict with another transaction or throttling is a failure to retry, not an answer)."""
    response = getattr(error, "response", {})
    code = response.get("Error", {}).get("Code")
    if code == "TransactionCanceledException":
        return any(
            reason.get("Code") == "ConditionalCheckFailed"
            for reason in response.get("CancellationReasons", [])
        )
    return bool(code == "ConditionalCheckFailedException")


def drain(
    call: Callable[..., dict[str, Any]], request: dict[str, Any], unprocessed: str
) -> list[dict[str, Any]]:
    """Run a batch call until DynamoDB has processed everything, backing off on throttled leftovers."""
    responses = []
    delay = 0.05
    while request:
        response = call(RequestItems=request)
        responses.append(response)
        request = response.get(unprocessed) or {}
        if request:
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    return responses
