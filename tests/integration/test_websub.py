"""WebSub push on the local stack: the renewal schedule subscribes the MeteoAlarm Atom feed at the hub
its feed advertises, the hub verifies intent through Chalice's local server, and a pushed alert reaches
every channel of every comune in its region without a poll; forged pushes post nothing; unknown
subscriptions, bad verifications and oversized bodies are refused; leases are renewed before expiry,
and a feed dropped from the config is unsubscribed."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
import yaml

from chalicelib import settings
from chalicelib.alerts.websub import CALLBACK_URL_ENV, LEASE_SECONDS, MAX_PUSH_BYTES, renew_subscriptions
from chalicelib.config.loader import CONFIG_ENV
from chalicelib.storage import alert_feeds
from chalicelib.storage.alert_feeds import feed_key
from chalicelib.storage.source_state import feed_state
from chalicelib.storage.subscriptions import Subscription, get_subscription, list_subscriptions
from devtools.sandbox.websub_hub import WebSubHub, running_hub
from devtools.stack import EVENTS, LocalStack
from tests.conftest import tenant

FEED = "meteoalarm-italy.atom"
SENDER = "meteoalarm.example"
NOW = datetime.now(UTC).replace(microsecond=0)
LEASE = 2 * 86_400  # what the hub grants


def _cap(identifier: str) -> bytes:
    """An orange thunderstorm warning for Toscana (EMMA_ID IT009), in Italian."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier><sender>{SENDER}</sender><sent>{NOW.isoformat()}</sent>
  <status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
  <info>
    <language>it-IT</language><category>Met</category><event>Temporali</event>
    <urgency>Future</urgency><severity>Severe</severity><certainty>Likely</certainty>
    <onset>{NOW.isoformat()}</onset><expires>{(NOW + timedelta(days=1)).isoformat()}</expires>
    <senderName>MeteoAlarm</senderName>
    <headline>Allerta arancione per temporali in Toscana</headline>
    <instruction>Evitare i sottopassi e le zone vicine ai corsi d'acqua.</instruction>
    <web>https://meteoalarm.org</web>
    <parameter><valueName>awareness_level</valueName><value>3; orange; Moderate</value></parameter>
    <parameter><valueName>awareness_type</valueName><value>3; Thunderstorm</value></parameter>
    <area>
      <areaDesc>Toscana</areaDesc>
      <geocode><valueName>EMMA_ID</valueName><value>IT009</value></geocode>
    </area>
  </info>
</alert>""".encode()


def _atom(stack: LocalStack, hub: WebSubHub, identifiers: list[str]) -> bytes:
    """The feed as MeteoAlarm shapes it: hub and self links, one entry per alert linking its CAP."""
    entries = "".join(
        f"""<entry>
    <cap:identifier>{identifier}</cap:identifier><cap:message_type>Alert</cap:message_type>
    <cap:status>Actual</cap:status><cap:sent>{NOW.isoformat()}</cap:sent>
    <link href="{stack.feeds.url}/{identifier}.xml" type="application/cap+xml"/>
    <id>{stack.feeds.url}/{identifier}.xml?index_info=0</id><updated>{NOW.isoformat()}</updated>
    <title>Orange Thunderstorm Warning issued for Italy - Toscana</title>
  </entry>"""
        for identifier in identifiers
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:cap="urn:oasis:names:tc:emergency:cap:1.2">
  <link href="{hub.url}" rel="hub"/>
  <link href="{_topic(stack)}" rel="self" type="application/atom+xml"/>
  <id>tag:meteoalarm.org,2021-02-19:IT</id><title>Meteoalarm Italy</title>
  <updated>{NOW.isoformat()}</updated>{entries}
</feed>""".encode()


def _topic(stack: LocalStack) -> str:
    return f"{stack.feeds.url}/{FEED}"


def _comune(name: str) -> dict[str, Any]:
    source = {
        "id": "meteoalarm",
        "kind": "cap",
        "format": "meteoalarm_atom",
        "url": f"https://sample.feeds.invalid/{FEED}",
    }
    return tenant(name, sources=[source]) | {"alerts": {"emma_ids": ["IT009"]}}


@pytest.fixture
def hub() -> Iterator[WebSubHub]:
    with running_hub(lease_seconds=LEASE) as running:
        yield running


@pytest.fixture
def stack(make_stack: Any, hub: WebSubHub) -> LocalStack:
    """Two comuni of Toscana on one MeteoAlarm feed, whose hub is the fake; routes served locally."""
    started: LocalStack = make_stack([_comune("comune-a"), _comune("comune-b")], {FEED: b""}, serve_api=True)
    os.environ[CALLBACK_URL_ENV] = str(started.api_url)  # stack.stop() restores the environment
    (started.feeds_dir / FEED).write_bytes(_atom(started, hub, []))
    return started


