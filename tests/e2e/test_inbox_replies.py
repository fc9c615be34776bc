"""End to end on the local stack: a citizen writes through the platform's webhook (the sandbox's
citizens), the inbox lane records it, staff answer through the staff API with a dev token, the urgent
lane takes the reply to the platform fake, threaded to the citizen's message, and the inbox then
reads "sent" and counts the first response; an FAQ answer takes the same road by itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.sandbox.citizens import Citizens
from devtools.stack import LocalStack
from tests.conftest import tenant
from tests.integration.staff_api_support import StaffClient

pytestmark = pytest.mark.slow

TENANT = "comune-a"
PAGE = "104512345678901"
FAQ_ANSWER = "L'anagrafe è aperta dal lunedì al venerdì, dalle 9 alle 12."
CHANNELS = [
    {
        "id": "telegram",
        "platform": "telegram",
        "chat": "@ComuneA",
        "token": "env:TEST_UNSET_T",
        "inbox": True,
    },
    {
        "id": "facebook",
        "platform": "facebook",
        "page_id": PAGE,
        "token": "env:TEST_UNSET_FB",
        "inbox": True,
        "auto_replies": True,
    },
]
INBOX = {"retention_days": 30, "faq": [{"phrases": ["orari anagrafe"], "answer": FAQ_ANSWER}]}


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    monkeypatch.delenv("BANDITORE_SECRETS_FILE", raising=False)
    config = tmp_path / "config.yaml"
    tenants = [tenant(TENANT, channels=CHANNELS) | {"inbox": INBOX}]
    config.write_text(yaml.safe_dump({"version": 1, "tenants": tenants}), encoding="utf-8")
    started = LocalStack(config, state_dir=tmp_path / "state", persist=False).start(serve_api=True)
    try:
        yield started
    finally:
        started.stop()


def _conversation(staff: StaffClient, conversation_id: str) -> dict[str, Any]:
    response = staff.get(f"/inbox/{TENANT}/conversations/{conversation_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def test_a_staff_reply_reaches_the_citizen_on_telegram_and_is_measured(stack: LocalStack) -> None:
    # The sandbox learns of the citizen's message first, as Telegram has it: the answer hangs under it.
    citizens = Citizens(str(stack.api_url), sandbox_url=stack.sandbox.url)
    staff = StaffClient(str(stack.api_url), stack.dev_tokens[TENANT])
    question = "Buongiorno, la scuola di via Roma è aperta domani?"
    sent = citizens.telegram_message(TENANT, "telegram", question)
    assert sent.status == 200
    person = citizens.person.user_id
    stack.drain()  # the inbox lane: the message is recorded

    [listed] = staff.get(f"/inbox/{TENANT}/conversations", params={"status": "open"}).json()["items"]
    reply = staff.post(
        f"/inbox/{TENANT}/conversations/{listed['id']}/reply", json={"text": "Sì, è aperta regolarmente."}
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["message"]["delivery_state"] == "queued"
    stack.drain()  # the urgent lane: the answer goes out

    [post] = stack.sandbox.posts("telegram")
    assert (post["target"], post["text"]) == (str(person), "Sì, è aperta regolarmente.")
    assert post["options"]["replied_to"] == sent.message_id  # threaded to the citizen's message
    shown = _conversation(staff, listed["id"])
    assert [(m["kind"], m["delivery_state"]) for m in shown["messages"]] == [
        ("direct", None),
        ("reply", "sent"),
    ]
    assert shown["conversation"]["status"] == "pending"
    assert shown["conversation"]["first_response_at"] == reply.json()["message"]["at"]
    figures = staff.get(f"/inbox/{TENANT}/figures", params={"period": "month"}).json()
    measured = [period["first_response"] for period in figures["periods"] if period["conversations"]]
    assert [(f["count"], f["waiting"]) for f in measured] == [(1, 0)]
    assert measured[0]["median_seconds"] is not None


def test_an_faq_answer_goes_back_on_messenger_by_itself(stack: LocalStack) -> None:
    citizens = Citizens(str(stack.api_url), sandbox_url=stack.sandbox.url)
    staff = StaffClient(str(stack.api_url), stack.dev_tokens[TENANT])
    person = str(citizens.person.user_id)
    sent = citizens.messenger_message(TENANT, "facebook", "Quali sono gli orari anagrafe?")
    assert sent.status == 200

    stack.drain()  # recorded and answered from the FAQ (inbox lane), then sent (urgent lane)

    [post] = stack.sandbox.posts("facebook")
    assert post["text"].endswith(FAQ_ANSWER)
    assert (post["options"]["recipient"], post["options"]["messaging_type"]) == ({"id": person}, "RESPONSE")
    [listed] = staff.get(f"/inbox/{TENANT}/conversations", params={"status": "open"}).json()["items"]
    messages = _conversation(staff, listed["id"])["messages"]
    # The conversation's view shows the automatic answer's delivery, as it does a staff reply's.
    assert [(m["kind"], m["automatic"], m["delivery_state"]) for m in messages] == [
        ("direct", False, None),
        ("reply", True, "sent"),
    ]
    assert listed["first_response_at"] is None  # an automatic answer is no first response
