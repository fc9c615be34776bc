"""Citizens writing to a comune on the local stack, as the platforms deliver it: the sandbox's citizens
call the webhook routes of the local API with the channel's secret (Telegram) or the app's signature
(Meta); the event waits on the inbox lane; process_inbound threads it into a conversation, flags
danger reports and records at most one automatic answer. Replays are recorded once; forged, unknown
and oversized calls are refused; nothing personal reaches the logs."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from chalicelib.inbox import store
from chalicelib.inbox.ingest.queue import MAX_WEBHOOK_BYTES
from chalicelib.inbox.model import Conversation, Message
from chalicelib.storage.deliveries import deliveries_of
from devtools.commands import ENV_FILE
from devtools.sandbox.citizens import Citizens, Person
from devtools.sandbox.citizens import main as citizens_main
from devtools.stack import LocalStack, sqs_event
from tests.conftest import tenant
from tests.feedserver import news_items, rss_document

TENANT = "comune-a"
PAGE_ID = "5550001"
CITIZEN = Person(user_id=73104455, first_name="Giuseppina", last_name="Esposito")
FAQ_ANSWER = "L'anagrafe è aperta dal lunedì al venerdì, dalle 9 alle 12."
NOW = datetime.now(UTC).replace(microsecond=0)


def _comune(
    *, auto_replies: bool = True, extra_sources: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    inbox = {"inbox": True, "auto_replies": auto_replies}
    channels = [
        {"id": "telegram", "platform": "telegram", "chat": "@ComuneA", "token": "env:TEST_UNSET_TG"} | inbox,
        {"id": "facebook", "platform": "facebook", "page_id": PAGE_ID, "token": "env:TEST_UNSET_FB"} | inbox,
    ]
    sources = [{"id": "notizie", "url": "https://sample.feeds.invalid/feed.rss"}, *(extra_sources or [])]
    return tenant(TENANT, sources=sources, channels=channels) | {
        "inbox": {"faq": [{"phrases": ["orari anagrafe", "orario dell'anagrafe"], "answer": FAQ_ANSWER}]}
    }


@pytest.fixture
def stack(make_stack: Callable[..., LocalStack]) -> LocalStack:
    return make_stack([_comune()], {"feed.rss": rss_document(news_items(1))}, serve_api=True)


@pytest.fixture
def citizens(stack: LocalStack) -> Citizens:
    return Citizens(str(stack.api_url), CITIZEN)


def _our_posts(stack: LocalStack) -> dict[str, tuple[str, str]]:
    """Publish the feed's news; channel -> (announcement id, remote id of our post)."""
    result = stack.poll()
    stack.drain()
    [announcement] = [a for source in result["sources"] for a in source.get("announcements", [])]
    return {d.channel: (announcement, str(d.remote_id)) for d in deliveries_of(TENANT, announcement)}


def _conversations() -> list[Conversation]:
    found = [
        store.get_conversation(TENANT, s.id) for s in store.list_conversations(TENANT, status="open").items
    ]
    return [c for c in found if c is not None]


def _messages(conversation: Conversation) -> list[Message]:
    return list(store.messages(TENANT, conversation.id).items)


def _log(stack: LocalStack) -> str:
    return (stack.state_dir / "lambda.log").read_text(encoding="utf-8")