def _subscribe(stack: LocalStack, hub: WebSubHub) -> Subscription:
    """The renewal schedule, run as Lambda runs it, and the hub's verification of its request."""
    event = json.loads((EVENTS / "schedule.json").read_text(encoding="utf-8"))
    result = stack.invoke("renew_websub", event)
    assert [r["result"] for r in result["results"]] == ["requested"]
    [verification] = hub.wait_for_verifications(1)
    assert verification.confirmed
    [subscription] = list_subscriptions()
    return subscription


def _publish(stack: LocalStack, hub: WebSubHub, identifier: str, **signing: Any) -> list[dict[str, Any]]:
    """Publish a feed listing one more alert at the hub; return the posts that push made."""
    (stack.feeds_dir / f"{identifier}.xml").write_bytes(_cap(identifier))
    before = len(stack.sandbox.posts())
    assert hub.publish(_topic(stack), _atom(stack, hub, [identifier]), **signing) == [202]
    stack.drain()
    return stack.sandbox.posts()[before:]


def test_a_pushed_alert_is_posted_on_every_channel_without_a_poll(stack: LocalStack, hub: WebSubHub) -> None:
    subscription = _subscribe(stack, hub)

    [request] = hub.requests
    assert request["hub.callback"] == f"{stack.api_url}/websub/{subscription.id}"
    assert request["hub.topic"] == _topic(stack)
    assert request["hub.secret"] == subscription.secret
    assert len(subscription.secret) >= 32
    assert subscription.status == "active"
    assert subscription.lease_expires is not None
    assert abs(subscription.lease_expires - (NOW + timedelta(seconds=LEASE))) < timedelta(minutes=5)

    posts = _publish(stack, hub, "IT-TEMPORALI-1")
    assert len(posts) == 2 * 2  # two comuni x (telegram, mastodon)
    assert all("🟠" in p["text"] and "Toscana" in p["text"] for p in posts)
    assert {p["platform"] for p in posts} == {"telegram", "mastodon"}
    assert feed_state(feed_key(_topic(stack), "meteoalarm_atom")).last_poll is None  # no poll was involved

    assert _publish(stack, hub, "IT-TEMPORALI-1") == []  # the same push again: nothing twice
    log = (stack.state_dir / "lambda.log").read_text(encoding="utf-8")
    assert "WebSub push handled" in log
    assert subscription.secret not in log


