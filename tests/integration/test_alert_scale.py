"""Alerts at national scale on the local stack: a feed listed by many comuni costs one state read a
pass; above the fan-out threshold its alerts are announced by jobs on the urgent lane, each tenant
once, a crashing one alone; a comune that starts listing a feed gets the alerts already in force;
an Atom feed's CAP documents are fetched in parallel within a deadline, and only once."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError

from chalicelib import aws, settings
from chalicelib.alerts import fanout, polling
from chalicelib.config.loader import CONFIG_ENV
from chalicelib.publishing.housekeeping import run_housekeeping
from chalicelib.publishing.lanes import AnnounceJob, send_jobs
from chalicelib.status import _health_report
from chalicelib.storage import alert_feeds, keys
from chalicelib.storage.alert_feeds import feed_key
from chalicelib.storage.deliveries import Delivery
from chalicelib.storage.source_state import SourceState, feed_state, save_source_state
from devtools.stack import LocalStack
from tests.conftest import tenant
from tests.feedserver import FeedServer, Reply

SENDER = "allerte@protezionecivile.example.it"
NOW = datetime.now(UTC).replace(microsecond=0)
FEED = "allerte.xml"
CAP_SOURCE = {"id": "allerte", "kind": "cap", "url": f"https://sample.feeds.invalid/{FEED}"}


def _cap(identifier: str, zone: str = "Tosc-B") -> str:
    return f"""<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier><sender>{SENDER}</sender><sent>{NOW.isoformat()}</sent>
  <status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
  <info>
    <language>it-IT</language><category>Met</category><event>Allerta arancione per temporali</event>
    <urgency>Expected</urgency><severity>Severe</severity><certainty>Likely</certainty>
    <onset>{NOW.isoformat()}</onset><expires>{(NOW + timedelta(days=1)).isoformat()}</expires>
    <senderName>Centro Funzionale</senderName><web>https://www.protezionecivile.example.it/{identifier}</web>
    <parameter><valueName>awareness_level</valueName><value>3; orange; Severe</value></parameter>
    <area><areaDesc>Valdarno</areaDesc>
      <geocode><valueName>Zona di Allerta</valueName><value>{zone}</value></geocode></area>
  </info>
</alert>"""


def _comune(number: int, zone: str = "Tosc-B", source: dict[str, Any] = CAP_SOURCE) -> dict[str, Any]:
    """A comune with one sandboxed Telegram channel, reading `source` for alerts in `zone`."""
    channel = {
        "id": "telegram",
        "platform": "telegram",
        "chat": f"@Comune{number:02d}",
        "token": f"env:SCALE_{number}_TG",
    }
    return tenant(f"comune-{number:02d}", sources=[source], channels=[channel]) | {
        "alerts": {"zones": [zone]}
    }


def _round(stack: LocalStack) -> list[dict[str, Any]]:
    before = len(stack.sandbox.posts())
    stack.poll_alerts()
    stack.drain()
    return stack.sandbox.posts()[before:]


@pytest.fixture
def dynamodb_calls() -> Iterator[Counter[str]]:
    """DynamoDB operations the runtime's client makes from now on (install after the stack starts)."""
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    client = aws.client("dynamodb")
    client.meta.events.register("before-parameter-build.dynamodb", count)
    yield calls
    client.meta.events.unregister("before-parameter-build.dynamodb", count)


def test_a_pass_reads_one_state_row_per_feed_however_many_comuni_list_it(
    make_stack: Any, request: pytest.FixtureRequest
) -> None:
    # An alert for another zone: 30 comuni decide, nothing is posted.
    stack = make_stack([_comune(n) for n in range(30)], {FEED: _cap("ALTROVE-1", zone="Tosc-A").encode()})
    assert _round(stack) == []
    calls: Counter[str] = request.getfixturevalue("dynamodb_calls")

    result = stack.poll_alerts()

    assert [feed["status"] for feed in result["feeds"]] == ["unchanged"]
    assert calls == Counter({"GetItem": 1})