def _emitted(log: str, metric: str) -> float:
    """A metric's total in the log's EMF lines, under the service-only dimension set alarms watch."""
    blobs = [json.loads(line) for line in log.splitlines() if line.startswith('{"_aws"')]
    alarmed = [b for b in blobs if b["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]]
    return sum(sum(b[metric]) for b in alarmed if metric in b)


def test_a_private_message_is_one_direct_conversation_answered_once_by_the_faq(
    stack: LocalStack, citizens: Citizens
) -> None:
    sent = citizens.telegram_message(TENANT, "telegram", "Buongiorno, quali sono gli orari anagrafe?")
    assert sent.status == 200
    stack.drain()
    assert citizens.replay(sent).status == 200  # Telegram redelivering the same update
    stack.drain()

    [conversation] = _conversations()
    assert (conversation.kind, conversation.channel, conversation.urgent) == ("direct", "telegram", False)
    assert conversation.citizen.display_name == "Giuseppina Esposito"
    question, answer = _messages(conversation)
    assert question.text == "Buongiorno, quali sono gli orari anagrafe?"
    assert question.reply_target == {"chat_id": str(CITIZEN.user_id), "message_id": str(sent.message_id)}
    assert (answer.automatic, answer.author, answer.reply_to_message_id) == (True, "faq", question.id)
    assert answer.text == f"Risposta automatica: {FAQ_ANSWER}"
    assert conversation.first_response_at is None  # an automatic answer is no first response

    log = _log(stack)
    assert _emitted(log, "InboundMessages") == 1
    assert _emitted(log, "AutomaticAnswers") == 1
    assert "anagrafe" not in log and str(CITIZEN.user_id) not in log and "Esposito" not in log


def test_a_comment_under_our_post_links_to_its_announcement_and_a_danger_is_urgent(
    stack: LocalStack, citizens: Citizens
) -> None:
    announcement, post = _our_posts(stack)["telegram"]
    first = citizens.telegram_comment(TENANT, "telegram", "Grazie dell'avviso!", post=post)
    stack.drain()
    # A reply to a comment in the post's thread stays in the same conversation; a fallen tree is a
    # danger report (and gets no automatic answer, though it asks about the office hours).
    danger = "C'è un albero caduto in via Roma, orari anagrafe?"
    assert (
        citizens.telegram_comment(
            TENANT, "telegram", danger, post=post, reply_to=int(first.message_id)
        ).status
        == 200
    )
    stack.drain()

    [conversation] = _conversations()
    assert (conversation.kind, conversation.announcement_id, conversation.urgent) == (
        "comment",
        announcement,
        True,
    )
    # Telegram dates messages to the second: two in the same second may list in either order.
    messages = _messages(conversation)
    assert sorted(m.text for m in messages) == sorted([danger, "Grazie dell'avviso!"])
    assert all(m.direction == "in" for m in messages)
    log = _log(stack)
    assert _emitted(log, "DangerReports") == 1
    assert _emitted(log, "InboundIgnored") == 1  # the copy of our post in the discussion group
    assert _emitted(log, "AutomaticAnswers") == 0


def test_a_location_is_a_danger_report(stack: LocalStack, citizens: Citizens) -> None:
    assert citizens.telegram_message(TENANT, "telegram", "", location=(43.7696, 11.2558)).status == 200
    stack.drain()

    [conversation] = _conversations()
    assert conversation.urgent
    [message] = _messages(conversation)
    assert message.text == "[posizione]"
    assert message.location is not None and (message.location.lat, message.location.lon) == (43.7696, 11.2558)
    assert _emitted(_log(stack), "DangerReports") == 1


def test_facebook_comments_and_messenger_messages_reach_the_inbox(
    stack: LocalStack, citizens: Citizens
) -> None:
    announcement, post = _our_posts(stack)["facebook"]
    verification = citizens.verify_meta_subscription(TENANT, "facebook", "1158201444")
    assert (verification.status_code, verification.text) == (200, "1158201444")

    comment = citizens.facebook_comment(TENANT, "facebook", "Quando riaprono la strada?", post=post)
    direct = citizens.messenger_message(TENANT, "facebook", "Che orario dell'anagrafe c'è sabato?")
    assert (comment.status, direct.status) == (200, 200)
    assert citizens.replay(comment).status == 200  # a replayed genuine call: harmless
    page = Citizens(str(stack.api_url), Person(user_id=int(PAGE_ID), first_name="Comune", last_name="A"))
    assert page.facebook_comment(TENANT, "facebook", "Domani alle 8.", post=post).status == 200
    stack.drain()

    by_kind = {c.kind: c for c in _conversations()}
    assert set(by_kind) == {"comment", "direct"}
    assert by_kind["comment"].announcement_id == announcement
    assert [m.text for m in _messages(by_kind["comment"])] == ["Quando riaprono la strada?"]
    question, answer = _messages(by_kind["direct"])
    assert question.reply_target == {"recipient_id": str(CITIZEN.user_id), "message_id": direct.message_id}
    assert answer.automatic and answer.text.endswith(FAQ_ANSWER)
    assert _emitted(_log(stack), "InboundMessages") == 2


def test_forged_unknown_and_oversized_calls_are_refused(
    stack: LocalStack, citizens: Citizens, capsys: pytest.CaptureFixture[str]
) -> None:
    assert citizens.telegram_message(TENANT, "telegram", "Ciao", forged=True).status == 401
    assert citizens.messenger_message(TENANT, "facebook", "Ciao", forged=True).status == 401
    unsigned = requests.post(
        f"{stack.api_url}/webhooks/meta", json={"object": "page", "entry": []}, timeout=5
    )
    assert (unsigned.status_code, unsigned.json()) == (401, {"error": "unauthorized"})
    for path in ("comune-b/telegram", f"{TENANT}/mastodon", f"{TENANT}/facebook"):
        assert (
            requests.post(f"{stack.api_url}/webhooks/telegram/{path}", json={}, timeout=5).status_code == 404
        )
    oversized = requests.post(
        f"{stack.api_url}/webhooks/telegram/{TENANT}/telegram",
        data=b"{" + b" " * MAX_WEBHOOK_BYTES + b"}",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert oversized.status_code == 413
    wrong_token = requests.get(
        f"{stack.api_url}/webhooks/meta",
        params={"hub.mode": "subscribe", "hub.verify_token": "indovinato", "hub.challenge": "42"},
        timeout=5,
    )
    assert wrong_token.status_code == 403 and "42" not in wrong_token.text

    assert stack.drain() == 0  # nothing refused reached the inbox lane
    assert _conversations() == []
    # The routes' metrics go to the API's own output (lambda.log is the handlers' invoked by the pump).
    assert _emitted(capsys.readouterr().out, "WebhooksRefused") == 8


def test_meta_signatures_are_checked_on_the_raw_body(stack: LocalStack, citizens: Citizens) -> None:
    genuine = citizens.messenger_message(TENANT, "facebook", "Buongiorno")
    signature = genuine.headers["X-Hub-Signature-256"]
    assert genuine.status == 200
    assert citizens.replay(genuine).status == 200  # replayed: admitted, and recorded once below

    def status(body: bytes, header: str | None) -> int:
        headers = {"Content-Type": "application/json"} | ({"X-Hub-Signature-256": header} if header else {})
        return requests.post(genuine.url, data=body, headers=headers, timeout=5).status_code

    assert status(genuine.body, None) == 401  # missing
    assert status(genuine.body, signature[:-1]) == 401  # wrong length
    assert status(genuine.body, signature + "0") == 401
    assert status(genuine.body, "sha256=" + "0" * 64) == 401  # forged
    assert status(genuine.body.replace(b"Buongiorno", b"Buonasera!"), signature) == 401  # body changed
    # The same JSON with other spacing: the HMAC is over the raw bytes, not over what they mean.
    assert status(genuine.body.replace(b", ", b","), signature) == 401
    stack.drain()

    [conversation] = _conversations()
    assert [m.text for m in _messages(conversation)] == ["Buongiorno"]


def test_a_record_that_is_no_event_fails_alone(stack: LocalStack, citizens: Citizens) -> None:
    assert stack.resources is not None
    url, arn = stack.resources.queue_urls["inbox"], stack.resources.queue_arns["inbox"]
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=url, MessageBody="not an inbound event")
    assert citizens.telegram_message(TENANT, "telegram", "Buonasera").status == 200
    records = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]
    assert len(records) == 2

    response = stack.invoke("process_inbound", sqs_event(records, arn))

    [bad] = [r["MessageId"] for r in records if r["Body"] == "not an inbound event"]
    assert response == {"batchItemFailures": [{"itemIdentifier": bad}]}  # SQS retries it, then the DLQ
    assert [c.snippet for c in _conversations()] == ["Buonasera"]
    assert _emitted(_log(stack), "InboundFailures") == 1  # alarmed: someone looks before the DLQ


def test_a_person_writes_as_a_citizen_from_a_shell(
    stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What `banditore run` leaves in its state folder is all the command needs."""
    shared = ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "BANDITORE_CONFIG", "BANDITORE_SECRETS_FILE")
    assert stack.resources is not None
    env = {name: os.environ[name] for name in shared} | stack.resources.env()
    (tmp_path / ENV_FILE).write_text(json.dumps(env), encoding="utf-8")
    announcement, post = _our_posts(stack)["telegram"]
    shell = ["--api", str(stack.api_url), "--state-dir", str(tmp_path)]

    assert citizens_main([*shell, "posts", TENANT, "telegram"]) == 0
    assert f"{post}  annuncio {announcement}" in capsys.readouterr().out
    assert citizens_main([*shell, "telegram", TENANT, "telegram", "Strada allagata!", f"--post={post}"]) == 0
    stack.drain()

    [conversation] = _conversations()
    assert conversation.announcement_id == announcement  # a comment on that post
    assert [m.text for m in _messages(conversation)] == ["Strada allagata!"]


def test_during_an_alert_a_question_about_it_gets_the_alert_status(
    make_stack: Callable[..., LocalStack],
) -> None:
    alerts = {"id": "allerte", "kind": "cap", "url": "https://sample.feeds.invalid/allerte.xml"}
    comune = _comune(extra_sources=[alerts]) | {"alerts": {"zones": ["Tosc-B"]}}
    stack = make_stack(
        [comune], {"feed.rss": rss_document([]), "allerte.xml": _orange_alert()}, serve_api=True
    )
    stack.poll_alerts()
    stack.drain()
    citizens = Citizens(str(stack.api_url), CITIZEN)

    assert citizens.telegram_message(TENANT, "telegram", "Domani le scuole sono chiuse?").status == 200
    stack.drain()

    [conversation] = _conversations()
    _, answer = _messages(conversation)
    assert (answer.automatic, answer.author) == (True, "alert")
    assert answer.text.startswith("Risposta automatica: è in vigore «🟠 Allerta arancione")
    assert "https://www.protezionecivile.example.it/allerte/ALLERTA-1" in answer.text


def _orange_alert() -> bytes:
    expires = NOW + timedelta(days=1)
    return f"""<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>ALLERTA-1</identifier><sender>allerte@protezionecivile.example.it</sender>
  <sent>{NOW.isoformat()}</sent><status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
  <info>
    <language>it-IT</language><category>Met</category><event>Allerta per rischio idrogeologico</event>
    <urgency>Expected</urgency><severity>Severe</severity><certainty>Likely</certainty>
    <onset>{NOW.isoformat()}</onset><expires>{expires.isoformat()}</expires>
    <senderName>Centro Funzionale Regionale</senderName>
    <web>https://www.protezionecivile.example.it/allerte/ALLERTA-1</web>
    <parameter><valueName>awareness_level</valueName><value>3; orange; Severe</value></parameter>
    <area>
      <areaDesc>Valdarno</areaDesc>
      <geocode><valueName>Zona di Allerta</valueName><value>Tosc-B</value></geocode>
    </area>
  </info>
</alert>""".encode()