def _waiting(stack: LocalStack) -> int:
    """Messages waiting on the urgent lane."""
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=stack.resources.queue_urls["urgent"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_a_push_is_answered_at_once_and_read_and_announced_from_the_urgent_lane(
    stack: LocalStack, hub: WebSubHub
) -> None:
    _subscribe(stack, hub)
    (stack.feeds_dir / "IT-SUBITO-1.xml").write_bytes(_cap("IT-SUBITO-1"))

    assert hub.publish(_topic(stack), _atom(stack, hub, ["IT-SUBITO-1"])) == [202]

    assert stack.sandbox.posts() == []  # answered before the CAP document was even fetched
    assert _waiting(stack) == 1  # the push job, naming the stored body
    stack.drain()
    assert len(stack.sandbox.posts()) == 4


def test_a_push_that_cannot_be_queued_is_refused_so_the_hub_delivers_it_again(
    stack: LocalStack, hub: WebSubHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    _subscribe(stack, hub)
    (stack.feeds_dir / "IT-RIPROVA-1.xml").write_bytes(_cap("IT-RIPROVA-1"))
    body = _atom(stack, hub, ["IT-RIPROVA-1"])
    lane = stack.resources.queue_urls["urgent"]

    monkeypatch.setenv(settings.URGENT_QUEUE_URL_ENV, lane + "-gone")  # SQS refuses the job
    assert hub.publish(_topic(stack), body) == [503]
    monkeypatch.setenv(settings.URGENT_QUEUE_URL_ENV, lane)
    assert hub.publish(_topic(stack), body) == [202]  # the hub's retry

    stack.drain()
    assert len(stack.sandbox.posts()) == 4


def test_a_push_too_large_to_keep_makes_the_feed_polled_at_once(
    stack: LocalStack, hub: WebSubHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    _subscribe(stack, hub)
    monkeypatch.setattr(alert_feeds, "MAX_ITEM_BYTES", 10)
    (stack.feeds_dir / "IT-GRANDE-1.xml").write_bytes(_cap("IT-GRANDE-1"))
    (stack.feeds_dir / FEED).write_bytes(_atom(stack, hub, ["IT-GRANDE-1"]))  # what the poll reads

    assert len(_publish(stack, hub, "IT-GRANDE-1")) == 4
    assert "WebSub push handled by a poll" in (stack.state_dir / "lambda.log").read_text(encoding="utf-8")


def test_a_push_without_a_valid_signature_is_acknowledged_and_ignored(
    stack: LocalStack, hub: WebSubHub
) -> None:
    _subscribe(stack, hub)

    # Each answered 202 like a genuine push (checked in _publish), so a forger learns nothing.
    assert _publish(stack, hub, "IT-FALSO-1", sign="forged") == []
    assert _publish(stack, hub, "IT-FALSO-2", sign="none") == []
    assert _publish(stack, hub, "IT-FALSO-3", algorithm="md5") == []
    assert (stack.state_dir / "lambda.log").read_text(encoding="utf-8").count("WebSub push ignored") == 3
    assert len(_publish(stack, hub, "IT-VERO-1")) == 4  # the same path, genuinely signed, posts


def test_bad_callbacks_are_refused(stack: LocalStack, hub: WebSubHub) -> None:
    subscription = _subscribe(stack, hub)
    callback = f"{stack.api_url}/websub/{subscription.id}"
    atom = {"Content-Type": "application/atom+xml"}

    unknown = f"{stack.api_url}/websub/{'x' * 24}"
    assert requests.post(unknown, data=b"<feed/>", headers=atom, timeout=5).status_code == 404
    assert hub.verify("subscribe", unknown, _topic(stack), LEASE).status == 404
    assert hub.verify("subscribe", callback, "https://another.example/feed", LEASE).status == 404
    # Anyone may ask the hub to unsubscribe us: only a request of ours is confirmed.
    assert hub.verify("unsubscribe", callback, _topic(stack), None).status == 404
    assert get_subscription(subscription.id) == subscription

    no_challenge = requests.get(
        callback, params={"hub.mode": "subscribe", "hub.topic": _topic(stack)}, timeout=5
    )
    assert no_challenge.status_code == 400
    assert no_challenge.json()["error"] == "bad_challenge"
    oversized = requests.post(callback, data=b" " * (MAX_PUSH_BYTES + 1), headers=atom, timeout=10)
    assert oversized.status_code == 413
    assert oversized.json()["error"] == "too_large"
    json_body = requests.post(callback, json={"feed": []}, timeout=5)
    assert json_body.status_code == 415

    # A lease longer than we asked for is recorded as what we asked: renewals never stop.
    assert hub.verify("subscribe", callback, _topic(stack), 10 * 365 * 86_400).confirmed
    lease_expires = get_subscription(subscription.id).lease_expires  # type: ignore[union-attr]
    assert lease_expires is not None
    assert lease_expires <= datetime.now(UTC) + timedelta(seconds=LEASE_SECONDS)


def test_a_denial_is_recorded_and_asked_again_later(stack: LocalStack, hub: WebSubHub) -> None:
    subscription = _subscribe(stack, hub)
    callback = f"{stack.api_url}/websub/{subscription.id}"
    query = {"hub.mode": "denied", "hub.topic": _topic(stack), "hub.reason": "not allowed"}

    assert requests.get(callback, params=query, timeout=5).status_code == 200
    assert get_subscription(subscription.id).status == "denied"  # type: ignore[union-attr]
    assert renew_subscriptions(NOW)["results"] == []  # just asked: not again at once
    later = renew_subscriptions(NOW + timedelta(hours=2))
    assert [r["result"] for r in later["results"]] == ["requested"]
    assert hub.wait_for_verifications(2)[-1].confirmed
    assert get_subscription(subscription.id).status == "active"  # type: ignore[union-attr]


def test_a_lease_is_renewed_a_day_before_it_ends(stack: LocalStack, hub: WebSubHub) -> None:
    subscription = _subscribe(stack, hub)
    assert subscription.lease_expires is not None

    assert renew_subscriptions(NOW + timedelta(hours=12))["results"] == []  # a day and a half left
    assert len(hub.requests) == 1
    near_expiry = subscription.lease_expires - timedelta(hours=23)
    renewed = renew_subscriptions(near_expiry)

    assert [r["result"] for r in renewed["results"]] == ["requested"]
    assert hub.wait_for_verifications(2)[-1].confirmed
    again = hub.requests[-1]
    assert (again["hub.callback"], again["hub.secret"]) == (
        hub.requests[0]["hub.callback"],
        subscription.secret,
    )
    [after] = list_subscriptions()
    assert after.id == subscription.id
    assert after.status == "active"
    assert after.lease_expires is not None
    assert after.lease_expires > subscription.lease_expires
    assert len(_publish(stack, hub, "IT-DOPO-RINNOVO")) == 4  # pushes still verify after renewal


def test_a_feed_dropped_from_the_config_is_unsubscribed(stack: LocalStack, hub: WebSubHub) -> None:
    subscription = _subscribe(stack, hub)
    config = yaml.safe_load(Path(os.environ[CONFIG_ENV]).read_text(encoding="utf-8"))
    for comune in config["tenants"]:
        comune.update(sources=[], routes=[])
    dropped = stack.state_dir / "config.dropped.yaml"
    dropped.write_text(yaml.safe_dump(config), encoding="utf-8")
    os.environ[CONFIG_ENV] = str(dropped)  # a new deployment of the config

    result = renew_subscriptions(NOW)

    assert [r["result"] for r in result["results"]] == ["requested"]
    assert hub.requests[-1]["hub.mode"] == "unsubscribe"
    assert "hub.secret" not in hub.requests[-1]
    assert hub.wait_for_verifications(2)[-1].confirmed
    assert get_subscription(subscription.id) is None
    assert hub.publish(_topic(stack), _atom(stack, hub, [])) == []  # the hub has no subscriber left