def test_a_large_feed_is_announced_by_jobs_each_comune_once_a_crashing_one_alone(
    make_stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fanout, "MEMBERS_PER_JOB", 5)  # 23 comuni: 5 jobs, the last one of 3
    real = fanout.handle_alerts

    def crashing_for_one(member: Any, *args: Any) -> Any:
        if member.id == "comune-07":
            raise RuntimeError("a broken comune")
        return real(member, *args)

    monkeypatch.setattr(fanout, "handle_alerts", crashing_for_one)
    stack = make_stack([_comune(n) for n in range(23)], {FEED: _cap("ALLERTA-1").encode()})

    polled = stack.poll_alerts()
    [feed] = polled["feeds"]
    assert (feed["status"], feed["jobs"], feed["outcomes"]) == ("read", 5, [])
    assert stack.sandbox.posts() == []  # nothing announced inline
    stack.drain()
    assert _round(stack) == []  # the feed is unchanged: no more jobs

    targets = Counter(post["target"] for post in stack.sandbox.posts())
    assert targets == Counter({f"@Comune{n:02d}": 1 for n in range(23) if n != 7})
    # The failed slice went back to its queue, to be run again (the others skip what they posted).
    sqs = boto3.client("sqs")
    attributes = sqs.get_queue_attributes(
        QueueUrl=stack.resources.queue_urls["urgent"],
        AttributeNames=["ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"
    log = (stack.state_dir / "lambda.log").read_text(encoding="utf-8")
    assert log.count("Announce job done") == 5


def _not_listing(comune: dict[str, Any]) -> dict[str, Any]:
    return comune | {"sources": [], "routes": []}


def _deploy(name: str, listing: range) -> None:
    """Run from now on with only the comuni numbered in `listing` listing the feed, as after a
    deployment (stack.stop() restores the environment). The running config's first comune lists it."""
    running = Path(os.environ[CONFIG_ENV])
    config = yaml.safe_load(running.read_text(encoding="utf-8"))
    first = config["tenants"][0]
    source = {"sources": first["sources"], "routes": first["routes"]}
    for number, comune in enumerate(config["tenants"]):
        comune.update(source if number in listing else {"sources": [], "routes": []})
    deployed = running.with_name(f"config.{name}.yaml")
    deployed.write_text(yaml.safe_dump(config), encoding="utf-8")
    os.environ[CONFIG_ENV] = str(deployed)


def test_a_comune_that_starts_listing_a_feed_gets_the_alerts_in_force(make_stack: Any) -> None:
    stack = make_stack([_comune(1), _not_listing(_comune(2))], {FEED: _cap("ALLERTA-1").encode()})
    assert [post["target"] for post in _round(stack)] == ["@Comune01"]
    assert _round(stack) == []

    _deploy("added", range(2))

    assert [post["target"] for post in _round(stack)] == ["@Comune02"]  # the feed itself is unchanged
    assert _round(stack) == []


def test_a_job_queued_under_other_members_announces_nothing_and_the_next_pass_announces_again(
    make_stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fanout, "MEMBERS_PER_JOB", 5)
    stack = make_stack(
        [_comune(n) for n in range(15)] + [_not_listing(_comune(15))], {FEED: _cap("ALLERTA-1").encode()}
    )
    _deploy("new", range(16))  # the poller runs on the new config: four slices ...
    [feed] = stack.poll_alerts()["feeds"]
    assert feed["jobs"] == 4

    _deploy("old", range(15))  # ... its jobs, on the old one: three full slices, comune-15 in none
    stack.drain()

    assert stack.sandbox.posts() == []
    log = (stack.state_dir / "lambda.log").read_text(encoding="utf-8")
    assert log.count("Announce job for other members") == 4
    assert feed_state(feed_key(f"{stack.feeds.url}/{FEED}", "cap")).members_digest is None
    _deploy("new", range(16))  # the deployment ends
    targets = Counter(post["target"] for post in _round(stack))
    assert targets == Counter({f"@Comune{n:02d}": 1 for n in range(16)})
    assert _round(stack) == []


@pytest.mark.parametrize("row_before", [False, True], ids=["first-pass", "comune-added"])
def test_a_job_that_runs_before_its_pass_saves_the_feed_state_still_makes_the_next_pass_announce(
    make_stack: Any, monkeypatch: pytest.MonkeyPatch, row_before: bool
) -> None:
    monkeypatch.setattr(fanout, "MEMBERS_PER_JOB", 5)
    stack = make_stack(
        [_comune(n) for n in range(15)] + [_not_listing(_comune(15))], {FEED: _cap("ALLERTA-1").encode()}
    )
    posted_before = Counter(post["target"] for post in _round(stack)) if row_before else Counter()
    _deploy("new", range(16))  # the poller runs on the new config: four slices ...

    def run_at_once(jobs: list[AnnounceJob]) -> int:
        """... its jobs, on the old one, all of them before the pass saves the feed's state."""
        _deploy("old", range(15))
        for job in jobs:
            fanout.run_announce_job(job)
        _deploy("new", range(16))
        return len(jobs)

    monkeypatch.setattr(fanout, "send_jobs", run_at_once)
    before = len(stack.sandbox.posts())
    [feed] = stack.poll_alerts()["feeds"]
    assert (feed["jobs"], stack.sandbox.posts()[before:]) == (4, [])
    assert feed_state(feed_key(f"{stack.feeds.url}/{FEED}", "cap")).members_digest is None  # not written back

    monkeypatch.setattr(fanout, "send_jobs", send_jobs)
    targets = Counter(post["target"] for post in _round(stack))
    assert targets + posted_before == Counter({f"@Comune{n:02d}": 1 for n in range(16)})
    assert _round(stack) == []


def test_a_large_feed_whose_snapshot_cannot_be_stored_is_read_again_not_announced_inline(
    make_stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = make_stack([_comune(n) for n in range(12)], {FEED: _cap("ALLERTA-1").encode()})
    monkeypatch.setattr(alert_feeds, "MAX_ITEM_BYTES", 100)  # as for a national feed over 350 KB

    [feed] = stack.poll_alerts()["feeds"]
    stack.drain()

    assert (feed["status"], feed["complete"], feed["jobs"], feed["outcomes"]) == ("read", False, 0, [])
    assert stack.sandbox.posts() == []
    assert "Large alert feed not announced: no snapshot" in (stack.state_dir / "lambda.log").read_text(
        encoding="utf-8"
    )
    monkeypatch.undo()  # the snapshot fits again (a DynamoDB error passed): the next pass announces
    assert len(_round(stack)) == 12
    assert _round(stack) == []


def test_a_comune_whose_deliveries_cannot_be_queued_does_not_hold_up_the_others(
    make_stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = fanout.enqueue

    def refused_for_one(deliveries: list[Delivery]) -> list[Delivery]:
        if any(delivery.tenant == "comune-02" for delivery in deliveries):
            raise ClientError(
                {"Error": {"Code": "ServiceUnavailable", "Message": "SQS down"}}, "SendMessageBatch"
            )
        return real(deliveries)

    monkeypatch.setattr(fanout, "enqueue", refused_for_one)
    stack = make_stack([_comune(n) for n in range(1, 4)], {FEED: _cap("ALLERTA-1").encode()})

    [feed] = stack.poll_alerts()["feeds"]
    stack.drain()

    assert (feed["status"], feed["complete"]) == ("read", False)
    assert [post["target"] for post in stack.sandbox.posts()] == ["@Comune01", "@Comune03"]
    # comune-02's announcement is stored, its delivery pending: housekeeping queues it again.
    monkeypatch.undo()
    assert run_housekeeping(now=datetime.now(UTC) + timedelta(minutes=30))["requeued"] == 1
    stack.drain()
    assert [post["target"] for post in stack.sandbox.posts()][2:] == ["@Comune02"]


# -- MeteoAlarm Atom: linked CAP documents -------------------------------------------------------------
ATOM = "meteoalarm.atom"
ATOM_SOURCE = CAP_SOURCE | {
    "id": "meteoalarm",
    "format": "meteoalarm_atom",
    "url": f"https://sample.feeds.invalid/{ATOM}",
}
CAP_HEADERS = {"Content-Type": "application/cap+xml"}


def _atom(caps: FeedServer, identifiers: list[str]) -> bytes:
    entries = "".join(
        f'<entry><cap:identifier>{identifier}</cap:identifier><link type="application/cap+xml" '
        f'href="{caps.url(f"/{identifier}.xml")}"/></entry>'
        for identifier in identifiers
    )
    return (
        '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:cap="urn:oasis:names:tc:emergency:cap:1.2">'
        f"<title>Allerte</title>{entries}</feed>"
    ).encode()


def test_atom_documents_are_fetched_in_parallel_once_and_a_late_one_is_read_next_pass(
    make_stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    deadline = 5.0
    monkeypatch.setattr(polling, "ATOM_DEADLINE_SECONDS", deadline)
    names = ["ALLERTA-1", "ALLERTA-2", "ALLERTA-3", "LENTA-1"]
    # Each of the three answers only once all three are asked for: read one after the other, none
    # would be in before the deadline. The fourth answers only when the test lets it: late, always.
    side_by_side = threading.Barrier(3, timeout=deadline)
    released = threading.Event()

    def together(name: str) -> Callable[[], Iterator[bytes]]:
        def body() -> Iterator[bytes]:
            side_by_side.wait()
            yield _cap(name).encode()

        return body

    def hanging() -> Iterator[bytes]:
        released.wait(timeout=60)
        yield _cap("LENTA-1").encode()

    with FeedServer() as caps:
        try:
            for name in names[:3]:
                caps.routes[f"/{name}.xml"] = Reply(200, CAP_HEADERS, together(name))
            caps.routes["/LENTA-1.xml"] = Reply(200, CAP_HEADERS, hanging)
            stack = make_stack([_comune(1, source=ATOM_SOURCE)], {ATOM: _atom(caps, names)})

            started = time.monotonic()
            result = stack.poll_alerts()
            assert time.monotonic() - started >= deadline  # the late one was waited for, up to the deadline
            stack.drain()

            assert len(stack.sandbox.posts()) == 3
            [feed] = result["feeds"]
            assert not feed["complete"]
            state = feed_state(feed_key(f"{stack.feeds.url}/{ATOM}", "meteoalarm_atom"))
            assert state.body_hash is None  # validators not kept: the next pass reads the feed again ...
            assert state.members_digest is not None  # ... for what it lacks, not as for new members
            assert state.announced_snapshot == state.snapshot is not None

            caps.routes["/LENTA-1.xml"] = Reply(200, CAP_HEADERS, _cap("LENTA-1").encode())
            assert len(_round(stack)) == 1  # the late alert, and nothing twice
            assert _round(stack) == []
            assert {path: caps.hits[path] for path in caps.hits} == {
                **{f"/{name}.xml": 1 for name in names[:3]},  # read once, then from the snapshot
                "/LENTA-1.xml": 2,
            }
        finally:
            released.set()  # the late request's handler ends before the server stops


def test_a_broken_cap_link_is_fetched_again_each_pass_but_announces_only_what_is_new(make_stack: Any) -> None:
    names = ["ALLERTA-1", "ROTTA-1"]
    with FeedServer() as caps:
        caps.routes["/ALLERTA-1.xml"] = Reply(200, CAP_HEADERS, _cap("ALLERTA-1").encode())
        caps.routes["/ROTTA-1.xml"] = Reply(404, {}, b"gone")
        comuni = [_comune(n, source=ATOM_SOURCE) for n in range(13)]
        stack = make_stack([*comuni[:12], _not_listing(comuni[12])], {ATOM: _atom(caps, names)})

        def passes(count: int) -> list[tuple[bool, int, int]]:
            """Each pass's (complete, jobs queued, posts)."""
            seen = []
            for _ in range(count):
                before = len(stack.sandbox.posts())
                [feed] = stack.poll_alerts()["feeds"]
                stack.drain()
                seen.append((feed["complete"], feed["jobs"], len(stack.sandbox.posts()) - before))
            return seen

        assert passes(3) == [(False, 1, 12), (False, 0, 0), (False, 0, 0)]
        assert caps.hits["/ROTTA-1.xml"] == 3 and caps.hits["/ALLERTA-1.xml"] == 1

        _deploy("added", range(13))  # a comune added meanwhile gets the alert in force
        assert passes(2) == [(False, 1, 1), (False, 0, 0)]

        caps.routes["/ROTTA-1.xml"] = Reply(200, CAP_HEADERS, _cap("ROTTA-1").encode())  # mended
        assert passes(2) == [(True, 1, 13), (True, 0, 0)]
        assert caps.hits["/ALLERTA-1.xml"] == 1


def test_an_alert_source_s_health_is_its_feed_s_for_every_comune_listing_it(
    make_stack: Any, request: pytest.FixtureRequest
) -> None:
    stack = make_stack([_comune(1), _comune(2)], {})  # the feed is missing: 404
    long_ago = datetime.now(UTC) - timedelta(days=1)
    # A row an older version kept per tenant: no longer what the alert source's health is.
    save_source_state(SourceState("comune-01", "allerte", first_poll=long_ago, last_success=long_ago))
    stack.poll_alerts()
    calls: Counter[str] = request.getfixturevalue("dynamodb_calls")

    report = _health_report()

    health = {
        t["id"]: {s["id"]: (s["health"], s["last_error_reason"]) for s in t["sources"]}
        for t in report["tenants"]
    }
    assert health == {f"comune-0{n}": {"allerte": ("failing", "http_status")} for n in (1, 2)}
    assert calls["GetItem"] == 1  # the feed's row, once for both comuni
    assert run_housekeeping()["stale_sources"] == []  # failing for minutes, not stale


def test_a_job_whose_snapshot_expired_does_nothing_and_the_next_pass_announces_again(make_stack: Any) -> None:
    stack = make_stack([_comune(n) for n in range(12)], {FEED: _cap("ALLERTA-1").encode()})
    [feed] = stack.poll_alerts()["feeds"]
    assert feed["jobs"] == 1
    key = feed_key(f"{stack.feeds.url}/{FEED}", "cap")
    table = boto3.resource("dynamodb").Table(os.environ[settings.TABLE_ENV])
    table.delete_item(Key={"pk": keys.feed_pk(key), "sk": keys.snapshot_sk(feed_state(key).snapshot or "")})
    alert_feeds._snapshots.clear()  # as a fresh worker would: the item is gone (TTL)

    stack.drain()

    assert stack.sandbox.posts() == []
    assert "Announce job without its snapshot" in (stack.state_dir / "lambda.log").read_text(encoding="utf-8")
    assert len(_round(stack)) == 12  # the feed is unchanged, yet read and announced again
    assert _round(stack) == []
