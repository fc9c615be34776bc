"""GDPR art. 15 and 17 for one citizen: export everything we hold about them, or erase it.

A citizen is addressed by their citizen key (threading.citizen_key: per tenant and platform, the
same across that platform's channels). Erasure removes messages, conversations, list rows, the
citizen index and dedupe rows; the anonymous figures rows stay, so the statistics do not change.
The erasure is audited with who, when and counts only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.clock import iso, utcnow
from chalicelib.inbox import rows, store, tx
from chalicelib.inbox.model import Conversation, Message
from chalicelib.inbox.threading import CITIZEN_KEY, replied_id
from chalicelib.observability import logger
from chalicelib.storage import dynamo, keys

_BATCH_WRITE = 25  # BatchWriteItem's limit


@dataclass(frozen=True)
class ErasureResult:
    conversations: int
    messages: int


def export_citizen(tenant: str, citizen_key: str) -> dict[str, Any]:
    """Every conversation and message of the citizen, JSON-serialisable."""
    _check(citizen_key)
    exported = []
    for conversation_id in store.citizen_conversations(tenant, citizen_key):
        conversation = store.get_conversation(tenant, conversation_id)
        if conversation is not None:
            exported.append({**_conversation(conversation), "messages": _messages(tenant, conversation_id)})
    return {
        "tenant": tenant,
        "citizen_key": citizen_key,
        "exported_at": iso(utcnow()),
        "conversations": exported,
    }


def erase_citizen(tenant: str, citizen_key: str, *, user: str, now: datetime | None = None) -> ErasureResult:
    _check(citizen_key)
    conversation_ids = store.citizen_conversations(tenant, citizen_key)
    messages = sum(_erase_conversation(tenant, citizen_key, cid) for cid in conversation_ids)
    result = ErasureResult(conversations=len(conversation_ids), messages=messages)
    store.audit(tenant, user, "erase_citizen", None, dataclasses.asdict(result), now=now)
    logger.info("Citizen data erased", extra=dataclasses.asdict(result))
    return result


def _erase_conversation(tenant: str, citizen_key: str, conversation_id: str) -> int:
    """Delete a conversation with its messages, id markers, dedupe rows, list rows and citizen index
    row; returns the number of messages deleted. Messages go first and the conversation last under
    its version, so a message arriving meanwhile is caught by the next round, and an interrupted
    erasure is finished by running it again."""
    erased = 0
    for _ in tx.attempts():
        erased += _delete_messages(tenant, conversation_id)
        current = store.get_conversation(tenant, conversation_id)
        if current is None:
            index_row = {
                "pk": keys.citizen_pk(tenant, citizen_key),
                "sk": keys.conversation_sk(conversation_id),
            }
            dynamo.client().delete_item(TableName=dynamo.table_name(), Key=dynamo.to_dynamo(index_row))
            return erased
        conversation = {"pk": keys.tenant_pk(tenant), "sk": keys.conversation_sk(current.id)}
        ops = [tx.delete(conversation, "version = :v", {":v": current.version})]
        ops += [tx.delete({"pk": row["pk"], "sk": row["sk"]}) for row in rows.derived_rows(current)]
        if tx.transact(ops) is None:
            return erased
    raise store.Conflict("conversation kept changing during erasure")


def _delete_messages(tenant: str, conversation_id: str) -> int:
    """Every row of the conversation's message partition, the dedupe rows of its inbound messages
    and the links of its answers sent (store.link_answer); returns how many were messages (the rest
    are id markers and reply deliveries)."""
    pages = store.partition_pages(
        keys.messages_pk(tenant, conversation_id),
        ProjectionExpression="pk, sk, platform, channel, platform_message_id, direction, remote_id",
        ConsistentRead=True,
    )
    found = [dynamo.from_dynamo(item) for page in pages for item in page["Items"]]
    doomed = [{"pk": item["pk"], "sk": item["sk"]} for item in found]
    doomed += [
        {
            "pk": keys.inbound_pk(tenant),
            "sk": keys.inbound_sk(item["platform"], item["channel"], item["platform_message_id"]),
        }
        for item in found
        if item.get("direction") == "in" and item.get("platform_message_id")
    ]
    doomed += [
        {
            "pk": keys.inbound_pk(tenant),
            "sk": keys.inbound_sk(
                item["platform"], item["channel"], replied_id(item["platform"], item["remote_id"])
            ),
        }
        for item in found
        if str(item["sk"]).startswith(keys.reply_sk("")) and item.get("remote_id")
    ]
    for start in range(0, len(doomed), _BATCH_WRITE):
        batch = doomed[start : start + _BATCH_WRITE]
        request = {dynamo.table_name(): [{"DeleteRequest": {"Key": dynamo.to_dynamo(key)}} for key in batch]}
        dynamo.drain(dynamo.client().batch_write_item, request, "UnprocessedItems")
    return sum(1 for item in found if str(item["sk"]).startswith(keys.MESSAGE_PREFIX))


def _check(citizen_key: str) -> None:
    if not CITIZEN_KEY.match(citizen_key):
        raise ValueError("citizen_key: 32 hexadecimal characters")


def _conversation(conversation: Conversation) -> dict[str, Any]:
    exported: dict[str, Any] = _plain(dataclasses.asdict(conversation))
    # Internal bookkeeping, not data about the citizen; the retention date is (art. 15(1)(d)).
    for internal in ("version", "figures_key", "expires_at"):
        exported.pop(internal)
    exported["kept_until"] = iso(datetime.fromtimestamp(conversation.expires_at, UTC))
    return exported


def _messages(tenant: str, conversation_id: str) -> list[dict[str, Any]]:
    found: list[Message] = []
    cursor: str | None = None
    while True:
        page = store.messages(tenant, conversation_id, limit=store.MAX_PAGE, cursor=cursor)
        found += page.items
        if page.cursor is None:
            return [_plain(dataclasses.asdict(message)) for message in found]
        cursor = page.cursor


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
