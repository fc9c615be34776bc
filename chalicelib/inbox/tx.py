"""TransactWriteItems for the inbox: operation builders, and the outcome of a cancelled transaction.

A cancelled transaction is an answer, not an error, when a condition failed or another transaction
held one of its items: the caller reads again and decides (a duplicate, or a race to retry).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Mapping
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.storage import dynamo

Op = dict[str, Any]
CONDITION_FAILED = "ConditionalCheckFailed"
_RACES = frozenset({CONDITION_FAILED, "TransactionConflict"})
# Writers of one conversation serialise on its version; a few rounds settle any realistic burst.
MAX_ATTEMPTS = 8


def put(item: Mapping[str, Any], condition: str | None = None, values: Mapping[str, Any] | None = None) -> Op:
    request: dict[str, Any] = {"TableName": dynamo.table_name(), "Item": dynamo.to_dynamo(item)}
    return {"Put": _conditioned(request, condition, values)}


def delete(
    key: Mapping[str, Any], condition: str | None = None, values: Mapping[str, Any] | None = None
) -> Op:
    request: dict[str, Any] = {"TableName": dynamo.table_name(), "Key": dynamo.to_dynamo(key)}
    return {"Delete": _conditioned(request, condition, values)}


def upsert(key: Mapping[str, Any], attributes: Mapping[str, Any]) -> Op:
    """SET these attributes, creating the item if needed."""
    names = {f"#a{i}": name for i, name in enumerate(attributes)}
    values = {f":a{i}": value for i, value in enumerate(attributes.values())}
    return {
        "Update": {
            "TableName": dynamo.table_name(),
            "Key": dynamo.to_dynamo(key),
            "UpdateExpression": "SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(names))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": dynamo.values(values),
        }
    }


def _conditioned(
    request: dict[str, Any], condition: str | None, values: Mapping[str, Any] | None
) -> dict[str, Any]:
    if condition:
        request["ConditionExpression"] = condition
        if values:
            request["ExpressionAttributeValues"] = dynamo.values(values)
    return request


def transact(ops: list[Op]) -> list[str] | None:
    """None when written; the cancellation reason of each operation when a condition failed or
    another transaction interfered. Any other failure raises."""
    try:
        dynamo.client().transact_write_items(TransactItems=ops)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
            raise
        codes = [str(r.get("Code", "None")) for r in error.response.get("CancellationReasons", [])]
        if not _RACES.intersection(codes):
            raise
        return codes
    return None


def attempts() -> Iterator[int]:
    """Attempt numbers, with a short jittered pause before each retry so racing writers spread out."""
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 (jitter, not security)
        yield attempt
