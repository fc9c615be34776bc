"""GDPR export and erasure of one citizen against DynamoDB in moto: everything of theirs is
exported and then erased across conversations and channels, nothing of anyone else is touched, the
anonymous figures survive unchanged, and the erasure is audited without personal data."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from chalicelib.inbox import figures, gdpr, store
from chalicelib.inbox.threading import citizen_key
from tests.integration.inbox_support import HOURS, MONDAY_9, TENANT, all_items, inbound, record, reply

pytestmark = pytest.mark.usefixtures("dynamo_table")
MINUTE = timedelta(minutes=1)
WEEK = {"start": MONDAY_9 - timedelta(days=1), "end": MONDAY_9 + timedelta(days=6)}


def _two_citizens() -> tuple[list[str], str]:
    """Maria with a direct conversation (answered, noted, resolved) and a comment under a post on
    another channel of the same platform; Paolo with one message."""
    direct = record(inbound("m1", text="Via Roma è allagata")).conversation
    reply(direct.id, MONDAY_9 + 20 * MINUTE)
    reply(direct.id, MONDAY_9 + 25 * MINUTE, kind="note", text="segnalato ai vigili")
    store.set_status(TENANT, direct.id, "resolved", hours=HOURS, now=MONDAY_9 + 30 * MINUTE)
    comment = record(
        inbound("c1", channel="telegram-gruppo", kind="comment", post="77", text="Anche in piazza")
    )
    paolo = record(inbound("p1", user="paolo-2002", name="Paolo Bianchi", text="Orari dell'anagrafe?"))
    return [direct.id, comment.conversation.id], paolo.conversation.id


def test_export_has_every_conversation_and_message_of_the_citizen_only() -> None:
    maria_conversations, _ = _two_citizens()
    key = citizen_key(TENANT, inbound("x").citizen)

    exported = gdpr.export_citizen(TENANT, key)

    json.dumps(exported)  # serialisable as is
    assert sorted(c["id"] for c in exported["conversations"]) == sorted(maria_conversations)
    texts = [m["text"] for c in exported["conversations"] for m in c["messages"]]
    assert sorted(texts) == sorted(
        ["Via Roma è allagata", "Sì, le scuole sono aperte.", "segnalato ai vigili", "Anche in piazza"]
    )
    assert "Orari dell'anagrafe?" not in json.dumps(exported)
    direct = next(c for c in exported["conversations"] if c["channel"] == "telegram")
    assert direct["citizen"] == {
        "platform": "telegram",
        "platform_user_id": "maria-1001",
        "display_name": "Maria Rossi",
    }
    assert direct["kept_until"] > direct["last_activity_at"]
    assert "version" not in direct and "figures_key" not in direct


def test_erasure_removes_every_personal_row_and_keeps_the_figures() -> None:
    maria_conversations, paolo_conversation = _two_citizens()
    key = citizen_key(TENANT, inbound("x").citizen)
    figures_before = figures.report(TENANT, **WEEK)

    result = gdpr.erase_citizen(TENANT, key, user="dpo", now=MONDAY_9 + timedelta(hours=2))

    assert result == gdpr.ErasureResult(conversations=2, messages=4)
    assert figures.report(TENANT, **WEEK) == figures_before
    for conversation_id in maria_conversations:
        assert store.get_conversation(TENANT, conversation_id) is None
        assert store.messages(TENANT, conversation_id).items == ()
    left = json.dumps(all_items(), default=str)
    for trace in ["maria-1001", "Maria Rossi", "allagata", "vigili", "piazza", key, *maria_conversations]:
        assert trace not in left
    # Paolo is untouched, and Maria's statuses lists hold nobody else.
    assert store.get_conversation(TENANT, paolo_conversation) is not None
    assert [s.id for s in store.list_conversations(TENANT, status="open").items] == [paolo_conversation]
    assert store.list_conversations(TENANT, status="resolved").items == ()
    [entry] = [e for e in store.audit_entries(TENANT, "2026-11") if e.action == "erase_citizen"]
    assert (entry.user, entry.conversation_id, entry.fields) == (
        "dpo",
        None,
        {"conversations": 2, "messages": 4},
    )
    assert gdpr.export_citizen(TENANT, key)["conversations"] == []


def test_after_erasure_the_same_platform_message_is_new_again() -> None:
    # The dedupe rows went too: a replay is recorded as a new contact, not answered from memory.
    record(inbound("m1"))
    key = citizen_key(TENANT, inbound("m1").citizen)
    gdpr.erase_citizen(TENANT, key, user="dpo")

    again = record(inbound("m1"))

    assert again.created_conversation and not again.duplicate


def test_erasing_twice_or_nobody_is_harmless_and_keys_are_checked() -> None:
    record(inbound("m1"))
    key = citizen_key(TENANT, inbound("m1").citizen)

    assert gdpr.erase_citizen(TENANT, key, user="dpo") == gdpr.ErasureResult(1, 1)
    assert gdpr.erase_citizen(TENANT, key, user="dpo") == gdpr.ErasureResult(0, 0)
    assert gdpr.erase_citizen("comune-b", key, user="dpo") == gdpr.ErasureResult(0, 0)
    with pytest.raises(ValueError, match="citizen_key"):
        gdpr.export_citizen(TENANT, "1001")
